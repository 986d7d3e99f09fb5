"""Conversion methods: small named variants over the same passes and the same quantiser.

Each method is (a) an optional rewrite of the loaded ONNX chain before the passes (only the CMB
ablation uses one), (b) a rewrite of the lambdas, (c) the TRE fraction eta and the float threshold
kappa, and then the shared quantiser of docs/arithmetic.md 2.3/2.4 (``convert.quantize``). ``radix`` has its own
quantiser (``quantize_radix``). Equations: docs/methods.md.

- ``ecc``:    docs/arithmetic.md as written: CN with kappa, CMB with the model's epsilon, TRE eta.
- ``wn2017``: Rueckauer et al. 2017: data-based weight normalisation (threshold 1 = kappa 1), BN
              folded without epsilon, no TRE (eta 0). Integers equal ecc's with R_n = 0 (kappa
              cancels), except where the epsilon matters.
- ``rmp``:    Han et al. 2020 (RMP-SNN(alpha)): threshold balancing with every spiking layer's
              threshold scaled by alpha, soft reset, no TRE: lambda_n -> alpha * lambda_n for n < N.
- ``radix``:  the 2023 seed's binary-coded conversion (``quantize_radix``, ``ecc_hw.radix``).
- ``ablation(cn, cmb, tre)``: ECC with ingredients switched off (paper Figure 5). No CN means the
              unnormalised network: lambda_n = 1 for 0 < n < N (threshold 1 in activation units).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from .errors import UserError
from .params import QuantLayer

METHODS = ("ecc", "wn2017", "rmp", "radix")
RADIX_MAX_T = 16


@dataclass(frozen=True)
class Recipe:
    """What a method changes: BN epsilon kept?, lambdas of spiking layers (scale or 1), eta, kappa."""

    name: str
    keep_epsilon: bool = True
    normalise: bool = True          # CN: lambda_n from calibration; False: lambda_n = 1 (0 < n < N)
    threshold_scale: float = 1.0    # alpha: lambda_n -> alpha * lambda_n (0 < n < N)
    tre: bool = True                # False: eta = 0
    kappa: float | None = None      # None: the options' kappa


def recipe(method: str, alpha: float = 0.8) -> Recipe:
    """The recipe of a named method (``radix`` uses the ECC recipe for its lambdas only)."""
    if method == "ecc":
        return Recipe("ecc")
    if method == "wn2017":
        return Recipe("wn2017", keep_epsilon=False, tre=False, kappa=1.0)
    if method == "rmp":
        if not 0 < alpha <= 1:
            raise UserError(f"--alpha: {alpha} is outside (0, 1]")
        return Recipe(f"rmp({alpha:g})", threshold_scale=alpha, tre=False)
    if method == "radix":
        return Recipe("radix", tre=False)
    raise UserError(f"--method: '{method}' is not one of {', '.join(METHODS)}")


def ablation(cn: bool, cmb: bool, tre: bool) -> Recipe:
    """ECC with CN, CMB and TRE each on or off (paper section 4.6, Figure 5)."""
    name = "+".join(n for n, on in (("CN", cn), ("CMB", cmb), ("TRE", tre)) if on) or "none"
    return Recipe(name, keep_epsilon=cmb, normalise=cn, tre=tre)


def prepare_ops(ops: list, rec: Recipe) -> list:
    """The ONNX chain as the method sees it: without CMB, every BatchNormalization's epsilon is 0."""
    if rec.keep_epsilon:
        return ops
    out = []
    for op in ops:
        if op.kind == "BatchNormalization":
            op = copy.copy(op)
            op.attrs = {**op.attrs, "epsilon": 0.0}
            variance = np.asarray(op.consts[4], dtype=np.float64)
            if np.any(variance <= 0):
                raise UserError(f"node '{op.name}': a zero variance cannot be folded without epsilon")
        out.append(op)
    return out


