"""A non-editable install works away from the source tree: package data and the CLI are complete."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder with the project's wheel installed into it (``pip install --target``), built once."""
    tmp_path = tmp_path_factory.mktemp("packaging")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("ecc_hw-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    return tmp_path / "site"


def _run_installed(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def test_wheel_install_runs_convert_outside_the_source_tree(site, tmp_path):
    script = ("import ecc_hw, sys; from ecc_hw import data, cli; "
              "assert ecc_hw.__file__.startswith(sys.argv[1]), ecc_hw.__file__; "
              "sys.exit(cli.main(['convert', str(data.BUNDLED_MODEL), '--calib', str(data.BUNDLED_CALIB), "
              "'-o', 'net']))")
    result = _run_installed(site, [sys.executable, "-c", script, str(site)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "net" / "manifest.json").is_file()
    assert (site / "bin" / "ecc-hw").is_file()


def test_wheel_installs_one_top_level_package(site):
    names = {path.name for path in site.iterdir() if not path.name.endswith(".dist-info")}
    assert names == {"ecc_hw", "bin"}, sorted(names)
    for sub in ("rtl_gen", "sim", "boards", "events"):
        assert (site / "ecc_hw" / sub / "__init__.py").is_file(), sub


def test_wheel_holds_the_package_data(site):
    sources = [(ROOT / "sim", "sim", path) for path in sorted(ROOT.glob("sim/*.v")) + sorted(ROOT.glob("sim/*.vlt"))]
    sources += [(ROOT / "ecc_hw" / "data", "data", path) for path in sorted((ROOT / "ecc_hw" / "data").rglob("*"))
                if path.is_file()]
    assert len(sources) > 10
    for base, folder, path in sources:
        installed = site / "ecc_hw" / folder / path.relative_to(base)
        assert installed.is_file(), f"{path.relative_to(ROOT)} is not in the wheel"
        assert installed.read_bytes() == path.read_bytes(), installed


def test_wheel_install_runs_train_help_and_imports_the_architectures(site, tmp_path):
    result = _run_installed(site, [str(site / "bin" / "ecc-hw"), "train", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--act" in result.stdout
    script = ("import sys; from ecc_hw import architectures, train; "
              "assert architectures.__file__.startswith(sys.argv[1]), architectures.__file__; "
              "assert train.build_model is architectures.build_model; "
              "assert 'torch' not in sys.modules, 'importing the architectures must not import torch'; "
              "print(architectures.SPLIT_SEED)")
    result = _run_installed(site, [sys.executable, "-c", script, str(site)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "20151"
