"""CN per edge and the integers of a graph network (docs/arithmetic.md 5.2, 5.3; 2.2-2.4 per layer).

For an edge e from source m into layer n, ``W'_e = kappa lambda_m / lambda_n W_e`` and
``b'_n = kappa b_n / lambda_n``; one gain per layer over all of its edges,
``g_n = (2^(B-1) - 1) / max_e max |W'_e|``; then ``Wq_e = rint(g_n W'_e)``, ``bq_n = rint(g_n b'_n u_n)``,
``theta_n = max(1, rint(g_n kappa u_n))`` and ``R_n = rint(eta theta_n)`` for spiking layers, with
``u_n = u`` for a layer fed only by the network input and 1 otherwise. The formulas are
``ecc_hw.arithmetic``'s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arithmetic import current_normalised, input_full_scale, layer_gain, normalised_input
from ..errors import UserError
from .calibrate import GraphLambdas
from .edge_map import EdgeMap
from .network import INPUT, Geometry, GraphNetwork, Layer, Source


@dataclass(frozen=True)
class IntegerEdge:
    """Edge ``source`` -> its layer with ``geometry`` (``ecc_hw.graph.network.Geometry``) and int64 ``weight``
    Wq_e."""

    source: Source
    geometry: Geometry
    weight: np.ndarray

    def edge_map(self) -> EdgeMap:
        """The edge's map with Wq_e in float64 (exact for the partial sums of any B <= 16 network)."""
        return EdgeMap(self.geometry, self.weight.astype(np.float64))


@dataclass(frozen=True)
class IntegerLayer:
    """Layer n's integers: ``edges``, ``bias`` bq_n per neuron (int64, channel-major), ``threshold``
    theta_n and ``tre_charge`` R_n (None on the output layer), the gain g_n and ``unit`` u_n."""

    index: int
    name: str
    output_shape: tuple[int, int, int]
    edges: tuple[IntegerEdge, ...]
    bias: np.ndarray
    threshold: int | None
    tre_charge: int | None
    gain: float
    unit: int

    @property
    def spiking(self) -> bool:
        """True for layers 1..N-1."""
        return self.threshold is not None

    @property
    def neurons(self) -> int:
        """Number of neurons of the layer."""
        return int(np.prod(self.output_shape))

    @property
    def fed_by_input(self) -> bool:
        """True when the network input is the layer's only source (its current is constant per image)."""
        return all(edge.source.kind == INPUT for edge in self.edges)


@dataclass(frozen=True)
class IntegerGraph:
    """A quantised graph network: its float ``network`` (input layout, max-pool nodes), ``layers`` 1..N
    as ``IntegerLayer``, the ``lambdas`` and options it was made with, and the input full scale u."""

    network: GraphNetwork
    layers: tuple[IntegerLayer, ...]
    lambdas: GraphLambdas
    weight_bits: int
    input_bits: int
    input_full_scale: int
    kappa: float
    eta: float

    @property
    def spiking_layers(self) -> tuple[IntegerLayer, ...]:
        """Layers 1..N-1."""
        return self.layers[:-1]

    @property
    def output_layer(self) -> IntegerLayer:
        """Layer N."""
        return self.layers[-1]

    def quantise_input(self, x: np.ndarray) -> np.ndarray:
        """x_q = rint(clip(x / lambda_0, lo, 1) * u) (2.2) as int64 channel-major rows (B, C * H * W), for
        ``x`` in the model's own input layout."""
        rows = self.network.input.channel_major(x)
        scaled = normalised_input(rows, self.lambdas.input, self.lambdas.input_signed)
        return np.rint(scaled * self.input_full_scale).astype(np.int64)


def quantise_layer(layer: Layer, lambdas: GraphLambdas, weight_bits: int, input_unit: int, kappa: float,
                   eta: float) -> IntegerLayer:
    """One layer's integers (5.2, 5.3): CN per edge, one gain over all edges, bq, theta and R."""
    lambda_layer = lambdas.layers[layer.index - 1]
    normalised = [current_normalised(edge.weight, layer.bias_per_neuron(), kappa, lambdas.of(edge.source),
                                     lambda_layer) for edge in layer.edges]
    bias = normalised[0][1]
    where = f"layer {layer.index} ('{layer.name}')"
    gain = layer_gain(weight_bits, np.concatenate([weight.ravel() for weight, _ in normalised]), where)
    unit = input_unit if all(edge.source.kind == INPUT for edge in layer.edges) else 1
    threshold = max(1, int(np.rint(gain * kappa * unit))) if layer.spiking else None
    edges = tuple(IntegerEdge(edge.source, edge.geometry, np.rint(gain * weight).astype(np.int64))
                  for edge, (weight, _) in zip(layer.edges, normalised))
    return IntegerLayer(layer.index, layer.name, layer.output_shape, edges,
                        np.rint(gain * bias * unit).astype(np.int64), threshold,
                        int(np.rint(eta * threshold)) if layer.spiking else None, float(gain), unit)


def quantise_graph(network: GraphNetwork, lambdas: GraphLambdas, weight_bits: int = 8, input_bits: int = 8,
                   kappa: float = 100.0, eta: float = 0.5) -> IntegerGraph:
    """The ``IntegerGraph`` of ``network`` with ``lambdas`` at B = ``weight_bits``, I = ``input_bits``."""
    if lambdas.input_signed and input_bits < 2:
        raise UserError("signed calibration data needs 2..16 input bits", field="input_bits")
    full_scale = input_full_scale(input_bits, lambdas.input_signed)
    layers = tuple(quantise_layer(layer, lambdas, weight_bits, full_scale, kappa, eta) for layer in network.layers)
    return IntegerGraph(network, layers, lambdas, weight_bits, input_bits, full_scale, kappa, eta)
