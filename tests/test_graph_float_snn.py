"""The float ECC-SNN of graph networks (ecc_hw.graph.float_snn, docs/arithmetic.md 5.5): on a chain it is the chain
float SNN; on graphs with max pools it runs and its pool nodes send 0/1."""
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import float_snn
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.float_snn import run_float_graph
from ecc_hw.graph.network import MAX_POOL
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.variants import TreMode

DATA = Path(__file__).parents[1] / "ecc_hw" / "data"


@pytest.mark.parametrize("tre_mode", list(TreMode))
def test_on_a_chain_the_float_graph_snn_is_the_chain_float_snn(tre_mode):
    calibration = np.load(DATA / "mnist_calib.npz")["x"].astype(np.float64)
    x = np.load(DATA / "mnist_test.npz")["x"][:20].astype(np.float64)
    params = convert(DATA / "mnist_cnn.onnx", calibration, ConvertOptions(timesteps=8, tre_mode=tre_mode))
    chain = float_snn.run(params, x, 8)
    network = convert_graph(DATA / "mnist_cnn.onnx")
    result = run_float_graph(network, calibrate(network, calibration), x, 8, tre_mode=tre_mode)
    np.testing.assert_array_equal(result.spike_counts, chain.spike_counts)
    np.testing.assert_array_equal(result.synops, chain.synops)
    np.testing.assert_allclose(result.output_membrane, chain.output_membrane, rtol=1e-12, atol=1e-9)


def test_max_pool_graph_runs_with_binary_pool_spikes():
    calibration = np.load(DATA / "fashion" / "fashion_calib.npz")["x"][:50].astype(np.float64)
    network = convert_graph(DATA / "fashion" / "maxpool.onnx")
    result = run_float_graph(network, calibrate(network, calibration), calibration[:3], 6, record_spikes=True)
    pools = sorted((source.index, trains) for source, trains in result.spikes.items() if source.kind == MAX_POOL)
    assert pools and result.pool_spike_counts.sum() > 0 and result.predictions.shape == (3,)
    for index, trains in pools:  # a bool train holds every spike only when each step sends 0 or 1
        np.testing.assert_array_equal(trains.sum(axis=(0, 2)), result.pool_spike_counts[:, index - 1])
    with pytest.raises(ValueError, match="timesteps must be >= 1"):
        run_float_graph(network, calibrate(network, calibration), calibration[:1], 0)
