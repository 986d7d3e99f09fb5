"""The integer graph network (ecc_hw.graph.golden, docs/arithmetic.md 5.5) against the plain-loop reference of
tests/graph_reference.py: random small DAGs (residual Adds, Concats, max pools, grouped convs) and the bundled
Fashion-MNIST models on a few images."""
from pathlib import Path

import numpy as np
import pytest
from graph_reference import golden_graph_loop
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_graph_property import BLOCKS, random_network

from ecc_hw.errors import UserError
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.golden import map_dtype, run_graph, source_fan_outs
from ecc_hw.graph.network import LAYER, MAX_POOL, Source
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.pooling import max_pool
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.variants import TreMode

FASHION = Path(__file__).parents[1] / "ecc_hw" / "data" / "fashion"
FASHION_LEGACY = ("vgg", "maxpool", "depthwise", "resnet", "resnet_qcfs4", "densenet")
GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"


def assert_matches_reference(graph, x_q, timesteps, tre_mode=TreMode.SPREAD):
    result = run_graph(graph, x_q, timesteps, tre_mode, record_spikes=True)
    for image, row in enumerate(x_q):
        expected = golden_graph_loop(graph, row, timesteps, initial_charge=tre_mode == TreMode.INITIAL)
        assert result.output_membrane[image].tolist() == expected["output_membrane"]
        assert result.spike_counts[image].tolist() == expected["spike_counts"]
        assert result.pool_spike_counts[image].tolist() == expected["pool_spike_counts"]
        assert int(result.synops[image]) == expected["synops"]
        for source, steps in expected["trains"].items():
            np.testing.assert_array_equal(result.spikes[source][:, image], np.array(steps, dtype=bool))
    np.testing.assert_array_equal(result.predictions, np.argmax(result.output_membrane, axis=1))
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 6), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       weight_bits=st.integers(3, 8), timesteps=st.integers(1, 6), tre_mode=st.sampled_from(list(TreMode)),
       mode=st.sampled_from(["max", "percentile"]))
def test_random_dags_match_the_plain_loop_reference(tmp_path, data, size, blocks, weight_bits, timesteps, tre_mode,
                                                    mode):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        lambdas = calibrate(network, x, mode, 99.0)
        graph = quantise_graph(network, lambdas, weight_bits=weight_bits, input_bits=6)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    assert_matches_reference(graph, graph.quantise_input(x[:2]), timesteps, tre_mode)


@pytest.mark.parametrize("name", FASHION_LEGACY)
def test_fashion_models_match_the_reference(name):
    network = convert_graph(FASHION / f"{name}.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:100].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, calibration))
    x_q = graph.quantise_input(np.load(FASHION / "fashion_test.npz")["x"][:1].astype(np.float64))
    result = assert_matches_reference(graph, x_q, 3)
    assert result.spike_counts.sum() > 0


@pytest.mark.parametrize("name", sorted(p.stem for p in GRAPH_FIXTURES.glob("*.onnx")))
def test_graph_fixtures_match_the_reference(name):
    network = convert_graph(GRAPH_FIXTURES / f"{name}.onnx")
    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0))
    assert_matches_reference(graph, graph.quantise_input(x[:1]), 2)


def test_max_pool_nodes_send_their_running_maximum():
    network = convert_graph(FASHION / "maxpool.onnx")
    assert network.max_pools
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:50].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, calibration))
    result = run_graph(graph, graph.quantise_input(calibration[:4]), 8, record_spikes=True)
    for pool in network.max_pools:
        sent = result.spikes[Source(MAX_POOL, pool.index)].astype(np.int64).sum(axis=0)
        counts = result.spikes[Source(LAYER, pool.source.index)].astype(np.int64).sum(axis=0)
        np.testing.assert_array_equal(sent, max_pool(pool, counts))


def test_synops_are_spikes_times_fan_outs_over_every_edge_leaving():
    network = convert_graph(FASHION / "resnet.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:50].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, calibration))
    result = run_graph(graph, graph.quantise_input(calibration[:2]), 4, record_spikes=True)
    fan_outs = source_fan_outs(graph)
    expected = sum(result.spikes[source].astype(np.int64).sum(axis=0) @ fan_outs[source]
                   for source in result.spikes if source in fan_outs)
    np.testing.assert_array_equal(result.synops, expected)
    readers = {edge.source for layer in graph.layers for edge in layer.edges}
    assert any(len([e for layer in graph.layers for e in layer.edges if e.source == s]) > 1 for s in readers)


def test_timesteps_must_be_positive():
    network = convert_graph(FASHION / "vgg.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:20].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, calibration))
    with pytest.raises(ValueError, match="timesteps must be >= 1"):
        run_graph(graph, graph.quantise_input(calibration[:1]), 0)


def _fashion_graph(name, **options):
    network = convert_graph(FASHION / f"{name}.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:50].astype(np.float64)
    return quantise_graph(network, calibrate(network, calibration), **options), calibration


def test_results_do_not_depend_on_the_worker_count():
    graph, calibration = _fashion_graph("maxpool")
    x_q = graph.quantise_input(calibration[:5])
    one = run_graph(graph, x_q, 5, record_spikes=True, workers=1)
    three = run_graph(graph, x_q, 5, record_spikes=True, workers=3)
    for field in ("predictions", "output_membrane", "spike_counts", "pool_spike_counts", "synops"):
        np.testing.assert_array_equal(getattr(one, field), getattr(three, field))
        assert getattr(one, field).dtype == np.int64
    for source, trains in one.spikes.items():
        np.testing.assert_array_equal(trains, three.spikes[source])


def test_maps_run_in_float32_only_where_every_partial_sum_is_exact():
    """8-bit input: every map in float32; 16-bit input: layer 1's sums (127 * 9 * 65535) pass 2^24, so its map
    runs in float64, and the output layer's too at large T (counts up to T); the results still match the
    plain-loop reference."""
    graph, calibration = _fashion_graph("resnet")
    assert {map_dtype(layer, 64, graph.input_full_scale) for layer in graph.layers} == {np.float32}
    wide, _ = _fashion_graph("resnet", input_bits=16)
    assert map_dtype(wide.layers[0], 4, wide.input_full_scale) is np.float64
    assert map_dtype(wide.layers[1], 4, wide.input_full_scale) is np.float32
    assert map_dtype(wide.output_layer, 2 ** 16, wide.input_full_scale) is np.float64
    assert_matches_reference(wide, wide.quantise_input(calibration[:1]), 2)


def test_an_input_beyond_full_scale_trips_the_current_bound():
    graph, calibration = _fashion_graph("vgg")
    x_q = 8 * graph.quantise_input(calibration[:2])
    with pytest.raises(AssertionError, match="5.6 bound"):
        run_graph(graph, x_q, 3)
