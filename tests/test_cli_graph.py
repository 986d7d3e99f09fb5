"""``ecc-hw convert`` and ``evaluate`` on graph networks: every fixture from both exporters, the float CNN
against onnxruntime, radix, bias calibration, the per-layer diagnosis, and each bad input in one line."""
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from ecc_hw import cli, manifest
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, PACKAGE_DATA
from ecc_hw.graph import store
from ecc_hw.graph.golden import run_graph

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
FASHION = PACKAGE_DATA / "fashion"
FASHION_MODELS = sorted(p.name for p in FASHION.glob("*.onnx"))
LIMIT = 40


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def refused(capsys, *args, fragments=(), output=None):
    status, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if output is not None:
        assert not Path(output).exists() and not list(Path(output).parent.glob(f".{Path(output).name}*"))
    return lines[0]


def onnxruntime_logits(model: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.astype(np.float32)})[0]


def small_data(tmp_path, source: Path, limit: int = LIMIT) -> tuple[Path, np.ndarray, np.ndarray]:
    archive = np.load(source)
    x, y = archive["x"][:limit], archive["y"][:limit]
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def convert_and_evaluate(capsys, tmp_path, model: Path, data: Path, calib: Path, *options, timesteps=16) -> dict:
    out = tmp_path / "net"
    status, _, err = run(capsys, "convert", model, "--calib", calib, "-o", out, "--lambda", "percentile", *options)
    assert status == 0, err
    status, out_text, err = run(capsys, "evaluate", out, "--data", data, "--timesteps", timesteps,
                                "--json", tmp_path / "report.json")
    assert status == 0, err
    assert "SNN acc." in out_text
    return json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("name", sorted(p.stem for p in GRAPH_FIXTURES.glob("*.onnx")))
def test_every_graph_fixture_converts_and_its_cnn_is_onnxruntimes(name, capsys, tmp_path):
    model = GRAPH_FIXTURES / f"{name}.onnx"
    data, x, y = small_data(tmp_path, GRAPH_FIXTURES / f"{name}.npz")
    report = convert_and_evaluate(capsys, tmp_path, model, data, data, "--timesteps", "16")
    expected = np.argmax(onnxruntime_logits(model, x), axis=1)
    assert report["cnn_accuracy"] == pytest.approx(np.mean(expected == y))
    assert report["snn"][0]["synops_per_image"] > 0
    topology = manifest.topology(tmp_path / "net")
    assert topology == "graph"  # each is refused by the chain converter (max pooling, CastLike, layouts, ...)


@pytest.mark.parametrize("name", FASHION_MODELS)
def test_every_fashion_model_converts_from_both_exporters(name, capsys, tmp_path):
    data, x, y = small_data(tmp_path, FASHION / "fashion_test.npz", 20)
    report = convert_and_evaluate(capsys, tmp_path, FASHION / name, data, FASHION / "fashion_calib.npz",
                                  "--bias-calibration", "0", timesteps=64)
    expected = np.argmax(onnxruntime_logits(FASHION / name, x), axis=1)
    assert report["cnn_accuracy"] == pytest.approx(np.mean(expected == y))
    assert report["snn"][0]["accuracy"] >= 0.5  # T = 64, 20 images; the accuracy at depth: docs/graphs.md


@pytest.mark.parametrize("method", ["ecc", "wn2017", "rmp"])
def test_topology_graph_on_the_bundled_chain_gives_the_chain_golden_models_results(method, capsys, tmp_path):
    from ecc_hw import golden, params
    from ecc_hw.arithmetic import quantize_input

    for topology in ("chain", "graph"):
        status, _, err = run(capsys, "convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", tmp_path / topology,
                             "--topology", topology, "--timesteps", "16", "--method", method, "--alpha", "0.7",
                             "--bias-calibration", "0")
        assert status == 0, err
    chain, graph = params.load(tmp_path / "chain"), store.load(tmp_path / "graph")
    assert [layer.threshold for layer in chain.layers] == [layer.threshold for layer in graph.graph.layers]
    assert [layer.tre_charge for layer in chain.layers] == [layer.tre_charge for layer in graph.graph.layers]
    x = np.load(BUNDLED_CALIB)["x"][:30]
    expected = golden.run(chain, quantize_input(chain, x), 16)
    result = run_graph(graph.graph, graph.graph.quantise_input(x), 16)
    assert np.array_equal(expected.output_membrane, result.output_membrane)
    assert np.array_equal(expected.synops, result.synops)


