"""The ecc-hw command: the main path, and every bad input ending in one line and exit status 2."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import cli
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, BUNDLED_TEST
from ecc_hw.errors import UserError
from ecc_hw.manifest import DIGEST_KEY, manifest_digest

FIXTURES = Path(__file__).parent / "fixtures"


def ecc_hw(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ecc_hw.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "net"
    result = ecc_hw("convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_evaluate_writes_table_json_and_plot(net, tmp_path):
    small = tmp_path / "small.npz"
    archive = np.load(BUNDLED_TEST)
    np.savez(small, x=archive["x"][:40], y=archive["y"][:40])
    result = ecc_hw("evaluate", net, "--data", small, "--timesteps", "8,16", "--json", tmp_path / "r.json",
                    "--plot", tmp_path / "r.png")
    assert result.returncode == 0, result.stderr
    assert "SynOps/image" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0.5 < report["cnn_accuracy"] <= 1
    assert [entry["timesteps"] for entry in report["snn"]] == [8, 16]
    for entry in report["snn"]:
        assert {"accuracy", "synops_per_image", "macs_per_image"} <= set(entry)
        assert entry["synops_per_image"] > 0 and entry["macs_per_image"] == report["macs_per_image"]
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def assert_refused(result, *fragments, output=None):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if output is not None:
        assert not Path(output).exists() and not list(Path(output).parent.glob(f".{Path(output).name}*"))


def test_file_that_is_not_onnx(tmp_path):
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", FIXTURES / "not_onnx.onnx", "--calib", BUNDLED_CALIB, "-o", out),
                   "not_onnx.onnx", "not a readable ONNX model", output=out)


def test_unsupported_op(tmp_path):
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", FIXTURES / "unsupported_op.onnx", "--calib", FIXTURES / "matmul_add.npz",
                          "-o", out), "Sigmoid", "supported:", output=out)


def test_input_shape_that_cannot_be_inferred(tmp_path):
    import onnx
    model = onnx.load(str(FIXTURES / "legacy_bn_folded.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "H"
    onnx.save(model, str(tmp_path / "m.onnx"))
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", tmp_path / "m.onnx", "--calib", FIXTURES / "legacy_bn_folded.npz", "-o", out),
                   "--input-shape", output=out)
    ok = ecc_hw("convert", tmp_path / "m.onnx", "--calib", FIXTURES / "legacy_bn_folded.npz", "-o", out,
                "--input-shape", "1,14,14")
    assert ok.returncode == 0, ok.stderr


def test_calibration_of_wrong_shape(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 1, 14, 14)))
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", BUNDLED_MODEL, "--calib", tmp_path / "c.npz", "-o", out),
                   "c.npz", "(4, 1, 14, 14)", output=out)


def test_calibration_with_nan(tmp_path):
    x = np.ones((4, 1, 28, 28))
    x[1, 0, 3, 3] = np.nan
    np.savez(tmp_path / "c.npz", x=x)
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", BUNDLED_MODEL, "--calib", tmp_path / "c.npz", "-o", out), "NaN", output=out)


@pytest.mark.parametrize("options, fragment", [
    (["--weight-bits", "1"], "error: --weight-bits: 1 is outside 2..16"),
    (["--weight-bits", "17"], "error: --weight-bits: 17 is outside 2..16"),
    (["--input-bits", "17"], "error: --input-bits: 17 is outside"),
    (["--timesteps", "0"], "error: --timesteps: 0 must be >= 1"),
    (["--kappa", "0"], "error: --kappa: 0.0 must be > 0"),
    (["--method", "rmp", "--alpha", "1.5"], "error: --alpha: 1.5 is outside (0, 1]"),
    (["--method", "radix", "--timesteps", "17"], "error: --timesteps: radix needs 1..16 bits"),
    (["--method", "radix", "--pool", "layer", "--timesteps", "4"], "error: --pool: layer 2 ("),
])
def test_options_out_of_range(tmp_path, options, fragment):
    """The library names option fields (weight_bits, pool_mode); the CLI writes their flags."""
    out = tmp_path / "net"
    assert_refused(ecc_hw("convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", out, *options),
                   fragment, output=out)


def test_fields_map_to_the_commands_own_flags():
    parser = cli.build_parser()
    convert = parser.parse_args(["convert", "m.onnx", "--calib", "c.npz", "-o", "net"])
    assert [convert.flag(field) for field in ("weight_bits", "lambda_mode", "pool_mode", "tre_mode", "input_kind",
                                              "window_us", "output")] == \
           ["--weight-bits", "--lambda", "--pool", "--tre", "--input", "--window", "--output"]
    assert convert.flag("lanes") == "lanes"   # no such option of convert: the field as it is
    generate = parser.parse_args(["generate", "net", "-o", "rtl"])
    assert (generate.flag("lanes"), generate.flag("memory"), generate.flag("weight_bits")) == \
           ("--lanes", "--memory", "weight_bits")
    evaluate = parser.parse_args(["evaluate", "net", "--data", "d.npz"])
    assert evaluate.flag("with_float_snn") == "--float-snn"


def test_a_field_error_is_one_line_with_the_flag(monkeypatch, capsys):
    def refuse(args):
        raise UserError(f"{args.lanes} is not a power of two", field="lanes")

    monkeypatch.setattr(cli, "_generate", refuse)
    assert cli.main(["generate", "net", "-o", "rtl", "--lanes", "3"]) == 2
    assert capsys.readouterr().err == "ecc-hw generate: error: --lanes: 3 is not a power of two\n"


def test_choices_come_from_the_variants():
    help_text = ecc_hw("convert", "--help").stdout
    for choices in ("{max,percentile}", "{compose,layer}", "{spread,initial}", "{ecc,wn2017,rmp,radix}",
                    "{image,events}"):
        assert choices in help_text
    assert "{bram,spram}" in ecc_hw("generate", "--help").stdout
    assert_refused(ecc_hw("generate", "net", "-o", "rtl", "--memory", "dram"), "invalid choice: 'dram'")


def test_evaluate_timesteps_below_one(net):
    assert_refused(ecc_hw("evaluate", net, "--data", BUNDLED_TEST, "--timesteps", "0,16"), "every T must be >= 1")


def test_damaged_parameter_file(net, tmp_path):
    import shutil
    copy = tmp_path / "net"
    shutil.copytree(net, copy)
    (copy / "layer2_weight.npy").write_bytes(b"garbage")
    assert_refused(ecc_hw("evaluate", copy, "--data", BUNDLED_TEST, "--json", tmp_path / "r.json"),
                   "layer2_weight.npy", "damaged", output=tmp_path / "r.json")


def test_future_parameter_file(net, tmp_path):
    import shutil
    copy = tmp_path / "net"
    shutil.copytree(net, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert_refused(ecc_hw("evaluate", copy, "--data", BUNDLED_TEST), "version 99 is not supported")


def test_convert_output_is_deterministic(net, tmp_path):
    again = tmp_path / "net"
    assert ecc_hw("convert", BUNDLED_MODEL, "--calib", BUNDLED_CALIB, "-o", again).returncode == 0
    for file in sorted(net.iterdir()):
        assert file.read_bytes() == (again / file.name).read_bytes(), file.name


def reseal(folder):
    """Hash the arrays of ``folder`` into its manifest again, then the manifest, as a writer with a bug would."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["sha256"]:
        manifest["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_weight_of_the_wrong_shape(net, tmp_path):
    import shutil
    copy = tmp_path / "net"
    shutil.copytree(net, copy)
    np.save(copy / "layer2_weight.npy", np.zeros((16, 8, 3), dtype=np.int64))
    reseal(copy)
    for command in (("evaluate", copy, "--data", BUNDLED_TEST, "--json", tmp_path / "r.json"),
                    ("generate", copy, "-o", tmp_path / "rtl")):
        assert_refused(ecc_hw(*command), "layer2_weight.npy: found int64 (16, 8, 3), expected int64 (16, 8, 3, 3)",
                       output=tmp_path / "r.json")
    assert not (tmp_path / "rtl").exists()


def test_hand_edited_threshold(net, tmp_path):
    import shutil
    copy = tmp_path / "net"
    shutil.copytree(net, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["layers"][0]["threshold"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for command in (("evaluate", copy, "--data", BUNDLED_TEST, "--json", tmp_path / "r.json"),
                    ("generate", copy, "-o", tmp_path / "rtl")):
        assert_refused(ecc_hw(*command), "manifest.json: its values do not match its manifest_sha256",
                       "convert the model again", output=tmp_path / "r.json")
    assert not (tmp_path / "rtl").exists()


def test_version_1_parameter_file(net, tmp_path):
    import shutil
    copy = tmp_path / "net"
    shutil.copytree(net, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["version"] = 1
    del manifest["manifest_sha256"]
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert_refused(ecc_hw("evaluate", copy, "--data", BUNDLED_TEST), "format version 1 is not supported",
                   "convert the model again")


def test_signed_int8_calibration_warns_and_data_in_another_unit_is_refused(tmp_path):
    """The measured case: int8 calibration for a model trained on 0..1, then 0..1 test data (SNN near chance)."""
    archive = np.load(FIXTURES / "legacy_bn_folded.npz")
    np.savez(tmp_path / "calib.npz", x=(archive["x"] * 255).astype(np.uint8).astype(np.int8))
    converted = ecc_hw("convert", FIXTURES / "legacy_bn_folded.onnx", "--calib", tmp_path / "calib.npz",
                       "-o", tmp_path / "net")
    assert converted.returncode == 0, converted.stderr
    warnings = [line for line in converted.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("ecc-hw convert: warning: ")
    assert "calib.npz: x is int8 with negative values" in warnings[0]
    assert_refused(ecc_hw("evaluate", tmp_path / "net", "--data", FIXTURES / "legacy_bn_folded.npz",
                          "--json", tmp_path / "r.json"),
                   "legacy_bn_folded.npz: x spans 0..1", "calibrated for -128..128 (signed input)",
                   output=tmp_path / "r.json")


def test_data_on_a_smaller_scale_warns_and_runs(net, tmp_path):
    archive = np.load(BUNDLED_TEST)
    np.savez(tmp_path / "dim.npz", x=archive["x"][:20] // 8, y=archive["y"][:20])
    result = ecc_hw("evaluate", net, "--data", tmp_path / "dim.npz", "--timesteps", "8")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith("ecc-hw evaluate: warning: ")
    assert "x spans 0..31, the parameters were calibrated for 0..255 (unsigned input)" in result.stderr
