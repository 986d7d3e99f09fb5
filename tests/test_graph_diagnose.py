"""The per-layer diagnosis of a graph network (ecc_hw.graph.diagnose): against a plain-loop reference written from
the definitions of LayerDiagnosis on random small DAGs (hypothesis), its degenerate cases, a deliberately broken
resnet_legacy fixture that must look worse than the real one, the JSON rows and the PNG."""
import json
import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from graph_reference import golden_graph_loop
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_graph_property import BLOCKS, random_network

from ecc_hw.errors import UserError
from ecc_hw.graph import diagnose
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.diagnose import LayerDiagnosis, diagnose_layers, diagnosis_rows, write_diagnosis_plot
from ecc_hw.graph.forward import forward
from ecc_hw.graph.network import LAYER
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.variants import TreMode

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pearson_loop(rates: list[float], activations: list[float]) -> float:
    """Pearson's r by two passes, or the LayerDiagnosis convention when either list is constant."""
    if len(set(rates)) == 1 or len(set(activations)) == 1:
        return 1.0 if all(r == a for r, a in zip(rates, activations)) else 0.0
    mean_r, mean_a = sum(rates) / len(rates), sum(activations) / len(activations)
    co = sum((r - mean_r) * (a - mean_a) for r, a in zip(rates, activations))
    spread_r = sum((r - mean_r) ** 2 for r in rates)
    spread_a = sum((a - mean_a) ** 2 for a in activations)
    return co / math.sqrt(spread_r * spread_a)


def reference_diagnosis(graph, x, timesteps, tre_mode, include_max_pools) -> list[dict]:
    """The figures of LayerDiagnosis image by image and neuron by neuron: spike counts from the plain-loop golden
    model, CNN activations from the float forward pass."""
    network = graph.network
    cnn = forward(network, x)
    runs = [golden_graph_loop(graph, row, timesteps, initial_charge=tre_mode == TreMode.INITIAL)
            for row in graph.quantise_input(x)]
    entries = []
    for source in network.schedule():
        if source.kind == LAYER:
            node, lambda_n = network.layer(source.index), graph.lambdas.layers[source.index - 1]
            activations = cnn.layers[source.index - 1]
        elif include_max_pools:
            node, lambda_n = network.max_pools[source.index - 1], graph.lambdas.max_pools[source.index - 1]
            activations = cnn.max_pools[source.index - 1]
        else:
            continue
        counts, rates, values = [], [], []
        for image, run in enumerate(runs):
            steps = run["trains"][source]
            for neuron in range(node.neurons):
                count = sum(step[neuron] for step in steps)
                counts.append(count)
                rates.append(count / timesteps * lambda_n)
                values.append(float(activations[image][neuron]))
        pairs = len(counts)
        entries.append({
            "kind": source.kind, "index": source.index, "name": node.name, "neurons": node.neurons,
            "images": len(x), "timesteps": timesteps, "lambda_n": lambda_n,
            "correlation": pearson_loop(rates, values),
            "mean_error": sum(r - a for r, a in zip(rates, values)) / pairs / lambda_n,
            "mean_abs_error": sum(abs(r - a) for r, a in zip(rates, values)) / pairs / lambda_n,
            "saturated_fraction": sum(1 for c in counts if c == timesteps) / pairs,
            "wrongly_silent_fraction": sum(1 for c, a in zip(counts, values)
                                           if c == 0 and a >= lambda_n / timesteps) / pairs,
            "wrongly_firing_fraction": sum(1 for c, a in zip(counts, values) if c > 0 and a <= 0) / pairs,
        })
    return entries


def assert_rows_match(rows: list[dict], expected: list[dict]) -> None:
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        for key in ("kind", "index", "name", "neurons", "images", "timesteps", "lambda_n", "saturated_fraction",
                    "wrongly_silent_fraction", "wrongly_firing_fraction"):
            assert row[key] == want[key], (key, row, want)
        for key in ("correlation", "mean_error", "mean_abs_error"):
            assert row[key] == pytest.approx(want[key], rel=1e-9, abs=1e-9), (key, row, want)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 5), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       weight_bits=st.integers(3, 8), timesteps=st.integers(1, 6), tre_mode=st.sampled_from(list(TreMode)),
       images=st.integers(1, 4), chunk=st.integers(1, 3), include_max_pools=st.booleans())
def test_random_dags_match_the_plain_loop_reference(tmp_path, monkeypatch, data, size, blocks, weight_bits, timesteps,
                                                    tre_mode, images, chunk, include_max_pools):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0), weight_bits=weight_bits,
                               input_bits=6)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    monkeypatch.setattr(diagnose, "CHUNK", chunk)  # several chunks must give the figures of one
    diagnoses = diagnose_layers(graph, x[:images], timesteps, tre_mode, include_max_pools)
    assert_rows_match(diagnosis_rows(diagnoses),
                      reference_diagnosis(graph, x[:images], timesteps, tre_mode, include_max_pools))


