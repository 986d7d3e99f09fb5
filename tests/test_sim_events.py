"""Network bench with event input (issue 8): event parameter files on Icarus and Verilator.

The design takes the input spike counts (N, T, C, H, W) as event words (``rtl_gen.event_input``),
with random input idle gaps and output back-pressure: every spike of every layer at every step, the
output membranes, the prediction and the cycle count (stalls subtracted) must equal the golden
model's event mode and the cycle model. Small random event networks (BRAM and SPRAM banks), the
shipped event CNN on synthetic event digits (T = 48), the mutation test that proves the bench can
fail, and ``ecc-hw verify`` on event recordings."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import data, golden, params as params_io
from ecc_hw.events import preprocess, synthetic
from ecc_hw.events.readers import make_events
from ecc_hw.testing import random_event_inputs, random_event_network
from ecc_hw.sim.check import VerificationFailed
from ecc_hw.sim.network_tb import Stimulus
from ecc_hw.sim.verify import verify
from ecc_hw.sim.testing import need_simulator

EVENT_CNN = data.PACKAGE_DATA / "events" / "events_cnn.onnx"
STIMULI = (Stimulus(1, 0, 0), Stimulus(2, 128, 128), Stimulus(3, 250, 200))
CASES = [  # seed, lanes, tre_mode, with_pool, conv_layers, count_scale, T, memory
    (3, 2, "spread", True, 2, 3, 5, "bram"),
    (9, 1, "spread", False, 2, 4, 6, "spram"),
    (11, 8, "initial", False, 2, 16, 3, "bram"),
]


def _case(seed, lanes, tre_mode, with_pool, conv_layers, count_scale, timesteps, memory):
    params = random_event_network(seed, count_scale=count_scale, timesteps=timesteps, tre_mode=tre_mode,
                                  with_pool=with_pool, conv_layers=conv_layers)
    x_q = random_event_inputs(params, 4, seed + 100)
    x_q[0, 1] = 0                                    # an empty frame
    x_q[1, -1] = count_scale                         # a full frame at the largest count
    x_q[2] = 0                                       # no events at all: no gaps allowed
    return params, x_q


@pytest.mark.parametrize("simulator,seed,lanes,tre_mode,with_pool,conv_layers,count_scale,timesteps,memory",
                         [("icarus", *case) for case in CASES] + [("verilator", *CASES[0])])
def test_random_event_network_bench(simulator, seed, lanes, tre_mode, with_pool, conv_layers, count_scale,
                                    timesteps, memory, bench_cache):
    params, x_q = _case(seed, lanes, tre_mode, with_pool, conv_layers, count_scale, timesteps, memory)
    bench = bench_cache.get(params, simulator, lanes, timesteps, f"events{seed}", memory=memory)
    assert "events__payload" in bench.build.design.verilog.read_text()
    for stimulus in STIMULI:
        report = verify(params, x_q, simulator, lanes, timesteps, stimulus, bench=bench)
        assert report["ok"], report["first_mismatch"]
        assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
        if stimulus.idle:
            assert sum(report["input_stall_cycles"]) > 0 and report["input_stall_cycles"][2] == 0
        if stimulus.stall:
            assert sum(report["output_stall_cycles"]) > 0


@pytest.fixture(scope="module")
def event_cnn(tmp_path_factory):
    """The shipped event CNN converted with --input events at T = 48 (calibrated on synthetic
    event digits), and two other synthetic event digits binned into its 48 frames."""
    folder = tmp_path_factory.mktemp("event-cnn")
    test = np.load(data.BUNDLED_TEST)
    calib = synthetic.saccade_events(test["x"][500:540], seed=3)
    preprocess.save_npz(folder / "calib.npz", calib, test["y"][500:540], (34, 34))
    digits = synthetic.saccade_events(test["x"][:2], seed=2)
    preprocess.save_npz(folder / "digits.npz", digits, test["y"][:2], (34, 34))
    result = subprocess.run([sys.executable, "-m", "ecc_hw.cli", "convert", EVENT_CNN, "--input", "events",
                             "--calib", folder / "calib.npz", "--sensor", "34,34", "--window", "0.3",
                             "--timesteps", "48", "-o", folder / "net"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    net = params_io.load(folder / "net")
    frames = preprocess.load_npz(folder / "digits.npz").spike_frames(
        preprocess.EventConfig.from_json(net.events), 48).astype(np.int64)
    return net, frames


def test_event_cnn_bench_verilator(event_cnn, bench_cache):
    """Two synthetic event digits (~3,500 events each over 48 frames) through the shipped event CNN
    at P = 8: about 630k cycles each; the Verilator build takes ~30 s, the run ~3 s."""
    net, frames = event_cnn
    ref = golden.run(net, frames, record_spikes=True)
    assert all(s.any() for s in ref.spikes)          # every layer spikes: a real check
    bench = bench_cache.get(net, "verilator", 8, 48, "event-cnn")
    report = verify(net, frames, "verilator", 8, 48, Stimulus(4, 160, 80), bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
    assert sum(report["input_stall_cycles"]) > 0 and sum(report["output_stall_cycles"]) > 0


def test_mutation_one_flipped_layer1_spike_fails(bench_cache):
    """The bench fails on one expected spike of the event-driven layer 1 flipped, and says where."""
    params, x_q = _case(*CASES[0])
    lanes, timesteps = CASES[0][1], CASES[0][6]
    ref = golden.run(params, x_q, record_spikes=True)
    t, image, neuron = (int(v) for v in np.argwhere(ref.spikes[0][:, :2])[-1])

    def flip(expected):
        expected.spikes[0][t, image, neuron] ^= True

    bench = bench_cache.get(params, "icarus", lanes, timesteps, f"events{CASES[0][0]}")
    with pytest.raises(VerificationFailed) as failure:
        verify(params, x_q, "icarus", lanes, timesteps, STIMULI[1], mutate=flip, bench=bench,
                      waves_on_mismatch=False)
    report = failure.value.report
    assert report["spike_mismatches"] == 1 and not report["ok"]
    assert report["first_mismatch"] == {"image": image, "kind": "spike", "layer": 1, "timestep": t + 1,
                                        "neuron": neuron, "expected": 0, "got": 1}


def test_cli_verify_takes_event_recordings(tmp_path, sim_build_root):
    """``ecc-hw verify`` on an event parameter file reads event recordings like ``ecc-hw evaluate``
    and bins them into the file's T frames."""
    need_simulator("icarus")
    params, _ = _case(*CASES[0])
    params_io.save(params, tmp_path / "net")
    rng = np.random.default_rng(0)
    height, width = params.events["sensor"]
    window = params.events["window_us"]
    recordings = [make_events(rng.integers(0, width, 60), rng.integers(0, height, 60),
                              np.sort(rng.integers(0, window, 60)), rng.integers(0, 2, 60)) for _ in range(2)]
    preprocess.save_npz(tmp_path / "events.npz", recordings, [0, 1], (height, width))
    result = subprocess.run([sys.executable, "-m", "ecc_hw.cli", "verify", tmp_path / "net", "--data",
                             tmp_path / "events.npz", "-n", "2", "--sim", "icarus", "--lanes", "2",
                             "--json", tmp_path / "out.json", "--build-dir", sim_build_root],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(Path(tmp_path / "out.json").read_text())
    assert report["images"] == 2 and report["spike_mismatches"] == 0 and report["ok"]
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
