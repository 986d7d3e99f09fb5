"""The PyTorch backend (ecc_hw.backends) against NumPy on the CPU: the same predictions, output membranes,
spike counts, SynOps and spike trains on every bundled model and fixture (chain and graph, rate and radix
coding, several T), on random DAGs, and the float32 exactness bound it relies on; the CLI options.

The comparisons run on the CPU; ECC_HW_TEST_DEVICE=cuda runs them on a CUDA device instead (never in CI,
which has no GPU: the CUDA path is untested, docs/backends.md says so)."""
import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_events_pipeline import tiny_event_params
from test_graph_property import BLOCKS, random_network

from ecc_hw import cli, convert, float_snn, golden
from ecc_hw.arithmetic import quantize_input
from ecc_hw.backends import NUMPY, select_backend
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, BUNDLED_TEST, PACKAGE_DATA
from ecc_hw.errors import UserError
from ecc_hw.graph import bounds as graph_bounds
from ecc_hw.graph import golden as graph_golden
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.float_snn import run_float_graph
from ecc_hw.graph.golden import map_dtype, run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.graph.radix import quantise_radix_graph, run_radix_graph
from ecc_hw.linear import EXACT_FLOAT32, LinearMap
from ecc_hw.progress import image_progress
from ecc_hw.variants import TreMode

torch.set_num_threads(1)
TORCH = select_backend("torch", os.environ.get("ECC_HW_TEST_DEVICE", "cpu"))
FASHION = PACKAGE_DATA / "fashion"
GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
STEPS = (1, 7, 32)
CHAIN_KEYS = ("predictions", "output_membrane", "spike_counts", "step_counts", "synops")
GRAPH_KEYS = ("predictions", "output_membrane", "spike_counts", "pool_spike_counts", "synops")


def assert_same(numpy_result, torch_result, keys):
    """Every integer output and every recorded spike train equal, dtype of the membranes included."""
    for key in keys:
        np.testing.assert_array_equal(getattr(torch_result, key), getattr(numpy_result, key), err_msg=key)
    assert torch_result.output_membrane.dtype == numpy_result.output_membrane.dtype
    if isinstance(numpy_result.spikes, dict):
        assert list(torch_result.spikes) == list(numpy_result.spikes)
        pairs = [(numpy_result.spikes[s], torch_result.spikes[s]) for s in numpy_result.spikes]
    else:
        assert len(torch_result.spikes) == len(numpy_result.spikes)
        pairs = list(zip(numpy_result.spikes, torch_result.spikes))
    for expected, got in pairs:
        assert got.dtype == bool and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


# -------------------------------------------------------------------------------------------------- chains

@functools.lru_cache(maxsize=None)
def chain_params(model: str, **options):
    path = BUNDLED_MODEL if model == "bundled" else PACKAGE_DATA / "methods" / f"{model}.onnx"
    return convert.convert(path, np.load(BUNDLED_CALIB)["x"], ConvertOptions(**options))


def test_select_backend_defaults_and_descriptions():
    assert select_backend() is NUMPY and NUMPY.describe() == "numpy"
    assert TORCH.is_torch and TORCH.describe() == f"torch ({TORCH.device})"
    with pytest.raises(UserError, match="--device cuda needs --backend torch"):
        select_backend("numpy", "cuda")


@pytest.mark.parametrize("model, options", [
    ("bundled", {}), ("bundled", {"tre_mode": "initial"}), ("bundled", {"pool_mode": "layer"}),
    ("relu", {}), ("relu6", {"method": "wn2017"}), ("clip", {"method": "rmp"}),
])
def test_chain_golden_model_is_bit_exact(model, options):
    params = chain_params(model, **options)
    x_q = quantize_input(params, np.load(BUNDLED_TEST)["x"][:6])
    for steps in STEPS:
        expected = golden.run(params, x_q, steps, record_spikes=True)
        assert_same(expected, golden.run(params, x_q, steps, record_spikes=True, backend=TORCH), CHAIN_KEYS)
        assert expected.spike_counts.sum() > 0 or steps == 1


@pytest.mark.parametrize("steps", [2, 4])
def test_chain_radix_model_is_bit_exact(steps):
    params = chain_params("qcfs16", method="radix", timesteps=steps)
    x_q = quantize_input(params, np.load(BUNDLED_TEST)["x"][:8])
    expected = golden.run(params, x_q, steps, record_spikes=True)
    assert_same(expected, golden.run(params, x_q, steps, record_spikes=True, backend=TORCH), CHAIN_KEYS)


def test_chain_event_input_is_bit_exact():
    net = tiny_event_params()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 4, (5, 7, 2, 5, 5)) * (rng.random((5, 7, 2, 5, 5)) < 0.3)
    expected = golden.run(net, frames, record_spikes=True)
    assert_same(expected, golden.run(net, frames, record_spikes=True, backend=TORCH), CHAIN_KEYS)


