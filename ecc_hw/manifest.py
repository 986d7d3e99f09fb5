"""The frame of a parameter folder, shared by chain networks (``ecc_hw.params``) and graph networks
(``ecc_hw.graph.store``).

A parameter folder is ``manifest.json`` plus one ``.npy`` per array. The manifest records the format
name and version, the topology ("chain" or "graph"), the sha256 of every array file and, under
``manifest_sha256``, the sha256 of all its other values (canonical JSON). So a hand-edited threshold,
TRE charge or lambda is refused, and with the array hashes inside it the digest covers the whole
folder. Folders are written to a temporary sibling and renamed into place (nothing half-written), with
the user's umask. Every problem on reading is a one-line ``ParamFileError`` naming the file.

Version history: 1, chains only, no manifest digest (refused: "convert the model again"; converting
again gives the same arrays); 2, the digest and the topology, graph networks with edges.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .atomic import temporary_sibling_folder
from .errors import UserError

FORMAT_NAME = "ecc-hw-params"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
DIGEST_KEY = "manifest_sha256"
TOPOLOGY_KEY = "topology"
CHAIN = "chain"
GRAPH = "graph"


class ParamFileError(UserError):
    """A parameter file that is missing, damaged, edited, or of a version this build cannot read."""


def manifest_digest(manifest: dict) -> str:
    """The sha256 a manifest records of its own values (``DIGEST_KEY``): of the canonical JSON (sorted keys,
    no spaces) of every entry but that one, so it does not depend on the file's formatting."""
    values = {key: value for key, value in manifest.items() if key != DIGEST_KEY}
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_folder(target, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    """Write ``arrays`` (file name -> array, saved with ``np.save``) and ``manifest`` (with the array hashes
    under "sha256", the format, version and digest added) as the folder ``target``, atomically."""
    target = Path(target)
    tmp = temporary_sibling_folder(target)
    try:
        hashes = {}
        for name, array in arrays.items():
            np.save(tmp / name, np.ascontiguousarray(array), allow_pickle=False)
            hashes[name] = file_sha256(tmp / name)
        manifest = {**manifest, "format": FORMAT_NAME, "version": FORMAT_VERSION, "sha256": hashes}
        manifest[DIGEST_KEY] = manifest_digest(manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path) -> dict:
    """The manifest of the parameter folder ``path``, after checking its format, version and digest."""
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ParamFileError(f"{folder}: not an ecc-hw parameter folder (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ParamFileError(f"{manifest_path}: damaged manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ParamFileError(f"{manifest_path}: not an ecc-hw parameter manifest")
    version = manifest.get("version")
    if isinstance(version, int) and version < FORMAT_VERSION:
        raise ParamFileError(f"{manifest_path}: format version {version} is not supported (written by an older "
                             f"ecc-hw; this one reads version {FORMAT_VERSION}): convert the model again")
    if version != FORMAT_VERSION:
        raise ParamFileError(f"{manifest_path}: format version {version!r} is not supported "
                             f"(this ecc-hw reads version {FORMAT_VERSION})")
    if manifest.get(DIGEST_KEY) != manifest_digest(manifest):
        raise ParamFileError(f"{manifest_path}: its values do not match its {DIGEST_KEY} (edited or damaged); "
                             "expected the manifest as ecc-hw convert wrote it: convert the model again")
    if manifest.get(TOPOLOGY_KEY) not in (CHAIN, GRAPH):
        raise ParamFileError(f"{manifest_path}: topology {manifest.get(TOPOLOGY_KEY)!r} is not "
                             f"'{CHAIN}' or '{GRAPH}'")
    return manifest


def topology(path) -> str:
    """"chain" or "graph": which kind of network the checked parameter folder ``path`` holds."""
    return read_manifest(path)[TOPOLOGY_KEY]


def load_array(folder, name, hashes: dict, dtype, shape: tuple, what: str) -> np.ndarray:
    """The array file ``name`` of ``folder``, checked against its sha256 in ``hashes`` and against ``dtype``
    and ``shape``; ``what`` says what it holds, for the message."""
    file = Path(folder) / str(name)
    if not isinstance(name, str) or not file.is_file() or file_sha256(file) != hashes.get(name):
        raise ParamFileError(f"{file}: missing or damaged (sha256 does not match the manifest)")
    array = np.load(file, allow_pickle=False)
    expected = np.dtype(dtype)
    if array.dtype != expected or array.shape != tuple(shape):
        raise ParamFileError(f"{file}: found {array.dtype} {array.shape}, expected {expected} {tuple(shape)} "
                             f"for {what} in {MANIFEST}")
    return array
