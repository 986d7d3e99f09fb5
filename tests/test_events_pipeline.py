"""Event input end to end: preprocessing, synthetic events, the golden model's event mode, the CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import golden, params as params_mod
from ecc_hw.data import BUNDLED_TEST
from ecc_hw.errors import UserError
from ecc_hw.events import preprocess, synthetic
from ecc_hw.events.readers import make_events, write_events
from ecc_hw.params import NetworkParams, QuantLayer

sys.path.insert(0, str(Path(__file__).parent))
from reference import linear_loop  # noqa: E402

EVENT_CNN = Path(preprocess.__file__).parent.parent / "data" / "events" / "events_cnn.onnx"
CONFIG = preprocess.EventConfig(sensor=(34, 34), size=(34, 34), window_us=300_000, count_scale=16)


def ecc_hw(*args):
    return subprocess.run([sys.executable, "-m", "ecc_hw.cli", *map(str, args)], capture_output=True, text=True)


def test_preprocess_window_downscale_counts_and_frames():
    events = make_events([0, 127, 127, 64, 64], [0, 127, 127, 3, 3], [100, 200, 300, 1_000_000, 2_000_000],
                         [1, 0, 0, 1, 1])
    config = preprocess.EventConfig(sensor=(128, 128), size=(42, 42), window_us=1_300_000, count_scale=2)
    counts = preprocess.count_frames(events, config)
    assert counts.shape == (2, 42, 42) and counts.sum() == 4          # the 2 s event is outside
    assert counts[1, 0, 0] == 1 and counts[0, 41, 41] == 2 and counts[1, 0, 21] == 1
    frames = preprocess.spike_frames(events, config, 13)
    np.testing.assert_array_equal(frames.sum(axis=0), np.minimum(counts, 2))
    assert frames[9, 1, 0, 21] == 1                                  # t0 + 999,900 us of 1.3 s: frame 9
    with pytest.raises(UserError, match="empty window"):
        preprocess.count_frames(events[:0], config)


def test_frames_keep_the_first_c_events_per_pixel():
    events = make_events([1] * 5, [1] * 5, [0, 10, 20, 30, 40], [1] * 5)
    config = preprocess.EventConfig(sensor=(4, 4), size=(4, 4), window_us=50, count_scale=3)
    frames = preprocess.spike_frames(events, config, 5)
    assert frames[:, 1, 1, 1].tolist() == [1, 1, 1, 0, 0]


def test_synthetic_saccades_are_deterministic_and_nmnist_like():
    digits = np.load(BUNDLED_TEST)["x"][:8]
    a, b = synthetic.saccade_events(digits, seed=5), synthetic.saccade_events(digits, seed=5)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
        assert 500 < len(ea) < 20_000 and ea["t"].max() < 300_000 and np.all(np.diff(ea["t"]) >= 0)
        assert set(np.unique(ea["p"])) == {0, 1}


def tiny_event_params(seed=0):
    rng = np.random.default_rng(seed)
    conv = QuantLayer(kind="conv", input_shape=(2, 5, 5), output_shape=(3, 5, 5),
                      weight=rng.integers(-127, 128, (3, 2, 3, 3)), bias=rng.integers(-40, 40, 3),
                      threshold=200, tre_charge=100, kernel=(3, 3), padding=(1, 1, 1, 1), nominal_fan_in=18)
    dense = QuantLayer(kind="dense", input_shape=(3, 5, 5), output_shape=(4, 1, 1),
                       weight=rng.integers(-127, 128, (4, 75)), bias=rng.integers(-5, 5, 4),
                       threshold=None, tre_charge=None, nominal_fan_in=75)
    return NetworkParams(input_shape=(2, 5, 5), input_bits=8, input_signed=False, weight_bits=8, timesteps=7,
                         eta=0.5, kappa=100.0, layers=[conv, dense], lambdas=[1.0, 1.0, 1.0],
                         input_kind="events", events={"sensor": [5, 5], "size": [5, 5], "window_us": 70,
                                                      "count_scale": 3})


def test_golden_event_mode_matches_a_plain_loop(tmp_path):
    net = tiny_event_params()
    params_mod.save(net, tmp_path / "net")
    net = params_mod.load(tmp_path / "net")                        # the optional input.kind round-trips
    assert net.input_kind == "events" and net.events["count_scale"] == 3
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 4, (3, 7, 2, 5, 5)) * (rng.random((3, 7, 2, 5, 5)) < 0.3)
    result = golden.run(net, frames, record_spikes=True)
    conv, dense = net.layers
    for i in range(3):
        v1, v2, counter = [0] * 75, [0] * 4, 0
        synops = int(frames[i].sum(axis=0).reshape(-1) @ __import__("ecc_hw.linear", fromlist=["x"])
                     .LinearMap.of(conv).fan_out())
        for t in range(7):
            raw = linear_loop(conv, frames[i, t].tolist())
            q, r = divmod(conv.tre_charge, 7)
            charge = q + (1 if counter + r >= 7 else 0)
            counter = (counter + r) % 7
            fired = []
            for n in range(75):
                v = v1[n] + raw[n] + int(conv.bias[n // 25]) + charge
                s = int(v >= conv.threshold)
                v1[n] = v - conv.threshold * s
                fired.append(s)
            assert fired == result.spikes[0][t, i].astype(int).tolist()
            synops += sum(fired) * 4
            out = linear_loop(dense, [[[fired[(c * 5 + y) * 5 + x] for x in range(5)] for y in range(5)]
                                      for c in range(3)])
            v2 = [a + b + int(dense.bias[k]) for k, (a, b) in enumerate(zip(v2, out))]
        assert v2 == result.output_membrane[i].tolist()
        assert synops == result.synops[i]


def test_old_manifest_without_input_kind_reads_as_image(tmp_path):
    net = tiny_event_params()
    net.input_kind, net.events = "image", None
    params_mod.save(net, tmp_path / "net")
    import json
    assert "kind" not in json.loads((tmp_path / "net" / "manifest.json").read_text())["input"]
    assert params_mod.load(tmp_path / "net").input_kind == "image"


@pytest.fixture(scope="module")
def event_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("events")
    test = np.load(BUNDLED_TEST)
    events = synthetic.saccade_events(test["x"][:120], seed=2)
    preprocess.save_npz(folder / "test.npz", events, test["y"][:120], (34, 34))
    calib = synthetic.saccade_events(test["x"][500:560], seed=3)
    preprocess.save_npz(folder / "calib.npz", calib, test["y"][500:560], (34, 34))
    return folder


@pytest.fixture(scope="module")
def event_net(event_data):
    out = event_data / "net"
    result = ecc_hw("convert", EVENT_CNN, "--input", "events", "--calib", event_data / "calib.npz",
                    "--sensor", "34,34", "--window", "0.3", "--timesteps", "48", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def test_cli_convert_and_evaluate_events(event_net, event_data):
    import json
    result = ecc_hw("evaluate", event_net, "--data", event_data / "test.npz", "--json", event_data / "r.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((event_data / "r.json").read_text())
    entry = report["snn"][0]
    assert report["input_kind"] == "events" and entry["timesteps"] == 48
    assert report["cnn_accuracy"] > 0.85 and entry["accuracy"] >= report["cnn_accuracy"] - 0.02
    assert entry["first_layer_macs_per_image"] == 0 and entry["synops_per_image"] > 0


def one_line_exit_2(result, text):
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and text in result.stderr, result.stderr


def test_cli_bad_event_input(event_net, event_data, tmp_path):
    rng = np.random.default_rng(0)
    good = make_events(rng.integers(0, 34, 50), rng.integers(0, 34, 50), np.sort(rng.integers(0, 9000, 50)),
                       rng.integers(0, 2, 50))
    (tmp_path / "0").mkdir()
    write_events(tmp_path / "0" / "a.bin", good)
    truncated = tmp_path / "trunc.bin"
    truncated.write_bytes((tmp_path / "0" / "a.bin").read_bytes()[:-2])
    one_line_exit_2(ecc_hw("evaluate", event_net, "--data", truncated), "truncated")
    outside = good.copy()
    outside["x"][3] = 40
    write_events(tmp_path / "outside.npy", outside)
    (tmp_path / "1").mkdir()
    np.save(tmp_path / "1" / "b.npy", outside)
    one_line_exit_2(ecc_hw("evaluate", event_net, "--data", tmp_path), "outside the 34x34 sensor")
    backwards = good.copy()
    backwards["t"][10] = -1
    bad = tmp_path / "back"
    (bad / "2").mkdir(parents=True)
    np.save(bad / "2" / "c.npy", backwards)
    one_line_exit_2(ecc_hw("evaluate", event_net, "--data", bad), "timestamps go backwards")
    empty = tmp_path / "empty.npz"
    preprocess.save_npz(empty, [good, good[:0]], [0, 1], (34, 34))
    one_line_exit_2(ecc_hw("evaluate", event_net, "--data", empty), "empty window")
    one_line_exit_2(ecc_hw("evaluate", event_net, "--data", event_data / "test.npz", "--timesteps", "16"),
                    "built for T=48")
    one_line_exit_2(ecc_hw("convert", EVENT_CNN, "--input", "events", "--calib", event_data / "calib.npz",
                           "-o", tmp_path / "n"), "--sensor")
