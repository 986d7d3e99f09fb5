"""The arithmetic of docs/arithmetic.md sections 1.4-3, each formula once.

Converter (``ecc_hw.convert``, ``ecc_hw.methods``), models (``ecc_hw.golden``, ``ecc_hw.radix``,
``ecc_hw.float_snn``) and hardware (``ecc_hw.rtl_gen``) take these from here:

- input: the full scale u (2.2), the clipped input x / lambda_0 (1.5) and its quantisation x_q (2.2);
- CN (1.4), the per-layer gain g_n (2.3) and the integers of a layer, rate coded (2.3, 2.4) or binary
  coded (radix, docs/methods.md), as :class:`LayerIntegers`;
- TRE: the spread schedule e_n(t), its hardware counter form and the initial-charge variant (2.4),
  in integers and in floats (1.5);
- the bounds of section 3 (|Z| and |V| per layer, rate and radix) that size the hardware.

Functions with a ``params`` argument take a parameter file's ``ecc_hw.params.NetworkParams`` (not imported
here: ``ecc_hw.params`` reads u from this module).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .linear import LinearMap
from .variants import Coding, InputKind, Method, TreMode

RADIX_MAX_T = 16   # radix: T bits per layer, L = 2^T levels


# ------------------------------------------------------------------------------------------ input (1.5, 2.2)

def weight_full_scale(weight_bits: int) -> int:
    """2^(B-1) - 1: the largest weight magnitude of B-bit signed weights (2.3)."""
    return (1 << (weight_bits - 1)) - 1


def input_full_scale(input_bits: int, signed: bool) -> int:
    """u: 2^I - 1 for unsigned input, 2^(I-1) - 1 for signed input (2.2)."""
    return (1 << (input_bits - 1)) - 1 if signed else (1 << input_bits) - 1


def normalised_input(x: np.ndarray, lambda_0: float, signed: bool) -> np.ndarray:
    """clip(x / lambda_0, lo, 1) in float64, lo = -1 for signed input and 0 otherwise (1.5, 2.2)."""
    low = -1.0 if signed else 0.0
    return np.clip(np.asarray(x, dtype=np.float64) / lambda_0, low, 1.0)


def quantize_input(params, x: np.ndarray) -> np.ndarray:
    """x_q = rint(clip(x / lambda_0, lo, 1) * u) (2.2), as int64 (N, C, H, W)."""
    scaled = normalised_input(x, params.lambdas[0], params.input_signed)
    return np.rint(scaled * params.input_full_scale).astype(np.int64)


def first_layer_unit(full_scale: int, input_kind: InputKind, event_count_scale: int, timesteps: int) -> float:
    """u_1, what input 1.0 stands for in layer 1's integers: u, or with event input C / T (C events
    over T frames, docs/events.md)."""
    if input_kind == InputKind.EVENTS:
        return event_count_scale / timesteps
    return full_scale


# --------------------------------------------------------------------------------- CN and gains (1.4, 2.3)

def current_normalised(weight: np.ndarray, bias: np.ndarray, kappa: float, lambda_source: float,
                       lambda_layer: float) -> tuple[np.ndarray, np.ndarray]:
    """W' = kappa * lambda_{n-1} / lambda_n * W and b' = kappa * b / lambda_n (1.4)."""
    scale = kappa / lambda_layer
    return scale * lambda_source * weight, scale * bias


def layer_gain(weight_bits: int, weight: np.ndarray, where: str) -> float:
    """g = (2^(B-1) - 1) / max |W| (2.3); a UserError naming ``where`` for an all-zero layer."""
    largest = float(np.max(np.abs(weight)))
    if largest == 0:
        raise UserError(f"{where}: all weights are zero")
    return weight_full_scale(weight_bits) / largest


@dataclass(frozen=True)
class LayerIntegers:
    """One layer's integers: Wq, bq, theta and R (None on the output layer), and its gain g."""

    weight: np.ndarray
    bias: np.ndarray
    threshold: int | None
    tre_charge: int | None
    gain: float


def _where(index: int, layer) -> str:
    return f"layer {index + 1} ('{layer.name}')"


