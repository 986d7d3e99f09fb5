"""The parameter folder: round trip, determinism, variants, and refusal of damaged or future files."""
import hashlib
import json

import numpy as np
import pytest

from ecc_hw import params
from ecc_hw.manifest import DIGEST_KEY, FORMAT_VERSION, manifest_digest
from ecc_hw.params import ParamFileError
from ecc_hw.testing import random_network
from ecc_hw.variants import InputKind, Method, TreMode


def folder_bytes(path):
    return {file.name: file.read_bytes() for file in sorted(path.iterdir())}


def rewrite(folder, change):
    """Apply ``change`` to the manifest of ``folder`` and seal it again (array hashes, then the manifest's own
    digest), as a writer with a bug would: the checks after the digests must catch what it wrote."""
    manifest_path = folder / "manifest.json"
    content = json.loads(manifest_path.read_text())
    change(content)
    for name in content["sha256"]:
        content["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    content[DIGEST_KEY] = manifest_digest(content)
    manifest_path.write_text(json.dumps(content))


def test_round_trip_is_identical(tmp_path):
    net = random_network(7)
    net.layers[0].float_weight = net.layers[0].weight / 3.0
    net.layers[0].float_bias = net.layers[0].bias / 3.0
    params.save(net, tmp_path / "net")
    loaded = params.load(tmp_path / "net")
    for ours, theirs in zip(net.layers, loaded.layers):
        assert np.array_equal(ours.weight, theirs.weight) and np.array_equal(ours.bias, theirs.bias)
        assert (ours.threshold, ours.tre_charge, ours.pool, ours.kernel, ours.padding) == \
               (theirs.threshold, theirs.tre_charge, theirs.pool, theirs.kernel, theirs.padding)
    np.testing.assert_array_equal(loaded.layers[0].float_weight, net.layers[0].float_weight)
    params.save(loaded, tmp_path / "again")
    assert folder_bytes(tmp_path / "net") == folder_bytes(tmp_path / "again")


def test_saving_twice_is_byte_identical(tmp_path):
    params.save(random_network(3), tmp_path / "a")
    params.save(random_network(3), tmp_path / "b")
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")


def test_damaged_array_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    weight = tmp_path / "net" / "layer1_weight.npy"
    data = bytearray(weight.read_bytes())
    data[-1] ^= 1
    weight.write_bytes(bytes(data))
    with pytest.raises(ParamFileError, match="layer1_weight.npy: missing or damaged"):
        params.load(tmp_path / "net")


def test_future_version_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    content["version"] = 99
    manifest.write_text(json.dumps(content))
    with pytest.raises(ParamFileError, match="format version 99 is not supported"):
        params.load(tmp_path / "net")


def test_damaged_manifest_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ParamFileError, match="damaged manifest"):
        params.load(tmp_path / "net")
    (tmp_path / "net" / "manifest.json").unlink()
    with pytest.raises(ParamFileError, match="not an ecc-hw parameter folder"):
        params.load(tmp_path / "net")


def test_variants_load_as_members_and_save_as_their_strings(tmp_path):
    net = random_network(4, tre_mode="initial")
    net.method = "rmp"                      # a plain string writes as the member does
    params.save(net, tmp_path / "net")
    loaded = params.load(tmp_path / "net")
    assert (loaded.method, loaded.tre_mode, loaded.input_kind) == (Method.RMP, TreMode.INITIAL, InputKind.IMAGE)
    assert all(type(v) is not str for v in (loaded.method, loaded.tre_mode, loaded.input_kind))
    manifest = json.loads((tmp_path / "net" / "manifest.json").read_text())
    assert (manifest["method"], manifest["tre_mode"]) == ("rmp", "initial") and "kind" not in manifest["input"]
    params.save(loaded, tmp_path / "again")
    assert folder_bytes(tmp_path / "net") == folder_bytes(tmp_path / "again")


@pytest.mark.parametrize("key, value, message", [
    ("method", "ecc2", "method 'ecc2' is not one of ecc, wn2017, rmp, radix"),
    ("tre_mode", "late", "tre_mode 'late' is not one of spread, initial"),
])
def test_unknown_variant_in_manifest_is_refused(tmp_path, key, value, message):
    params.save(random_network(2), tmp_path / "net")
    rewrite(tmp_path / "net", lambda content: content.update({key: value}))
    with pytest.raises(ParamFileError, match=message):
        params.load(tmp_path / "net")


