"""The design cache: the generated accelerator with its trace stream, for one network, P, T and memory.

``prepare_design`` generates ``ecc_snn.v`` and ``manifest.json`` with ``rtl_gen.generate`` (trace
on) into ``<build root>/designs/<key>``, where the key digests the parameter file, P, T, the memory,
Amaranth's version and the generator's own sources (every ``.py`` file of the installed package
``ecc_hw.rtl_gen``, read through ``importlib.resources``), and reuses the folder when it is there.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ecc_hw.variants import Memory

from .runner import default_build_root, digest

GENERATOR_PACKAGE = "ecc_hw.rtl_gen"


@dataclass
class Design:
    """A generated design with its trace stream: ``folder`` holds ecc_snn.v and manifest.json."""

    folder: Path
    manifest: dict
    verilog_hash: str
    lanes: int
    timesteps: int
    memory: Memory = Memory.BRAM

    @property
    def verilog(self) -> Path:
        """The design's Verilog."""
        return self.folder / "ecc_snn.v"


def _python_files(folder, prefix: str = "") -> list[tuple[str, object]]:
    """(relative name, resource) of every ``.py`` file below ``folder``, caches left out."""
    found = []
    for entry in folder.iterdir():
        if entry.is_dir():
            if entry.name != "__pycache__":
                found += _python_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".py"):
            found.append((prefix + entry.name, entry))
    return found


def generator_sources() -> list[bytes]:
    """The generator's sources in name order (subpackages included), the design key's last parts."""
    return [resource.read_bytes() for _, resource in
            sorted(_python_files(resources.files(GENERATOR_PACKAGE)), key=lambda item: item[0])]


def _params_digest(params) -> bytes:
    """The parameter file's manifest as ``params.save`` writes it (it digests every array)."""
    from ecc_hw import params as params_io
    from ecc_hw.graph import store

    save = store.save if isinstance(params, store.GraphParams) else params_io.save

    with tempfile.TemporaryDirectory() as tmp:
        save(params, Path(tmp) / "net")
        return (Path(tmp) / "net" / params_io.MANIFEST).read_bytes()


def prepare_design(params, lanes: int, timesteps: int | None = None, build_root: Path | None = None,
                   memory: Memory = Memory.BRAM) -> Design:
    """Generate (or reuse) the traced design for ``params`` at ``lanes``, T and ``memory``."""
    import amaranth

    timesteps = int(params.timesteps if timesteps is None else timesteps)
    root = Path(build_root or default_build_root())
    key = digest(_params_digest(params), f"{lanes}/{timesteps}/{memory}/{amaranth.__version__}".encode(),
                 *generator_sources())
    folder = root / "designs" / key[:16]
    if not (folder / "manifest.json").is_file():
        os.environ["AMARANTH_USE_YOSYS"] = "builtin"
        tmp = Path(tempfile.mkdtemp(prefix=".design-", dir=root if root.exists() else None))
        try:
            from ecc_hw.rtl_gen.generate import generate

            generate(params, tmp, lanes=lanes, trace=True, timesteps=timesteps, memory=memory)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if not folder.exists():
                os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    return Design(folder, manifest, digest((folder / "ecc_snn.v").read_bytes()), lanes, timesteps, memory)
