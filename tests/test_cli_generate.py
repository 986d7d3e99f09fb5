"""`ecc-hw generate`: Verilog and manifest from a parameter folder; refusals exit 2 writing nothing."""
import json
import subprocess
import sys

from ecc_hw import params
from ecc_hw.testing import random_network


def ecc_hw(*args):
    return subprocess.run([sys.executable, "-m", "ecc_hw.cli", *map(str, args)], capture_output=True, text=True)


def test_generate_writes_verilog_and_manifest(tmp_path):
    params.save(random_network(4, timesteps=4), tmp_path / "net")
    result = ecc_hw("generate", tmp_path / "net", "-o", tmp_path / "rtl", "--lanes", "2")
    assert result.returncode == 0, result.stderr
    assert "module ecc_snn" in (tmp_path / "rtl" / "ecc_snn.v").read_text()
    assert json.loads((tmp_path / "rtl" / "manifest.json").read_text())["lanes"] == 2


def test_generate_with_spram_banks(tmp_path):
    params.save(random_network(4, timesteps=4), tmp_path / "net")
    result = ecc_hw("generate", tmp_path / "net", "-o", tmp_path / "rtl", "--lanes", "1", "--memory", "spram")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert manifest["memory"] == "spram" and manifest["cycle_model"]["issue_interval"] == 2
    text = (tmp_path / "rtl" / "ecc_snn.v").read_text()
    assert text.count("SB_SPRAM256KA") == manifest["spram_blocks"] > 0


def test_lanes_not_a_power_of_two_exit_2_nothing_written(tmp_path):
    params.save(random_network(4, timesteps=4), tmp_path / "net")
    result = ecc_hw("generate", tmp_path / "net", "-o", tmp_path / "rtl", "--lanes", "3")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "3" in result.stderr
    assert not (tmp_path / "rtl").exists() or not any((tmp_path / "rtl").iterdir())


def test_pool_layers_are_generated(tmp_path):
    """--pool layer parameter files: the average pools are layers of kind pool in the manifest."""
    from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL
    net = tmp_path / "net"
    assert ecc_hw("convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", net, "--pool", "layer").returncode == 0
    result = ecc_hw("generate", net, "-o", tmp_path / "rtl", "--lanes", "2")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert [layer["kind"] for layer in manifest["layers"]] == ["conv", "pool", "conv", "pool", "dense"]