def test_bias_calibration_is_stored_with_its_t_and_changes_only_biases(capsys, tmp_path):
    model, calib = GRAPH_FIXTURES / "resnet_legacy.onnx", GRAPH_FIXTURES / "resnet_legacy.npz"
    for name, extra in (("plain", ("--bias-calibration", "0")),
                        ("calibrated", ("--timesteps", "8", "--bias-calibration-images", "20"))):
        status, _, err = run(capsys, "convert", model, "--calib", calib, "-o", tmp_path / name, *extra)
        assert status == 0, err
    plain, calibrated = store.load(tmp_path / "plain"), store.load(tmp_path / "calibrated")
    assert (plain.bias_calibrated_for, calibrated.bias_calibrated_for) == (None, 8)
    assert len(calibrated.bias_corrections) == len(calibrated.graph.layers)
    assert any(any(values) for values in calibrated.bias_corrections)
    for before, after, correction in zip(plain.graph.layers, calibrated.graph.layers, calibrated.bias_corrections):
        assert before.threshold == after.threshold
        assert all(np.array_equal(e.weight, f.weight) for e, f in zip(before.edges, after.edges))
        assert np.array_equal(after.bias - before.bias, np.repeat(correction, before.bias.size // len(correction)))
    status, _, err = run(capsys, "evaluate", tmp_path / "calibrated", "--data", calib, "--timesteps", "4,8")
    assert status == 0 and err.count("warning") == 1 and "biases calibrated for T=8, evaluated at T=4" in err


def test_radix_on_the_qcfs_resnet(capsys, tmp_path):
    data, _, _ = small_data(tmp_path, FASHION / "fashion_test.npz", 50)
    status, _, err = run(capsys, "convert", FASHION / "resnet_qcfs16.onnx", "--calib", FASHION / "fashion_calib.npz",
                         "-o", tmp_path / "net", "--method", "radix", "--timesteps", "4")
    assert status == 0, err
    status, out, err = run(capsys, "evaluate", tmp_path / "net", "--data", data, "--json", tmp_path / "r.json")
    assert status == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert [entry["timesteps"] for entry in report["snn"]] == [4] and report["method"] == "radix"
    refused(capsys, "evaluate", tmp_path / "net", "--data", data, "--timesteps", "8",
            fragments=("--timesteps", "built for T=4"))


def test_evaluate_layers_prints_writes_json_and_png(capsys, tmp_path):
    model, data = GRAPH_FIXTURES / "maxpool_legacy.onnx", GRAPH_FIXTURES / "maxpool_legacy.npz"
    assert run(capsys, "convert", model, "--calib", data, "-o", tmp_path / "net", "--timesteps", "16")[0] == 0
    status, out, err = run(capsys, "evaluate", tmp_path / "net", "--data", data, "--timesteps", "16", "--layers", "16",
                           "--layers-plot", tmp_path / "layers.png", "--json", tmp_path / "r.json")
    assert status == 0, err
    assert "wrongly silent" in out
    rows = json.loads((tmp_path / "r.json").read_text())["layers"]["rows"]
    graph = store.load(tmp_path / "net")
    assert len(rows) == len(graph.graph.spiking_layers) + len(graph.network.max_pools)
    assert (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "net"
    assert cli.main(["convert", str(GRAPH_FIXTURES / "resnet_legacy.onnx"), "--calib",
                     str(GRAPH_FIXTURES / "resnet_legacy.npz"), "-o", str(out), "--timesteps", "16"]) == 0
    return out


@pytest.mark.parametrize("options, fragments", [
    (("--method", "radix", "--timesteps", "4", "--bias-calibration", "4"), ("--bias-calibration", "ecc method")),
    (("--method", "rmp", "--bias-calibration", "4"), ("--bias-calibration", "ecc method")),
    (("--method", "radix", "--timesteps", "4", "--channel-lambdas"), ("--channel-lambdas", "rate coding")),
    (("--method", "radix", "--timesteps", "40"), ("--timesteps",)),
    (("--pool", "layer"), ("--pool", "composes its average pools")),
    (("--topology", "chain"), ("resnet_legacy.onnx",)),
    (("--bias-calibration", "-1"), ("--bias-calibration", "T >= 1")),
    (("--bias-calibration-images", "0"), ("--bias-calibration-images", ">= 1")),
])
def test_graph_convert_options_refused_in_one_line(options, fragments, capsys, tmp_path):
    out = tmp_path / "net"
    refused(capsys, "convert", GRAPH_FIXTURES / "resnet_legacy.onnx", "--calib", GRAPH_FIXTURES / "resnet_legacy.npz",
            "-o", out, *options, fragments=fragments, output=out)


def test_a_malformed_input_shape_is_refused_by_the_parser(capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        cli.main(["convert", str(BUNDLED_MODEL), "--calib", str(BUNDLED_CALIB), "-o", str(tmp_path / "n"),
                  "--input-shape", "1,x"])
    assert exited.value.code == 2
    assert "--input-shape: '1,x' is not a shape" in capsys.readouterr().err


@pytest.mark.parametrize("option", [("--bias-calibration", "16"), ("--channel-lambdas",)])
def test_graph_only_options_on_a_forced_chain_are_refused(option, capsys, tmp_path):
    out = tmp_path / "net"
    refused(capsys, "convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", out, "--topology", "chain", *option,
            fragments=(option[0], "graph networks only"), output=out)


def test_calibration_data_in_another_layout_is_refused(capsys, tmp_path):
    bad = tmp_path / "nchw.npz"
    np.savez(bad, x=np.load(GRAPH_FIXTURES / "nhwc_dynamo.npz")["x"].transpose(0, 3, 1, 2))
    out = tmp_path / "net"
    refused(capsys, "convert", GRAPH_FIXTURES / "nhwc_dynamo.onnx", "--calib", bad, "-o", out,
            fragments=("nchw.npz: x has shape (50, 1, 14, 14)", "the model's NHWC input 'x' is (N, 14, 14, 1)"),
            output=out)


def test_evaluate_refusals(capsys, tmp_path, resnet_folder):
    flat = tmp_path / "flat.npz"
    archive = np.load(GRAPH_FIXTURES / "resnet_legacy.npz")
    np.savez(flat, x=archive["x"].reshape(len(archive["x"]), -1), y=archive["y"])
    refused(capsys, "evaluate", resnet_folder, "--data", flat, fragments=(str(flat), "the network needs"))
    data = GRAPH_FIXTURES / "resnet_legacy.npz"
    refused(capsys, "evaluate", resnet_folder, "--data", data, "--layers-plot", tmp_path / "p.png",
            fragments=("--layers-plot", "needs --layers"))
    refused(capsys, "evaluate", resnet_folder, "--data", data, "--layers", "-2", fragments=("--layers", "T >= 1"))
    scaled = tmp_path / "scaled.npz"
    np.savez(scaled, x=archive["x"] * 255.0 * 64, y=archive["y"])
    refused(capsys, "evaluate", resnet_folder, "--data", scaled, fragments=(str(scaled), "calibrated for"))


def test_layers_on_a_chain_folder_is_refused(capsys, tmp_path):
    assert run(capsys, "convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", tmp_path / "chain")[0] == 0
    refused(capsys, "evaluate", tmp_path / "chain", "--data", BUNDLED_CALIB.with_name("mnist_test.npz"),
            "--layers", "16", fragments=("--layers", "--topology graph"))


@pytest.mark.parametrize("name, shape", [("mlp_legacy", "196"), ("nhwc_dynamo", "14,14,1"), ("conv1d_dynamo", "14,14")])
def test_input_shape_in_the_models_own_layout(name, shape, capsys, tmp_path):
    data = GRAPH_FIXTURES / f"{name}.npz"
    status, _, err = run(capsys, "convert", GRAPH_FIXTURES / f"{name}.onnx", "--calib", data, "-o", tmp_path / "net",
                         "--input-shape", shape, "--bias-calibration", "0")
    assert status == 0, err
    assert store.load(tmp_path / "net").network.input.model_shape == tuple(int(v) for v in shape.split(","))


@pytest.mark.parametrize("method, expected", [("ecc", 8), ("rmp", None), ("radix", None)])
def test_graphs_converted_with_ecc_are_bias_calibrated_by_default(method, expected, capsys, tmp_path):
    model, calib = GRAPH_FIXTURES / "resnet_legacy.onnx", GRAPH_FIXTURES / "resnet_legacy.npz"
    status, _, err = run(capsys, "convert", model, "--calib", calib, "-o", tmp_path / "net", "--method", method,
                         "--timesteps", "4" if method == "radix" else "8", "--bias-calibration-images", "10")
    assert status == 0, err
    assert store.load(tmp_path / "net").bias_calibrated_for == expected
