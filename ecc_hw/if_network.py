"""Vectorised integrate-and-fire network (docs/arithmetic.md section 3), shared by the integer and float SNNs.

Layers feed forward with same-step propagation, so a layer's spikes at every step depend only on the
previous layer's spikes: each layer's synaptic input for all T steps of a batch is one batched linear
map, and only the membrane update runs step by step (elementwise). The output accumulator is linear,
so its final membrane is ``W_N (*) (spike counts of layer N-1) + T * b_N`` exactly.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .linear import LinearMap


@dataclass
class IFLayer:
    """A spiking layer as the engine needs it: map, threshold and TRE charges per step.

    ``step_charge`` has T entries (added at steps 1..T); ``initial_charge`` is the membrane at t=0.
    ``exact_dtype`` is the dtype the linear map runs in (float32/64 holding integers exactly, or
    float64 for the float SNN); ``membrane_dtype`` is int32 or int64 for the golden model (by the
    docs/arithmetic.md bound), float64 otherwise.
    """

    linear: LinearMap
    threshold: float
    step_charge: np.ndarray
    initial_charge: float
    exact_dtype: type
    membrane_dtype: type


@dataclass
class IFResult:
    """Outputs of one batch: final output membranes, spike counts, and optionally spike trains."""

    output_membrane: np.ndarray      # (B, classes)
    spike_counts: np.ndarray         # (B, spiking layers) total spikes per image
    step_counts: np.ndarray          # (B, T, spiking layers) spikes per step
    synops: np.ndarray               # (B,) SynOps per image (docs/arithmetic.md 4)
    max_abs_current: np.ndarray      # (spiking layers,) largest |Z| (input current + TRE charge) seen
    spikes: list | None              # per spiking layer: bool (T, B, neurons), when recorded


@dataclass
class GoldenResult:
    """Integer outputs for N images, of the golden model (``ecc_hw.golden``) or the radix model
    (``ecc_hw.radix``).

    ``spikes`` (when asked for) holds, per spiking layer, a bool array (T, N, neurons) with the
    channel-major neuron order of ``ecc_hw.params``.
    """

    predictions: np.ndarray          # (N,) argmax of the final output membrane, lowest index on ties
    output_membrane: np.ndarray      # (N, classes) int64 final V_N
    spike_counts: np.ndarray         # (N, spiking layers) int64
    step_counts: np.ndarray          # (N, T, spiking layers) int64 spikes per step
    synops: np.ndarray               # (N,) int64 SynOps per image
    spikes: list | None


def simulate(first_current: np.ndarray, layers: list[IFLayer], output: LinearMap,
             fan_outs: list[np.ndarray], timesteps: int, record_spikes: bool = False) -> IFResult:
    """Run one batch: ``first_current`` (B, neurons of layer 1) is layer 1's constant input current,
    or (B, T, neurons of layer 1) its current at every step (event input, docs/events.md).

    ``fan_outs[n]`` holds the fan-out of every neuron of spiking layer n into layer n+1. Neurons are
    channel-major at this interface; inside, every layer runs channels-last (see ``LinearMap.apply``).
    """
    batch = first_current.shape[0]
    orders = [LinearMap.channels_last_order(layer.linear.output_shape) for layer in layers]
    spike_counts = np.zeros((batch, len(layers)), dtype=np.int64)
    step_counts = np.zeros((batch, timesteps, len(layers)), dtype=np.int64)
    synops = np.zeros(batch, dtype=np.int64)
    max_abs = np.zeros(len(layers))
    recorded = [] if record_spikes else None
    spikes = None
    for n, layer in enumerate(layers):
        if n == 0 and first_current.ndim == 3:  # event input: a current per step
            currents = first_current[:, :, orders[0]].transpose(1, 0, 2).astype(layer.membrane_dtype)
        elif n == 0:
            current = first_current[:, orders[0]].astype(layer.membrane_dtype)
            currents = np.broadcast_to(current, (timesteps, *current.shape))
        else:
            flat = spikes.reshape(timesteps * batch, -1)
            currents = layer.linear.apply(flat, dtype=layer.exact_dtype, channels_last=True)
            currents = currents.reshape(timesteps, batch, -1)
            if np.issubdtype(layer.membrane_dtype, np.integer):  # exact integers held in floats
                currents = currents.astype(layer.membrane_dtype)
        max_abs[n] = _largest_current(currents, layer)
        spikes = _fire(currents, layer)
        as_bytes = spikes.view(np.uint8)
        per_step = np.add.reduce(as_bytes, axis=2, dtype=np.int32)  # (T, B)
        step_counts[:, :, n] = per_step.T
        spike_counts[:, n] = per_step.sum(axis=0)
        counts = as_bytes.sum(axis=0, dtype=_count_dtype(timesteps))  # (B, neurons)
        synops += counts @ fan_outs[n][orders[n]]
        if record_spikes:
            recorded.append(spikes[:, :, np.argsort(orders[n])])
    membrane = output.apply(counts.astype(np.int32), dtype=np.float64, with_bias=False, channels_last=True)
    membrane = membrane[:, np.argsort(LinearMap.channels_last_order(output.output_shape))]
    membrane += timesteps * output.bias_per_neuron(np.float64)
    if np.issubdtype(layers[0].membrane_dtype, np.integer):
        membrane = np.rint(membrane).astype(np.int64)
    return IFResult(membrane, spike_counts, step_counts, synops, max_abs, recorded)


def _count_dtype(timesteps: int):
    """The narrowest unsigned type that holds a neuron's spike count over T steps."""
    return np.uint8 if timesteps < 256 else np.uint16 if timesteps < 65536 else np.uint32


