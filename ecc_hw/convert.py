"""Calibration, current normalisation (CN) and integer quantisation: docs/arithmetic.md sections 1.3-2.4.

``convert(model_path, calibration_x, options)`` runs the whole pipeline and returns the
``NetworkParams`` the parameter file stores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from . import cnn, onnx_frontend
from .errors import UserError
from .params import NetworkParams, QuantLayer
from .passes import FloatLayer, convert_graph


@dataclass(frozen=True)
class ConvertOptions:
    """Every option of the conversion, with the paper's defaults."""

    lambda_mode: str = "max"          # "max" or "percentile"
    percentile: float = 99.99
    kappa: float = 100.0
    eta: float = 0.5
    weight_bits: int = 8
    input_bits: int = 8
    timesteps: int = 128
    pool_mode: str = "compose"        # "compose" or "layer"
    tre_mode: str = "spread"          # "spread" or "initial"
    input_shape: tuple | None = None
    method: str = "ecc"               # ecc, wn2017, rmp, radix (ecc_hw.methods, docs/methods.md)
    alpha: float = 0.8                # rmp: threshold scale
    input_kind: str = "image"         # "image" or "events" (docs/events.md)
    event_count_scale: int = 0        # events: C, the count that stands for input 1.0

    def check(self) -> None:
        """Raise a one-line UserError naming the first option out of range."""
        if self.lambda_mode not in ("max", "percentile"):
            raise UserError(f"--lambda: '{self.lambda_mode}' is not one of max, percentile")
        if not 0 < self.percentile <= 100:
            raise UserError(f"--percentile: {self.percentile} is outside (0, 100]")
        if not self.kappa > 0:
            raise UserError(f"--kappa: {self.kappa} must be > 0")
        if not 0 <= self.eta <= 1:
            raise UserError(f"--eta: {self.eta} is outside 0..1")
        if not 2 <= self.weight_bits <= 16:
            raise UserError(f"--weight-bits: {self.weight_bits} is outside 2..16")
        if not 1 <= self.input_bits <= 16:
            raise UserError(f"--input-bits: {self.input_bits} is outside 1..16 (2..16 for signed input)")
        if self.timesteps < 1:
            raise UserError(f"--timesteps: {self.timesteps} must be >= 1")
        if self.pool_mode not in ("compose", "layer"):
            raise UserError(f"--pool: '{self.pool_mode}' is not one of compose, layer")
        if self.tre_mode not in ("spread", "initial"):
            raise UserError(f"--tre: '{self.tre_mode}' is not one of spread, initial")
        from . import methods
        methods.recipe(self.method, self.alpha)  # raises on an unknown method or alpha out of range
        if self.method == "radix" and not 1 <= self.timesteps <= methods.RADIX_MAX_T:
            raise UserError(f"--timesteps: radix needs 1..{methods.RADIX_MAX_T} bits (L = 2^T), "
                            f"got {self.timesteps}")


def lambdas_from_calibration(layers: list[FloatLayer], x: np.ndarray, options: ConvertOptions) -> list[float]:
    """lambda_0 .. lambda_N from the CNN's float64 activations (docs/arithmetic.md 1.3)."""
    lambda_0 = float(np.max(np.abs(x)))
    if lambda_0 == 0:
        raise UserError("calibration data: every input value is 0 (lambda_0 = 0)")
    _, activations = cnn.forward(layers, x, keep_activations=True)
    lambdas = [lambda_0]
    for index, (layer, values) in enumerate(zip(layers, activations)):
        if index == len(layers) - 1:
            value = float(np.max(np.abs(values)))
        elif layer.clip is not None:
            value = float(layer.clip)
        elif options.lambda_mode == "max":
            value = float(np.max(values))
        else:
            positive = values[values > 0]
            value = float(np.percentile(positive, options.percentile)) if positive.size else 0.0
        if not value > 0:
            raise UserError(f"layer {index + 1} ('{layer.name}'): lambda is 0 on the calibration data "
                            "(a dead layer); use other calibration images")
        lambdas.append(value)
    return lambdas