def test_failed_save_leaves_nothing(tmp_path):
    net = random_network(2)
    net.layers[0].weight = None  # cannot be written
    with pytest.raises(ValueError, match="layer 1: weight is missing"):
        params.save(net, tmp_path / "net")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, array, found", [
    ("layer1_weight.npy", np.zeros((2, 2), dtype=np.int64), "found int64 (2, 2), expected int64 ("),
    ("layer1_bias.npy", np.zeros(99, dtype=np.int64), "found int64 (99,), expected int64 ("),
    ("layer2_weight.npy", "int32", "found int32 "),
    ("layer1_float_weight.npy", np.zeros(3), "found float64 (3,), expected float64 ("),
])
def test_array_of_the_wrong_shape_or_dtype_is_refused(tmp_path, name, array, found):
    net = random_network(5)
    net.layers[0].float_weight, net.layers[0].float_bias = net.layers[0].weight / 2.0, net.layers[0].bias / 2.0
    folder = tmp_path / "net"
    params.save(net, folder)
    if isinstance(array, str):
        array = np.load(folder / name).astype(array)
    np.save(folder / name, array)
    rewrite(folder, lambda content: None)
    with pytest.raises(ParamFileError) as refused:
        params.load(folder)
    message = str(refused.value)
    assert message.startswith(str(folder / name)) and found in message and "\n" not in message


def test_unknown_layer_kind_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    rewrite(tmp_path / "net", lambda content: content["layers"][0].update(kind="lstm"))
    with pytest.raises(ParamFileError, match="layer 1: kind 'lstm' is not one of conv, dense, pool"):
        params.load(tmp_path / "net")


def test_geometry_that_does_not_fit_the_arrays_is_refused(tmp_path):
    net = random_network(2)
    params.save(net, tmp_path / "net")
    rewrite(tmp_path / "net", lambda content: content["layers"][-1].update(output_shape=[99, 1, 1]))
    last = len(net.layers)
    with pytest.raises(ParamFileError, match=rf"layer{last}_weight.npy: found int64 \(4, \d+\), expected int64 \(99, "
                                             rf"\d+\) for the weight of dense layer {last} in manifest.json"):
        params.load(tmp_path / "net")


def test_expected_shapes_of_every_kind():
    conv, dense = random_network(3, conv_layers=1, with_pool=False).layers
    assert params.expected_array_shapes(conv)["weight"] == conv.weight.shape
    assert params.expected_array_shapes(dense) == {
        "weight": (dense.output_shape[0], int(np.prod(dense.input_shape))), "bias": (dense.output_shape[0],),
        "float_weight": (dense.output_shape[0], int(np.prod(dense.input_shape))),
        "float_bias": (dense.output_shape[0],)}
    pool = params.QuantLayer(kind="pool", input_shape=(3, 6, 6), output_shape=(3, 3, 3), weight=np.array(1),
                             bias=np.zeros(3, dtype=np.int64), threshold=1, tre_charge=0,
                             pool=params.Pool((2, 2), (2, 2)))
    assert params.expected_array_shapes(pool)["weight"] == (1,)
    assert params.expected_array_shapes(pool)["bias"] == (3,)


def test_save_refuses_arrays_that_load_would_refuse(tmp_path):
    net = random_network(2)
    net.layers[0].bias = np.zeros(99, dtype=np.int64)
    with pytest.raises(ValueError, match=r"layer 1 \(conv\): bias found int64 \(99,\), expected int64"):
        params.save(net, tmp_path / "net")
    net = random_network(2)
    net.layers[0].kind = "lstm"
    with pytest.raises(ValueError, match="layer 1: kind 'lstm' is not one of"):
        params.save(net, tmp_path / "net")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit", [
    lambda content: content["layers"][0].update(threshold=content["layers"][0]["threshold"] + 1),
    lambda content: content["layers"][0].update(tre_charge=0),
    lambda content: content["layers"][-1].update(gain=2.0),
    lambda content: content["lambdas"].__setitem__(0, 2.0),
    lambda content: content.update(kappa=50.0),
    lambda content: content["input"].update(signed=True),
    lambda content: content["provenance"].update(source="elsewhere"),
    lambda content: content["sha256"].update({"layer1_weight.npy": "0" * 64}),
    lambda content: content.pop(DIGEST_KEY),
])
def test_hand_edited_manifest_value_is_refused(tmp_path, edit):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    edit(content)
    manifest.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    with pytest.raises(ParamFileError) as refused:
        params.load(tmp_path / "net")
    assert str(refused.value) == (f"{manifest}: its values do not match its manifest_sha256 (edited or damaged); "
                                  "expected the manifest as ecc-hw convert wrote it: convert the model again")


def test_manifest_digest_covers_values_not_formatting(tmp_path):
    net = random_network(2)
    params.save(net, tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    assert content["version"] == FORMAT_VERSION == 2
    assert content[DIGEST_KEY] == manifest_digest(content)
    manifest.write_text(json.dumps(content))          # one line, keys in another order: same values
    assert params.load(tmp_path / "net").layers[0].threshold == net.layers[0].threshold


def test_version_1_folder_is_refused_with_convert_again(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    content["version"] = 1
    del content[DIGEST_KEY]
    manifest.write_text(json.dumps(content))
    with pytest.raises(ParamFileError, match=r"format version 1 is not supported \(written by an older ecc-hw; "
                                             r"this one reads version 2\): convert the model again$"):
        params.load(tmp_path / "net")
