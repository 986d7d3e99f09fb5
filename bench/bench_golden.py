"""Benchmark: the ecc-hw golden model against SpikingJelly 2.0.0 ann2snn on the bundled MNIST CNN.

    python bench/bench_golden.py [--images N] [--json OUT] [--timesteps 16,32,64,128] [--repeats R]

Everything runs in one process on the same held-out images, each side on two threads
(``torch.set_num_threads(2)``; ``golden.run(..., workers=2)``):

* ours: ``ecc_hw.convert`` (8-bit weights, lambda "max" and "percentile" 99.99) and the integer golden
  model on both backends, NumPy and PyTorch on the CPU (``backend=select_backend("torch")``, whose
  predictions are asserted equal to NumPy's); a timing covers ``golden.quantize_input`` + ``golden.run``
  on all images.
* SpikingJelly: ``ann2snn.RateCodingRecipe(mode="max" | "99.9%", momentum=0.1, fuse_flag=True)``
  calibrated with all 500 calibration images as one batch, then ``ann2snn.Converter(recipe,
  device="cpu")``; batches of 100, the analog image fed every step, outputs summed over T,
  ``functional.reset_net`` between batches; a timing covers the whole loop over all images.

Both sides convert the very same network: the torch model (``ecc_hw.architectures.build_model``) is
rebuilt from the ONNX initializers of ``ecc_hw.data.BUNDLED_MODEL`` (so it takes raw 0..255 pixels,
like the ONNX file) and its logits are checked against onnxruntime (rtol=atol=1e-5) before anything
is timed. Timings are interleaved (ours at T, then SpikingJelly at T, per mode) to spread the noise of
a shared machine evenly; "img/s" per side is all images of both modes over the summed time, and the
ratios are ours (per backend) / SpikingJelly from the same run.

Needs the bench extra: torch==2.13.0, onnxruntime, and ``pip install --no-deps spikingjelly==2.0.0``
plus tqdm, loguru, requests (bench/spikingjelly_side.py, shared with bench/bench_graph_golden.py).
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

BACKENDS = ("numpy", "torch")
OURS_MODES = {"max": dict(lambda_mode="max"), "pct": dict(lambda_mode="percentile", percentile=99.99)}
SJ_MODES = {"max": "max", "99.9%": "99.9%"}


def parse_args(argv=None):
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


def torch_model_from_onnx(model_path):
    """``build_model()`` with the ONNX initializers loaded (conv1 includes the 1/255 of the file)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from ecc_hw.architectures import build_model

    graph = onnx.load(str(model_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # the torch BN default epsilon must be the model's
        if node.op_type == "BatchNormalization":
            eps = [a.f for a in node.attribute if a.name == "epsilon"]
            assert not eps or abs(eps[0] - 1e-5) < 1e-9, f"BN epsilon {eps} differs from torch's 1e-5"
    model = build_model()
    state = model.state_dict()
    loaded = {}
    for key, value in state.items():
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
    unused = set(weights) - set(loaded)
    if unused:
        raise SystemExit(f"{model_path}: initializers not used by the torch model: {sorted(unused)}")
    model.load_state_dict(loaded)
    return model.eval()


def ours_run(net, x: np.ndarray, timesteps: int, backend=None) -> np.ndarray:
    """Predictions of the golden model on ``backend`` (None: NumPy), input quantisation included."""
    from ecc_hw import golden

    x_q = golden.quantize_input(net, x)
    return golden.run(net, x_q, timesteps, workers=THREADS, backend=backend).predictions


def main(argv=None) -> int:
    """Check the torch model, convert both sides, time them per T and print (and optionally save) the table."""
    args = parse_args(argv)
    torch = require_spikingjelly()
    if torch is None:
        return 2
    from importlib.metadata import version

    from rich.table import Table

    from ecc_hw import convert, data
    from ecc_hw.backends import select_backend

    console = setup(torch)
    backends = {"numpy": None, "torch": select_backend("torch", "cpu")}
    x_calib, _ = data.load_npz(data.BUNDLED_CALIB)
    x_test, y_test = data.load_npz(data.BUNDLED_TEST)
    x_test, y_test = x_test[:args.images], y_test[:args.images]
    n = len(x_test)

    # The same network on both sides, checked before anything is timed.
    model = torch_model_from_onnx(data.BUNDLED_MODEL)
    logits = check_against_onnxruntime(model, data.BUNDLED_MODEL, x_test)
    cnn_accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    console.print(f"torch model rebuilt from {data.BUNDLED_MODEL.name} equals onnxruntime on {n} images "
                  f"(rtol=atol=1e-5); CNN accuracy {100 * cnn_accuracy:.2f}%")

    ours = {key: convert.convert(data.BUNDLED_MODEL, x_calib, convert.ConvertOptions(**opts))
            for key, opts in OURS_MODES.items()}
    sj = {key: sj_convert(model, x_calib, mode) for key, mode in SJ_MODES.items()}

    # Warm up once per side and mode (first calls allocate, page in BLAS/oneDNN kernels).
    warm = x_test[:min(n, SJ_BATCH)]
    for net in ours.values():
        for backend in backends.values():
            ours_run(net, warm, min(args.timesteps), backend)
    for snn in sj.values():
        sj_run(snn, warm, min(args.timesteps))

    rows = []
    for timesteps in args.timesteps:
        row = {"timesteps": timesteps, "ours": {}, "torch": {}, "spikingjelly": {}}
        for (ours_key, net), (sj_key, snn) in zip(ours.items(), sj.items()):  # interleaved
            seconds, predictions = timed(lambda net=net, t=timesteps: ours_run(net, x_test, t), args.repeats)
            row["ours"][ours_key] = {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                                     "images_per_s": n / seconds}
            seconds, on_torch = timed(lambda net=net, t=timesteps: ours_run(net, x_test, t, backends["torch"]),
                                      args.repeats)
            assert np.array_equal(on_torch, predictions), "the torch backend's predictions differ from NumPy's"
            row["torch"][ours_key] = {"seconds": seconds, "images_per_s": n / seconds}
            seconds, predictions = timed(lambda snn=snn, t=timesteps: sj_run(snn, x_test, t), args.repeats)
            row["spikingjelly"][sj_key] = {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                                           "images_per_s": n / seconds}
        for side in ("ours", "torch", "spikingjelly"):
            row[f"{side}_images_per_s"] = len(row[side]) * n / sum(v["seconds"] for v in row[side].values())
        row["speed_ratio"] = row["ours_images_per_s"] / row["spikingjelly_images_per_s"]
        row["torch_speed_ratio"] = row["torch_images_per_s"] / row["spikingjelly_images_per_s"]
        rows.append(row)
        console.print(f"T={timesteps} done", style="dim")

    table = Table(title=f"Golden model (NumPy and torch CPU backends) vs SpikingJelly {version('spikingjelly')} "
                        f"ann2snn, bundled MNIST CNN, {n} held-out images, {THREADS} threads",
                  caption=f"CNN (onnxruntime) accuracy {100 * cnn_accuracy:.2f}%. Accuracy in % (both backends: "
                          "the same predictions). img/s: both modes' images over their summed time; ratios "
                          "= ours / SJ, same run.")
    for header in ("T", "ours max", "ours pct 99.99", "SJ max", "SJ 99.9%", "numpy img/s", "torch img/s",
                   "SJ img/s", "numpy/SJ", "torch/SJ"):
        table.add_column(header, justify="right")
    for row in rows:
        best_sj = max(v["accuracy"] for v in row["spikingjelly"].values())
        cells = [str(row["timesteps"])]
        for value in (row["ours"]["max"]["accuracy"], row["ours"]["pct"]["accuracy"]):
            cells.append(f"[{'green' if value >= best_sj else 'red'}]{100 * value:.2f}[/]")
        cells += [f"{100 * row['spikingjelly'][k]['accuracy']:.2f}" for k in SJ_MODES]
        cells += [f"{row[f'{side}_images_per_s']:.0f}" for side in ("ours", "torch", "spikingjelly")]
        cells += [f"[{'green' if r >= 1 else 'red'}]{r:.2f}x[/]"
                  for r in (row["speed_ratio"], row["torch_speed_ratio"])]
        table.add_row(*cells)
    console.print(table)

    if args.json:
        report = {
            "cnn_accuracy": cnn_accuracy, "images": n, "threads": THREADS, "sj_batch": SJ_BATCH,
            "repeats": args.repeats, "ours_modes": OURS_MODES, "spikingjelly_modes": SJ_MODES,
            "backends": list(BACKENDS),
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
