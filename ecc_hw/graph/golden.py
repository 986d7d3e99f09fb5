"""The integer IF network over a graph (docs/arithmetic.md 5.5, 5.6), vectorised over a batch of images.

Per step t, every spiking layer and max-pool node in ``GraphNetwork.schedule()`` order: a layer adds
``sum_e Wq_e (*) s_src(e)(t) + bq_n + e_n(t)`` (a layer fed only by the input: its current once per
image), fires where ``V >= theta`` and subtracts theta (soft reset); a max-pool node keeps its source's
spike counts D_i(t) and emits ``s_p(t) = D_p(t) - D_p(t-1)`` with D_p the window maximum (rate coding);
then the output layer accumulates its edges and bias. Every integer is read from the ``IntegerGraph``;
the TRE schedule is ``ecc_hw.arithmetic``'s; the bounds of 5.6 are asserted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arithmetic import integer_tre_charges
from ..variants import TreMode
from .edge_map import EdgeMap
from .network import INPUT, LAYER, NETWORK_INPUT, Source
from .pooling import max_pool
from .quantise import IntegerGraph, IntegerLayer

CHUNK = 128  # images simulated together


@dataclass
class GraphGoldenResult:
    """Integer outputs for B images. ``spikes`` (when asked for) maps every spiking layer and max-pool
    node (a ``Source``) to its bool spike trains (T, B, neurons)."""

    predictions: np.ndarray        # (B,) argmax of the final output membrane, lowest index on ties
    output_membrane: np.ndarray    # (B, classes) int64 final V_N
    spike_counts: np.ndarray       # (B, N-1) int64 spikes per spiking layer
    pool_spike_counts: np.ndarray  # (B, P) int64 spikes per max-pool node
    synops: np.ndarray             # (B,) int64: each spike's fan-outs over every edge leaving its neuron
    spikes: dict | None


def source_fan_outs(graph: IntegerGraph) -> dict[Source, np.ndarray]:
    """For every source (input, layer, max-pool node), each neuron's fan-out summed over all edges that
    leave it (5.6); sources no edge reads are absent."""
    fan_outs: dict[Source, np.ndarray] = {}
    for layer in graph.layers:
        for edge in layer.edges:
            counts = EdgeMap(edge.geometry, edge.weight).fan_out()
            fan_outs[edge.source] = fan_outs.get(edge.source, 0) + counts
    return fan_outs


def current_bound(graph: IntegerGraph, layer: IntegerLayer, timesteps: int) -> np.ndarray:
    """Zmax_n per neuron (5.6): sum_e sum_j |Wq_e(i, j)| m_src(e) + |bq_n,i|, plus q_n + 1 on spiking
    layers; m = u for the network input and 1 otherwise."""
    total = np.abs(layer.bias).astype(np.float64)
    for edge in layer.edges:
        largest = graph.input_full_scale if edge.source.kind == INPUT else 1
        ones = np.full((1, int(np.prod(edge.geometry.input_shape))), float(largest))
        total = total + EdgeMap(edge.geometry, np.abs(edge.weight).astype(np.float64)).apply(ones)[0]
    if layer.spiking:
        total = total + layer.tre_charge // timesteps + 1
    return np.rint(total).astype(np.int64)


def _current(layer: IntegerLayer, maps: list[EdgeMap], values: dict) -> np.ndarray:
    """sum_e Wq_e (*) s_src(e) + bq_n as int64 (the float64 sums are exact integers)."""
    total = np.zeros((len(values[NETWORK_INPUT]), layer.neurons))
    for edge, edge_map in zip(layer.edges, maps):
        total += edge_map.apply(values[edge.source])
    return np.rint(total).astype(np.int64) + layer.bias[None, :]


def _run_chunk(graph: IntegerGraph, x_q: np.ndarray, timesteps: int, tre_mode: TreMode, record_spikes: bool):
    network = graph.network
    maps = {layer.index: [edge.edge_map() for edge in layer.edges] for layer in graph.layers}
    bounds = {layer.index: current_bound(graph, layer, timesteps) for layer in graph.layers}
    fan_outs = source_fan_outs(graph)
    batch = len(x_q)
    values: dict[Source, np.ndarray] = {NETWORK_INPUT: x_q}
    constant = {layer.index: _current(layer, maps[layer.index], values) for layer in graph.layers if layer.fed_by_input}
    tre, membranes = {}, {}
    for layer in graph.spiking_layers:
        tre[layer.index], initial = integer_tre_charges(tre_mode, layer.tre_charge, timesteps)
        membranes[layer.index] = np.full((batch, layer.neurons), initial, dtype=np.int64)
    counts = {Source(LAYER, pool.source.index): np.zeros((batch, network.layer(pool.source.index).neurons), np.int64)
              for pool in network.max_pools}
    pool_counts = {pool.index: np.zeros((batch, pool.neurons), np.int64) for pool in network.max_pools}
    output = graph.output_layer
    output_membrane = np.zeros((batch, output.neurons), dtype=np.int64)
    spike_counts = np.zeros((batch, len(graph.spiking_layers)), dtype=np.int64)
    pool_spike_counts = np.zeros((batch, len(network.max_pools)), dtype=np.int64)
    synops = np.zeros(batch, dtype=np.int64)
    trains = {source: [] for source in network.schedule()} if record_spikes else None
    for t in range(timesteps):
        for source in network.schedule():
            if source.kind == LAYER:
                layer = graph.layers[source.index - 1]
                current = constant.get(layer.index)
                current = _current(layer, maps[layer.index], values) if current is None else current
                current = current + tre[layer.index][t]
                assert np.all(np.abs(current) <= bounds[layer.index]), f"layer {layer.index}: |Z| over its 5.6 bound"
                membrane = membranes[layer.index]
                membrane += current
                fired = membrane >= layer.threshold
                membrane -= layer.threshold * fired
                spikes = fired.astype(np.int64)
                spike_counts[:, layer.index - 1] += spikes.sum(axis=1)
                if source in counts:
                    counts[source] += spikes
            else:
                pool = network.max_pools[source.index - 1]
                running_max = max_pool(pool, counts[pool.source])
                spikes = running_max - pool_counts[pool.index]
                pool_counts[pool.index] = running_max
                pool_spike_counts[:, pool.index - 1] += spikes.sum(axis=1)
            values[source] = spikes
            if source in fan_outs:
                synops += spikes @ fan_outs[source]
            if record_spikes:
                trains[source].append(spikes.astype(bool))
        current = constant.get(output.index)
        output_membrane += _current(output, maps[output.index], values) if current is None else current
    limit = timesteps * bounds[output.index]
    assert np.all(np.abs(output_membrane) <= limit), "output membrane over its 5.6 bound"
    spikes = {source: np.stack(steps) for source, steps in trains.items()} if record_spikes else None
    return output_membrane, spike_counts, pool_spike_counts, synops, spikes


def run_graph(graph: IntegerGraph, x_q: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
              record_spikes: bool = False) -> GraphGoldenResult:
    """Run the integer IF network of ``graph`` for T = ``timesteps`` on quantised input rows ``x_q``
    (B, C * H * W) channel-major, as ``IntegerGraph.quantise_input`` gives them; int64 exact."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    x_q = np.asarray(x_q, dtype=np.int64)
    parts = [_run_chunk(graph, x_q[start:start + CHUNK], timesteps, TreMode(tre_mode), record_spikes)
             for start in range(0, len(x_q), CHUNK)]
    membrane = np.concatenate([part[0] for part in parts])
    spikes = None
    if record_spikes:
        spikes = {source: np.concatenate([part[4][source] for part in parts], axis=1) for source in parts[0][4]}
    return GraphGoldenResult(np.argmax(membrane, axis=1), membrane, np.concatenate([part[1] for part in parts]),
                             np.concatenate([part[2] for part in parts]), np.concatenate([part[3] for part in parts]),
                             spikes)
