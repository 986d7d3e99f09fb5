"""Cycles per sample of the accelerator with event input against the image path on the same digits
(issue 8), and the event network bench on Verilator and Icarus.

Run: python bench/bench_events_hw.py [--samples N] [--lanes P] [--verilator K] [--icarus K] [--json OUT]
The event digits and the converted event CNN are made as docs/events.md does (synthetic saccades of the
bundled test digits, seed 2; calibration on the first 200 bundled calibration digits, seed 3; T = 48,
C = 16). The image path is the bundled CNN on the same digits at T = 32 and T = 48. Counts come from
ecc_hw.cycle_model; the first K event samples also run on each simulator, whose counts must equal the
model's exactly with zero mismatches.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ecc_hw import convert, cycle_model, data, golden, params as params_io
from ecc_hw.cli import main as cli_main
from ecc_hw.events import preprocess, synthetic

EVENT_CNN = data.PACKAGE_DATA / "events" / "events_cnn.onnx"


def _event_net(folder: Path):
    calib = np.load(data.BUNDLED_CALIB)
    events = synthetic.saccade_events(calib["x"], seed=3)[:200]
    preprocess.save_npz(folder / "calib.npz", events, calib["y"][:200], (34, 34))
    cli_main(["convert", str(EVENT_CNN), "--input", "events", "--calib", str(folder / "calib.npz"),
              "--sensor", "34,34", "--window", "0.3", "--count-scale", "16", "--timesteps", "48",
              "-o", str(folder / "net")])
    return params_io.load(folder / "net")


def _row(name, net, x_q, lanes, timesteps):
    result = golden.run(net, x_q, timesteps, record_spikes=True)
    cycles = cycle_model.cycles_per_image(net, result, lanes, timesteps, x_q=x_q)
    ideal = cycle_model.ideal_cycles(net, result, lanes, timesteps)
    return {"path": name, "timesteps": timesteps, "cycles_per_sample": float(np.mean(cycles)),
            "ideal_cycles_per_sample": float(np.mean(ideal)), "synops_per_sample": float(np.mean(result.synops)),
            "cycles": cycles}


def main() -> None:
    """Print the table (and optionally write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--verilator", type=int, default=10, metavar="K")
    parser.add_argument("--icarus", type=int, default=1, metavar="K")
    parser.add_argument("--json")
    args = parser.parse_args()
    test = np.load(data.BUNDLED_TEST)
    digits = synthetic.saccade_events(test["x"], seed=2)[:args.samples]
    with tempfile.TemporaryDirectory() as tmp:
        event_net = _event_net(Path(tmp))
    frames = preprocess.EventSet(digits, None, (34, 34), [f"digit {i}" for i in range(len(digits))]).spike_frames(
        preprocess.EventConfig.from_json(event_net.events), 48).astype(np.int64)
    rows = [_row("events (34x34x2)", event_net, frames, args.lanes, 48)]
    calibration, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    for timesteps in (32, 48):
        image_net = convert.convert(data.BUNDLED_MODEL, calibration, convert.ConvertOptions(timesteps=timesteps))
        x_q = golden.quantize_input(image_net, test["x"][:args.samples])
        rows.append(_row("image (28x28)", image_net, x_q, args.lanes, timesteps))
    from ecc_hw.sim.verify import verify
    for simulator, count in (("verilator", args.verilator), ("icarus", args.icarus)):
        if count:
            report = verify(event_net, frames[:count], simulator, args.lanes, 48)
            assert report["ok"] and report["cycles_per_image"] == rows[0]["cycles"][:count].tolist(), report
            rows[0][simulator] = {"samples": count, "mismatches": 0, "sim_seconds": report["sim_seconds"],
                                  "cycles": report["cycles_per_image"]}
    table = Table(title=f"P = {args.lanes}, mean of {args.samples} synthetic event digits / the same test digits")
    for column in ("path", "T", "cycles/sample", "ideal", "SynOps/sample", "simulated (0 mismatches)"):
        table.add_column(column, justify="right")
    for row in rows:
        simulated = ", ".join(f"{s}: {row[s]['samples']}" for s in ("verilator", "icarus") if s in row)
        table.add_row(row["path"], str(row["timesteps"]), f"{row['cycles_per_sample']:,.0f}",
                      f"{row['ideal_cycles_per_sample']:,.0f}", f"{row['synops_per_sample'] / 1e6:.2f} M",
                      simulated or "-")
    Console(width=110).print(table)
    if args.json:
        for row in rows:
            row["cycles"] = row["cycles"].tolist()
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