def rate_layer_integers(layers: list, lambdas: list[float], first_unit: float, weight_bits: int,
                        kappa: float, eta: float) -> list[LayerIntegers]:
    """CN (1.4) and the rate-coded integers (2.3, 2.4) of float ``layers`` (``ecc_hw.passes.FloatLayer``).

    With u_1 = ``first_unit`` and u_n = 1 after: Wq = rint(g W'), bq = rint(g b' u_n),
    theta = max(1, rint(g kappa u_n)) and R = rint(eta theta) for the spiking layers.
    """
    integers = []
    for index, layer in enumerate(layers):
        weight, bias = current_normalised(layer.weight, layer.bias, kappa, lambdas[index], lambdas[index + 1])
        gain = layer_gain(weight_bits, weight, _where(index, layer))
        unit = first_unit if index == 0 else 1
        spiking = index < len(layers) - 1
        threshold = max(1, int(np.rint(gain * kappa * unit))) if spiking else None
        integers.append(LayerIntegers(
            weight=np.rint(gain * weight).astype(np.int64), bias=np.rint(gain * bias * unit).astype(np.int64),
            threshold=threshold, tre_charge=int(np.rint(eta * threshold)) if spiking else None,
            gain=float(gain)))
    return integers


# ------------------------------------------------------------------------------ radix (docs/methods.md)

def check_radix_timesteps(timesteps: int) -> None:
    """A UserError naming ``timesteps`` unless 1 <= T <= RADIX_MAX_T (T bits, L = 2^T levels)."""
    if not 1 <= timesteps <= RADIX_MAX_T:
        raise UserError(f"radix needs 1..{RADIX_MAX_T} bits (L = 2^T), got {timesteps}", field="timesteps")


def radix_levels(timesteps: int) -> int:
    """L = 2^T: the levels of a T-bit binary-coded value."""
    return 1 << timesteps


def radix_step(lambda_layer: float, levels: int) -> float:
    """D_n = lambda_n / (L - 1): the value of one level of layer n."""
    return lambda_layer / (levels - 1)


def radix_layer_integers(layers: list, lambdas: list[float], full_scale: int, weight_bits: int,
                         timesteps: int) -> list[LayerIntegers]:
    """Binary-coded (radix) integers at T bits, L = 2^T levels (docs/methods.md).

    Step of layer n: D_n = lambda_n / (L - 1) (lambda_n: the clip maximum from the graph, else the
    calibration lambda); input step D_0 = lambda_0 / u. For a spiking layer W'_n = W_n D_{n-1} / D_n,
    theta_n = max(1, floor((2^(B-1) - 1) / max|W'_n|)), Wq_n = rint(theta_n W'_n),
    bq_n = rint(theta_n (b_n / D_n + 1/2)) (the half-step bias shift), R_n = 0. Output layer:
    W'_N = W_N D_{N-1}, g = (2^(B-1) - 1) / max|W'_N|, Wq_N = rint(g W'_N), bq_N = rint(g b_N).
    """
    check_radix_timesteps(timesteps)
    levels = radix_levels(timesteps)
    step = [lambdas[0] / full_scale] + [radix_step(value, levels) for value in lambdas[1:-1]]
    integers = []
    for index, layer in enumerate(layers):
        spiking = index < len(layers) - 1
        if layer.kind == "pool":
            raise UserError(f"{_where(index, layer)} is an average pool kept as its own layer; radix needs "
                            "compose", field="pool_mode")
        weight = layer.weight * (step[index] / step[index + 1] if spiking else step[index])
        gain = layer_gain(weight_bits, weight, _where(index, layer))
        if spiking:
            gain = float(max(1, int(np.floor(gain))))
            bias = np.rint(gain * (layer.bias / step[index + 1] + 0.5))
        else:
            bias = np.rint(gain * layer.bias)
        integers.append(LayerIntegers(
            weight=np.rint(gain * weight).astype(np.int64), bias=bias.astype(np.int64),
            threshold=int(gain) if spiking else None, tre_charge=0 if spiking else None, gain=float(gain)))
    return integers


# ------------------------------------------------------------------------------------------------ TRE (2.4)

