"""Compute backends of the golden model and the float SNN: NumPy (the default) or PyTorch on CPU or CUDA.

``select_backend("torch", "cuda")`` checks that the backend can run here and returns a ``Backend``; the
run functions (``ecc_hw.golden.run``, ``ecc_hw.graph.golden.run_graph``, ...) take it as ``backend=``. Torch
is an optional dependency: nothing in this package imports it before a torch backend is selected, and
the torch modules (``torch_*.py``) are imported only by the run functions that were given one. The torch
backend is bit-exact with NumPy on the integer models (docs/backends.md has the argument).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

BACKENDS = ("numpy", "torch")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Backend:
    """A compute backend: ``name`` numpy or torch, ``device`` cpu or cuda (cuda with torch only)."""

    name: str = "numpy"
    device: str = "cpu"

    @property
    def is_torch(self) -> bool:
        """True for the PyTorch backend."""
        return self.name == "torch"

    def describe(self) -> str:
        """``numpy`` or ``torch (cpu)``, for tables and reports."""
        return f"{self.name} ({self.device})" if self.is_torch else self.name


NUMPY = Backend()


def is_torch(backend: Backend | None) -> bool:
    """True when ``backend`` asks for PyTorch (None is NumPy)."""
    return backend is not None and backend.is_torch


def select_backend(name: str = "numpy", device: str = "cpu") -> Backend:
    """The ``Backend`` for ``name`` and ``device``, checked: a one-line ``UserError`` naming the option when
    torch cannot be imported (``--backend torch``), when CUDA is asked of NumPy or is not available
    (``--device cuda``)."""
    if name not in BACKENDS:
        raise UserError(f"'{name}' is not one of {', '.join(BACKENDS)}", field="backend")
    if device not in DEVICES:
        raise UserError(f"'{device}' is not one of {', '.join(DEVICES)}", field="device")
    if name == "numpy":
        if device != "cpu":
            raise UserError(f"--device {device} needs --backend torch (the NumPy backend runs on the CPU)")
        return NUMPY
    try:
        import torch
    except ImportError as error:
        raise UserError(f"--backend torch: PyTorch is not installed ({error}); pip install torch") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch.cuda.is_available() is false (no CUDA device, or a CPU-only torch)")
    return Backend(name, device)