def _largest_current(currents: np.ndarray, layer: IFLayer) -> float:
    """max |Z| over all steps, neurons and images: the bound that caps every membrane (docs/arithmetic.md 3)."""
    unique = currents[0] if currents.strides[0] == 0 else currents  # layer 1: the same every step
    charges = np.asarray(layer.step_charge)
    return float(max(abs(float(unique.max(initial=0)) + float(charges.max(initial=0))),
                     abs(float(unique.min(initial=0)) + float(charges.min(initial=0)))))


def _fire(currents: np.ndarray, layer: IFLayer) -> np.ndarray:
    """Integrate (T, B, n) currents with soft reset; return the spikes (T, B, n).

    Plain ufuncs with preallocated outputs: masked (``where=``) updates and per-step reductions
    cost ten times more than the arithmetic itself. The TRE charge is not added to every membrane:
    with E(t) the charge added up to step t, the loop keeps V - E(t) and compares it with
    theta - E(t), which fires and resets exactly as V against theta.
    """
    timesteps = currents.shape[0]
    dtype = layer.membrane_dtype
    membrane = np.full(currents.shape[1:], layer.initial_charge, dtype=dtype)
    reset = np.empty_like(membrane)
    spikes = np.empty(currents.shape, dtype=bool)
    threshold = dtype(layer.threshold)
    charged = np.cumsum(layer.step_charge)
    for t in range(timesteps):
        np.add(membrane, currents[t], out=membrane)
        fired = spikes[t]
        np.greater_equal(membrane, dtype(layer.threshold - charged[t]), out=fired)
        np.multiply(fired, threshold, out=reset)
        membrane -= reset
    return spikes


def batch_chunk(timesteps: int, widest_layer: int, elements: int = 12_000_000) -> int:
    """Images per chunk so that a (T, chunk, neurons) array stays near ``elements`` entries."""
    return max(1, elements // (timesteps * widest_layer))


def default_workers() -> int:
    """Worker threads for ``run_chunks``: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_chunks(run_chunk, total: int, chunk: int, workers: int | None = None, on_result=None) -> IFResult:
    """``run_chunk(start, stop)`` over consecutive slices of ``total`` images on ``workers`` threads.

    NumPy's elementwise loops and copies release the GIL, so chunks on separate threads use separate
    cores; BLAS is held to one thread per call meanwhile (its own threads would compete with ours:
    measured 2x slower than one BLAS thread per chunk on two cores). Chunks are split so every worker
    has one (so slices may be shorter than ``chunk``). ``on_result(result, images)`` is called in order
    as chunks finish. Results do not depend on ``workers``: every chunk is computed exactly as alone.
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    chunk = max(1, min(chunk, -(-total // workers)))
    slices = [(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    parts = []
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_chunk, start, stop) for start, stop in slices]
        for (start, stop), future in zip(slices, futures):
            result = future.result()
            if on_result is not None:
                on_result(result, stop - start)
            parts.append(result)
    return concatenate(parts)


def concatenate(parts: list[IFResult]) -> IFResult:
    """Join the results of consecutive chunks of one batch."""
    return IFResult(
        output_membrane=np.concatenate([p.output_membrane for p in parts]),
        spike_counts=np.concatenate([p.spike_counts for p in parts]),
        step_counts=np.concatenate([p.step_counts for p in parts]),
        synops=np.concatenate([p.synops for p in parts]),
        max_abs_current=np.max([p.max_abs_current for p in parts], axis=0),
        spikes=None if parts[0].spikes is None else
        [np.concatenate([p.spikes[n] for p in parts], axis=1) for n in range(len(parts[0].spikes))],
    )
