"""Benchmark: the graph golden model against SpikingJelly 2.0.0 ann2snn on the Fashion-MNIST ResNet fixture.

    python bench/bench_graph_golden.py [--images N] [--json OUT] [--timesteps 16,32,64,128] [--repeats R]

The conventions of bench/bench_golden.py (the SpikingJelly side is bench/spikingjelly_side.py, shared by
both): one process, the same held-out images (ecc_hw/data/fashion/fashion_test.npz), each side on two
threads (``torch.set_num_threads(2)``; ``run_graph(..., workers=2)``), timings interleaved per T:

* ours: ecc_hw/data/fashion/resnet.onnx converted per T as ``ecc-hw convert --timesteps T`` does with its
  defaults (``ecc_hw.networks.convert_model``: the 500 images of fashion_calib.npz, 8-bit weights and
  input, the graph default of biases calibrated for that T), then the integer golden model on the NumPy
  and the torch CPU backend (whose predictions are asserted equal to NumPy's); a timing covers
  ``IntegerGraph.quantise_input`` + ``run_graph`` on all images.
* SpikingJelly: ``ann2snn.RateCodingRecipe(mode="max" | "99.9%")`` calibrated with the 500 calibration
  images as one batch, batches of 100, the analog image fed every step, outputs summed over T; a timing
  covers the whole loop over all images.

Both sides convert the very same network: the torch ResNet (``ecc_hw.architectures.build_fashion_model``)
is rebuilt from the ONNX initializers (the exporter's Identity aliases of shared initializers resolved, the
input's x / 255 folded into the stem conv)
and its logits are checked against onnxruntime (rtol=atol=1e-5) before anything is timed. "img/s" of
SpikingJelly is both modes' images over their summed time; the ratios are ours (per backend) / SpikingJelly,
same run.

Needs the bench extra and ``pip install --no-deps spikingjelly==2.0.0`` (``make bench`` does both).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
from spikingjelly_side import (SJ_BATCH, THREADS, check_against_onnxruntime, require_spikingjelly, setup, sj_convert,
                               sj_run, timed)

FASHION = Path(__file__).resolve().parents[1] / "ecc_hw" / "data" / "fashion"
MODEL = FASHION / "resnet.onnx"
OURS_MODE = "ecc-hw convert defaults (biases calibrated for each T)"
SJ_MODES = ("max", "99.9%")


def parse_args(argv=None):
    """The command line (``--images``, ``--timesteps``, ``--repeats``, ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="test images to use (default: all 1,000)")
    parser.add_argument("--timesteps", default="16,32,64,128", help="comma-separated T values")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timings per (side, mode, T); the fastest is kept (default 1)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    args.timesteps = [int(t) for t in args.timesteps.split(",") if t.strip()]
    if args.images < 1 or not args.timesteps or min(args.timesteps) < 1 or args.repeats < 1:
        parser.error("--images, --repeats and every T must be >= 1")
    return args


