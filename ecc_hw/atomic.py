"""Write files whole or not at all: to a temporary sibling, then rename.

The temporary sibling is created with the user's umask (files ``0o666 & ~umask``, folders
``0o777 & ~umask``), like any file the program would open for writing, so the renamed result has
the permissions the user expects (``tempfile.mkstemp``/``mkdtemp`` would make it 0600/0700).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o666     # before the umask
FOLDER_MODE = 0o777   # before the umask
NAME_ATTEMPTS = 100   # random sibling names tried before giving up (like tempfile's TMP_MAX)


def _create_sibling(path: Path, create):
    """``create(candidate)`` for fresh hidden names ``.NAME.RANDOM`` beside ``path`` until one is free."""
    for _ in range(NAME_ATTEMPTS):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(8)}"
        try:
            return candidate, create(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name} after {NAME_ATTEMPTS} tries")


def temporary_sibling_folder(path) -> Path:
    """A new empty hidden folder beside ``path`` (its parent is created if needed), with the umask's mode;
    rename it onto ``path`` when it is complete, or remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder, _ = _create_sibling(path, lambda candidate: os.mkdir(candidate, FOLDER_MODE))
    return folder


def write_bytes(path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (a new file with the umask's mode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    tmp, handle = _create_sibling(path, lambda candidate: os.open(candidate, flags, FILE_MODE))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    write_bytes(path, text.encode())