def tre_schedule(charge: int, timesteps: int) -> np.ndarray:
    """e(t) for t = 1..T: floor(R t / T) - floor(R (t-1) / T); the T steps add exactly R (2.4)."""
    steps = np.arange(timesteps + 1, dtype=np.int64)
    cumulative = (charge * steps) // timesteps
    return np.diff(cumulative)


def tre_counter_constants(charge: int, timesteps: int) -> tuple[int, int]:
    """(q, r) = (R div T, R mod T): the constants of the hardware's TRE counter (2.4)."""
    return divmod(charge, timesteps)


def tre_schedule_counter(charge: int, timesteps: int) -> np.ndarray:
    """The same schedule computed as the hardware does: with (q, r) of ``tre_counter_constants``, one
    counter c and no fraction bits, e = q + (c + r >= T), then c = (c + r) mod T (2.4)."""
    quotient, remainder = tre_counter_constants(charge, timesteps)
    counter, charges = 0, []
    for _ in range(timesteps):
        charges.append(quotient + (1 if counter + remainder >= timesteps else 0))
        counter = (counter + remainder) % timesteps
    return np.array(charges, dtype=np.int64)


def integer_tre_charges(tre_mode: TreMode, charge: int, timesteps: int) -> tuple[np.ndarray, int]:
    """(charge added at each step 1..T, membrane at t = 0) of an integer layer with TRE charge R:
    the spread schedule and 0, or with the initial-charge variant T zeros and R."""
    if tre_mode == TreMode.INITIAL:
        return np.zeros(timesteps, dtype=np.int64), charge
    return tre_schedule(charge, timesteps), 0


def float_tre_charges(tre_mode: TreMode, charge: float, timesteps: int) -> tuple[np.ndarray, float]:
    """The float model's TRE (1.5): ``charge`` (eta * kappa) / T at every step, or all of it at t = 0."""
    if tre_mode == TreMode.INITIAL:
        return np.zeros(timesteps), charge
    return np.full(timesteps, charge / timesteps), 0.0


# ------------------------------------------------------------------------------------------ bounds (3)

def layer1_max_input(params) -> int:
    """Largest |input| of layer 1 per step: u, or with event input C (events of a pixel per frame)."""
    if params.input_kind == InputKind.EVENTS:
        return int(params.events["count_scale"])
    return params.input_full_scale


def current_bounds(params, timesteps: int) -> list[int]:
    """Zmax_n per layer of a rate-coded network (3 Bounds): the largest |Z| a neuron of layer n can see,
    its TRE charge per step (at most q_n + 1) included."""
    bounds = []
    max_input = layer1_max_input(params)
    for layer in params.layers:
        zmax = LinearMap.of(layer).max_abs_output(max_input)
        if layer.spiking:
            zmax += layer.tre_charge // timesteps + 1
        bounds.append(int(np.ceil(zmax)))
        max_input = 1
    return bounds


def _rate_membrane_bounds(params, timesteps: int) -> list[int]:
    """T * Zmax_n + theta_n for the spiking layers and T * Zmax_N for the output (3 Bounds)."""
    return [timesteps * zmax + (layer.threshold if layer.spiking else 0)
            for zmax, layer in zip(current_bounds(params, timesteps), params.layers)]


def _radix_membrane_bounds(params, timesteps: int) -> list[int]:
    """S_1 u + |bq_1|, then S_n (2^T - 1) + |bq_n| (``ecc_hw.radix``: a neuron's weighted input
    sum_t 2^(T-t) s(t) is in 0..2^T - 1, and compare-and-subtract never crosses 0)."""
    largest_inputs = [params.input_full_scale] + [radix_levels(timesteps) - 1] * (len(params.layers) - 1)
    return [int(np.ceil(LinearMap.of(layer).max_abs_output(largest)))
            for layer, largest in zip(params.layers, largest_inputs)]


def membrane_bounds(params, timesteps: int) -> list[int]:
    """|V_n| bound per layer at T steps for the parameter file's coding (rate or binary); the hardware's
    membrane widths are derived from these, and the golden models assert them."""
    if Method(params.method).coding is Coding.BINARY:
        return _radix_membrane_bounds(params, timesteps)
    return _rate_membrane_bounds(params, timesteps)
