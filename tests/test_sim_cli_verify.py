"""``ecc-hw verify``'s input checks (ecc_hw.sim.cli_verify): one line, exit status 2, before any build."""
import subprocess
import sys

import numpy as np
import pytest

from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, BUNDLED_TEST


def ecc_hw(*args):
    return subprocess.run([sys.executable, "-m", "ecc_hw.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify_cli") / "net"
    result = ecc_hw("convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("options, message", [
    (["-n", "0"], "-n: must be >= 1, got 0"),
    (["--idle", "300"], "--idle: must be in 0..256"),
    (["--stall", "-1"], "--stall: must be in 0..256"),
])
def test_bad_options_are_one_line_naming_the_flag(net, tmp_path, options, message):
    result = ecc_hw("verify", net, "--data", BUNDLED_TEST, "--sim", "icarus", "--build-dir", tmp_path / "b",
                    "--json", tmp_path / "r.json", *options)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "b").exists()


def test_data_in_another_unit_is_refused(net, tmp_path):
    test = np.load(BUNDLED_TEST)
    np.savez(tmp_path / "unit.npz", x=test["x"][:4] / 255.0, y=test["y"][:4])
    result = ecc_hw("verify", net, "--data", tmp_path / "unit.npz", "--sim", "icarus", "--build-dir", tmp_path / "b")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "unit.npz: x spans 0..1, the parameters were calibrated for 0..255" in result.stderr
    assert not (tmp_path / "b").exists()
