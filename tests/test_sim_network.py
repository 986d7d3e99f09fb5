"""Network bench (issue 4): the generated design for the bundled MNIST model, on Verilator (20 images
at P = 4 and P = 8, T = 32) and Icarus (5 images at P = 8 and P = 16, T = 16: Icarus runs ~10k cycles/s
here, so T = 16 keeps it to a few minutes), with random input idle gaps and output back-pressure:
every spike of every layer at every step, the output membranes, the prediction and the cycle count
(stalls subtracted) must equal the golden model and the cycle model. Plus small random networks
(signed input, initial TRE, pools) and the mutation tests that prove the bench can fail."""
import numpy as np
import pytest

from ecc_hw import data, golden
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.testing import random_inputs, random_network
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.sim import network_bench
from ecc_hw.sim.check import VerificationFailed
from ecc_hw.sim.network_tb import Stimulus
from ecc_hw.sim.verify import verify
from ecc_hw.sim.testing import need_simulator

STIMULUS = Stimulus(seed=4, idle=64, stall=80)


@pytest.fixture(scope="session")
def mnist_net():
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    return convert(data.BUNDLED_MODEL, x, ConvertOptions(timesteps=32), calibration_source="mnist_calib.npz")


@pytest.fixture(scope="session")
def mnist_images(mnist_net):
    x, _ = data.load_npz(data.BUNDLED_TEST, input_shape=mnist_net.input_shape)
    return golden.quantize_input(mnist_net, x[:20])


@pytest.mark.parametrize("simulator,lanes,timesteps,count", [
    ("verilator", 8, 32, 20), ("verilator", 4, 32, 20), ("icarus", 8, 16, 5), ("icarus", 16, 16, 5)])
