"""ecc-hw compare: every figure's JSON and PNG on a few images (the full run is in docs/methods.md)."""
import json
import subprocess
import sys

import pytest

PNG = b"\x89PNG\r\n\x1a\n"


def compare(tmp_path, *args):
    result = subprocess.run([sys.executable, "-m", "ecc_hw.cli", "compare", *args, "-o", str(tmp_path),
                             "--limit", "30"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("figure, steps", [("3a", "4,8"), ("3d", "8"), ("5", "8"), ("6", "4")])
def test_rate_figures_write_json_and_png(tmp_path, figure, steps):
    compare(tmp_path, figure, "--timesteps", steps)
    report = json.loads((tmp_path / f"{figure}.json").read_text())
    assert (tmp_path / f"{figure}.png").read_bytes().startswith(PNG)
    assert report["images"] == 30 and report["timesteps"] == [int(t) for t in steps.split(",")]
    for run in report["methods"].values():
        assert 0 < run["cnn_accuracy"] <= 1
        for entry in run["series"]:
            assert 0 <= entry["accuracy"] <= 1 and entry["synops_per_image"] > 0
    if figure == "3a":
        assert set(report["methods"]) == {"wn2017", "rmp(0.8)", "rmp(0.9)", "ecc"}
        assert {"ecc_t_within_half_pp", "rmp08_more_synops_than_ecc_at_every_t"} <= set(report["claims"])
    if figure == "5":
        assert list(report["methods"]) == ["none", "CN", "CN+CMB", "CN+CMB+TRE"]
    if figure == "6":
        assert len(report["methods"]) == 8


def test_radix_and_l1_figures(tmp_path):
    compare(tmp_path, "radix", "l1", "--timesteps", "3,4")
    report = json.loads((tmp_path / "radix.json").read_text())
    assert [r["timesteps"] for r in report["runs"]] == [3, 4]
    for run in report["runs"]:
        assert run["output_equals_integer_ann"]
    assert report["runs"][1]["predictions_equal_quantised_ann"] == 30
    l1 = json.loads((tmp_path / "l1.json").read_text())
    assert l1["qcfs16_l1"]["radix_t4"]["synops_per_image"] < l1["qcfs16"]["radix_t4"]["synops_per_image"]
    assert (tmp_path / "l1.png").read_bytes().startswith(PNG)


def test_unknown_figure_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ecc_hw.cli", "compare", "7b", "-o", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "figure '7b'" in result.stderr and len(result.stderr.splitlines()) == 1


def test_method_figures_take_a_graph_model(tmp_path):
    """3a and 3d on a max-pool graph network: the graph converter and golden model serve the sweeps."""
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "graph" / "maxpool_legacy"
    for figure in ("3a", "3d"):
        compare(tmp_path, figure, "--timesteps", "8", "--model", f"{fixture}.onnx", "--calib", f"{fixture}.npz",
                "--data", f"{fixture}.npz")
        report = json.loads((tmp_path / f"{figure}.json").read_text())
        for run in report["methods"].values():
            assert run["cnn_accuracy"] > 0.5 and run["series"][0]["synops_per_image"] > 0
