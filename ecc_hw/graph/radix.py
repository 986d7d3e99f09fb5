"""The binary-coded (radix) method on graph networks: integers, golden model and quantised ANN reference.

Radix coding (docs/methods.md, ``ecc_hw.radix`` for chains) on the edges of docs/arithmetic.md 5.1: a spike
of a source at step t = 1..T weighs 2^(T-t), so a source transmits a T-bit level q in 0..2^T - 1, MSB first.

Integers (``quantise_radix_graph``): each layer n is quantised as the chain quantises a layer
(``ecc_hw.arithmetic.radix_layer_integers``), over all of its edges at once. The step of a source is
D_0 = lambda_0 / u for the network input and D_m = lambda_m / (L - 1), L = 2^T, for a spiking layer or a
max-pool node (whose lambda is its source's); for a QCFS model lambda_m is the clip the model was trained
with (``ecc_hw.graph.calibrate``). An edge e's weights enter the chain arithmetic scaled by
D_src(e) / D_(n-1), the chain's source step being D_(n-1) (on a chain this ratio is exactly 1): so
``W'_e = W_e D_src(e) / D_n`` with one ``theta_n = max(1, floor((2^(B-1) - 1) / max_e max |W'_e|))`` per
spiking layer, ``Wq_e = rint(theta_n W'_e)``, ``bq_n = rint(theta_n (b_n / D_n + 1/2))``, R_n = 0; the
output layer ``W'_e = W_e D_src(e)`` with one gain over its edges.

Golden model (``run_radix_graph``), per image, sources in ``GraphNetwork.schedule()`` order, each for all T
steps before its consumers (a layer fires once its sources have delivered their T bits):
```
V_n = bq_n + sum_e Wq_e (*) x_q                              # a layer fed by the input: once
V_n = bq_n + sum_e sum_t 2^(T-t) Wq_e (*) s_src(e)(t)        # else (Horner: U <- 2U + Wq_e (*) s(t))
s_n(t) = V_n >= theta_n 2^(T-t);  V_n -= theta_n 2^(T-t) s_n(t)      # t = 1..T, ``ecc_hw.radix``'s neuron
```
A max-pool node p (docs/arithmetic.md 5.4) keeps each cell's MSB-first prefix D_i(t) = 2 D_i(t-1) + s_i(t)
and emits ``s_p(t) = D_p(t) - 2 D_p(t-1)``, D_p(t) the maximum of D_i(t) over the window's non-padding
cells: the cells with D_i(t-1) = D_p(t-1) are those still tied for the maximum, and s_p(t) = 1 exactly
when one of them fires at t (the others can no longer reach the maximum). So p transmits the T bits of the
maximum of its window's levels. The output layer accumulates like V_n above; prediction = argmax V_N.

Since the spikes of layer n are the binary digits of clip(floor(V_n / theta_n), 0, 2^T - 1), the network
equals the integer quantised ANN (``quantised_graph_ann``) source by source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends import is_torch
from ..arithmetic import check_radix_timesteps, input_full_scale, radix_layer_integers, radix_levels, radix_step
from ..errors import UserError
from ..radix import _fire as compare_and_subtract
from .calibrate import GraphLambdas
from .edge_map import EdgeMap
from .network import INPUT, LAYER, NETWORK_INPUT, GraphNetwork, Layer, MaxPoolNode, Source
from .pooling import max_pool
from .quantise import IntegerEdge, IntegerGraph, IntegerLayer
from .simulate import GraphResult, fan_outs_by_source

CHUNK = 128  # images simulated together


# ------------------------------------------------------------------------------------------------ integers

@dataclass(frozen=True)
class _ChainLayer:
    """Layer n as ``radix_layer_integers`` reads a chain layer: its edges' weights, each scaled by
    D_src(e) / D_(n-1), raveled and concatenated in edge order; b_n per neuron."""

    kind: str
    name: str
    weight: np.ndarray
    bias: np.ndarray


def _source_step(source: Source, lambdas: GraphLambdas, full_scale: int, levels: int) -> float:
    """D of a source: lambda_0 / u for the network input, lambda / (L - 1) for a layer or max-pool node."""
    if source.kind == INPUT:
        return lambdas.input / full_scale
    return radix_step(lambdas.of(source), levels)


def _chain_layer(layer: Layer, lambdas: GraphLambdas, full_scale: int, levels: int) -> _ChainLayer:
    """``layer`` with its edge weights scaled to the chain's source step D_(n-1) (the input's for layer 1)."""
    reference = (_source_step(NETWORK_INPUT, lambdas, full_scale, levels) if layer.index == 1
                 else radix_step(lambdas.layers[layer.index - 2], levels))
    weight = np.concatenate([
        (edge.weight * (_source_step(edge.source, lambdas, full_scale, levels) / reference)).ravel()
        for edge in layer.edges])
    return _ChainLayer("edges", layer.name, weight, layer.bias_per_neuron())


def _split_edges(layer: Layer, weight: np.ndarray) -> tuple[IntegerEdge, ...]:
    """The concatenated integer weights back into one ``IntegerEdge`` per edge of ``layer``."""
    sizes = [edge.weight.size for edge in layer.edges]
    parts = np.split(weight, np.cumsum(sizes)[:-1])
    return tuple(IntegerEdge(edge.source, edge.geometry, part.reshape(edge.weight.shape))
                 for edge, part in zip(layer.edges, parts))


def quantise_radix_graph(network: GraphNetwork, lambdas: GraphLambdas, weight_bits: int = 8, input_bits: int = 8,
                         timesteps: int = 4) -> IntegerGraph:
    """The radix ``IntegerGraph`` of ``network`` with ``lambdas`` at B = ``weight_bits``, I = ``input_bits`` and
    T = ``timesteps`` bits per layer (L = 2^T levels). ``threshold`` is theta_n, ``tre_charge`` 0, ``gain`` the
    layer's gain and ``unit`` 1 (u is in layer 1's input step); the graph records kappa 1 and eta 0, as the
    chain's radix parameter files do."""
    check_radix_timesteps(timesteps)
    if lambdas.input_signed and input_bits < 2:
        raise UserError("signed calibration data needs 2..16 input bits", field="input_bits")
    full_scale = input_full_scale(input_bits, lambdas.input_signed)
    levels = radix_levels(timesteps)
    chain = [_chain_layer(layer, lambdas, full_scale, levels) for layer in network.layers]
    integers = radix_layer_integers(chain, [lambdas.input, *lambdas.layers], full_scale, weight_bits, timesteps)
    layers = tuple(IntegerLayer(layer.index, layer.name, layer.output_shape, _split_edges(layer, values.weight),
                                values.bias.astype(np.int64), values.threshold, values.tre_charge, values.gain, 1)
                   for layer, values in zip(network.layers, integers))
    return IntegerGraph(network, layers, lambdas, weight_bits, input_bits, full_scale, kappa=1.0, eta=0.0)


