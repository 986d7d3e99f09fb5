"""The parameter folder: round trip, determinism, variants, and refusal of damaged or future files."""
import json

import numpy as np
import pytest

from ecc_hw import params
from ecc_hw.params import ParamFileError
from ecc_hw.testing import random_network
from ecc_hw.variants import InputKind, Method, TreMode


def folder_bytes(path):
    return {file.name: file.read_bytes() for file in sorted(path.iterdir())}


def test_round_trip_is_identical(tmp_path):
    net = random_network(7)
    net.layers[0].float_weight = net.layers[0].weight / 3.0
    net.layers[0].float_bias = net.layers[0].bias / 3.0
    params.save(net, tmp_path / "net")
    loaded = params.load(tmp_path / "net")
    for ours, theirs in zip(net.layers, loaded.layers):
        assert np.array_equal(ours.weight, theirs.weight) and np.array_equal(ours.bias, theirs.bias)
        assert (ours.threshold, ours.tre_charge, ours.pool, ours.kernel, ours.padding) == \
               (theirs.threshold, theirs.tre_charge, theirs.pool, theirs.kernel, theirs.padding)
    np.testing.assert_array_equal(loaded.layers[0].float_weight, net.layers[0].float_weight)
    params.save(loaded, tmp_path / "again")
    assert folder_bytes(tmp_path / "net") == folder_bytes(tmp_path / "again")


def test_saving_twice_is_byte_identical(tmp_path):
    params.save(random_network(3), tmp_path / "a")
    params.save(random_network(3), tmp_path / "b")
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")


def test_damaged_array_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    weight = tmp_path / "net" / "layer1_weight.npy"
    data = bytearray(weight.read_bytes())
    data[-1] ^= 1
    weight.write_bytes(bytes(data))
    with pytest.raises(ParamFileError, match="layer1_weight.npy: missing or damaged"):
        params.load(tmp_path / "net")


def test_future_version_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    content["version"] = 99
    manifest.write_text(json.dumps(content))
    with pytest.raises(ParamFileError, match="format version 99 is not supported"):
        params.load(tmp_path / "net")


def test_damaged_manifest_is_refused(tmp_path):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ParamFileError, match="damaged manifest"):
        params.load(tmp_path / "net")
    (tmp_path / "net" / "manifest.json").unlink()
    with pytest.raises(ParamFileError, match="not an ecc-hw parameter folder"):
        params.load(tmp_path / "net")


def test_variants_load_as_members_and_save_as_their_strings(tmp_path):
    net = random_network(4, tre_mode="initial")
    net.method = "rmp"                      # a plain string writes as the member does
    params.save(net, tmp_path / "net")
    loaded = params.load(tmp_path / "net")
    assert (loaded.method, loaded.tre_mode, loaded.input_kind) == (Method.RMP, TreMode.INITIAL, InputKind.IMAGE)
    assert all(type(v) is not str for v in (loaded.method, loaded.tre_mode, loaded.input_kind))
    manifest = json.loads((tmp_path / "net" / "manifest.json").read_text())
    assert (manifest["method"], manifest["tre_mode"]) == ("rmp", "initial") and "kind" not in manifest["input"]
    params.save(loaded, tmp_path / "again")
    assert folder_bytes(tmp_path / "net") == folder_bytes(tmp_path / "again")


@pytest.mark.parametrize("key, value, message", [
    ("method", "ecc2", "method 'ecc2' is not one of ecc, wn2017, rmp, radix"),
    ("tre_mode", "late", "tre_mode 'late' is not one of spread, initial"),
])
def test_unknown_variant_in_manifest_is_refused(tmp_path, key, value, message):
    params.save(random_network(2), tmp_path / "net")
    manifest = tmp_path / "net" / "manifest.json"
    content = json.loads(manifest.read_text())
    content[key] = value
    manifest.write_text(json.dumps(content))
    with pytest.raises(ParamFileError, match=message):
        params.load(tmp_path / "net")


def test_failed_save_leaves_nothing(tmp_path):
    net = random_network(2)
    net.layers[0].weight = None  # cannot be written
    with pytest.raises(ValueError, match="layer 1: weight is missing"):
        params.save(net, tmp_path / "net")
    assert list(tmp_path.iterdir()) == []
