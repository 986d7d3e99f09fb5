"""Cycle-accurate verification of the generated accelerator on Icarus or Verilator (``ecc-hw verify``).

Flow: ``design.prepare_design`` generates the design with its trace stream (cached),
``network_bench.build`` compiles it with the wrapper ``tb_ecc_snn.v`` (cached by the hash of every
source), ``network_bench.Bench.run`` streams whole images through it (the wrapper inserts random input
idle gaps and output back-pressure, ``network_tb.Stimulus``, and records every trace and result word;
no Python runs per cycle), and ``check.check`` compares the record with the golden model (every spike
of every layer at every step, the final output membranes, the prediction) and the cycle model (exact
equality, see below).

Event input (an event parameter file): the spike counts (N, T, C, H, W) go in as event words, each
frame's nonzero pixels in channel-major order, then its end-of-frame marker (``rtl_gen.event_input``);
``ecc-hw verify --data`` takes event recordings as ``ecc-hw evaluate`` does, binned into T frames.

Cycle counts: the wrapper counts each image's cycles as ``ecc_hw.cycle_model`` defines them and
counts stall cycles (input ready but not valid; result valid but not ready). Each stall delays the
schedule by exactly one cycle, so the measured count minus the stalls is compared with the model,
exactly (idle gaps only where they delay the schedule: ``network_bench``).

On a mismatch the first one (image, layer, timestep, neuron, expected, got) is reported and the
failing image is simulated again alone with waveforms on: the FST (Icarus) or VCD (Verilator) is left
in the design's build folder.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ecc_hw.variants import Memory

from .check import VerificationFailed, check, expected_for
from .design import prepare_design
from .network_bench import Bench, build
from .network_tb import DEFAULT_STIMULUS, Stimulus


def waveform_of_image(bench: Bench, image: np.ndarray, walk_lengths, number: int, stimulus: Stimulus,
                      build_root: Path | None = None) -> Path:
    """Simulate one image alone (same gaps: seeds are per image) with waveforms; return the file."""
    b = bench.build
    if b.simulator == "verilator" and not b.waves:
        bench = Bench(build(b.design, "verilator", build_root, waves=True))
    run_dir = bench.build.build_dir / f"mismatch-image{number}"
    shutil.rmtree(run_dir, ignore_errors=True)
    bench.run(image[None], walk_lengths, stimulus, first=number, waves=True, run_dir=run_dir)
    found = [run_dir / name for name in ("waves.fst", "dump.vcd") if (run_dir / name).exists()]
    if not found:
        raise RuntimeError(f"no waveform was written in {run_dir}")
    suffix = found[0].suffix
    target = b.build_dir / f"mismatch-image{number}{suffix}"
    os.replace(found[0], target)
    return target


def input_walks(params, lanes: int) -> np.ndarray:
    """Walk cycles of each input pixel (where idle gaps may come: ``network_bench.input_words``)."""
    from ecc_hw.graph.store import GraphParams

    if isinstance(params, GraphParams):
        from ecc_hw.graph.cycle_model import input_walk_cycles

        return input_walk_cycles(params.graph, lanes)
    from ecc_hw.cycle_model import walk_cycles
    return walk_cycles(params.layers[0], lanes)


def verify(params, x_q: np.ndarray, simulator: str, lanes: int, timesteps: int | None = None,
           stimulus: Stimulus = DEFAULT_STIMULUS, build_root: Path | None = None, waves_on_mismatch: bool = True,
           mutate=None, bench: Bench | None = None, log=None, memory: Memory = Memory.BRAM) -> dict:
    """Run the network bench; return the JSON report, raise ``VerificationFailed`` on any mismatch.

    ``memory``: the banks' memory (``"bram"``, or ``"spram"`` as on the iCEBreaker); ignored when
    ``bench`` is given (the bench's design decides).

    ``mutate(expected)``, if given, alters the expectations before the check (mutation tests).
    ``bench`` reuses a prepared build (tests share one per design and session).
    """
    timesteps = int(params.timesteps if timesteps is None else timesteps)
    build_seconds = 0.0
    if bench is None:
        design = prepare_design(params, lanes, timesteps, build_root, memory)
        built = build(design, simulator, build_root, log=log)
        build_seconds = built.build_seconds
        bench = Bench(built)
    x_q = np.asarray(x_q, dtype=np.int64)
    memory = bench.build.design.memory
    expected = expected_for(params, x_q, lanes, timesteps, memory)
    if mutate is not None:
        mutate(expected)
    walks = input_walks(params, lanes)
    record = bench.run(x_q, walks, stimulus)
    result = check(record, expected)
    simulated = int(record.cycles.sum())
    report = {
        "images": int(len(x_q)), "simulator": simulator, "lanes": int(lanes), "timesteps": timesteps,
        "memory": memory, "spike_mismatches": result.spike_mismatches,
        "membrane_mismatches": result.membrane_mismatches,
        "prediction_mismatches": result.prediction_mismatches, "cycle_mismatches": result.cycle_mismatches,
        "protocol_errors": result.protocol_errors,
        "cycles_per_image": record.gap_free_cycles.tolist(),
        "predicted_cycles_per_image": expected.cycles.tolist(),
        "raw_cycles_per_image": record.cycles.tolist(),
        "input_stall_cycles": record.input_stalls.tolist(), "output_stall_cycles": record.output_stalls.tolist(),
        "predictions": record.predictions.tolist(),
        "stimulus": {"seed": stimulus.seed, "idle_per_256": stimulus.idle, "stall_per_256": stimulus.stall},
        "sim_seconds": round(record.sim_seconds, 3), "build_seconds": round(build_seconds, 3),
        "simulated_cycles": simulated,
        "cycles_per_second": round(simulated / record.sim_seconds) if record.sim_seconds else None,
        "build_dir": str(bench.build.build_dir), "first_mismatch": None, "waveform": None, "ok": result.ok,
    }
    if not result.ok:
        report["first_mismatch"] = result.first.as_dict()
        message = f"{simulator}: first mismatch: {result.first}"
        if waves_on_mismatch:
            k = result.first.image
            try:
                report["waveform"] = str(waveform_of_image(bench, x_q[k], walks, k, stimulus, build_root))
                message += f"; waveform {report['waveform']}"
            except Exception as error:   # the mismatch stays the verdict
                message += f"; no waveform ({error})"
        raise VerificationFailed(message, report)
    return report