def torch_resnet_from_onnx(model_path: Path):
    """``build_fashion_model("resnet")`` with the ONNX initializers loaded (an initializer the exporter
    shared through an Identity node read under the name the Identity gives it), its leading x / 255 folded
    into the stem conv's weights: SpikingJelly's converter refuses a division node, and the model still
    takes raw 0..255 pixels like the ONNX file."""
    import onnx
    import torch
    from onnx import numpy_helper

    from ecc_hw.architectures import build_fashion_model

    graph = onnx.load(str(model_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
        if node.op_type == "BatchNormalization":  # the torch BN default epsilon must be the model's
            eps = [a.f for a in node.attribute if a.name == "epsilon"]
            assert not eps or abs(eps[0] - 1e-5) < 1e-9, f"BN epsilon {eps} differs from torch's 1e-5"
    model = build_fashion_model("resnet")
    loaded = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            loaded[key] = value
            continue
        if key not in weights:
            raise SystemExit(f"{model_path}: no initializer '{key}' for the torch model")
        array = torch.from_numpy(np.array(weights[key], dtype=np.float32))
        if array.shape != value.shape:
            raise SystemExit(f"{model_path}: initializer '{key}' has shape {tuple(array.shape)}, "
                             f"the torch model needs {tuple(value.shape)}")
        loaded[key] = array
    model.load_state_dict(loaded)
    stem = model[1]
    with torch.no_grad():
        stem.weight /= 255.0
    return torch.nn.Sequential(*list(model)[1:]).eval()


def ours_prepare(x_calib: np.ndarray, timesteps: int):
    """The integer graph of the ResNet as ``ecc-hw convert --timesteps T`` makes it (its defaults)."""
    from ecc_hw.convert import ConvertOptions
    from ecc_hw.networks import convert_model

    return convert_model(MODEL, x_calib, ConvertOptions(timesteps=timesteps), "fashion_calib.npz").graph


def ours_run(graph, x: np.ndarray, timesteps: int, backend=None) -> np.ndarray:
    """Predictions of the graph golden model on ``backend`` (None: NumPy), input quantisation included."""
    from ecc_hw.graph.golden import run_graph

    return run_graph(graph, graph.quantise_input(x), timesteps, workers=THREADS, backend=backend).predictions


def report_table(console, rows: list[dict], n: int, cnn_accuracy: float) -> None:
    """Print one row per T: accuracies, images/s per side and the ratio."""
    from importlib.metadata import version

    from rich.table import Table

    table = Table(title=f"Graph golden model (NumPy and torch CPU) vs SpikingJelly {version('spikingjelly')} "
                        f"ann2snn, Fashion-MNIST ResNet, {n} test images, {THREADS} threads",
                  caption=f"CNN (onnxruntime) accuracy {100 * cnn_accuracy:.2f}%. Accuracy in %. SJ img/s: both "
                          "modes' images over their summed time; ratios = ours (numpy, torch) / SJ, same run.")
    for header in ("T", "ours", "SJ max", "SJ 99.9%", "numpy img/s", "torch img/s", "SJ img/s",
                   "numpy/SJ", "torch/SJ"):
        table.add_column(header, justify="right")
    for row in rows:
        cells = [str(row["timesteps"]), f"{100 * row['ours']['accuracy']:.2f}"]
        cells += [f"{100 * row['spikingjelly'][mode]['accuracy']:.2f}" for mode in SJ_MODES]
        cells += [f"{row[f'{side}_images_per_s']:.0f}" for side in ("ours", "torch", "spikingjelly")]
        cells += [f"[{'green' if r >= 1 else 'red'}]{r:.2f}x[/]"
                  for r in (row["speed_ratio"], row["torch_speed_ratio"])]
        table.add_row(*cells)
    console.print(table)


def main(argv=None) -> int:
    """Check the torch model, convert both sides, time them per T and print (and optionally save) the table."""
    args = parse_args(argv)
    torch = require_spikingjelly()
    if torch is None:
        return 2
    from importlib.metadata import version

    from ecc_hw.backends import select_backend

    console = setup(torch)
    on_torch = select_backend("torch", "cpu")
    x_calib = np.load(FASHION / "fashion_calib.npz")["x"].astype(np.float64)
    test = np.load(FASHION / "fashion_test.npz")
    x_test, y_test = test["x"][:args.images].astype(np.float64), test["y"][:args.images]
    n = len(x_test)

    model = torch_resnet_from_onnx(MODEL)
    logits = check_against_onnxruntime(model, MODEL, x_test)
    cnn_accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    console.print(f"torch ResNet rebuilt from {MODEL.name} equals onnxruntime on {n} images (rtol=atol=1e-5); "
                  f"CNN accuracy {100 * cnn_accuracy:.2f}%")

    graphs = {timesteps: ours_prepare(x_calib, timesteps) for timesteps in args.timesteps}
    sj = {mode: sj_convert(model, x_calib, mode) for mode in SJ_MODES}
    warm = x_test[:min(n, SJ_BATCH)]  # first calls allocate and page in BLAS / oneDNN kernels
    ours_run(graphs[min(args.timesteps)], warm, min(args.timesteps))
    ours_run(graphs[min(args.timesteps)], warm, min(args.timesteps), on_torch)
    for snn in sj.values():
        sj_run(snn, warm, min(args.timesteps))

    rows = []
    for timesteps in args.timesteps:
        graph = graphs[timesteps]
        seconds, predictions = timed(lambda g=graph, t=timesteps: ours_run(g, x_test, t), args.repeats)
        row = {"timesteps": timesteps, "spikingjelly": {},
               "ours": {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                        "images_per_s": n / seconds}}
        seconds, torch_predictions = timed(lambda g=graph, t=timesteps: ours_run(g, x_test, t, on_torch),
                                           args.repeats)
        assert np.array_equal(torch_predictions, predictions), "the torch backend's predictions differ from NumPy's"
        row["torch"] = {"seconds": seconds, "images_per_s": n / seconds}
        for mode, snn in sj.items():
            seconds, predictions = timed(lambda snn=snn, t=timesteps: sj_run(snn, x_test, t), args.repeats)
            row["spikingjelly"][mode] = {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                                         "images_per_s": n / seconds}
        row["ours_images_per_s"] = row["ours"]["images_per_s"]
        sj_seconds = sum(value["seconds"] for value in row["spikingjelly"].values())
        row["spikingjelly_images_per_s"] = len(sj) * n / sj_seconds
        row["torch_images_per_s"] = row["torch"]["images_per_s"]
        row["speed_ratio"] = row["ours_images_per_s"] / row["spikingjelly_images_per_s"]
        row["torch_speed_ratio"] = row["torch_images_per_s"] / row["spikingjelly_images_per_s"]
        rows.append(row)
        console.print(f"T={timesteps} done", style="dim")
    report_table(console, rows, n, cnn_accuracy)

    if args.json:
        report = {
            "model": MODEL.name, "cnn_accuracy": cnn_accuracy, "images": n, "threads": THREADS,
            "sj_batch": SJ_BATCH, "repeats": args.repeats, "ours_mode": OURS_MODE, "spikingjelly_modes": SJ_MODES,
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "torch": torch.__version__, "spikingjelly": version("spikingjelly"),
                         "ecc_hw": version("ecc-hw")},
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
