#!/usr/bin/env python
"""Accuracy of the integer graph SNN (ecc_hw.graph.golden) against the CNN on the bundled Fashion-MNIST models.

    .venv/bin/python tools/measure_graph_snn.py [--models resnet vgg ...] [--images 1000] [--timesteps 32 64]

For each legacy export ecc_hw/data/fashion/NAME.onnx: lambdas from fashion_calib.npz (500 images) in both
modes (max, percentile 99.99), 8-bit weights and input, then the golden model on the first ``--images`` of
fashion_test.npz at each T. Prints one Markdown row per model: CNN accuracy (float64 forward) and SNN accuracy
per mode and T, and the wall time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.forward import forward
from ecc_hw.graph.golden import run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph

FASHION = Path(__file__).resolve().parents[1] / "ecc_hw" / "data" / "fashion"
MODELS = ("vgg", "maxpool", "depthwise", "resnet", "resnet_qcfs4", "densenet")
MODES = (("max", 99.99), ("percentile", 99.99))


def measure(name: str, images: int, timesteps: list[int]) -> str:
    """One table row for model ``name``."""
    start = time.time()
    calibration = np.load(FASHION / "fashion_calib.npz")["x"].astype(np.float64)
    test = np.load(FASHION / "fashion_test.npz")
    x, y = test["x"][:images].astype(np.float64), test["y"][:images]
    network = convert_graph(FASHION / f"{name}.onnx")
    cells = [f"{np.mean(np.argmax(forward(network, x).logits, axis=1) == y):.3f}"]
    for mode, percentile in MODES:
        graph = quantise_graph(network, calibrate(network, calibration, mode, percentile))
        x_q = graph.quantise_input(x)
        for steps in timesteps:
            cells.append(f"{np.mean(run_graph(graph, x_q, steps).predictions == y):.3f}")
    return f"| {name} | " + " | ".join(cells) + f" | {time.time() - start:.0f} s |"


def main() -> None:
    """Parse the options and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[32, 64])
    options = parser.parse_args()
    columns = [f"{mode} T={steps}" for mode, _ in MODES for steps in options.timesteps]
    print("| model | CNN | " + " | ".join(columns) + " | time |")
    print("|---" * (len(columns) + 3) + "|")
    for name in options.models:
        print(measure(name, options.images, options.timesteps), flush=True)


if __name__ == "__main__":
    main()
