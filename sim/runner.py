"""Build-then-run through ``cocotb_tools.runner``: the one place where the benches call a simulator.

``build_hdl`` compiles Verilog once per build folder (callers name the folder by the ``digest`` of
everything that goes into the build; ``built.json`` in it marks a finished build), ``run_cocotb`` runs
a cocotb test module on a build and reads its results. Both run inside
``simulators.tool_environment``. The network bench (``network_bench``), the lane bench
(``lane_bench``) and the board's UART test use them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .simulators import check_simulator, tool_environment

STAMP = "built.json"
TIMESCALE = ("1ns", "1ps")


def default_build_root() -> Path:
    """The build cache: ``$ECC_HW_SIM_BUILD``, else ``build/sim`` below the working directory."""
    return Path(os.environ.get("ECC_HW_SIM_BUILD", "build/sim")).resolve()


def digest(*parts: bytes) -> str:
    """SHA-256 (hex) of ``parts``, each prefixed with its length (no two part lists collide)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.hexdigest()


def build_hdl(simulator: str, build_dir: Path, toplevel: str, verilog: Sequence[Path], *,
              control_files: Sequence[Path] = (), build_args: Sequence[str] = (),
              parameters: Mapping[str, object] | None = None, defines: Mapping[str, object] | None = None,
              waves: bool = False, stamp_info: Mapping[str, object] | None = None, log=None,
              name: str | None = None) -> float:
    """Compile ``verilog`` (top module ``toplevel``) into ``build_dir`` unless a build is there already.

    ``control_files`` are Verilator control files (ignored by Icarus), given before the sources;
    ``stamp_info`` is written to ``built.json`` beside the build's seconds; ``log(line)`` hears of a
    build that starts (of ``name``, default ``toplevel``). Returns the seconds this call took (close
    to 0 for a cached build). A failed build raises ``RuntimeError`` naming its ``build.log``.
    """
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    check_simulator(simulator)
    started = time.perf_counter()
    stamp = Path(build_dir) / STAMP
    if not stamp.is_file():
        sources = list(verilog)
        if simulator == "verilator":
            sources = [*(VerilatorControlFile(path) for path in control_files), *sources]
        if log:
            log(f"building {name or toplevel} on {simulator} in {build_dir}")
        try:
            with tool_environment(simulator, building=True):
                get_runner(simulator).build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                                            always=True, timescale=TIMESCALE, waves=waves,
                                            parameters=dict(parameters or {}), defines=dict(defines or {}),
                                            build_args=list(build_args), log_file=Path(build_dir) / "build.log")
        except RuntimeError as error:
            raise RuntimeError(f"{simulator} build failed ({error}); see {Path(build_dir) / 'build.log'}") from None
        seconds = time.perf_counter() - started
        stamp.write_text(json.dumps({"seconds": seconds, **(stamp_info or {})}) + "\n")
    return time.perf_counter() - started


@dataclass
class CocotbRun:
    """The outcome of one cocotb run: the runner's exit status and the results file's counts."""

    run_dir: Path
    exit_code: int           # the status the runner exited with (it exits on a failing simulator), else 0
    tests: int               # from results.xml; 0 tests and 1 failure when there is no results file
    failed: int
    seconds: float           # wall time of the run, simulator start-up included

    @property
    def log(self) -> Path:
        """The simulator's output."""
        return self.run_dir / "sim.log"

    @property
    def passed(self) -> bool:
        """The runner returned normally and every test in the results passed."""
        return self.exit_code == 0 and self.tests > 0 and not self.failed

    def log_lines(self, *words: str, limit: int = 3) -> list[str]:
        """The first ``limit`` lines of the log that contain any of ``words``."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line.strip() for line in text.splitlines() if any(word in line for word in words)][:limit]


def run_cocotb(simulator: str, build_dir: Path, toplevel: str, test_module: str, run_dir: Path,
               plusargs: Sequence[str] = (), *, waves: bool = False,
               extra_env: Mapping[str, str] | None = None) -> CocotbRun:
    """Run the cocotb ``test_module`` on the build in ``build_dir``, in ``run_dir`` (created).

    Never raises for a failing test or simulator: the caller reads ``CocotbRun`` (under pytest the
    runner itself exits on a failed test; that exit is caught and returned as ``exit_code``).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / "results.xml"
    exit_code = 0
    started = time.perf_counter()
    try:
        with tool_environment(simulator):
            get_runner(simulator).test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                                       build_dir=build_dir, test_dir=run_dir, plusargs=list(plusargs), waves=waves,
                                       results_xml=str(results), log_file=run_dir / "sim.log",
                                       extra_env=dict(extra_env or {}))
    except SystemExit as error:
        exit_code = 0 if error.code is None else error.code if isinstance(error.code, int) else 1
    seconds = time.perf_counter() - started
    tests, failed = get_results(results) if results.is_file() else (0, 1)
    return CocotbRun(run_dir, exit_code, tests, failed, seconds)
