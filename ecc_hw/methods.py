"""Conversion methods: small named variants over the same passes and the same quantiser.

Each method is (a) an optional rewrite of the loaded ONNX chain before the passes (only the CMB
ablation uses one), (b) a rewrite of the lambdas, (c) the TRE fraction eta and the float threshold
kappa, and then the shared rate quantiser of docs/arithmetic.md 2.3/2.4 (``quantize_rate``). ``radix`` has
its own quantiser (``quantize_radix``). The integers come from ``ecc_hw.arithmetic``, the layers from
``QuantLayer.of``. Equations: docs/methods.md.

- ``ecc``:    docs/arithmetic.md as written: CN with kappa, CMB with the model's epsilon, TRE eta.
- ``wn2017``: Rueckauer et al. 2017: data-based weight normalisation (threshold 1 = kappa 1), BN
              folded without epsilon, no TRE (eta 0). Integers equal ecc's with R_n = 0 (kappa
              cancels), except where the epsilon matters.
- ``rmp``:    Han et al. 2020 (RMP-SNN(alpha)): threshold balancing with every spiking layer's
              threshold scaled by alpha, soft reset, no TRE: lambda_n -> alpha * lambda_n for n < N.
- ``radix``:  the 2023 seed's binary-coded conversion (``quantize_radix``, ``ecc_hw.radix``).
- ``ablation(cn, cmb, tre)``: ECC with ingredients switched off (paper Figure 5). No CN means the
              unnormalised network: lambda_n = 1 for 0 < n < N (threshold 1 in activation units).

``options`` below is an ``ecc_hw.convert.ConvertOptions``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from . import arithmetic
from .errors import UserError
from .params import QuantLayer
from .variants import Method


@dataclass(frozen=True)
class Recipe:
    """What a method changes: BN epsilon kept?, lambdas of spiking layers (scale or 1), eta, kappa."""

    name: str
    keep_epsilon: bool = True
    normalise: bool = True          # CN: lambda_n from calibration; False: lambda_n = 1 (0 < n < N)
    threshold_scale: float = 1.0    # alpha: lambda_n -> alpha * lambda_n (0 < n < N)
    tre: bool = True                # False: eta = 0
    kappa: float | None = None      # None: the options' kappa


def recipe(method: Method, alpha: float = 0.8) -> Recipe:
    """The recipe of a named method (``radix`` uses the ECC recipe for its lambdas only)."""
    method = Method.parse(method, "method")
    if method is Method.WN2017:
        return Recipe(method.value, keep_epsilon=False, tre=False, kappa=1.0)
    if method is Method.RMP:
        if not 0 < alpha <= 1:
            raise UserError(f"{alpha} is outside (0, 1]", field="alpha")
        return Recipe(f"rmp({alpha:g})", threshold_scale=alpha, tre=False)
    if method is Method.RADIX:
        return Recipe(method.value, tre=False)
    return Recipe(method.value)


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


def quantize_rate(layers, lambdas: list[float], signed: bool, options) -> list[QuantLayer]:
    """CN and the rate-coded integers with TRE charges (docs/arithmetic.md 1.4, 2.3, 2.4) at ``options``."""
    unit = arithmetic.first_layer_unit(arithmetic.input_full_scale(options.input_bits, signed), options.input_kind,
                                       options.event_count_scale, options.timesteps)
    integers = arithmetic.rate_layer_integers(layers, lambdas, unit, options.weight_bits, options.kappa, options.eta)
    return [QuantLayer.of(layer, values) for layer, values in zip(layers, integers)]


def quantize(layers, lambdas: list[float], signed: bool, options,
             rec: Recipe) -> tuple[list[QuantLayer], list[float], float, float]:
    """Integers of ``rec``: returns (layers, lambdas used, kappa, eta)."""
    used = method_lambdas(lambdas, rec)
    kappa = options.kappa if rec.kappa is None else rec.kappa
    eta = options.eta if rec.tre else 0.0
    # kappa cancels in the integers (docs/arithmetic.md 2.3): quantise with the options' kappa so that wn2017's
    # integers equal ecc's bit for bit (a different kappa only moves float rounding at .5 ties);
    # the method's kappa is the float model's threshold.
    return quantize_rate(layers, used, signed, replace(options, eta=eta)), used, kappa, eta


def quantize_radix(layers, lambdas: list[float], signed: bool, options) -> list[QuantLayer]:
    """Binary-coded (radix) integers at T = options.timesteps bits (``arithmetic.radix_layer_integers``)."""
    integers = arithmetic.radix_layer_integers(layers, lambdas, arithmetic.input_full_scale(options.input_bits, signed),
                                               options.weight_bits, options.timesteps)
    return [QuantLayer.of(layer, values) for layer, values in zip(layers, integers)]