def test_chain_progress_is_reported_on_the_torch_backend():
    params = chain_params("bundled")
    x_q = quantize_input(params, np.load(BUNDLED_TEST)["x"][:5])
    done = []
    golden.run(params, x_q, 4, progress=done.append, backend=TORCH)
    assert sum(done) == 5


def test_chain_float_snn_agrees_to_float64_rounding():
    """The float SNN is float64 on both backends, but its sums run in another order: equal spikes and
    predictions on these images, membranes within rounding (not claimed bit-exact)."""
    params = chain_params("bundled")
    x = np.load(BUNDLED_TEST)["x"][:6]
    expected, got = float_snn.run(params, x, 16), float_snn.run(params, x, 16, backend=TORCH)
    np.testing.assert_array_equal(got.spike_counts, expected.spike_counts)
    np.testing.assert_allclose(got.output_membrane, expected.output_membrane, rtol=1e-12, atol=1e-9)


# -------------------------------------------------------------------------------------------------- graphs

def graph_models():
    fashion = [("fashion", path.stem) for path in sorted(FASHION.glob("*.onnx"))]
    return fashion + [("fixture", path.stem) for path in sorted(GRAPH_FIXTURES.glob("*.onnx"))]


@functools.lru_cache(maxsize=None)
def network_and_data(kind: str, name: str):
    """The network, its calibration images and a few test images (the model's own layout)."""
    if kind == "fashion":
        network = convert_graph(FASHION / f"{name}.onnx")
        calibration = np.load(FASHION / "fashion_calib.npz")["x"][:60].astype(np.float64)
        return network, calibration, np.load(FASHION / "fashion_test.npz")["x"][:3].astype(np.float64)
    network = convert_graph(GRAPH_FIXTURES / f"{name}.onnx")
    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    return network, x, x[:3]


@functools.lru_cache(maxsize=None)
def lambdas_of(kind: str, name: str):
    network, calibration, _ = network_and_data(kind, name)
    return calibrate(network, calibration, "percentile", 99.0 if kind == "fixture" else 99.99)


@pytest.mark.parametrize("kind, name", graph_models())
def test_graph_golden_model_is_bit_exact(kind, name):
    network, _, x = network_and_data(kind, name)
    graph = quantise_graph(network, lambdas_of(kind, name))
    x_q = graph.quantise_input(x)
    for steps, tre_mode in zip(STEPS, (TreMode.SPREAD, TreMode.INITIAL, TreMode.SPREAD)):
        expected = run_graph(graph, x_q, steps, tre_mode, record_spikes=True)
        got = run_graph(graph, x_q, steps, tre_mode, record_spikes=True, backend=TORCH)
        assert_same(expected, got, GRAPH_KEYS)


@pytest.mark.parametrize("name", ["maxpool", "resnet_qcfs16", "resnet_qcfs4", "densenet", "depthwise"])
def test_graph_radix_model_is_bit_exact(name):
    network, _, x = network_and_data("fashion", name)
    for steps in (1, 4, 7):
        graph = quantise_radix_graph(network, lambdas_of("fashion", name), 8, 8, steps)
        x_q = graph.quantise_input(x)
        expected = run_radix_graph(graph, x_q, steps, record_spikes=True)
        assert_same(expected, run_radix_graph(graph, x_q, steps, record_spikes=True, backend=TORCH), GRAPH_KEYS)


def test_graph_float_snn_agrees_to_float64_rounding():
    network, _, x = network_and_data("fashion", "maxpool")
    lambdas = lambdas_of("fashion", "maxpool")
    expected = run_float_graph(network, lambdas, x, 8)
    got = run_float_graph(network, lambdas, x, 8, backend=TORCH)
    np.testing.assert_array_equal(got.spike_counts, expected.spike_counts)
    np.testing.assert_array_equal(got.predictions, expected.predictions)
    np.testing.assert_allclose(got.output_membrane, expected.output_membrane, rtol=1e-12, atol=1e-9)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 6), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       weight_bits=st.integers(3, 8), timesteps=st.integers(1, 6), tre_mode=st.sampled_from(list(TreMode)))
def test_random_dags_are_bit_exact(tmp_path, data, size, blocks, weight_bits, timesteps, tre_mode):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        lambdas = calibrate(network, x, "max", 99.0)
        graph = quantise_graph(network, lambdas, weight_bits=weight_bits, input_bits=6)
        radix_graph = quantise_radix_graph(network, lambdas, weight_bits, 6, timesteps)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    x_q = graph.quantise_input(x[:3])
    expected = run_graph(graph, x_q, timesteps, tre_mode, record_spikes=True)
    assert_same(expected, run_graph(graph, x_q, timesteps, tre_mode, record_spikes=True, backend=TORCH), GRAPH_KEYS)
    x_q = radix_graph.quantise_input(x[:3])
    expected = run_radix_graph(radix_graph, x_q, timesteps, record_spikes=True)
    assert_same(expected, run_radix_graph(radix_graph, x_q, timesteps, record_spikes=True, backend=TORCH),
                GRAPH_KEYS)


