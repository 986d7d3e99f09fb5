"""The conversion of a graph network: ONNX file + calibration images -> ``GraphParams`` (docs/graphs.md).

The passes and the edge builder (``ecc_hw.graph.pipeline``), the lambdas from the CNN's activations
(``calibrate``), CN per edge and the integers (``quantise``; radix coding: ``radix``) and, when asked
for, bias calibration for one T (5.8). The options are ``ecc_hw.convert.ConvertOptions``; those that only chains support
(another method, event input, pools as their own layers) are refused in one line naming the option.
"""
from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from ..convert import ConvertOptions, check_calibration
from ..errors import UserError
from ..manifest import file_sha256
from ..methods import Recipe, recipe
from ..variants import InputKind, Method, PoolMode
from .bias_calibration import calibrate_biases
from .calibrate import GraphLambdas, calibrate
from .channel_scaling import equalise_channels
from .network import GraphNetwork
from .pipeline import convert_graph
from .quantise import quantise_graph
from .radix import quantise_radix_graph
from .store import GraphParams

GRAPH_METHODS = (Method.ECC, Method.WN2017, Method.RMP, Method.RADIX)


def check_graph_options(options: ConvertOptions) -> None:
    """A one-line UserError naming the first option the graph converter does not take."""
    if options.method not in GRAPH_METHODS:
        raise UserError(f"method {options.method} is not available for graph networks yet (available: "
                        f"{', '.join(GRAPH_METHODS)})", field="method")
    if options.method != Method.ECC and options.bias_calibration:
        raise UserError("bias calibration is for the ecc method", field="bias_calibration")
    if options.channel_lambdas and options.method == Method.RADIX:
        raise UserError("channel-wise lambdas are for rate coding", field="channel_lambdas")
    if options.input_kind != InputKind.IMAGE:
        raise UserError("event input is not available for graph networks yet", field="input_kind")
    if options.pool_mode != PoolMode.COMPOSE:
        raise UserError(f"'{options.pool_mode}' is for chains; a graph network composes its average pools",
                        field="pool_mode")


def method_lambdas(lambdas: GraphLambdas, rec: Recipe) -> GraphLambdas:
    """The lambdas a rate method uses (``ecc_hw.methods.method_lambdas`` per layer): lambda_0 and lambda_N as
    calibrated, each spiking layer's (and so its max-pool nodes') times the recipe's threshold scale."""
    scale = rec.threshold_scale
    layers = tuple(value * scale for value in lambdas.layers[:-1]) + (lambdas.layers[-1],)
    return replace(lambdas, layers=layers, max_pools=tuple(value * scale for value in lambdas.max_pools))


def bias_calibration_steps(options: ConvertOptions) -> int:
    """The T the biases are calibrated for (0: none). By default (``bias_calibration`` None) a graph network
    converted with ecc is calibrated for ``options.timesteps``: on the bundled Fashion-MNIST models it
    gains up to 28 pp at T = 32, and where it loses (at most 1.5 pp, the QCFS-trained ResNet) the SNN stays
    within 0.2 pp of its CNN (docs/graphs.md)."""
    if options.bias_calibration is None:
        return options.timesteps if options.method == Method.ECC else 0
    return options.bias_calibration


def check_graph_calibration(network: GraphNetwork, x: np.ndarray, where: str) -> np.ndarray:
    """Calibration images as float64 in the model's own input layout (``ecc_hw.convert.check_calibration``)."""
    spec = network.input
    return check_calibration(x, tuple(spec.model_shape), where, f"the model's {spec.layout} input '{spec.name}' is")


def convert_graph_model(model_path, calibration_x: np.ndarray, options: ConvertOptions,
                        calibration_source: str = "calibration data") -> GraphParams:
    """ONNX model + calibration images (the model's own layout) -> the ``GraphParams`` of ``options``."""
    options.check()
    check_graph_options(options)
    rec = recipe(options.method, options.alpha)
    network = convert_graph(model_path, options.input_shape, rec.keep_epsilon)
    x = check_graph_calibration(network, calibration_x, calibration_source)
    if options.channel_lambdas:
        network = equalise_channels(network, x, options.lambda_mode, options.percentile)
    lambdas = calibrate(network, x, options.lambda_mode, options.percentile)
    if options.method == Method.RADIX:
        graph = quantise_radix_graph(network, lambdas, options.weight_bits, options.input_bits, options.timesteps)
    else:
        lambdas = method_lambdas(lambdas, rec)
        graph = quantise_graph(network, lambdas, options.weight_bits, options.input_bits, options.kappa,
                               options.eta if rec.tre else 0.0)
    calibrated_for, corrections = None, ()
    steps = bias_calibration_steps(options)
    if steps:
        result = calibrate_biases(graph, x[:options.bias_calibration_images], steps,
                                  options.tre_mode)
        graph, calibrated_for = result.graph, result.timesteps
        corrections = tuple(tuple(int(v) for v in values) for values in result.corrections)
    provenance = {
        "source_model": str(model_path).split("/")[-1], "source_sha256": file_sha256(model_path),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()},
        "recipe": asdict(rec),
        "calibration": {"source": calibration_source, "images": int(len(x)),
                        "min": float(np.min(x)), "max": float(np.max(x))},
    }
    return GraphParams(graph, options.method, options.tre_mode, options.timesteps, calibrated_for, corrections,
                       provenance)
