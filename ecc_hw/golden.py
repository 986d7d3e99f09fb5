"""The golden model: the integer IF network of docs/arithmetic.md section 3, read from a parameter file.

Everything else (float models, cycle model, RTL) is checked against this. It reads every integer
(weights, biases, theta, R) from the parameter file and recomputes none of them; the TRE schedules and
bounds are ``ecc_hw.arithmetic``'s. A radix parameter file runs ``ecc_hw.radix``'s model.
"""
from __future__ import annotations

import numpy as np

from . import radix
from .arithmetic import current_bounds, integer_tre_charges, layer1_max_input, membrane_bounds
from .arithmetic import quantize_input, tre_schedule, tre_schedule_counter  # noqa: F401 (read from here by others)
from .backends import is_torch
from .if_network import GoldenResult, IFLayer, batch_chunk, concatenate, run_chunks, simulate
from .linear import LinearMap
from .params import NetworkParams
from .variants import Coding, InputKind, Method


def _membrane_dtype(linear: LinearMap, max_input: int, bound: int, index: int):
    """int32/int64 by the docs/arithmetic.md bound; float32 for layers fed by spikes when every membrane value is
    an integer below 2^24 (exact in float32), so their float32 currents need no conversion. The fire
    loop holds V - E(t) (|.| <= bound + R <= 2 * bound), hence the halved limits."""
    if index > 0 and linear.exact_dtype(max_input) is np.float32 and bound < 2 ** 23:
        return np.float32
    return np.int32 if bound < 2 ** 30 else np.int64


def _if_layers(params: NetworkParams, timesteps: int, bounds: list[int]) -> list[IFLayer]:
    layers = []
    max_input = layer1_max_input(params)
    for layer, bound in zip(params.spiking_layers, bounds):
        linear = LinearMap.of(layer)
        charges, initial = integer_tre_charges(params.tre_mode, layer.tre_charge, timesteps)
        membrane = _membrane_dtype(linear, max_input, bound, len(layers))
        layers.append(IFLayer(linear, layer.threshold, charges, initial, linear.exact_dtype(max_input), membrane))
        max_input = 1
    return layers


def run(params: NetworkParams, x_q: np.ndarray, timesteps: int | None = None,
        record_spikes: bool = False, progress=None, workers: int | None = None, backend=None) -> GoldenResult:
    """Run the integer IF network on quantised inputs ``x_q`` (N, C, H, W) for T steps.

    With event input (``params.input_kind == InputKind.EVENTS``) ``x_q`` holds the input spikes per frame,
    (N, T, C, H, W) integers: layer 1 integrates ``Wq_1 (*) s_0(t) + bq_1`` at step t (no constant
    current) and every input event counts its fan-out into layer 1 in SynOps (docs/events.md).

    ``progress``, if given, is called with the number of images finished after each chunk; chunks
    of images run on ``workers`` threads (default: every CPU; the result does not depend on it).
    A torch ``backend`` (``ecc_hw.backends.select_backend``) runs the same integers in PyTorch, bit-exact.
    Asserts the membrane bounds of docs/arithmetic.md section 3.
    """
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if Method(params.method).coding is Coding.BINARY:  # binary-coded neurons: their own integer model
        result = radix.run(params, x_q, timesteps, record_spikes, backend=backend)
        if progress is not None:
            progress(len(x_q))
        return result
    x_q = np.asarray(x_q, dtype=np.int64)
    events = params.input_kind == InputKind.EVENTS
    if events:
        if timesteps != params.timesteps or x_q.ndim != 5 or x_q.shape[1] != timesteps:
            raise ValueError(f"event input: spike frames (N, T={params.timesteps}, C, H, W) expected, got "
                             f"{x_q.shape} at T={timesteps} (the integers are built for T={params.timesteps})")
        if x_q.min(initial=0) < 0 or x_q.max(initial=0) > layer1_max_input(params):
            raise ValueError(f"event input: spikes per pixel and frame must be 0..{layer1_max_input(params)}")
    bounds = membrane_bounds(params, timesteps)
    zmax = current_bounds(params, timesteps)
    layers = _if_layers(params, timesteps, bounds)
    first = LinearMap.of(params.layers[0])
    output = LinearMap.of(params.layers[-1])
    output.exact_dtype(timesteps)  # asserts the output accumulator is exact in float64
    fan_outs = [LinearMap.of(nxt).fan_out() for nxt in params.layers[1:]]
    chunk = batch_chunk(timesteps, max(layer.neurons for layer in params.spiking_layers))
    input_fan_out = first.fan_out() if events else None

    def run_chunk(start: int, stop: int):
        images = x_q[start:stop]
        if events:
            flat = images.reshape(len(images) * timesteps, -1)
            current = np.rint(first.apply(flat, dtype=np.float64)).astype(np.int64)
            result = simulate(current.reshape(len(images), timesteps, -1), layers, output, fan_outs,
                              timesteps, record_spikes)
            result.synops += images.sum(axis=1).reshape(len(images), -1) @ input_fan_out
            return result
        current = np.rint(first.apply(images.reshape(len(images), -1), dtype=np.float64)).astype(np.int64)
        return simulate(current, layers, output, fan_outs, timesteps, record_spikes)

    def check(result, images: int) -> None:
        # |Z| <= Zmax at every step keeps every |V| within T * Zmax + theta (docs/arithmetic.md 3 Bounds).
        for n, seen in enumerate(result.max_abs_current):
            assert seen <= zmax[n], f"layer {n + 1}: |Z| = {seen} exceeds the docs/arithmetic.md bound {zmax[n]}"
        assert np.abs(result.output_membrane).max(initial=0) <= bounds[-1], "output membrane over its bound"
        if progress is not None:
            progress(images)

    if is_torch(backend):
        from .backends import torch_chain
        parts = torch_chain.run_rate(x_q, layers, first, output, fan_outs, timesteps, True, record_spikes, backend,
                                     chunk, check, events, input_fan_out, workers)
        joined = concatenate(parts)
    else:
        joined = run_chunks(run_chunk, len(x_q), chunk, workers, check)
    return GoldenResult(
        predictions=np.argmax(joined.output_membrane, axis=1), output_membrane=joined.output_membrane,
        spike_counts=joined.spike_counts, step_counts=joined.step_counts, synops=joined.synops,
        spikes=joined.spikes)