@pytest.fixture(scope="module")
def resnet():
    network = convert_graph(GRAPH_FIXTURES / "resnet_legacy.onnx")
    x = np.load(GRAPH_FIXTURES / "resnet_legacy.npz")["x"].astype(np.float64)
    return quantise_graph(network, calibrate(network, x, "percentile", 99.0)), x[:16]


def with_layer(graph, position, integer_changes, float_changes=None):
    """``graph`` with layer ``position`` (0-based) replaced in the integers and, if given, in the float network."""
    layers = list(graph.layers)
    layers[position] = replace(layers[position], **integer_changes)
    network = graph.network
    if float_changes is not None:
        float_layers = list(network.layers)
        float_layers[position] = replace(float_layers[position], **float_changes)
        network = replace(network, layers=tuple(float_layers))
    return replace(graph, network=network, layers=tuple(layers))


def test_doubled_thresholds_look_worse_in_every_layer(resnet):
    graph, x = resnet
    broken = replace(graph, layers=tuple(replace(layer, threshold=2 * layer.threshold) if layer.spiking else layer
                                         for layer in graph.layers))
    real, bad = diagnose_layers(graph, x, 8), diagnose_layers(broken, x, 8)
    assert [d.index for d in real] == [layer.index for layer in graph.spiking_layers]
    assert real[0].correlation > 0.95 and real[0].wrongly_silent_fraction < 0.01
    for good, worse in zip(real, bad):
        assert worse.correlation < good.correlation, (good, worse)
        assert worse.wrongly_silent_fraction > good.wrongly_silent_fraction, (good, worse)
        assert worse.mean_error < good.mean_error, (good, worse)  # half the rate: the SNN fires too little


def test_longer_runs_agree_better_with_the_cnn(resnet):
    graph, x = resnet
    short, long = diagnose_layers(graph, x, 8), diagnose_layers(graph, x, 32)
    for coarse, fine in zip(short, long):
        assert fine.correlation > coarse.correlation and fine.mean_abs_error < coarse.mean_abs_error


def test_a_silent_layer_has_the_conventional_correlation(resnet):
    graph, x = resnet
    first = graph.layers[0]
    dead_in_both = with_layer(graph, 0, {"bias": np.full_like(first.bias, -10 ** 6)},
                              {"bias": np.full(graph.network.layers[0].bias.shape, -1e6)})
    dead = diagnose_layers(dead_in_both, x[:4], 8)[0]
    assert (dead.correlation, dead.mean_error, dead.mean_abs_error) == (1.0, 0.0, 0.0)
    assert dead.saturated_fraction == dead.wrongly_silent_fraction == dead.wrongly_firing_fraction == 0.0
    silent_snn = with_layer(graph, 0, {"threshold": 10 ** 9})
    silent = diagnose_layers(silent_snn, x[:4], 8)[0]
    activations = forward(graph.network, x[:4]).layers[0]
    assert silent.correlation == 0.0 and silent.wrongly_firing_fraction == silent.saturated_fraction == 0.0
    assert silent.wrongly_silent_fraction == np.mean(activations >= graph.lambdas.layers[0] / 8)
    assert silent.mean_error == pytest.approx(-np.mean(activations) / graph.lambdas.layers[0])


def test_rows_are_json_ready_and_the_arguments_are_checked(resnet):
    graph, x = resnet
    diagnoses = diagnose_layers(graph, x[:2], 4, TreMode.INITIAL)
    rows = diagnosis_rows(diagnoses)
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows
    assert [list(row) for row in rows] == [[field.name for field in fields(LayerDiagnosis)]] * len(rows)
    assert all(row["images"] == 2 and row["timesteps"] == 4 and row["kind"] == LAYER for row in rows)
    with pytest.raises(ValueError, match="timesteps must be >= 1"):
        diagnose_layers(graph, x[:2], 0)
    with pytest.raises(ValueError, match="at least one image"):
        diagnose_layers(graph, x[:0], 4)


def test_the_plot_is_a_png_and_byte_identical_on_a_second_write(resnet, tmp_path):
    graph, x = resnet
    diagnoses = diagnose_layers(graph, x[:4], 8)
    path = tmp_path / "plots" / "layers.png"
    write_diagnosis_plot(diagnoses, path, "resnet_legacy, T = 8")
    first = path.read_bytes()
    write_diagnosis_plot(diagnoses, path, "resnet_legacy, T = 8")
    assert first.startswith(PNG_SIGNATURE) and path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["layers.png"]  # no temporary sibling left behind
    with pytest.raises(ValueError):
        write_diagnosis_plot([], tmp_path / "empty.png", "nothing")
