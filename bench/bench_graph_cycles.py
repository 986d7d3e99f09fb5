"""Cycles per image of the graph accelerator against docs/arithmetic.md 4's ideal, on the bundled
Fashion-MNIST models (the table of docs/graph_hardware.md): the exact cycle model (``ecc_hw.graph.cycle_model``,
which the benches check against the simulated design) on the first N test images.

    .venv/bin/python bench/bench_graph_cycles.py [--images 20] [--timesteps 32] [--lanes 1,2,4,8]  (make bench)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ecc_hw.convert import ConvertOptions
from ecc_hw.graph.cycle_model import cycles_per_image, ideal_cycles
from ecc_hw.graph.golden import run_graph
from ecc_hw.networks import convert_model
from ecc_hw.rtl_gen.graph_plan import make_graph_plan

FASHION = Path(__file__).resolve().parents[1] / "ecc_hw" / "data" / "fashion"
MODELS = ("resnet", "densenet", "maxpool", "depthwise", "vgg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--timesteps", type=int, default=32)
    parser.add_argument("--lanes", default="1,2,4,8")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    calibration = np.load(FASHION / "fashion_calib.npz")["x"].astype(np.float64)
    test = np.load(FASHION / "fashion_test.npz")
    x, y = test["x"][:args.images].astype(np.float64), test["y"][:args.images]
    table = Table(title=f"Graph accelerator: cycles per image, {args.images} Fashion-MNIST images, "
                        f"T = {args.timesteps}, `ecc-hw convert` defaults")
    for column in ("model", "P", "cycles/image", "ideal", "cycles / ideal", "lowest lane use", "accuracy"):
        table.add_column(column, justify="right")
    for name in args.models.split(","):
        params = convert_model(FASHION / f"{name}.onnx", calibration, ConvertOptions(timesteps=args.timesteps),
                               "fashion_calib.npz")       # as `ecc-hw convert` with its defaults
        graph = params.graph
        rows = graph.quantise_input(x)
        ref = run_graph(graph, rows, args.timesteps, params.tre_mode, record_spikes=True)
        accuracy = f"{100 * np.mean(ref.predictions == y):.0f}%"
        for lanes in (int(v) for v in args.lanes.split(",")):
            start = time.perf_counter()
            cycles = cycles_per_image(graph, ref.spikes, rows, lanes, args.timesteps)
            ideal = ideal_cycles(graph, ref.synops, lanes, args.timesteps)
            use = make_graph_plan(params, lanes).lane_utilisation()
            table.add_row(name, str(lanes), f"{cycles.mean():,.0f}", f"{ideal.mean():,.0f}",
                          f"{(cycles / ideal).mean():.2f}", f"{min(use.values()):.2f}", accuracy)
            print(f"{name} P={lanes}: {time.perf_counter() - start:.1f} s", flush=True)
    Console().print(table)


if __name__ == "__main__":
    main()
