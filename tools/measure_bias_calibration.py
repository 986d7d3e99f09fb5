#!/usr/bin/env python
"""SNN accuracy before and after bias calibration (ecc_hw.graph.bias_calibration, docs/arithmetic.md 5.8).

    .venv/bin/python tools/measure_bias_calibration.py [--models resnet depthwise] [--images 200]
        [--calibration 200] [--timesteps 32] [--no-output]

For each legacy export ecc_hw/data/fashion/NAME.onnx: lambdas (percentile 99.99) and bias calibration on the
first ``--calibration`` images of fashion_calib.npz, 8-bit weights and input, then the golden model on the first
``--images`` of fashion_test.npz at T. Prints one Markdown row per model: CNN accuracy, SNN accuracy before and
after, the mean |per-channel current error| summed over the spiking layers before and after, and the wall time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ecc_hw.graph.bias_calibration import calibrate_biases, mean_abs_errors
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.forward import forward
from ecc_hw.graph.golden import run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph

FASHION = Path(__file__).resolve().parents[1] / "ecc_hw" / "data" / "fashion"


def measure(name: str, images: int, calibration_images: int, timesteps: int, include_output: bool) -> str:
    """One table row for model ``name``."""
    start = time.time()
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:calibration_images].astype(np.float64)
    test = np.load(FASHION / "fashion_test.npz")
    x, y = test["x"][:images].astype(np.float64), test["y"][:images]
    network = convert_graph(FASHION / f"{name}.onnx")
    cnn = np.mean(np.argmax(forward(network, x).logits, axis=1) == y)
    graph = quantise_graph(network, calibrate(network, calibration, "percentile", 99.99))
    calibrated = calibrate_biases(graph, calibration, timesteps, include_output=include_output).graph
    x_q = graph.quantise_input(x)
    before = np.mean(run_graph(graph, x_q, timesteps).predictions == y)
    after = np.mean(run_graph(calibrated, x_q, timesteps).predictions == y)
    error_before = sum(mean_abs_errors(graph, calibration, timesteps)[:-1])
    error_after = sum(mean_abs_errors(calibrated, calibration, timesteps)[:-1])
    return (f"| {name} | {cnn:.3f} | {before:.3f} | {after:.3f} | {error_before:.1f} | {error_after:.1f} "
            f"| {time.time() - start:.0f} s |")


def main() -> None:
    """Parse the options and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet", "depthwise"])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--timesteps", type=int, default=32)
    parser.add_argument("--no-output", action="store_true", help="leave the output layer's bias alone")
    options = parser.parse_args()
    print(f"| model | CNN | SNN T={options.timesteps} | SNN bias-calibrated | current error before | after | time |")
    print("|---" * 7 + "|")
    for name in options.models:
        print(measure(name, options.images, options.calibration, options.timesteps, not options.no_output),
              flush=True)


if __name__ == "__main__":
    main()
