"""The golden model: the integer IF network of docs/arithmetic.md section 3, read from a parameter file.

Everything else (float models, cycle model, RTL) is checked against this. It reads every integer
(weights, biases, theta, R) from the parameter file and recomputes none of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .if_network import IFLayer, batch_chunk, run_chunks, simulate
from .linear import LinearMap
from .params import NetworkParams


@dataclass
class GoldenResult:
    """Integer outputs for N images.

    ``spikes`` (when asked for) holds, per spiking layer, a bool array (T, N, neurons) with the
    channel-major neuron order of ``ecc_hw.params``.
    """

    predictions: np.ndarray          # (N,) argmax of the final output membrane, lowest index on ties
    output_membrane: np.ndarray      # (N, classes) int64 final V_N
    spike_counts: np.ndarray         # (N, spiking layers) int64
    step_counts: np.ndarray          # (N, T, spiking layers) int64 spikes per step
    synops: np.ndarray               # (N,) int64 SynOps per image
    spikes: list | None


def quantize_input(params: NetworkParams, x: np.ndarray) -> np.ndarray:
    """x_q = rint(clip(x / lambda_0, lo, 1) * u) (docs/arithmetic.md 2.2), as int64 (N, C, H, W)."""
    low = -1.0 if params.input_signed else 0.0
    scaled = np.clip(np.asarray(x, dtype=np.float64) / params.lambdas[0], low, 1.0)
    return np.rint(scaled * params.input_full_scale).astype(np.int64)


def tre_schedule(charge: int, timesteps: int) -> np.ndarray:
    """e(t) for t = 1..T: floor(R t / T) - floor(R (t-1) / T); the T steps add exactly R (docs/arithmetic.md 2.4)."""
    steps = np.arange(timesteps + 1, dtype=np.int64)
    cumulative = (charge * steps) // timesteps
    return np.diff(cumulative)


def tre_schedule_counter(charge: int, timesteps: int) -> np.ndarray:
    """The same schedule computed as the hardware does: one counter, no fraction bits (docs/arithmetic.md 2.4)."""
    quotient, remainder = divmod(charge, timesteps)
    counter, charges = 0, []
    for _ in range(timesteps):
        charges.append(quotient + (1 if counter + remainder >= timesteps else 0))
        counter = (counter + remainder) % timesteps
    return np.array(charges, dtype=np.int64)


def layer1_max_input(params: NetworkParams) -> int:
    """Largest |input| of layer 1 per step: u, or with event input C (events of a pixel per frame)."""
    if params.input_kind == "events":
        return int(params.events["count_scale"])
    return params.input_full_scale


def current_bounds(params: NetworkParams, timesteps: int) -> list[int]:
    """Zmax_n per layer (docs/arithmetic.md 3 Bounds): the largest |Z| a neuron of layer n can see, TRE included."""
    bounds = []
    max_input = layer1_max_input(params)
    for layer in params.layers:
        zmax = LinearMap.of(layer).max_abs_output(max_input)
        if layer.spiking:
            zmax += layer.tre_charge // timesteps + 1
        bounds.append(int(np.ceil(zmax)))
        max_input = 1
    return bounds


def membrane_bounds(params: NetworkParams, timesteps: int) -> list[int]:
    """|V_n| bound per layer (docs/arithmetic.md 3 Bounds): T * Zmax_n + theta_n, and T * Zmax_N for the output."""
    return [timesteps * zmax + (layer.threshold if layer.spiking else 0)
            for zmax, layer in zip(current_bounds(params, timesteps), params.layers)]


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
        if params.tre_mode == "initial":
            charges, initial = np.zeros(timesteps, dtype=np.int64), layer.tre_charge
        else:
            charges, initial = tre_schedule(layer.tre_charge, timesteps), 0
        membrane = _membrane_dtype(linear, max_input, bound, len(layers))
        layers.append(IFLayer(linear, layer.threshold, charges, initial, linear.exact_dtype(max_input), membrane))
        max_input = 1
    return layers


def run(params: NetworkParams, x_q: np.ndarray, timesteps: int | None = None,
        record_spikes: bool = False, progress=None, workers: int | None = None) -> GoldenResult:
    """Run the integer IF network on quantised inputs ``x_q`` (N, C, H, W) for T steps.

    With event input (``params.input_kind == "events"``) ``x_q`` holds the input spikes per frame,
    (N, T, C, H, W) integers: layer 1 integrates ``Wq_1 (*) s_0(t) + bq_1`` at step t (no constant
    current) and every input event counts its fan-out into layer 1 in SynOps (docs/events.md).

    ``progress``, if given, is called with the number of images finished after each chunk; chunks
    of images run on ``workers`` threads (default: every CPU; the result does not depend on it).
    Asserts the membrane bounds of docs/arithmetic.md section 3.
    """
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if params.method == "radix":  # binary-coded neurons: their own integer model
        from . import radix
        result = radix.run(params, x_q, timesteps, record_spikes)
        if progress is not None:
            progress(len(x_q))
        return result
    x_q = np.asarray(x_q, dtype=np.int64)
    events = params.input_kind == "events"
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

    joined = run_chunks(run_chunk, len(x_q), chunk, workers, check)
    return GoldenResult(
        predictions=np.argmax(joined.output_membrane, axis=1), output_membrane=joined.output_membrane,
        spike_counts=joined.spike_counts, step_counts=joined.step_counts, synops=joined.synops,
        spikes=joined.spikes)
