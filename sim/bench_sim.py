"""Simulated cycles per second, Icarus against Verilator, on the same design (``make bench``).

The bundled MNIST model (T = 16) at P = 8 with the trace stream, streamed through the bench wrapper
without idle gaps or back-pressure; the time is the simulator run's wall time (start-up included),
builds excluded. Writes build/sim/bench_sim.json and prints a table line per simulator.
"""
from __future__ import annotations

import json
import sys
import time

from ecc_hw import data, golden
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.sim.design import prepare_design
from ecc_hw.sim.network_bench import Bench, build
from ecc_hw.sim.network_tb import Stimulus
from ecc_hw.sim.runner import default_build_root
from ecc_hw.sim.simulators import check_simulator
from ecc_hw.sim.verify import verify


def main(lanes: int = 8, timesteps: int = 16, images=(("icarus", 2), ("verilator", 10))) -> dict:
    """Time ``images`` (simulator, count) on one design; write and return the table."""
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    net = convert(data.BUNDLED_MODEL, x, ConvertOptions(timesteps=timesteps), calibration_source="mnist_calib.npz")
    test, _ = data.load_npz(data.BUNDLED_TEST, input_shape=net.input_shape)
    design = prepare_design(net, lanes, timesteps)
    rows = {}
    for simulator, count in images:
        check_simulator(simulator)
        started = time.perf_counter()
        bench = Bench(build(design, simulator))
        build_seconds = time.perf_counter() - started
        x_q = golden.quantize_input(net, test[:count])
        report = verify(net, x_q, simulator, lanes, timesteps, Stimulus(1, 0, 0), bench=bench)
        rows[simulator] = {"images": count, "simulated_cycles": report["simulated_cycles"],
                           "sim_seconds": report["sim_seconds"], "cycles_per_second": report["cycles_per_second"],
                           "build_seconds": round(build_seconds, 1)}
        print(f"{simulator:10s} {count:3d} images {report['simulated_cycles']:>10,} cycles "
              f"{report['sim_seconds']:7.1f} s  {report['cycles_per_second']:>9,} cycles/s  "
              f"(build {build_seconds:.1f} s, cached if ~0)", flush=True)
    result = {"design": {"model": "bundled MNIST CNN", "lanes": lanes, "timesteps": timesteps, "trace": True},
              "simulators": rows,
              "speedup": round(rows["verilator"]["cycles_per_second"] / rows["icarus"]["cycles_per_second"], 1)}
    print(f"Verilator / Icarus: {result['speedup']}x")
    out = default_build_root() / "bench_sim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
