"""The evaluate report writers: whole files with the user's umask, nothing left behind."""
import json
import os
import stat

import pytest

from ecc_hw import evaluate

REPORT = {"images": 2, "cnn_accuracy": 1.0, "weight_bits": 8,
          "snn": [{"timesteps": 8, "accuracy": 0.5, "synops_per_image": 1e6},
                  {"timesteps": 16, "accuracy": 1.0, "synops_per_image": 2e6}]}


@pytest.fixture
def umask():
    previous = os.umask(0o027)
    yield 0o027
    os.umask(previous)


@pytest.mark.parametrize("writer, name", [(evaluate.write_json, "r.json"), (evaluate.write_plot, "r.png")])
def test_report_files_have_the_umask_mode_and_no_temporary_sibling(tmp_path, umask, writer, name):
    writer(REPORT, tmp_path / name)
    assert [path.name for path in tmp_path.iterdir()] == [name]
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_json_report_round_trips(tmp_path):
    evaluate.write_json(REPORT, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == REPORT
