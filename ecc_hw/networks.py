"""Chain or graph: which converter takes a model, and which reader takes a parameter folder.

A chain (each layer reads the one before it; average pools; NCHW input) goes through the chain
converter (``ecc_hw.convert``), whose parameter folders every command takes, the hardware included;
anything else (residual Add, Concat, max pooling, grouped convolution, NHWC, (N, C, L) and (N, F)
inputs) through the graph converter (``ecc_hw.graph.convert``), whose folders ``evaluate`` takes.
With ``topology auto`` the chain converter is tried first: where it refuses the model's structure,
the graph converter takes it (and its message is the one a user sees when both refuse). Bias
calibration and channel-wise lambdas exist on the graph path only, so asking for them picks that path.
"""
from __future__ import annotations

import numpy as np

from . import manifest, onnx_frontend, params
from .convert import ConvertOptions, convert
from .errors import UserError
from .graph import store
from .graph.convert import convert_graph_model
from .passes import convert_graph
from .variants import Topology


def takes_as_chain(model_path, options: ConvertOptions) -> bool:
    """True when the chain converter accepts the structure of the ONNX model ``model_path`` (with an
    ``--input-shape`` of C, H, W when one is given)."""
    if options.input_shape is not None and len(options.input_shape) != 3:
        return False
    try:
        convert_graph(onnx_frontend.load(model_path, options.input_shape), options.pool_mode)
    except UserError:
        return False
    return True


def chooses_graph(model_path, options: ConvertOptions) -> bool:
    """True when ``options.topology`` sends the model to the graph converter."""
    if options.topology == Topology.AUTO:
        return bool(options.bias_calibration or options.channel_lambdas) or not takes_as_chain(model_path, options)
    return options.topology == Topology.GRAPH


def convert_model(model_path, calibration_x: np.ndarray, options: ConvertOptions,
                  calibration_source: str = "calibration data"):
    """``NetworkParams`` (chain) or ``GraphParams`` (graph) of the model, as ``options.topology`` picks."""
    options.check()
    if chooses_graph(model_path, options):
        return convert_graph_model(model_path, calibration_x, options, calibration_source)
    for field in ("bias_calibration", "channel_lambdas"):
        if getattr(options, field):
            raise UserError("available for graph networks only (use --topology graph or auto)", field=field)
    return convert(model_path, calibration_x, options, calibration_source=calibration_source)


def save_network(network, path) -> None:
    """Write a ``NetworkParams`` or ``GraphParams`` as its parameter folder."""
    (store.save if isinstance(network, store.GraphParams) else params.save)(network, path)


def load_network(path):
    """The ``NetworkParams`` or ``GraphParams`` of the parameter folder ``path``, by its topology."""
    return store.load(path) if manifest.topology(path) == manifest.GRAPH else params.load(path)


def is_graph(network) -> bool:
    """True for a graph network's parameters (``GraphParams``)."""
    return isinstance(network, store.GraphParams)