def method_lambdas(lambdas: list[float], rec: Recipe) -> list[float]:
    """lambda_0 and lambda_N unchanged; spiking layers: 1 (no CN) or alpha * lambda_n."""
    inner = [(value if rec.normalise else 1.0) * rec.threshold_scale for value in lambdas[1:-1]]
    return [lambdas[0], *inner, lambdas[-1]]


def quantize(layers, lambdas: list[float], signed: bool, options, rec: Recipe) -> tuple[list[QuantLayer], list[float], float, float]:
    """Integers of ``rec``: returns (layers, lambdas used, kappa, eta)."""
    from .convert import quantize as quantize_ecc

    used = method_lambdas(lambdas, rec)
    kappa = options.kappa if rec.kappa is None else rec.kappa
    eta = options.eta if rec.tre else 0.0
    # kappa cancels in the integers (docs/arithmetic.md 2.3): quantise with the options' kappa so that wn2017's
    # integers equal ecc's bit for bit (a different kappa only moves float rounding at .5 ties);
    # the method's kappa is the float model's threshold.
    quantised = quantize_ecc(layers, used, signed, replace(options, eta=eta))
    return quantised, used, kappa, eta


def quantize_radix(layers, lambdas: list[float], signed: bool, options) -> list[QuantLayer]:
    """Binary-coded (radix) integers at T = options.timesteps, L = 2^T levels (docs/methods.md).

    Step of layer n: D_n = lambda_n / (L - 1) (lambda_n: the clip maximum theta_n from the graph,
    else the calibration lambda); input step D_0 = lambda_0 / u. For a spiking layer
    W'_n = W_n D_{n-1} / D_n, theta_n = max(1, floor((2^(B-1) - 1) / max|W'_n|)),
    Wq_n = rint(theta_n W'_n), bq_n = rint(theta_n (b_n / D_n + 1/2)) (the half-step bias shift).
    Output layer: W'_N = W_N D_{N-1}, g = (2^(B-1) - 1) / max|W'_N|, Wq_N = rint(g W'_N),
    bq_N = rint(g b_N).
    """
    timesteps = options.timesteps
    if not 1 <= timesteps <= RADIX_MAX_T:
        raise UserError(f"--timesteps: radix needs 1..{RADIX_MAX_T} bits, got {timesteps}")
    levels = 1 << timesteps
    wmax = (1 << (options.weight_bits - 1)) - 1
    full_scale = (1 << (options.input_bits - 1)) - 1 if signed else (1 << options.input_bits) - 1
    step = [lambdas[0] / full_scale] + [value / (levels - 1) for value in lambdas[1:-1]]
    out = []
    for index, layer in enumerate(layers):
        spiking = index < len(layers) - 1
        if layer.kind == "pool":
            raise UserError(f"layer {index + 1} ('{layer.name}'): radix needs --pool compose")
        weight = layer.weight * (step[index] / step[index + 1] if spiking else step[index])
        largest = float(np.max(np.abs(weight)))
        if largest == 0:
            raise UserError(f"layer {index + 1} ('{layer.name}'): all weights are zero")
        if spiking:
            gain = float(max(1, int(np.floor(wmax / largest))))
            bias = np.rint(gain * (layer.bias / step[index + 1] + 0.5))
        else:
            gain = wmax / largest
            bias = np.rint(gain * layer.bias)
        out.append(QuantLayer(
            kind=layer.kind, name=layer.name, input_shape=tuple(layer.input_shape),
            output_shape=tuple(layer.output_shape), weight=np.rint(gain * weight).astype(np.int64),
            bias=bias.astype(np.int64), threshold=int(gain) if spiking else None,
            tre_charge=0 if spiking else None, pool=layer.pool, kernel=tuple(layer.kernel),
            stride=tuple(layer.stride), padding=tuple(layer.padding), dilation=tuple(layer.dilation),
            nominal_fan_in=layer.nominal_fan_in, gain=float(gain), clip=layer.clip,
            float_weight=np.asarray(layer.weight, dtype=np.float64),
            float_bias=np.asarray(layer.bias, dtype=np.float64)))
    return out
