"""Bias calibration of an integer graph network (docs/arithmetic.md 5.8; Li et al., ICML 2021).

Rate coding makes deep layers receive, on average, a different current than the CNN's pre-activation
says. For each layer n in turn, starting from the first, the integer SNN (``ecc_hw.graph.golden``) is
run at the target T on the calibration images, and for every neuron the SNN's mean input current

    Ibar_n = sum_t (Z_n(t) - e_n(t)) / T = sum_e Wq_e (*) (N_src(e) / T) + bq_n

(N the spike counts; for the network input the constant x_q) is compared with the CNN's expected
current in the same integer units (2.3, 5.2, 5.3)

    I*_n = g_n * kappa * z_n / lambda_n * u_n

with z_n the CNN's float pre-activation of layer n on the same image. The per-channel mean of
``I*_n - Ibar_n`` (over images and the channel's positions) is rounded (``rint``) and added to bq_n of
every neuron of that channel; the next layer is then measured with the corrected layers in front of it.
The output layer N is corrected as well by default (its per-class offsets are what 5.8 is about);
``include_output=False`` leaves it alone. The corrected integers depend on T, so the result records it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..variants import TreMode
from .edge_map import EdgeMap
from .forward import forward
from .golden import run_graph
from .network import LAYER, MAX_POOL, NETWORK_INPUT, GraphNetwork, Source
from .quantise import IntegerGraph, IntegerLayer

CHUNK = 64  # images whose spike trains are recorded at once


@dataclass(frozen=True)
class BiasCalibratedGraph:
    """An ``IntegerGraph`` whose bq_n were bias-calibrated for T = ``timesteps``; ``corrections`` holds,
    per layer 1..N, the int64 per-channel amount added to bq_n (zeros for a layer left alone)."""

    graph: IntegerGraph
    timesteps: int
    corrections: tuple[np.ndarray, ...]

    @property
    def bias_calibrated_for(self) -> int:
        """The T the corrected biases were made for (5.8: the parameter file must state it)."""
        return self.timesteps


def source_rates(graph: IntegerGraph, x_q: np.ndarray, timesteps: int,
                 tre_mode: TreMode = TreMode.SPREAD) -> dict[Source, np.ndarray]:
    """Per source, what one step delivers on average: x_q for the network input and the spike counts
    / T for every spiking layer and max-pool node, each (B, neurons) float64."""
    x_q = np.asarray(x_q, dtype=np.int64)
    sums: dict[Source, np.ndarray] = {}
    for start in range(0, len(x_q), CHUNK):
        trains = run_graph(graph, x_q[start:start + CHUNK], timesteps, tre_mode, record_spikes=True).spikes
        for source, spikes in trains.items():
            sums.setdefault(source, []).append(spikes.sum(axis=0, dtype=np.int64))
    rates = {source: np.concatenate(parts).astype(np.float64) / timesteps for source, parts in sums.items()}
    rates[NETWORK_INPUT] = x_q.astype(np.float64)
    return rates


def snn_mean_current(layer: IntegerLayer, rates: dict[Source, np.ndarray]) -> np.ndarray:
    """Ibar_n per image and neuron (B, neurons): the mean over the T steps of Z_n without the TRE charge."""
    total = layer.bias[None, :].astype(np.float64)
    for edge in layer.edges:
        total = total + edge.edge_map().apply(rates[edge.source])
    return total


def cnn_sources(network: GraphNetwork, x: np.ndarray) -> dict[Source, np.ndarray]:
    """The CNN's float64 activations of every source (input rows, spiking layers, max-pool nodes)."""
    activations = forward(network, x)
    values = {NETWORK_INPUT: network.input.channel_major(np.asarray(x, dtype=np.float64)).astype(np.float64)}
    for layer, value in zip(network.spiking_layers, activations.layers):
        values[Source(LAYER, layer.index)] = value
    for pool, value in zip(network.max_pools, activations.max_pools):
        values[Source(MAX_POOL, pool.index)] = value
    return values


def cnn_expected_current(graph: IntegerGraph, layer: IntegerLayer, values: dict[Source, np.ndarray]) -> np.ndarray:
    """I*_n = g_n kappa z_n / lambda_n u_n per image and neuron (B, neurons), z_n from the CNN's activations."""
    float_layer = graph.network.layer(layer.index)
    z = float_layer.bias_per_neuron()[None, :].astype(np.float64)
    for edge in float_layer.edges:
        z = z + EdgeMap.of(edge).apply(values[edge.source])
    return layer.gain * graph.kappa * z / graph.lambdas.layers[layer.index - 1] * layer.unit


def per_channel(values: np.ndarray, layer: IntegerLayer) -> np.ndarray:
    """Mean over images and over each channel's positions of (B, C * H * W) channel-major values: (C,)."""
    channels = layer.output_shape[0]
    return values.reshape(len(values), channels, -1).mean(axis=(0, 2))


def current_errors(graph: IntegerGraph, x: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
                   values: dict[Source, np.ndarray] | None = None) -> list[np.ndarray]:
    """Per layer 1..N, the per-channel mean of I*_n - Ibar_n on images ``x`` (model input layout)."""
    values = cnn_sources(graph.network, x) if values is None else values
    rates = source_rates(graph, graph.quantise_input(x), timesteps, tre_mode)
    return [per_channel(cnn_expected_current(graph, layer, values) - snn_mean_current(layer, rates), layer)
            for layer in graph.layers]


def _with_bias(graph: IntegerGraph, position: int, correction: np.ndarray) -> IntegerGraph:
    layer = graph.layers[position]
    per_neuron = np.repeat(correction, layer.neurons // layer.output_shape[0])
    new_layer = replace(layer, bias=(layer.bias + per_neuron).astype(np.int64))
    return replace(graph, layers=graph.layers[:position] + (new_layer,) + graph.layers[position + 1:])


def calibrate_biases(graph: IntegerGraph, x: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
                     include_output: bool = True) -> BiasCalibratedGraph:
    """Bias calibration (5.8) of ``graph`` for T = ``timesteps`` on calibration images ``x`` (B, *model input
    shape): layer by layer from the first, add rint of the per-channel mean current error to bq_n, the
    SNN being re-run with every correction made so far. Only the biases change; the input is not mutated."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    x = np.asarray(x, dtype=np.float64)
    values = cnn_sources(graph.network, x)
    x_q = graph.quantise_input(x)
    positions = range(len(graph.layers) if include_output else len(graph.layers) - 1)
    corrections = [np.zeros(layer.output_shape[0], dtype=np.int64) for layer in graph.layers]
    rates = None
    for position in positions:
        layer = graph.layers[position]
        if rates is None:  # the rates in front of this layer are stale after the previous correction
            rates = source_rates(graph, x_q, timesteps, tre_mode)
        error = per_channel(cnn_expected_current(graph, layer, values) - snn_mean_current(layer, rates), layer)
        correction = np.rint(error).astype(np.int64)
        corrections[position] = correction
        if np.any(correction):
            graph = _with_bias(graph, position, correction)
            rates = None
    return BiasCalibratedGraph(graph, int(timesteps), tuple(corrections))


def mean_abs_errors(graph: IntegerGraph, x: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD
                    ) -> list[float]:
    """Per layer 1..N, the mean over channels of |per-channel mean current error| (the quantity calibrated)."""
    return [float(np.mean(np.abs(error))) for error in current_errors(graph, x, timesteps, tre_mode)]


__all__ = ["BiasCalibratedGraph", "calibrate_biases", "cnn_expected_current", "current_errors",
           "mean_abs_errors", "snn_mean_current", "source_rates"]