def test_mnist_network_bench(simulator, lanes, timesteps, count, mnist_net, mnist_images, bench_cache):
    bench = bench_cache.get(mnist_net, simulator, lanes, timesteps, "mnist")
    report = verify(mnist_net, mnist_images[:count], simulator, lanes, timesteps, STIMULUS, bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
    assert sum(report["input_stall_cycles"]) > 0 and sum(report["output_stall_cycles"]) > 0


@pytest.mark.parametrize("simulator,count", [("verilator", 4), ("icarus", 2)])
def test_rmp_method_network_bench(simulator, count, bench_cache):
    """A non-default method (RMP-SNN, alpha 0.8: scaled thresholds, no TRE) on the same hardware."""
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    net = convert(data.BUNDLED_MODEL, x, ConvertOptions(method="rmp", alpha=0.8, timesteps=16),
                  calibration_source="mnist_calib.npz")
    assert net.method == "rmp" and all(layer.tre_charge == 0 for layer in net.spiking_layers)
    test_x, _ = data.load_npz(data.BUNDLED_TEST, input_shape=net.input_shape)
    x_q = golden.quantize_input(net, test_x[:count])
    bench = bench_cache.get(net, simulator, 8, 16, "mnist-rmp")
    report = verify(net, x_q, simulator, 8, 16, STIMULUS, bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


@pytest.mark.parametrize("simulator,lanes,count", [("verilator", 8, 4), ("icarus", 16, 2)])
def test_pool_layer_network_bench(simulator, lanes, count, bench_cache):
    """--pool layer: each average pool its own spiking layer (walked as a 1x1 conv with diagonal
    weights), five layers, on both simulators."""
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    net = convert(data.BUNDLED_MODEL, x, ConvertOptions(pool_mode="layer", timesteps=16),
                  calibration_source="mnist_calib.npz")
    assert [layer.kind for layer in net.layers] == ["conv", "pool", "conv", "pool", "dense"]
    test_x, _ = data.load_npz(data.BUNDLED_TEST, input_shape=net.input_shape)
    x_q = golden.quantize_input(net, test_x[:count])
    bench = bench_cache.get(net, simulator, lanes, 16, "mnist-pool-layer")
    report = verify(net, x_q, simulator, lanes, 16, STIMULUS, bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


SMALL = [  # seed, lanes, tre_mode, signed input, conv layers, T
    (5, 4, "spread", False, 3, 4), (6, 2, "initial", True, 1, 5), (11, 1, "spread", True, 2, 3)]


@pytest.mark.parametrize("simulator,seed,lanes,tre_mode,signed,conv_layers,timesteps",
                         [("icarus", *case) for case in SMALL] + [("verilator", *SMALL[0])])  # a Verilator build: ~20 s
def test_random_network_bench(simulator, seed, lanes, tre_mode, signed, conv_layers, timesteps, bench_cache):
    params = random_network(seed, timesteps=timesteps, tre_mode=tre_mode, signed=signed, conv_layers=conv_layers)
    x_q = random_inputs(params, 6, seed + 100)
    x_q[1].reshape(-1)[::3] = 0
    x_q[2][:] = 0                                    # an all-zero image: no gaps allowed at all
    bench = bench_cache.get(params, simulator, lanes, timesteps, f"random{seed}")
    for stimulus in (Stimulus(1, 0, 0), Stimulus(2, 128, 128), Stimulus(3, 250, 200)):
        report = verify(params, x_q, simulator, lanes, timesteps, stimulus, bench=bench)
        assert report["ok"], report["first_mismatch"]
        assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


def _small_bench(simulator, bench_cache):
    seed, lanes, tre_mode, signed, conv_layers, timesteps = SMALL[0]
    params = random_network(seed, timesteps=timesteps, tre_mode=tre_mode, signed=signed, conv_layers=conv_layers)
    return params, lanes, bench_cache.get(params, simulator, lanes, timesteps, f"random{seed}")


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_mutation_one_flipped_spike_fails_with_location_and_waveform(simulator, bench_cache, sim_build_root):
    params, lanes, bench = _small_bench(simulator, bench_cache)
    x_q = random_inputs(params, 4, 7)
    ref = golden.run(params, x_q, record_spikes=True)
    layer = max(n + 1 for n, s in enumerate(ref.spikes) if s.any())   # the deepest layer that spikes
    t, image, neuron = (int(v) for v in np.argwhere(ref.spikes[layer - 1])[-1])   # one of its spikes

    def flip(expected):
        expected.spikes[layer - 1][t, image, neuron] ^= True

    with pytest.raises(VerificationFailed) as failure:
        verify(params, x_q, simulator, lanes, stimulus=STIMULUS, mutate=flip, bench=bench,
                      build_root=sim_build_root)
    report = failure.value.report
    assert report["spike_mismatches"] == 1 and not report["ok"]
    assert report["first_mismatch"] == {"image": image, "kind": "spike", "layer": layer, "timestep": t + 1,
                                        "neuron": neuron, "expected": 0, "got": 1}
    assert f"image {image}, layer {layer}, timestep {t + 1}, neuron {neuron}" in str(failure.value)
    waveform = report["waveform"]
    assert waveform and waveform.endswith((".fst", ".vcd")) and __import__("os").path.getsize(waveform) > 0


def test_mutation_one_cycle_count_fails(bench_cache):
    params, lanes, bench = _small_bench("icarus", bench_cache)
    x_q = random_inputs(params, 3, 8)

    def off_by_one(expected):
        expected.cycles[1] += 1

    with pytest.raises(VerificationFailed, match="image 1: cycles"):
        verify(params, x_q, "icarus", lanes, stimulus=STIMULUS, mutate=off_by_one, bench=bench,
                      waves_on_mismatch=False)


def test_ci_fails_instead_of_skipping_when_a_simulator_is_missing(monkeypatch):
    import shutil

    from ecc_hw.sim import simulators, testing
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(simulators, "verilator_executable", lambda: None)   # found without PATH otherwise
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        testing.need_simulator("verilator")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        testing.need_simulator("icarus")


def test_cli_verify_writes_the_json_report(tmp_path, sim_build_root):
    import json
    import subprocess
    import sys

    from ecc_hw import params as params_io
    need_simulator("icarus")
    seed, lanes, tre_mode, signed, conv_layers, timesteps = SMALL[0]
    net = random_network(seed, timesteps=timesteps, tre_mode=tre_mode, signed=signed, conv_layers=conv_layers)
    params_io.save(net, tmp_path / "net")
    np.savez(tmp_path / "data.npz", x=random_inputs(net, 3, 5).astype(np.float64))
    result = subprocess.run([sys.executable, "-m", "ecc_hw.cli", "verify", tmp_path / "net", "--data",
                             tmp_path / "data.npz", "-n", "3", "--sim", "icarus", "--lanes", str(lanes),
                             "--json", tmp_path / "out.json", "--build-dir", sim_build_root],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    for key in ("images", "simulator", "lanes", "spike_mismatches", "prediction_mismatches", "cycles_per_image",
                "predicted_cycles_per_image", "sim_seconds"):
        assert key in report
    assert report["images"] == 3 and report["simulator"] == "icarus" and report["spike_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


# --- iCE40 UP5K SPRAM banks (memory="spram": single-port SB_SPRAM256KA, read then write; the bench
# adds sim/sb_spram256ka.v). classes=1 makes every spike of the last spiking layer update output
# neuron 0: back-to-back read-modify-writes of one neuron, two cycles apart, dozens in a row.
SPRAM = [  # seed, lanes, tre_mode, signed input, conv layers, T, classes
    (5, 1, "spread", False, 3, 4, 4), (8, 1, "initial", True, 1, 5, 1), (18, 2, "spread", False, 2, 6, 1)]


@pytest.mark.parametrize("simulator,seed,lanes,tre_mode,signed,conv_layers,timesteps,classes",
                         [("icarus", *case) for case in SPRAM] + [("verilator", *SPRAM[1])])
def test_spram_network_bench(simulator, seed, lanes, tre_mode, signed, conv_layers, timesteps, classes,
                             bench_cache):
    params = random_network(seed, timesteps=timesteps, tre_mode=tre_mode, signed=signed,
                            conv_layers=conv_layers, classes=classes)
    x_q = random_inputs(params, 5, seed + 100)
    x_q[2][:] = 0
    if classes == 1:
        ref = golden.run(params, x_q, timesteps, record_spikes=True)
        assert ref.spikes[-1].sum(axis=2).max() >= 20      # >= 20 updates in a row to one neuron
    bench = bench_cache.get(params, simulator, lanes, timesteps, f"spram{seed}", memory="spram")
    assert bench.build.design.manifest["memory"] == "spram"
    assert "SB_SPRAM256KA" in bench.build.design.verilog.read_text()
    for stimulus in (Stimulus(1, 0, 0), Stimulus(2, 128, 128)):
        report = verify(params, x_q, simulator, lanes, timesteps, stimulus, bench=bench)
        assert report["ok"], report["first_mismatch"]
        assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


def test_spram_mnist_bench_verilator(mnist_net, mnist_images, bench_cache):
    """The bundled network as the iCEBreaker builds it (P = 1, T = 32, SPRAM banks), 2 images."""
    bench = bench_cache.get(mnist_net, "verilator", 1, 32, "mnist", memory="spram")
    report = verify(mnist_net, mnist_images[:2], "verilator", 1, 32, STIMULUS, bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


def test_spram_bench_fails_when_the_write_mask_is_ignored(sim_build_root, tmp_path, monkeypatch):
    """Mutation: an SPRAM model that writes whole words clobbers the current beside the membrane in
    the shared SPRAM word (and vice versa): the bench must see it."""
    model = tmp_path / "sb_spram256ka.v"
    text = network_bench.SPRAM_MODEL.read_text()
    broken = text.replace("if (MASKWREN[0]) words[ADDRESS][3:0]   <= DATAIN[3:0];", "words[ADDRESS] <= DATAIN;")
    assert broken != text
    model.write_text(broken)
    monkeypatch.setattr(network_bench, "SPRAM_MODEL", model)
    need_simulator("icarus")
    seed, lanes, tre_mode, signed, conv_layers, timesteps, classes = SPRAM[2]
    params = random_network(seed, timesteps=timesteps, tre_mode=tre_mode, signed=signed,
                            conv_layers=conv_layers, classes=classes)
    fields = make_plan(params, lanes, timesteps, "spram").spram.state.region("layer1").fields
    columns = {name: {c for f in fields if f.name == name for c in range(f.bit // 16, (f.bit + f.width - 1) // 16 + 1)}
               for name in ("layer1_membrane", "layer1_current")}
    assert columns["layer1_membrane"] & columns["layer1_current"]     # the two share an SPRAM
    x_q = random_inputs(params, 3, seed + 100)
    with pytest.raises(VerificationFailed):
        verify(params, x_q, "icarus", lanes, timesteps, Stimulus(1, 0, 0), sim_build_root,
                      waves_on_mismatch=False, memory="spram")
