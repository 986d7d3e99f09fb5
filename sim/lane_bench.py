"""The lane bench on the host: ``lane_harness.LaneHarness`` compiled and ``lane_tb`` run on it.

The harness's Verilog is generated for one ``LaneConfig`` and compiled once per Verilog hash (in
``<build root>/lane-<simulator>-<hash>``); the configuration goes to the cocotb test as
``+config=lane_config.json``, with ``+extremes`` for the bounds scenario and
``+model_threshold_offset`` for the mutation test (the bench's model gets a wrong threshold).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import hdl
from .check import VerificationFailed
from .runner import build_hdl, default_build_root, digest, run_cocotb
from .simulators import check_simulator

TOPLEVEL = "lane_harness"


def _harness_verilog(cfg) -> str:
    """The harness's Verilog text for ``cfg``."""
    from .lane_harness import write_verilog

    tmp = Path(tempfile.mkdtemp(prefix=".lane-"))
    try:
        return Path(write_verilog(cfg, tmp)).read_text()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_folder(build_dir: Path, extremes: bool, model_threshold_offset: int) -> Path:
    """Where a scenario runs: ``run``, ``run-extremes``, or ``run-mutant`` with a wrong model."""
    if model_threshold_offset:
        return build_dir / "run-mutant"
    return build_dir / ("run-extremes" if extremes else "run")


def run_lane_bench(cfg, simulator: str, build_root: Path | None = None, extremes: bool = False,
                   model_threshold_offset: int = 0) -> Path:
    """Build ``sim.lane_harness.LaneHarness(cfg)`` and run ``sim.lane_tb`` on it (cached by the Verilog
    hash); raise ``VerificationFailed`` if the cocotb test fails. Returns the run folder.
    ``model_threshold_offset`` gives the bench's model a wrong threshold (mutation tests)."""
    check_simulator(simulator)
    root = Path(build_root or default_build_root())
    text = _harness_verilog(cfg)
    waiver = hdl.package_file(hdl.WAIVER_FILE).read_text()
    build_dir = root / f"lane-{simulator}-{digest(text.encode(), waiver.encode(), simulator.encode())[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    config = build_dir / "lane_config.json"
    config.write_text(cfg.to_json())
    control_files = []
    if simulator == "verilator":
        # the unit's Verilog triggers the same benign patterns as ecc_snn.v (see the waiver)
        control_files = [build_dir / "waiver.vlt"]
        control_files[0].write_text(waiver.replace("*ecc_snn.v", f"*{TOPLEVEL}.v"))
    build_hdl(simulator, build_dir, TOPLEVEL, [source], control_files=control_files,
              build_args=["-Wno-fatal"] if simulator == "verilator" else [], waves=simulator == "icarus")
    plusargs = [f"+config={config}"] + (["+extremes"] if extremes else [])
    if model_threshold_offset:
        plusargs.append(f"+model_threshold_offset={model_threshold_offset}")
    run = run_cocotb(simulator, build_dir, TOPLEVEL, hdl.cocotb_module(hdl.LANE_TB),
                     _run_folder(build_dir, extremes, model_threshold_offset), plusargs)
    if not run.tests or run.failed:
        raise VerificationFailed(f"lane bench failed on {simulator}: {run.log_lines('AssertionError', 'assert')}; "
                                 f"see {run.log}", {"log": str(run.log)})
    return run.run_dir