# -------------------------------------------------------------------------------------------- golden model

def membrane_bound(graph: IntegerGraph, layer: IntegerLayer, timesteps: int) -> np.ndarray:
    """|V_n| bound per neuron: sum_e sum_j |Wq_e(i, j)| m_src(e) + |bq_n,i|, m = u for the network input and
    2^T - 1 (the largest weighted input sum_t 2^(T-t) s(t)) otherwise; compare-and-subtract moves V towards 0
    without crossing it, so the bound holds at every step (docs/methods.md)."""
    total = np.abs(layer.bias).astype(np.float64)
    for edge in layer.edges:
        largest = graph.input_full_scale if edge.source.kind == INPUT else radix_levels(timesteps) - 1
        ones = np.full((1, int(np.prod(edge.geometry.input_shape))), float(largest))
        total = total + EdgeMap(edge.geometry, np.abs(edge.weight).astype(np.float64)).apply(ones)[0]
    return np.rint(total).astype(np.int64)


def _edge_input(edge_map: EdgeMap, value: np.ndarray) -> np.ndarray:
    """Wq_e (*) x_q for input rows (B, n), or for spike trains (T, B, n) sum_t 2^(T-t) Wq_e (*) s(t) by Horner's
    rule; int64, exact (float64 holds every partial sum)."""
    if value.ndim == 2:
        return np.rint(edge_map.apply(value, dtype=np.float64)).astype(np.int64)
    timesteps, batch, _ = value.shape
    per_step = edge_map.apply(value.reshape(timesteps * batch, -1).astype(np.float64), dtype=np.float64)
    per_step = np.rint(per_step).astype(np.int64).reshape(timesteps, batch, -1)
    total = np.zeros(per_step.shape[1:], dtype=np.int64)
    for step_input in per_step:
        total = 2 * total + step_input
    return total


