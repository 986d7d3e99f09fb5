"""The conversion pipeline: options, calibration (docs/arithmetic.md 1.3), then a method's quantiser.

``convert(model_path, calibration_x, options)`` runs the whole pipeline and returns the
``NetworkParams`` the parameter file stores. The arithmetic (CN, gains, thresholds, TRE charges) is
``ecc_hw.arithmetic``'s, applied per method by ``ecc_hw.methods``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from . import cnn, methods, onnx_frontend
from .arithmetic import check_radix_timesteps
from .errors import UserError
from .params import NetworkParams
from .passes import FloatLayer, convert_graph
from .variants import InputKind, LambdaMode, Method, PoolMode, Topology, TreMode, Variant


@dataclass(frozen=True)
class ConvertOptions:
    """Every option of the conversion, with the paper's defaults.

    The variant fields (those whose default is a ``Variant``) take members or their values as strings;
    a string becomes the member, and one that is no member's value raises a UserError naming the field.
    """

    lambda_mode: LambdaMode = LambdaMode.MAX
    percentile: float = 99.99
    kappa: float = 100.0
    eta: float = 0.5
    weight_bits: int = 8
    input_bits: int = 8
    timesteps: int = 128
    pool_mode: PoolMode = PoolMode.COMPOSE
    tre_mode: TreMode = TreMode.SPREAD
    input_shape: tuple | None = None
    method: Method = Method.ECC       # ecc_hw.methods, docs/methods.md
    alpha: float = 0.8                # rmp: threshold scale
    input_kind: InputKind = InputKind.IMAGE  # docs/events.md
    event_count_scale: int = 0        # events: C, the count that stands for input 1.0
    topology: Topology = Topology.AUTO  # chain or graph converter (docs/graphs.md)
    bias_calibration: int | None = None  # graphs: biases (5.8) for this T; 0: off; None: ecc at T (graphs.md)
    bias_calibration_images: int = 200  # calibration images the bias calibration runs on
    channel_lambdas: bool = False     # graphs: one lambda per channel (ecc_hw.graph.channel_scaling)

    def __post_init__(self) -> None:
        for option in fields(self):
            if isinstance(option.default, Variant):
                value = type(option.default).parse(getattr(self, option.name), option.name)
                object.__setattr__(self, option.name, value)

    def check(self) -> None:
        """Raise a one-line UserError naming the first option out of range (its ``field``)."""
        if not 0 < self.percentile <= 100:
            raise UserError(f"{self.percentile} is outside (0, 100]", field="percentile")
        if not self.kappa > 0:
            raise UserError(f"{self.kappa} must be > 0", field="kappa")
        if not 0 <= self.eta <= 1:
            raise UserError(f"{self.eta} is outside 0..1", field="eta")
        if not 2 <= self.weight_bits <= 16:
            raise UserError(f"{self.weight_bits} is outside 2..16", field="weight_bits")
        if not 1 <= self.input_bits <= 16:
            raise UserError(f"{self.input_bits} is outside 1..16 (2..16 for signed input)", field="input_bits")
        if self.timesteps < 1:
            raise UserError(f"{self.timesteps} must be >= 1", field="timesteps")
        if self.bias_calibration is not None and self.bias_calibration < 0:
            raise UserError(f"{self.bias_calibration} must be a T >= 1, or 0 for none", field="bias_calibration")
        if self.bias_calibration_images < 1:
            raise UserError(f"{self.bias_calibration_images} must be >= 1", field="bias_calibration_images")
        methods.recipe(self.method, self.alpha)  # raises on alpha out of range
        if self.method == Method.RADIX:
            check_radix_timesteps(self.timesteps)


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
        elif options.lambda_mode == LambdaMode.MAX:
            value = float(np.max(values))
        else:
            positive = values[values > 0]
            value = float(np.percentile(positive, options.percentile)) if positive.size else 0.0
        if not value > 0:
            raise UserError(f"layer {index + 1} ('{layer.name}'): lambda is 0 on the calibration data "
                            "(a dead layer); use other calibration images")
        lambdas.append(value)
    return lambdas


def check_calibration(x: np.ndarray, input_shape: tuple, where: str, needs: str = "the model needs") -> np.ndarray:
    """Calibration images as float64 (N, *input_shape); a one-line UserError on a wrong shape (``needs`` says
    whose shape it is), no images or NaN."""
    x = np.asarray(x)
    if x.ndim != 1 + len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape):
        raise UserError(f"{where}: x has shape {tuple(x.shape)}, {needs} (N, {', '.join(map(str, input_shape))})")
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
    options.check()
    if options.input_kind == InputKind.EVENTS and options.method == Method.RADIX:
        raise UserError("radix is not supported with event input", field="input_kind")
    rec = recipe if recipe is not None else methods.recipe(options.method, options.alpha)
    model = onnx_frontend.load(model_path, options.input_shape)
    model = replace(model, ops=methods.prepare_ops(model.ops, rec))
    layers = convert_graph(model, options.pool_mode)
    x = check_calibration(calibration_x, model.input_shape, calibration_source)
    signed = bool(np.min(x) < 0)
    if signed and options.input_bits < 2:
        raise UserError("signed calibration data needs 2..16 input bits", field="input_bits")
    lambdas = lambdas_from_calibration(layers, x, options)
    if options.input_kind == InputKind.EVENTS:
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
    if options.method == Method.RADIX:
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
