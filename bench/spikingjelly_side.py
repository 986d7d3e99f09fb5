"""The SpikingJelly side of the benchmarks (bench/bench_golden.py, bench/bench_graph_golden.py), shared:
the import guard, the silenced logging, the console, the onnxruntime check of a rebuilt torch model, the
ann2snn conversion and run, and the timer.

SpikingJelly 2.0.0 is installed without its dependencies (``pip install --no-deps spikingjelly==2.0.0``
plus tqdm, loguru, requests from the bench extra): they pull torchvision builds that fail beside torch 2.13.
"""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import time

import numpy as np

THREADS = 2      # torch threads of SpikingJelly, worker threads of ours: the same two cores
SJ_BATCH = 100   # images per SpikingJelly batch


def require_spikingjelly():
    """The ``torch`` module once torch and SpikingJelly's ann2snn import, else None after one line on
    stderr saying how to install them."""
    try:
        import torch
        from spikingjelly.activation_based import ann2snn  # noqa: F401
    except ImportError as error:
        print(f"bench: {error}. Install the bench extra: pip install -e '.[bench]' && "
              "pip install --no-deps spikingjelly==2.0.0", file=sys.stderr)
        return None
    return torch


def quiet_spikingjelly() -> None:
    """Silence SpikingJelly's loguru INFO lines (conversion progress) so the table stays readable."""
    with contextlib.suppress(Exception):
        from loguru import logger as loguru_logger
        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="WARNING")
    logging.getLogger("spikingjelly").setLevel(logging.WARNING)


def setup(torch):
    """Quiet SpikingJelly, give torch ``THREADS`` threads; return a console at least 110 columns wide."""
    from rich.console import Console

    quiet_spikingjelly()
    torch.set_num_threads(THREADS)
    return Console(width=max(Console().width, 110))


def check_against_onnxruntime(model, model_path, x: np.ndarray) -> np.ndarray:
    """Assert the torch model's logits equal onnxruntime's (rtol=atol=1e-5); return onnxruntime's logits."""
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


def timed(fn, repeats: int):
    """(fastest of ``repeats`` wall times in seconds, the last result of ``fn()``)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
