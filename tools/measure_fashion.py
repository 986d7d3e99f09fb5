#!/usr/bin/env python
"""The Fashion-MNIST results tables of docs/graphs.md: every bundled model, every rate method, bias calibration.

    .venv/bin/python tools/measure_fashion.py [--models resnet vgg ...] [--images 1000] [--json OUT]

For each legacy export ecc_hw/data/fashion/NAME.onnx, converted exactly as ``ecc-hw convert`` does
(``ecc_hw.graph.convert.convert_graph_model``; calibration: the 500 images of fashion_calib.npz, 8-bit
weights and input, lambdas ``percentile`` 99.99) and evaluated as ``ecc-hw evaluate`` does
(``ecc_hw.graph.evaluate.evaluate_graph``) on the first ``--images`` of fashion_test.npz:

* ecc, wn2017 and rmp (alpha 0.8) at T = 32 and 64;
* ecc with bias calibration (``--bias-calibration T``, 200 images), one folder per T, each evaluated at its T,
  without and with channel-wise lambdas (``--channel-lambdas``, "cw");
* radix at T = 4 on resnet_qcfs16 (16-level QCFS), and the number of images where it equals the quantised ANN.

Prints Markdown tables: accuracy (%) and SynOps per image (millions) per method and T, and the SNN/CNN
energy ratio of ecc with bias calibration at T = 64.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ecc_hw.convert import ConvertOptions
from ecc_hw.graph.convert import convert_graph_model
from ecc_hw.graph.evaluate import evaluate_graph
from ecc_hw.graph.radix import quantised_graph_ann, run_radix_graph

FASHION = Path(__file__).resolve().parents[1] / "ecc_hw" / "data" / "fashion"
MODELS = ("vgg", "maxpool", "densenet", "resnet", "depthwise", "resnet_qcfs4")
STEPS = (32, 64)
BASE = dict(lambda_mode="percentile", percentile=99.99, weight_bits=8, input_bits=8)
ACCURACY_COLUMNS = ("ecc", "ecc+bc", "ecc+bc+cw", "wn2017", "rmp")
SYNOPS_COLUMNS = ("ecc", "ecc+bc", "ecc+bc+cw")
VARIANTS = (("ecc", dict(method="ecc", bias_calibration=0)), ("wn2017", dict(method="wn2017")),
            ("rmp", dict(method="rmp", alpha=0.8)))


def _data(images: int):
    calibration = np.load(FASHION / "fashion_calib.npz")["x"]
    test = np.load(FASHION / "fashion_test.npz")
    return calibration, test["x"][:images], test["y"][:images]


def measure_model(name: str, images: int) -> dict:
    """Accuracy and SynOps of every variant at every T for model ``name``."""
    calibration, x, y = _data(images)
    model = FASHION / f"{name}.onnx"
    rows: dict = {}
    for label, options in VARIANTS:
        params = convert_graph_model(model, calibration, ConvertOptions(**BASE, **options))
        report = evaluate_graph(params, x, y, list(STEPS))
        rows["cnn"] = report["cnn_accuracy"]
        rows[label] = {e["timesteps"]: (e["accuracy"], e["synops_per_image"]) for e in report["snn"]}
    rows["ecc+bc"] = {}
    for steps in STEPS:
        params = convert_graph_model(model, calibration, ConvertOptions(**BASE, timesteps=steps,
                                                                        bias_calibration=steps))
        entry = evaluate_graph(params, x, y, [steps])["snn"][0]
        rows["ecc+bc"][steps] = (entry["accuracy"], entry["synops_per_image"])
        rows["energy_ratio_bc64"] = entry["energy_cnn_uj"] / entry["energy_snn_uj"]
    rows["ecc+bc+cw"] = {}
    for steps in STEPS:
        params = convert_graph_model(model, calibration, ConvertOptions(**BASE, timesteps=steps, bias_calibration=steps,
                                                                        channel_lambdas=True))
        entry = evaluate_graph(params, x, y, [steps])["snn"][0]
        rows["ecc+bc+cw"][steps] = (entry["accuracy"], entry["synops_per_image"])
        rows["energy_ratio_cw64"] = entry["energy_cnn_uj"] / entry["energy_snn_uj"]
    return rows


def measure_radix(images: int) -> dict:
    """radix at T = 4 on resnet_qcfs16: accuracy, SynOps and agreement with the quantised ANN."""
    calibration, x, y = _data(images)
    params = convert_graph_model(FASHION / "resnet_qcfs16.onnx", calibration,
                                 ConvertOptions(**BASE, method="radix", timesteps=4))
    report = evaluate_graph(params, x, y, [4])
    x_q = params.graph.quantise_input(x.astype(np.float64))
    ann, _ = quantised_graph_ann(params.graph, x_q, 4)
    snn = run_radix_graph(params.graph, x_q, 4)
    return {"cnn": report["cnn_accuracy"], "radix": report["snn"][0]["accuracy"],
            "synops": report["snn"][0]["synops_per_image"],
            "equal_to_ann": int(np.sum(np.all(snn.output_membrane == ann, axis=1))), "images": len(x)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = {}
    header = ("| model | CNN | " + " | ".join(f"{label} T={t}" for label in ACCURACY_COLUMNS for t in STEPS)
              + " | E_cnn/E_snn ecc+bc T=64 | ecc+bc+cw T=64 |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    synops = ["| model | " + " | ".join(f"{label} T={t}" for label in SYNOPS_COLUMNS for t in STEPS) + " |",
              "|---|---|---|---|---|---|---|"]
    for name in args.models:
        start = time.time()
        rows = results[name] = measure_model(name, args.images)
        cells = [f"{100 * rows[label][t][0]:.1f}" for label in ACCURACY_COLUMNS for t in STEPS]
        lines.append(f"| {name} | {100 * rows['cnn']:.1f} | " + " | ".join(cells)
                     + f" | {rows['energy_ratio_bc64']:.2f} | {rows['energy_ratio_cw64']:.2f} |")
        synops.append(f"| {name} | " + " | ".join(f"{rows[label][t][1] / 1e6:.2f}" for label in SYNOPS_COLUMNS
                                                  for t in STEPS) + " |")
        print(lines[-1], f"({time.time() - start:.0f} s)", flush=True)
    radix = results["resnet_qcfs16 radix"] = measure_radix(args.images)
    print("\n".join(["", *lines, "", *synops, "",
                     f"resnet_qcfs16, radix T=4: CNN {100 * radix['cnn']:.1f}%, SNN {100 * radix['radix']:.1f}%, "
                     f"{radix['synops'] / 1e6:.2f} M SynOps, equal to the quantised ANN on {radix['equal_to_ann']} of "
                     f"{radix['images']} images"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