def quantize(layers: list[FloatLayer], lambdas: list[float], signed_input: bool,
             options: ConvertOptions) -> list[QuantLayer]:
    """CN (docs/arithmetic.md 1.4) and integer quantisation with TRE charges (docs/arithmetic.md 2.3, 2.4)."""
    wmax = (1 << (options.weight_bits - 1)) - 1
    full_scale = (1 << (options.input_bits - 1)) - 1 if signed_input else (1 << options.input_bits) - 1
    quantised = []
    for index, layer in enumerate(layers):
        scale = options.kappa / lambdas[index + 1]
        weight = scale * lambdas[index] * layer.weight          # W'_n
        bias = scale * layer.bias                               # b'_n
        largest = float(np.max(np.abs(weight)))
        if largest == 0:
            raise UserError(f"layer {index + 1} ('{layer.name}'): all weights are zero")
        gain = wmax / largest
        unit = full_scale if index == 0 else 1
        if index == 0 and options.input_kind == "events":
            unit = options.event_count_scale / options.timesteps  # C events over T frames = input 1.0
        spiking = index < len(layers) - 1
        threshold = max(1, int(np.rint(gain * options.kappa * unit))) if spiking else None
        quantised.append(QuantLayer(
            kind=layer.kind, name=layer.name, input_shape=tuple(layer.input_shape),
            output_shape=tuple(layer.output_shape),
            weight=np.rint(gain * weight).astype(np.int64),
            bias=np.rint(gain * bias * unit).astype(np.int64),
            threshold=threshold,
            tre_charge=int(np.rint(options.eta * threshold)) if spiking else None,
            pool=layer.pool, kernel=tuple(layer.kernel), stride=tuple(layer.stride),
            padding=tuple(layer.padding), dilation=tuple(layer.dilation),
            nominal_fan_in=layer.nominal_fan_in, gain=float(gain), clip=layer.clip,
            float_weight=np.asarray(layer.weight, dtype=np.float64),
            float_bias=np.asarray(layer.bias, dtype=np.float64)))
    return quantised


def check_calibration(x: np.ndarray, input_shape: tuple, where: str) -> np.ndarray:
    """Calibration images as float64 (N, C, H, W); a one-line UserError on wrong shape or NaN."""
    x = np.asarray(x)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise UserError(f"{where}: x has shape {tuple(x.shape)}, the model needs (N, {', '.join(map(str, input_shape))})")
    if len(x) == 0:
        raise UserError(f"{where}: x holds no images")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise UserError(f"{where}: x contains NaN or infinite values")
    return x


def convert(model_path, calibration_x: np.ndarray, options: ConvertOptions,
            calibration_source: str = "calibration data", recipe=None) -> NetworkParams:
    """ONNX model + calibration images -> integer SNN parameters of ``options.method``.

    ``recipe`` (an ``ecc_hw.methods.Recipe``, e.g. an ablation) overrides the method's own.
    """
    from . import methods

    options.check()
    if options.input_kind == "events" and options.method == "radix":
        raise UserError("--input events: radix is not supported with event input")
    rec = recipe if recipe is not None else methods.recipe(options.method, options.alpha)
    model = onnx_frontend.load(model_path, options.input_shape)
    model = replace(model, ops=methods.prepare_ops(model.ops, rec))
    layers = convert_graph(model, options.pool_mode)
    x = check_calibration(calibration_x, model.input_shape, calibration_source)
    signed = bool(np.min(x) < 0)
    if signed and options.input_bits < 2:
        raise UserError("--input-bits: signed calibration data needs 2..16 input bits")
    lambdas = lambdas_from_calibration(layers, x, options)
    if options.input_kind == "events":
        if signed or float(np.max(x)) > 1:
            raise UserError(f"{calibration_source}: event CNN input must be normalised counts in 0..1")
        lambdas[0] = 1.0  # the count scale C stands for 1.0 (paper 4.5: normalised by the maximum)
    provenance = {
        "source_model": str(model_path).split("/")[-1], "source_sha256": model.sha256,
        "opset": model.opset, "producer": model.producer,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()},
        "calibration": {"source": calibration_source, "images": int(len(x)),
                        "min": float(np.min(x)), "max": float(np.max(x))},
    }
    calibrated = list(lambdas)
    if options.method == "radix":
        quantised, kappa, eta = methods.quantize_radix(layers, lambdas, signed, options), 1.0, 0.0
    else:
        quantised, lambdas, kappa, eta = methods.quantize(layers, lambdas, signed, options, rec)
    provenance["recipe"] = asdict(rec)
    provenance["calibration_lambdas"] = calibrated
    return NetworkParams(
        input_shape=tuple(model.input_shape), input_bits=options.input_bits, input_signed=signed,
        weight_bits=options.weight_bits, timesteps=options.timesteps, eta=eta,
        kappa=kappa, layers=quantised, lambdas=lambdas,
        tre_mode=options.tre_mode, method=options.method, provenance=provenance)
