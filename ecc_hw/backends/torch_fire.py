"""The neurons in PyTorch: integrate-and-fire with soft reset (rate coding, docs/arithmetic.md 3 and 5.5)
and compare-and-subtract (binary coding, ``ecc_hw.radix``), the twins of the NumPy fire loops."""
from __future__ import annotations

import numpy as np

from .torch_device import torch_dtype, torch_module


def fire_levels(threshold, charges, dtype) -> list:
    """Per step t the value ``theta - E(t)`` that ``V - E(t)`` is compared with (E(t): the TRE charge added
    up to t), computed as the NumPy loops compute it: exact Python integers for integer membranes, float64
    (or float32) arithmetic in the float model."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        return [int(threshold) - int(e) for e in np.cumsum(np.asarray(charges, dtype=np.int64))]
    charged = np.cumsum(charges).astype(dtype)
    return [float(np.dtype(dtype).type(threshold) - e) for e in charged]


def fire(current, threshold, charges, initial, timesteps: int, dtype, reset=None):
    """Integrate ``current`` ((T, B, n), or (B, n) the same every step) in membranes of ``dtype`` (a NumPy
    dtype) starting at ``initial``, fire where ``V - E(t) >= theta - E(t)`` and subtract theta; the spikes
    (T, B, n) bool. As in NumPy the loop keeps ``V - E(t)``, which fires and resets exactly as V
    against theta."""
    torch = torch_module()
    batch, neurons = current.shape[-2:]
    kind = torch_dtype(dtype)
    current = current.to(kind)
    membrane = torch.full((batch, neurons), initial, dtype=kind, device=current.device)
    reset = torch.empty_like(membrane)
    spikes = torch.empty((timesteps, batch, neurons), dtype=torch.bool, device=current.device)
    levels = fire_levels(threshold, charges, dtype)
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    theta = torch.tensor(int(threshold) if integer else float(np.dtype(dtype).type(threshold)), dtype=kind,
                         device=current.device)
    zero = torch.zeros((), dtype=kind, device=current.device)
    for step in range(timesteps):
        membrane.add_(current if current.dim() == 2 else current[step])
        torch.ge(membrane, levels[step], out=spikes[step])
        torch.where(spikes[step], theta, zero, out=reset)  # theta * s(t) in one pass, no bool conversion
        membrane.sub_(reset)
    return spikes


def largest_current(current, charges) -> int:
    """max |Z| over steps, images and neurons, Z = current + e(t) (the chain's ``_largest_current``):
    the largest current plus the largest charge, or the smallest plus the smallest."""
    charges = np.asarray(charges)
    high = float(current.max()) + float(charges.max(initial=0))
    low = float(current.min()) + float(charges.min(initial=0))
    return max(abs(high), abs(low))


def compare_and_subtract(membrane, threshold: int, timesteps: int):
    """Binary coding, MSB first: s(t) = V >= theta 2^(T-t), V -= theta 2^(T-t) s(t) on int64 membranes
    (B, n), which are consumed; the bits (T, B, n) bool."""
    torch = torch_module()
    spikes = torch.empty((timesteps, *membrane.shape), dtype=torch.bool, device=membrane.device)
    for t in range(1, timesteps + 1):
        level = int(threshold) << (timesteps - t)
        torch.ge(membrane, level, out=spikes[t - 1])
        membrane -= spikes[t - 1].to(membrane.dtype) * level
    return spikes


def horner(per_step):
    """sum_t 2^(T-t) x(t) for int64 inputs (T, B, n), by U <- 2U + x(t)."""
    total = torch_module().zeros_like(per_step[0])
    for step_input in per_step:
        total = 2 * total + step_input
    return total


def synops(counts, fan_out):
    """SynOps per image: spike counts (B, n) times the fan-out (n,) of each neuron, int64 (an elementwise
    product and a sum: integer products are not supported by every device)."""
    torch = torch_module()
    return (counts.to(torch.int64) * fan_out).sum(dim=1)