def _membrane(layer: IntegerLayer, values: dict) -> np.ndarray:
    """V_n = bq_n + the weighted inputs of all of ``layer``'s edges (B, neurons) int64."""
    total = layer.bias[None, :].astype(np.int64)
    for edge in layer.edges:
        total = total + _edge_input(edge.edge_map(), values[edge.source])
    return total


def max_pool_bits(node: MaxPoolNode, spikes: np.ndarray) -> np.ndarray:
    """Max-pool node ``node``'s spikes (T, B, pool neurons) bool for its source's spikes (T, B, neurons):
    ``s_p(t) = D_p(t) - 2 D_p(t-1)``, D_p(t) the window maximum of the MSB-first prefixes D_i(t) (5.4), i.e.
    1 exactly when a cell still tied for the maximum fires."""
    prefix = np.zeros(spikes.shape[1:], dtype=np.int64)
    running_max = np.zeros((spikes.shape[1], node.neurons), dtype=np.int64)
    bits = np.empty((len(spikes), *running_max.shape), dtype=bool)
    for step, step_spikes in enumerate(spikes):
        prefix = 2 * prefix + step_spikes
        maximum = max_pool(node, prefix)
        bit = maximum - 2 * running_max
        assert np.all((bit == 0) | (bit == 1)), f"max-pool node {node.index}: a bit outside 0..1"
        bits[step], running_max = bit.astype(bool), maximum
    return bits


def _run_chunk(graph: IntegerGraph, rows: np.ndarray, timesteps: int, fan_outs: dict, bounds: list,
               record_spikes: bool) -> GraphResult:
    """Every source of the schedule for all T steps of one chunk of images, then the output layer."""
    network = graph.network
    batch = len(rows)
    values: dict[Source, np.ndarray] = {NETWORK_INPUT: rows}
    spike_counts = np.zeros((batch, len(graph.spiking_layers)), dtype=np.int64)
    pool_spike_counts = np.zeros((batch, len(network.max_pools)), dtype=np.int64)
    synops = np.zeros(batch, dtype=np.int64)
    for source in network.schedule():
        if source.kind == LAYER:
            layer = graph.layers[source.index - 1]
            membrane = _membrane(layer, values)
            assert np.all(np.abs(membrane) <= bounds[source.index - 1]), f"layer {source.index}: |V| over its bound"
            spikes = compare_and_subtract(membrane, layer.threshold, timesteps)
        else:
            node = network.max_pools[source.index - 1]
            spikes = max_pool_bits(node, values[node.source])
        values[source] = spikes
        per_neuron = spikes.sum(axis=0, dtype=np.int64)
        counts = spike_counts if source.kind == LAYER else pool_spike_counts
        counts[:, source.index - 1] = per_neuron.sum(axis=1)
        if source in fan_outs:
            synops += per_neuron @ fan_outs[source].astype(np.int64)
    output = _membrane(graph.output_layer, values)
    assert np.all(np.abs(output) <= bounds[-1]), "output membrane over its bound"
    trains = {source: values[source] for source in network.schedule()} if record_spikes else None
    return GraphResult(np.argmax(output, axis=1), output, spike_counts, pool_spike_counts, synops, trains)


