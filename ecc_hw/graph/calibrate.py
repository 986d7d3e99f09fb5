"""Lambdas of a graph network from the CNN's float64 forward pass (docs/arithmetic.md 1.3, 5.2).

One lambda per layer: ``max`` or ``percentile`` of the strictly positive activations for spiking layers
(a clipped ReLU's clip value, as the chain converter does), ``max |a_N|`` for the output layer;
``lambda_0 = max |x|`` with the input signed exactly when the smallest calibration value is negative.
A max-pool node has the lambda of its source layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..variants import LambdaMode
from .forward import forward
from .network import INPUT, LAYER, GraphNetwork, Source


@dataclass(frozen=True)
class GraphLambdas:
    """``input`` is lambda_0 and ``input_signed`` the input's signedness; ``layers`` holds lambda_1 ..
    lambda_N; ``max_pools`` the lambda of each max-pool node 1..P (its source layer's)."""

    input: float
    input_signed: bool
    layers: tuple[float, ...]
    max_pools: tuple[float, ...]

    def of(self, source: Source) -> float:
        """The lambda of an edge's source: lambda_0, a layer's or a max-pool node's."""
        if source.kind == INPUT:
            return self.input
        if source.kind == LAYER:
            return self.layers[source.index - 1]
        return self.max_pools[source.index - 1]


def spiking_lambda(values: np.ndarray, clip: float | None, lambda_mode: LambdaMode, percentile: float) -> float:
    """lambda_n of a spiking layer from its activations (1.3): the clip when set, else their max or the
    ``percentile`` (numpy linear interpolation) of the strictly positive ones (0 when there are none)."""
    if clip is not None:
        return float(clip)
    if LambdaMode(lambda_mode) == LambdaMode.MAX:
        return float(np.max(values))
    positive = values[values > 0]
    return float(np.percentile(positive, percentile)) if positive.size else 0.0


def calibrate(network: GraphNetwork, x: np.ndarray, lambda_mode: LambdaMode = LambdaMode.MAX,
              percentile: float = 99.99) -> GraphLambdas:
    """The lambdas of ``network`` on calibration images ``x`` (B, *model input shape), in float64; a
    one-line UserError for all-zero input or a dead layer (lambda 0), naming the layer."""
    x = np.asarray(x, dtype=np.float64)
    lambda_0 = float(np.max(np.abs(x))) if x.size else 0.0
    if lambda_0 == 0:
        raise UserError("calibration data: every input value is 0 (lambda_0 = 0)")
    activations = forward(network, x)
    values = [spiking_lambda(a, layer.clip, lambda_mode, percentile)
              for layer, a in zip(network.spiking_layers, activations.layers)]
    values.append(float(np.max(np.abs(activations.logits))))
    for layer, value in zip(network.layers, values):
        if not value > 0:
            raise UserError(f"layer {layer.index} ('{layer.name}'): lambda is 0 on the calibration data "
                            "(a dead layer); use other calibration images")
    pools = tuple(values[pool.source.index - 1] for pool in network.max_pools)
    return GraphLambdas(lambda_0, bool(np.min(x) < 0), tuple(values), pools)
