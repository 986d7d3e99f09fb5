"""Sharded evaluation (``evaluate --workers N``, torchrun): split and merge equal one run, a real local gloo
group of 2 on the bundled chain and a graph fixture gives the single process's JSON, torchrun's group too,
and the bad inputs end in one line."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_hw import cli, sharded, sharded_group
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, PACKAGE_DATA
from ecc_hw.errors import UserError
from ecc_hw.evaluate import ImageResults, StepImages
from ecc_hw.networks import load_network

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
MNIST_TEST = PACKAGE_DATA / "mnist_test.npz"
REPO = Path(__file__).resolve().parent.parent


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """The bundled MNIST chain, converted once for this module."""
    out = tmp_path_factory.mktemp("sharded") / "chain"
    assert cli.main(["convert", str(BUNDLED_MODEL), "--calib", str(BUNDLED_CALIB), "-o", str(out)]) == 0
    return out


def without_timing(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for entry in report["snn"]:
        entry.pop("images_per_second")
    return report


def split(results: ImageResults, shards: int) -> list[ImageResults]:
    parts = []
    for start, stop in sharded.shard_bounds(len(results.cnn_predictions), shards):
        parts.append(ImageResults(results.cnn_predictions[start:stop], [
            StepImages(s.timesteps, s.predictions[start:stop], s.synops[start:stop], s.spikes[start:stop],
                       s.seconds, None if s.float_predictions is None else s.float_predictions[start:stop])
            for s in results.steps]))
    return parts


@given(total=st.integers(0, 500), shards=st.integers(1, 40))
def test_shard_bounds_are_contiguous_balanced_and_cover_everything(total, shards):
    bounds = sharded.shard_bounds(total, shards)
    assert len(bounds) == shards and bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_split_then_merge_gives_the_single_runs_report(chain, data):
    total = data.draw(st.integers(1, 300))
    shards = data.draw(st.integers(1, min(total, 12)))
    with_floats = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    y = rng.integers(0, 10, total)
    whole = ImageResults(rng.integers(0, 10, total), [
        StepImages(t, rng.integers(0, 10, total), rng.integers(0, 10 ** 7, total).astype(np.int64),
                   rng.integers(0, 10 ** 5, total), 1.0, rng.integers(0, 10, total) if with_floats else None)
        for t in (8, 32)])
    merged = sharded.merge(split(whole, shards))
    net = load_network(chain)
    assert without_timing(sharded.report_from(net, merged, y)) == without_timing(sharded.report_from(net, whole, y))
    for a, b in zip(merged.steps, whole.steps):
        assert np.array_equal(a.synops, b.synops) and a.synops.dtype == b.synops.dtype


def test_shards_of_the_real_golden_model_merge_to_one_run(chain):
    net = load_network(chain)
    archive = np.load(MNIST_TEST)
    x, y = archive["x"][:13].astype(np.float32), archive["y"][:13]
    whole = sharded.image_results(net, x, [8, 16], with_float_snn=True)
    parts = [sharded.image_results(net, sharded.take(x, start, stop), [8, 16], with_float_snn=True)
             for start, stop in sharded.shard_bounds(len(x), 3)]
    assert without_timing(sharded.report_from(net, sharded.merge(parts), y)) == \
        without_timing(sharded.report_from(net, whole, y))


def evaluate_twice(capsys, tmp_path, folder, data, *options) -> tuple[dict, dict, str]:
    status, _, err = run(capsys, "evaluate", folder, "--data", data, *options, "--json", tmp_path / "one.json")
    assert status == 0, err
    status, out, err = run(capsys, "evaluate", folder, "--data", data, *options, "--workers", "2",
                           "--json", tmp_path / "two.json")
    assert status == 0, err
    assert "SNN acc." in out and "ecc-hw evaluate: 2 workers: " in err and " s wall" in err
    return (json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text()), err)


def test_two_local_workers_give_the_single_process_report_on_the_bundled_chain(capsys, tmp_path, chain):
    one, two, _ = evaluate_twice(capsys, tmp_path, chain, MNIST_TEST, "--limit", "61",
                                 "--timesteps", "8,16", "--float-snn")
    assert one["images"] == 61 and "float_snn_accuracy" in one["snn"][0]
    assert without_timing(two) == without_timing(one)


def test_two_local_workers_give_the_single_process_report_on_a_graph_fixture_with_torch(capsys, tmp_path):
    model, data = GRAPH_FIXTURES / "resnet_legacy.onnx", GRAPH_FIXTURES / "resnet_legacy.npz"
    archive = np.load(data)
    small = tmp_path / "data.npz"
    np.savez(small, x=archive["x"][:33], y=archive["y"][:33])
    status, _, err = run(capsys, "convert", model, "--calib", small, "-o", tmp_path / "net",
                         "--lambda", "percentile", "--timesteps", "8")
    assert status == 0, err
    one, two, _ = evaluate_twice(capsys, tmp_path, tmp_path / "net", small, "--timesteps", "8",
                                 "--backend", "torch")
    assert one["topology"] == "graph" and one["images"] == 33
    assert without_timing(two) == without_timing(one)


def test_torchrun_group_gives_the_single_process_report(capsys, tmp_path, chain):
    status, _, err = run(capsys, "evaluate", chain, "--data", MNIST_TEST, "--limit", "21",
                         "--timesteps", "8", "--json", tmp_path / "one.json")
    assert status == 0, err
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run([*torchrun, "-m", "ecc_hw.cli", "evaluate",
                           str(chain), "--data", str(MNIST_TEST), "--limit", "21", "--timesteps", "8",
                           "--json", str(tmp_path / "group.json")], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("SNN acc.") == 1 and "2 workers: 21 images" in done.stderr
    one = json.loads((tmp_path / "one.json").read_text())
    assert without_timing(json.loads((tmp_path / "group.json").read_text())) == without_timing(one)


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_is_refused_in_one_line(capsys, workers, chain):
    status, _, err = run(capsys, "evaluate", chain, "--data", MNIST_TEST, "--workers", workers)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith(f"ecc-hw evaluate: error: --workers: {workers} ")


def test_torchrun_environment_is_read_and_checked():
    assert sharded_group.torchrun_member({}) is None
    member = sharded_group.torchrun_member({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                                            "LOCAL_WORLD_SIZE": "2"})
    assert member == sharded_group.Member(3, 4, 1, 2)
    with pytest.raises(UserError, match="RANK=4 is not within WORLD_SIZE=4"):
        sharded_group.torchrun_member({"RANK": "4", "WORLD_SIZE": "4"})


def test_errors_of_any_rank_reach_rank_zero():
    ok = sharded_group.payload_of(lambda: "results")
    bad = sharded_group.payload_of(lambda: (_ for _ in ()).throw(UserError("no such file", field="data")))
    assert sharded_group.raise_errors([ok, ok]) == ["results", "results"]
    with pytest.raises(UserError, match="worker 1 of 2: no such file") as error:
        sharded_group.raise_errors([ok, bad])
    assert error.value.field == "data"
    crashed = sharded_group.payload_of(lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        sharded_group.raise_errors([crashed, ok])


def test_a_worker_that_dies_before_its_mark_ends_the_wait_in_one_line():
    class Store:
        def __init__(self, keys):
            self.keys = keys

        def check(self, keys):
            return all(key in self.keys for key in keys)

    alive = SimpleNamespace(is_alive=lambda: True, exitcode=None)
    dead = SimpleNamespace(is_alive=lambda: False, exitcode=-9)
    sharded_group.wait_for(Store({"done/1", "done/2"}), "done", [alive, dead])
    with pytest.raises(UserError, match=r"worker 2 of 3 ended \(exit status -9\) before it had done"):
        sharded_group.wait_for(Store({"done/1"}), "done", [alive, dead])


def test_event_sets_are_sliced_by_sample():
    from ecc_hw.events.preprocess import EventSet

    events = EventSet(samples=[np.zeros(1)] * 5, labels=np.arange(5), sensor=(4, 4), names=list("abcde"))
    part = sharded.take(events, 1, 3)
    assert part.names == ["b", "c"] and list(part.labels) == [1, 2] and len(part.samples) == 2


def test_two_local_workers_give_the_single_process_report_on_event_input(capsys, tmp_path):
    from ecc_hw.data import BUNDLED_TEST
    from ecc_hw.events import preprocess, synthetic

    test = np.load(BUNDLED_TEST)
    preprocess.save_npz(tmp_path / "test.npz", synthetic.saccade_events(test["x"][:25], seed=2), test["y"][:25],
                        (34, 34))
    preprocess.save_npz(tmp_path / "calib.npz", synthetic.saccade_events(test["x"][500:530], seed=3),
                        test["y"][500:530], (34, 34))
    status, _, err = run(capsys, "convert", PACKAGE_DATA / "events" / "events_cnn.onnx", "--input", "events",
                         "--calib", tmp_path / "calib.npz", "--sensor", "34,34", "--window", "0.3",
                         "--timesteps", "48", "-o", tmp_path / "net")
    assert status == 0, err
    one, two, _ = evaluate_twice(capsys, tmp_path, tmp_path / "net", tmp_path / "test.npz")
    assert one["input_kind"] == "events" and one["images"] == 25
    assert without_timing(two) == without_timing(one)


def test_an_error_in_a_spawned_worker_reaches_rank_zero_in_one_line(chain, tmp_path):
    from ecc_hw import evaluate_command
    from ecc_hw.backends import NUMPY

    archive = np.load(MNIST_TEST)
    loaded = evaluate_command._Loaded(NUMPY, load_network(chain), False, archive["x"][:4].astype(np.float32),
                                      archive["y"][:4])
    args = SimpleNamespace(net=tmp_path / "gone", timesteps=[8], float_snn=False, backend="numpy", device="cpu")
    with pytest.raises(UserError, match=r"worker 1 of 2: .*gone: not an ecc-hw parameter folder"):
        evaluate_command._run_local(args, loaded, 2)
