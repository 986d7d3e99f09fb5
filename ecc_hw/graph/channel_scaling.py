"""Channel-wise lambdas (docs/arithmetic.md 5.8) as an exact rescaling of the float network.

With one lambda per channel, CN of an edge from source m into layer n reads
``W'_e(o, i) = kappa * lambda_m(i) / lambda_n(o) * W_e(o, i)``. Because ReLU (and max pooling) commute
with a positive per-channel scale, the same integers come from rescaling the CNN itself: divide channel
c of spiking layer n (its edges' output rows and its bias) by ``r_n(c) = lambda_n(c) / lambda_n``,
multiply every edge that reads that channel (from the layer or from its max-pool nodes) by
``r_n(c)``, and then take the one lambda per layer of 1.3 as usual. The rescaled CNN computes the same
logits; only the per-channel scale of each spiking layer changes, so that every channel uses the whole
spike-rate range. Layers with a clipped ReLU keep their scale (their clip is one number per layer).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..variants import LambdaMode
from .calibrate import spiking_lambda
from .forward import forward
from .network import LAYER, MAX_POOL, Edge, Geometry, GraphNetwork, Layer

REFERENCE_PERCENTILE = 50.0  # r_n(c) is relative to the median of the layer's channel lambdas


def input_channels(geometry: Geometry) -> np.ndarray:
    """For every weight of an edge of ``geometry``, the source channel it reads (the weight's shape)."""
    channels, height, width = geometry.pooled_shape
    shape = geometry.weight_shape()
    if geometry.kind == "conv":
        per_group_in, per_group_out = channels // geometry.groups, shape[0] // geometry.groups
        group = np.arange(shape[0]) // per_group_out
        index = group[:, None] * per_group_in + np.arange(per_group_in)[None, :]
        return np.broadcast_to(index[:, :, None, None], shape)
    if geometry.kind == "dense":
        return np.broadcast_to((np.arange(shape[1]) // (height * width))[None, :], shape)
    return np.arange(channels)


def output_channels(geometry: Geometry) -> np.ndarray:
    """For every weight of an edge of ``geometry``, the channel of its layer it feeds (the weight's shape)."""
    shape = geometry.weight_shape()
    if geometry.kind == "conv":
        return np.broadcast_to(np.arange(shape[0]).reshape(-1, 1, 1, 1), shape)
    if geometry.kind == "dense":
        per_channel = shape[0] // geometry.output_shape[0]
        return np.broadcast_to((np.arange(shape[0]) // per_channel)[:, None], shape)
    return geometry.channel_offset + np.arange(shape[0])


def channel_ratios(network: GraphNetwork, x: np.ndarray, lambda_mode: LambdaMode, percentile: float) -> dict:
    """r_n per spiking layer index without a clip: each channel's lambda (1.3, over that channel's
    activations on ``x``) over the median of the layer's channel lambdas; a dead channel gets 1."""
    activations = forward(network, x)
    ratios = {}
    for layer, values in zip(network.spiking_layers, activations.layers):
        if layer.clip is not None:
            continue
        per_channel = values.reshape(len(values), layer.output_shape[0], -1)
        lambdas = np.array([spiking_lambda(per_channel[:, c], None, lambda_mode, percentile)
                            for c in range(layer.output_shape[0])])
        alive = lambdas > 0
        if not np.any(alive):
            continue
        reference = float(np.percentile(lambdas[alive], REFERENCE_PERCENTILE))
        ratios[layer.index] = np.where(alive, lambdas / reference, 1.0)
    return ratios


def _source_ratios(network: GraphNetwork, ratios: dict, edge: Edge) -> np.ndarray | None:
    if edge.source.kind == LAYER:
        return ratios.get(edge.source.index)
    if edge.source.kind == MAX_POOL:
        return ratios.get(network.max_pools[edge.source.index - 1].source.index)
    return None


def _rescaled_layer(network: GraphNetwork, layer: Layer, ratios: dict) -> Layer:
    own = ratios.get(layer.index) if layer.spiking else None
    edges = []
    for edge in layer.edges:
        weight = edge.weight.copy()
        source = _source_ratios(network, ratios, edge)
        if source is not None:
            weight = weight * source[input_channels(edge.geometry)]
        if own is not None:
            weight = weight / own[output_channels(edge.geometry)]
        edges.append(replace(edge, weight=weight))
    bias = layer.bias
    if own is not None:
        bias = bias / (own if bias.ndim == 1 else own[:, None, None])
    return replace(layer, edges=tuple(edges), bias=bias)


def equalise_channels(network: GraphNetwork, x: np.ndarray, lambda_mode: LambdaMode = LambdaMode.MAX,
                      percentile: float = 99.99) -> GraphNetwork:
    """``network`` rescaled so that every channel of each unclipped spiking layer has the same lambda on
    calibration images ``x`` (see the module docstring); its logits are the original's."""
    ratios = channel_ratios(network, np.asarray(x, dtype=np.float64), lambda_mode, percentile)
    return replace(network, layers=tuple(_rescaled_layer(network, layer, ratios) for layer in network.layers))
