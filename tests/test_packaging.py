"""A non-editable install works away from the source tree: package data and the CLI are complete."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_install_runs_convert_outside_the_source_tree(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("ecc_hw-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    script = ("import ecc_hw, sys; from ecc_hw import data, cli; "
              "assert ecc_hw.__file__.startswith(sys.argv[1]), ecc_hw.__file__; "
              "sys.exit(cli.main(['convert', str(data.BUNDLED_MODEL), '--calib', str(data.BUNDLED_CALIB), "
              "'-o', 'net']))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "site")], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "net" / "manifest.json").is_file()
    assert (tmp_path / "site" / "bin" / "ecc-hw").is_file()