# ------------------------------------------------------------------------------------------------ exactness

def test_float32_maps_are_exact_on_the_largest_bundled_model(monkeypatch):
    """vgg.onnx has the most weights of the bundled models. At T = 128 every map the proof puts in float32
    has all partial sums below 2^24 (5.6 sums, T times them on the output layer), and running every map in
    float64 instead changes no integer on the torch backend."""
    network, _, x = network_and_data("fashion", "vgg")
    graph = quantise_graph(network, lambdas_of("fashion", "vgg"))
    steps = 128
    for layer in graph.layers:
        sums = graph_bounds.edge_sums(layer, graph.input_full_scale)
        bound = float(np.max(sums + np.abs(layer.bias) if layer.spiking else steps * sums))
        assert map_dtype(layer, steps, graph.input_full_scale) is np.float32
        assert bound < EXACT_FLOAT32, f"layer {layer.index}: partial sums up to {bound:.0f}"
    x_q = graph.quantise_input(x[:2])
    expected = run_graph(graph, x_q, steps, record_spikes=True, backend=TORCH)
    monkeypatch.setattr(graph_golden, "map_dtype", lambda *args: np.float64)
    assert_same(expected, run_graph(graph, x_q, steps, record_spikes=True, backend=TORCH), GRAPH_KEYS)


def test_chain_maps_are_exact_on_the_bundled_chain_at_t128(monkeypatch):
    params = chain_params("bundled")
    maps = [LinearMap.of(layer) for layer in params.layers]
    assert maps[0].max_abs_output(2 ** params.input_bits - 1) < EXACT_FLOAT32
    for linear in maps[1:-1]:
        assert linear.exact_dtype(1) is np.float32 and linear.max_abs_output(1) < EXACT_FLOAT32
    assert maps[-1].max_abs_output(128) < EXACT_FLOAT32  # the output layer reads counts up to T
    x_q = quantize_input(params, np.load(BUNDLED_TEST)["x"][:3])
    expected = golden.run(params, x_q, 128, backend=TORCH)
    monkeypatch.setattr(LinearMap, "exact_dtype", lambda self, largest: np.float64)
    got = golden.run(params, x_q, 128, backend=TORCH)
    for key in CHAIN_KEYS:
        np.testing.assert_array_equal(getattr(got, key), getattr(expected, key))


# ----------------------------------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def mnist_net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backend") / "net"
    assert cli.main(["convert", str(BUNDLED_MODEL), "--calib", str(BUNDLED_CALIB), "-o", str(folder)]) == 0
    return folder


def evaluate(capsys, folder, *options):
    status = cli.main(["evaluate", str(folder), "--data", str(BUNDLED_TEST), "--limit", "20", "--timesteps", "4,16",
                       *options])
    return status, capsys.readouterr()


def test_cli_torch_report_equals_numpy(mnist_net, capsys, tmp_path):
    import json

    reports = []
    for backend in ("numpy", "torch"):
        status, _ = evaluate(capsys, mnist_net, "--backend", backend, "--json", str(tmp_path / f"{backend}.json"))
        assert status == 0
        report = json.loads((tmp_path / f"{backend}.json").read_text())
        for entry in report["snn"]:
            entry.pop("images_per_second")
        reports.append(report)
    assert reports[0] == reports[1]


def one_line(status, captured, text):
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], captured.err


def test_cli_device_cuda_without_cuda_is_one_line(mnist_net, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line(*evaluate(capsys, mnist_net, "--backend", "torch", "--device", "cuda"),
             "--device cuda: torch.cuda.is_available() is false")


def test_cli_device_cuda_with_numpy_is_one_line(mnist_net, capsys):
    one_line(*evaluate(capsys, mnist_net, "--device", "cuda"), "--device cuda needs --backend torch")


def test_cli_backend_torch_without_torch_is_one_line(mnist_net, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    one_line(*evaluate(capsys, mnist_net, "--backend", "torch"), "--backend torch: PyTorch is not installed")


def test_cli_unknown_backend_is_one_line(mnist_net, capsys):
    with pytest.raises(SystemExit) as stop:
        evaluate(capsys, mnist_net, "--backend", "jax")
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--backend" in lines[0]


def test_the_numpy_backend_never_imports_torch(mnist_net):
    code = ("import sys; from ecc_hw import cli; "
            f"status = cli.main(['evaluate', {str(mnist_net)!r}, '--data', {str(BUNDLED_TEST)!r}, '--limit', '5', "
            "'--timesteps', '4', '--float-snn']); assert status == 0; assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_progress_bar_is_quiet_off_a_terminal(mnist_net, capsys):
    assert image_progress().disable  # pytest captures stdout: not a terminal
    assert not image_progress(enabled=True).disable
    status, captured = evaluate(capsys, mnist_net, "--backend", "torch")
    assert status == 0 and captured.err == "" and "images/s" in captured.out and "ETA" not in captured.out
