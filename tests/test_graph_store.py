"""The graph parameter folder: exact round trip, and every edit or damage refused in one line."""
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import params
from ecc_hw.graph import store
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.golden import run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.manifest import DIGEST_KEY, MANIFEST, ParamFileError, manifest_digest
from ecc_hw.variants import Method, TreMode

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
NAMES = ("resnet_dynamo", "densenet_legacy", "maxpool_legacy", "depthwise_legacy", "input_norm_legacy",
         "nhwc_dynamo", "mlp_legacy", "conv1d_dynamo")


def _params(name: str) -> tuple[store.GraphParams, np.ndarray]:
    network = convert_graph(GRAPH_FIXTURES / f"{name}.onnx")
    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, x[:30], "percentile", 99.9))
    return store.GraphParams(graph, Method.ECC, TreMode.INITIAL, 32, 32, ((1, -2),), {"note": name}), x


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_is_exact(name, tmp_path):
    saved, x = _params(name)
    store.save(saved, tmp_path / "net")
    loaded = store.load(tmp_path / "net")
    assert (loaded.method, loaded.tre_mode, loaded.timesteps) == (Method.ECC, TreMode.INITIAL, 32)
    assert (loaded.bias_calibrated_for, loaded.bias_corrections, loaded.provenance) == (32, ((1, -2),), {"note": name})
    assert loaded.network.input == saved.network.input and loaded.network.max_pools == saved.network.max_pools
    assert loaded.graph.lambdas == saved.graph.lambdas
    for before, after in zip(saved.graph.layers, loaded.graph.layers):
        assert (before.threshold, before.tre_charge, before.gain, before.unit) == \
               (after.threshold, after.tre_charge, after.gain, after.unit)
        assert np.array_equal(before.bias, after.bias)
        for edge, back in zip(before.edges, after.edges):
            assert (edge.source, edge.geometry) == (back.source, back.geometry)
            assert np.array_equal(edge.weight, back.weight) and back.weight.dtype == np.int64
    for before, after in zip(saved.network.layers, loaded.network.layers):
        assert np.array_equal(before.bias, after.bias) and before.clip == after.clip
        assert [e.concat_ranges for e in before.edges] == [e.concat_ranges for e in after.edges]
    a = run_graph(saved.graph, saved.graph.quantise_input(x[:8]), 8)
    b = run_graph(loaded.graph, loaded.graph.quantise_input(x[:8]), 8)
    assert np.array_equal(a.output_membrane, b.output_membrane) and np.array_equal(a.synops, b.synops)


def test_saving_twice_gives_identical_bytes(tmp_path):
    saved, _ = _params("maxpool_legacy")
    store.save(saved, tmp_path / "a")
    store.save(saved, tmp_path / "b")
    for file in sorted((tmp_path / "a").iterdir()):
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "net"
    store.save(_params("resnet_dynamo")[0], path)
    return path


def _edited(folder, tmp_path, edit, redigest=True) -> Path:
    copy = tmp_path / "edited"
    copy.mkdir()
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    content = json.loads((copy / MANIFEST).read_text())
    edit(content)
    if redigest:
        content[DIGEST_KEY] = manifest_digest(content)
    (copy / MANIFEST).write_text(json.dumps(content))
    return copy


def _refused(path, *fragments):
    with pytest.raises(ParamFileError) as refused:
        store.load(path)
    message = str(refused.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_hand_edited_threshold_is_refused(folder, tmp_path):
    def edit(content):
        content["layers"][0]["threshold"] += 1
    _refused(_edited(folder, tmp_path, edit, redigest=False), "do not match its manifest_sha256")


@pytest.mark.parametrize("edit, fragments", [
    (lambda c: c["layers"][1]["edges"][0]["source"].update(index=5), ("layer 2 edge 1", "earlier layer")),
    (lambda c: c["layers"][0]["edges"][0]["geometry"].update(groups=7), ("groups do not divide",)),
    (lambda c: c["layers"][0]["edges"][0]["geometry"]["output_shape"].__setitem__(0, 3), ("does not join",)),
    (lambda c: c["layers"][0].update(threshold=None), ("threshold None",)),
    (lambda c: c["layers"][-1].update(spiking=True), ("output accumulator",)),
    (lambda c: c["lambdas"]["layers"].pop(), ("layer and 0 max-pool lambdas",)),
    (lambda c: c["input"].update(layout="NWHC"), ("layout 'NWHC'",)),
    (lambda c: c["layers"][0].update(bias_per_channel=False), ("float bias of layer 1",)),
    (lambda c: c["layers"][2].pop("edges"), ("damaged manifest", "KeyError")),
    (lambda c: c.update(topology="chain"), ("holds a chain network",)),
])
def test_inconsistent_manifests_are_refused(folder, tmp_path, edit, fragments):
    _refused(_edited(folder, tmp_path, edit), *fragments)


def test_a_replaced_weight_file_is_refused(folder, tmp_path):
    copy = _edited(folder, tmp_path, lambda content: None)
    weight = copy / "layer2_edge1_weight.npy"
    np.save(weight, np.load(weight) + 1)
    _refused(copy, "layer2_edge1_weight.npy", "sha256 does not match")


def test_chain_and_graph_readers_refuse_each_others_folders(folder, tmp_path):
    with pytest.raises(ParamFileError, match="holds a graph network"):
        params.load(folder)
    from ecc_hw.testing import random_network
    params.save(random_network(0), tmp_path / "chain")
    _refused(tmp_path / "chain", "holds a chain network")


def test_files_take_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        store.save(replace(_params("mlp_legacy")[0], provenance={}), tmp_path / "net")
    finally:
        os.umask(previous)
    assert (tmp_path / "net").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "net" / MANIFEST).stat().st_mode & 0o777 == 0o644