def run_radix_graph(graph: IntegerGraph, x_q: np.ndarray, timesteps: int, record_spikes: bool = False,
                    backend=None) -> GraphResult:
    """Run the radix network of ``graph`` (``quantise_radix_graph`` at the same T) for T = ``timesteps`` bits on
    quantised input rows ``x_q`` (B, C * H * W) channel-major (``IntegerGraph.quantise_input``); int64 exact.
    SynOps: every spike times its neuron's fan-out over all edges leaving it (5.6); ``spikes`` (when recorded)
    holds each spiking layer's and max-pool node's bit trains (T, B, neurons), MSB first. A torch ``backend``
    (``ecc_hw.backends``) gives the same integers."""
    check_radix_timesteps(timesteps)
    x_q = np.asarray(x_q, dtype=np.int64)
    fan_outs = fan_outs_by_source(graph.layers)
    bounds = [membrane_bound(graph, layer, timesteps) for layer in graph.layers]
    if is_torch(backend):
        from ..backends import torch_graph
        return torch_graph.run_radix_graph(graph, x_q, timesteps, record_spikes, backend, CHUNK, fan_outs, bounds)
    parts = [_run_chunk(graph, x_q[start:start + CHUNK], timesteps, fan_outs, bounds, record_spikes)
             for start in range(0, len(x_q), CHUNK)]
    spikes = None
    if record_spikes:
        spikes = {source: np.concatenate([part.spikes[source] for part in parts], axis=1) for source in parts[0].spikes}
    output = np.concatenate([part.output_membrane for part in parts])
    return GraphResult(np.argmax(output, axis=1), output, np.concatenate([part.spike_counts for part in parts]),
                       np.concatenate([part.pool_spike_counts for part in parts]),
                       np.concatenate([part.synops for part in parts]), spikes)


# ------------------------------------------------------------------------------------ quantised ANN reference

def _ann_current(layer: IntegerLayer, values: dict) -> np.ndarray:
    """sum_e Wq_e (*) q_src(e) + bq_n (B, neurons) int64 over the levels ``values`` of the sources."""
    total = layer.bias[None, :].astype(np.int64)
    for edge in layer.edges:
        total = total + np.rint(edge.edge_map().apply(values[edge.source], dtype=np.float64)).astype(np.int64)
    return total


def quantised_graph_ann(graph: IntegerGraph, x_q: np.ndarray, timesteps: int) -> tuple[np.ndarray, dict]:
    """The integer quantised ANN that the radix network equals, in plain integer arithmetic:
    ``q_n = clip(floor((sum_e Wq_e (*) q_src(e) + bq_n) / theta_n), 0, 2^T - 1)`` per spiking layer (q_0 = x_q),
    ``q_p`` = the maximum of its window's q over the non-padding cells per max-pool node, and the output
    ``sum_e Wq_e (*) q_src(e) + bq_N``. Returns (output (B, classes) int64, {Source: q (B, neurons) int64}) for
    every spiking layer and max-pool node."""
    check_radix_timesteps(timesteps)
    network = graph.network
    values: dict[Source, np.ndarray] = {NETWORK_INPUT: np.asarray(x_q, dtype=np.int64)}
    top = radix_levels(timesteps) - 1
    for source in network.schedule():
        if source.kind == LAYER:
            layer = graph.layers[source.index - 1]
            values[source] = np.clip(np.floor_divide(_ann_current(layer, values), layer.threshold), 0, top)
        else:
            node = network.max_pools[source.index - 1]
            values[source] = max_pool(node, values[node.source])
    output = _ann_current(graph.output_layer, values)
    return output, {source: value for source, value in values.items() if source != NETWORK_INPUT}


def qcfs_graph_forward(network: GraphNetwork, lambdas: GraphLambdas, x: np.ndarray, levels: int) -> np.ndarray:
    """The float64 QCFS ANN a QCFS model was trained as, over the graph's float weights (``ecc_hw.radix.qcfs_forward``
    for graphs): ``a_n = D_n clip(floor(z_n / D_n + 1/2), 0, L - 1)``, D_n = lambda_n / (L - 1), L = ``levels``;
    a max-pool node takes its window's maximum. Returns the logits (B, classes) for ``x`` in the model's layout."""
    values: dict[Source, np.ndarray] = {NETWORK_INPUT: network.input.channel_major(x).astype(np.float64)}

    def pre_activation(layer: Layer) -> np.ndarray:
        total = layer.bias_per_neuron()[None, :]
        for edge in layer.edges:
            total = total + EdgeMap.of(edge).apply(values[edge.source])
        return total

    for source in network.schedule():
        if source.kind == LAYER:
            layer = network.layer(source.index)
            step = radix_step(lambdas.layers[layer.index - 1], levels)
            values[source] = step * np.clip(np.floor(pre_activation(layer) / step + 0.5), 0, levels - 1)
        else:
            node = network.max_pools[source.index - 1]
            values[source] = max_pool(node, values[node.source])
    return pre_activation(network.output_layer)
