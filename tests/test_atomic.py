"""Atomic writes: whole files or nothing, created with the user's umask (not mkstemp's 0600)."""
import os
import stat

import pytest

from ecc_hw import atomic, params
from ecc_hw.testing import random_network


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_written_file_has_the_umask_mode(tmp_path, umask):
    target = tmp_path / "sub" / "report.json"
    atomic.write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert mode(target) == 0o666 & ~umask
    assert [path.name for path in target.parent.iterdir()] == ["report.json"]


def test_replacing_a_private_file_gives_the_umask_mode(tmp_path, umask):
    target = tmp_path / "ecc_snn.v"
    target.write_bytes(b"old")
    target.chmod(0o600)
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o666 & ~umask


def test_temporary_sibling_folder_has_the_umask_mode(tmp_path, umask):
    folder = atomic.temporary_sibling_folder(tmp_path / "out" / "net")
    assert folder.parent == tmp_path / "out" and folder.name.startswith(".net.") and folder.is_dir()
    assert mode(folder) == 0o777 & ~umask and list(folder.iterdir()) == []


def test_parameter_folder_and_its_files_have_the_umask_mode(tmp_path, umask):
    params.save(random_network(1), tmp_path / "net")
    assert mode(tmp_path / "net") == 0o777 & ~umask
    assert {mode(file) for file in (tmp_path / "net").iterdir()} == {0o666 & ~umask}


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(TypeError):
        atomic.write_bytes(target, "text, not bytes")
    assert list(tmp_path.iterdir()) == []


def test_taken_names_are_skipped(tmp_path, monkeypatch):
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda _: next(names))
    first = atomic.temporary_sibling_folder(tmp_path / "net")
    second = atomic.temporary_sibling_folder(tmp_path / "net")
    assert (first.name, second.name) == (".net.aaaa", ".net.bbbb")


def test_no_free_name_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda _: "same")
    atomic.temporary_sibling_folder(tmp_path / "net")
    with pytest.raises(FileExistsError, match="no free temporary name for net"):
        atomic.temporary_sibling_folder(tmp_path / "net")
