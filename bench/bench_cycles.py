"""Cycles per image of the generated accelerator against docs/arithmetic.md 4's ideal, for P = 1..16 (issue 3).

Run: python bench/bench_cycles.py [--images N] [--timesteps 32] [--json OUT]
The counts come from ecc_hw.cycle_model; with --simulate K (default 2) the first K images also run on
Verilator at every P and their simulated counts must equal the model's exactly (not noisy).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from rich.console import Console
from rich.table import Table

from ecc_hw import convert, cycle_model, data, golden


def main() -> None:
    """Print the table (and optionally write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--timesteps", type=int, default=32)
    parser.add_argument("--json")
    parser.add_argument("--simulate", type=int, default=2, metavar="K",
                        help="also run K images per P on Verilator and check the counts (0: model only)")
    args = parser.parse_args()
    calibration, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    x, _ = data.load_npz(data.BUNDLED_TEST)
    net = convert.convert(data.BUNDLED_MODEL, calibration, convert.ConvertOptions(timesteps=args.timesteps))
    x_q = golden.quantize_input(net, x[:args.images])
    result = golden.run(net, x_q, args.timesteps, record_spikes=True)
    rows = []
    for lanes in (1, 2, 4, 8, 16):
        cycles = cycle_model.cycles_per_image(net, result, lanes, args.timesteps, x_q=x_q)
        ideal = cycle_model.ideal_cycles(net, result, lanes, args.timesteps)
        row = {"lanes": lanes, "cycles_per_image": float(np.mean(cycles)),
               "ideal_cycles_per_image": float(np.mean(ideal)),
               "ratio_to_ideal": float(np.mean(cycles) / np.mean(ideal))}
        if args.simulate:
            from ecc_hw.sim.verify import verify
            report = verify(net, x_q[:args.simulate], "verilator", lanes, args.timesteps)
            assert report["ok"] and report["cycles_per_image"] == [int(c) for c in cycles[:args.simulate]], report
            row["simulated_cycles"] = report["cycles_per_image"]
        rows.append(row)
    for row in rows:
        row["speedup_over_p1"] = rows[0]["cycles_per_image"] / row["cycles_per_image"]
    table = Table(title=f"bundled MNIST net, T = {args.timesteps}, mean of {args.images} test images")
    for column in ("P", "cycles/image", "ideal", "ratio", "speed-up vs P=1", "Verilator = model"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["lanes"]), f"{row['cycles_per_image']:,.0f}", f"{row['ideal_cycles_per_image']:,.0f}",
                      f"{row['ratio_to_ideal']:.2f}", f"{row['speedup_over_p1']:.2f}",
                      f"yes, {len(row['simulated_cycles'])} images" if "simulated_cycles" in row else "not run")
    Console(width=100).print(table)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
