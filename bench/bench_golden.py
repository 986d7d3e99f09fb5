"""Benchmark: the ecc-hw golden model against SpikingJelly 2.0.0 ann2snn on the bundled MNIST CNN.

    python bench/bench_golden.py [--images N] [--json OUT] [--timesteps 16,32,64,128] [--repeats R]

Everything runs in one process on the same held-out images, each side on two threads
(``torch.set_num_threads(2)``; ``golden.run(..., workers=2)``):

* ours: ``ecc_hw.convert`` (8-bit weights, lambda "max" and "percentile" 99.99) and the integer golden
  model; a timing covers ``golden.quantize_input`` + ``golden.run`` on all images.
* SpikingJelly: ``ann2snn.RateCodingRecipe(mode="max" | "99.9%", momentum=0.1, fuse_flag=True)``
  calibrated with all 500 calibration images as one batch, then ``ann2snn.Converter(recipe,
  device="cpu")``; batches of 100, the analog image fed every step, outputs summed over T,
  ``functional.reset_net`` between batches; a timing covers the whole loop over all images.

Both sides convert the very same network: the torch model (``ecc_hw.architectures.build_model``) is
rebuilt from the ONNX initializers of ``ecc_hw.data.BUNDLED_MODEL`` (so it takes raw 0..255 pixels,
like the ONNX file) and its logits are checked against onnxruntime (rtol=atol=1e-5) before anything
is timed. Timings are interleaved (ours at T, then SpikingJelly at T, per mode) to spread the noise of
a shared machine evenly; "img/s" per side is all images of both modes over the summed time, and the
ratio is ours / SpikingJelly from the same run.

Needs the bench extra: torch==2.13.0, onnxruntime, and ``pip install --no-deps spikingjelly==2.0.0``
plus tqdm, loguru, requests (SpikingJelly 2.0.0 is installed without its dependencies: they pull torchvision
builds that fail beside torch 2.13).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

THREADS = 2
SJ_BATCH = 100
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


def check_against_onnxruntime(model, model_path, x: np.ndarray) -> np.ndarray:
    """Assert the torch model's logits equal onnxruntime's; return onnxruntime's logits."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    reference = session.run(None, {name: x.astype(np.float32)})[0]
    with torch.no_grad():
        logits = model(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-5,
                               err_msg="torch model rebuilt from the ONNX initializers differs from onnxruntime")
    return reference


def sj_convert(model, x_calib: np.ndarray, mode: str):
    """SpikingJelly 2.0.0 rate-coding conversion, calibrated on all images as ONE batch."""
    import copy

    import torch
    from spikingjelly.activation_based import ann2snn

    calib = [torch.from_numpy(x_calib.astype(np.float32))]  # one batch: the running max is the true max
    recipe = ann2snn.RateCodingRecipe(dataloader=calib, mode=mode, momentum=0.1, fuse_flag=True)
    with contextlib.redirect_stderr(io.StringIO()):  # tqdm bar of the calibration loop
        snn = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(model))
    return snn.eval()


def sj_run(snn, x: np.ndarray, timesteps: int) -> np.ndarray:
    """Predictions of the converted SNN: the analog image each step, outputs summed over T."""
    import torch
    from spikingjelly.activation_based import functional

    predictions = []
    with torch.no_grad():
        for start in range(0, len(x), SJ_BATCH):
            images = torch.from_numpy(x[start:start + SJ_BATCH].astype(np.float32))
            functional.reset_net(snn)
            total = snn(images)
            for _ in range(timesteps - 1):
                total += snn(images)
            predictions.append(total.argmax(dim=1).numpy())
    functional.reset_net(snn)
    return np.concatenate(predictions)


def ours_run(net, x: np.ndarray, timesteps: int) -> np.ndarray:
    from ecc_hw import golden

    x_q = golden.quantize_input(net, x)
    return golden.run(net, x_q, timesteps, workers=THREADS).predictions


def timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def quiet_spikingjelly():
    """Silence SpikingJelly's loguru INFO lines (conversion progress) so the table stays readable."""
    with contextlib.suppress(Exception):
        from loguru import logger as loguru_logger
        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="WARNING")
    logging.getLogger("spikingjelly").setLevel(logging.WARNING)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
        import spikingjelly  # noqa: F401
        from spikingjelly.activation_based import ann2snn  # noqa: F401
    except ImportError as error:
        print(f"bench: {error}. Install the bench extra: pip install -e '.[bench]' && "
              "pip install --no-deps spikingjelly==2.0.0", file=sys.stderr)
        return 2
    from importlib.metadata import version

    from rich.console import Console
    from rich.table import Table

    from ecc_hw import convert, data

    quiet_spikingjelly()
    torch.set_num_threads(THREADS)
    console = Console(width=max(Console().width, 110))

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
        ours_run(net, warm, min(args.timesteps))
    for snn in sj.values():
        sj_run(snn, warm, min(args.timesteps))

    rows = []
    for timesteps in args.timesteps:
        row = {"timesteps": timesteps, "ours": {}, "spikingjelly": {}}
        for (ours_key, net), (sj_key, snn) in zip(ours.items(), sj.items()):  # interleaved
            seconds, predictions = timed(lambda net=net, t=timesteps: ours_run(net, x_test, t), args.repeats)
            row["ours"][ours_key] = {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                                     "images_per_s": n / seconds}
            seconds, predictions = timed(lambda snn=snn, t=timesteps: sj_run(snn, x_test, t), args.repeats)
            row["spikingjelly"][sj_key] = {"accuracy": float(np.mean(predictions == y_test)), "seconds": seconds,
                                           "images_per_s": n / seconds}
        ours_seconds = sum(v["seconds"] for v in row["ours"].values())
        sj_seconds = sum(v["seconds"] for v in row["spikingjelly"].values())
        row["ours_images_per_s"] = len(ours) * n / ours_seconds
        row["spikingjelly_images_per_s"] = len(sj) * n / sj_seconds
        row["speed_ratio"] = row["ours_images_per_s"] / row["spikingjelly_images_per_s"]
        rows.append(row)
        console.print(f"T={timesteps} done", style="dim")

    table = Table(title=f"Golden model vs SpikingJelly {version('spikingjelly')} ann2snn, bundled MNIST CNN, "
                        f"{n} held-out images, {THREADS} threads",
                  caption=f"CNN (onnxruntime) accuracy {100 * cnn_accuracy:.2f}%. Accuracy in %. img/s: both "
                          "modes' images over their summed time; ratio = ours / SJ, same run.")
    for header in ("T", "ours max", "ours pct 99.99", "SJ max", "SJ 99.9%", "ours img/s", "SJ img/s",
                   "ratio ours/SJ"):
        table.add_column(header, justify="right")
    for row in rows:
        best_sj = max(v["accuracy"] for v in row["spikingjelly"].values())
        cells = [str(row["timesteps"])]
        for value in (row["ours"]["max"]["accuracy"], row["ours"]["pct"]["accuracy"]):
            cells.append(f"[{'green' if value >= best_sj else 'red'}]{100 * value:.2f}[/]")
        cells += [f"{100 * row['spikingjelly'][k]['accuracy']:.2f}" for k in SJ_MODES]
        cells += [f"{row['ours_images_per_s']:.0f}", f"{row['spikingjelly_images_per_s']:.0f}",
                  f"[{'green' if row['speed_ratio'] >= 1 else 'red'}]{row['speed_ratio']:.2f}x[/]"]
        table.add_row(*cells)
    console.print(table)

    if args.json:
        report = {
            "cnn_accuracy": cnn_accuracy, "images": n, "threads": THREADS, "sj_batch": SJ_BATCH,
            "repeats": args.repeats, "ours_modes": OURS_MODES, "spikingjelly_modes": SJ_MODES,
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
