"""The IF dynamics of a graph network (docs/arithmetic.md 5.5), shared by the integer golden model
(``ecc_hw.graph.golden``) and the float ECC-SNN (``ecc_hw.graph.float_snn``), vectorised over a batch.

Per step t, every spiking layer and max-pool node in ``GraphNetwork.schedule()`` order: a layer adds
``sum_e W_e (*) s_src(e)(t) + b_n + e_n(t)`` (a layer fed only by the input: its current once per
image), fires where ``V >= theta`` and subtracts theta (soft reset); a max-pool node keeps its source's
spike counts D_i(t) and emits ``s_p(t) = D_p(t) - D_p(t-1)`` with D_p the window maximum (rate coding);
then the output layer accumulates its edges and bias. A spike of step t reaches every consumer in step t.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .edge_map import EdgeMap
from .network import LAYER, NETWORK_INPUT, GraphNetwork, Source
from .pooling import max_pool

CHUNK = 128  # images simulated together


@dataclass(frozen=True)
class SimLayer:
    """One layer as the simulation sees it: its edges' ``sources`` and ``maps``, ``bias`` per neuron,
    ``threshold`` (None on the output layer), the TRE ``charges`` of steps 1..T and the ``initial``
    membrane; ``current_bound`` (per neuron, or None) is asserted on |Z| at every step."""

    index: int
    sources: tuple[Source, ...]
    maps: tuple[EdgeMap, ...]
    bias: np.ndarray
    threshold: float | None
    charges: np.ndarray | None
    initial: float
    current_bound: np.ndarray | None = None

    @property
    def fed_by_input(self) -> bool:
        """True when the network input is the layer's only source."""
        return all(source == NETWORK_INPUT for source in self.sources)


@dataclass
class GraphResult:
    """Outputs for B images. ``spikes`` (when asked for) maps every spiking layer and max-pool node (a
    ``Source``) to its bool spike trains (T, B, neurons)."""

    predictions: np.ndarray        # (B,) argmax of the final output membrane, lowest index on ties
    output_membrane: np.ndarray    # (B, classes) final V_N (int64 in the integer model)
    spike_counts: np.ndarray       # (B, N-1) int64 spikes per spiking layer
    pool_spike_counts: np.ndarray  # (B, P) int64 spikes per max-pool node
    synops: np.ndarray             # (B,) int64: each spike's fan-outs over every edge leaving its neuron
    spikes: dict | None


def fan_outs_by_source(layers) -> dict[Source, np.ndarray]:
    """Each source neuron's fan-out summed over all edges that leave it (5.6), for ``layers`` with
    ``edges`` (each with ``source`` and ``geometry``); sources no edge reads are absent."""
    fan_outs: dict[Source, np.ndarray] = {}
    for layer in layers:
        for edge in layer.edges:
            counts = EdgeMap(edge.geometry, np.zeros(edge.geometry.weight_shape())).fan_out()
            fan_outs[edge.source] = fan_outs.get(edge.source, 0) + counts
    return fan_outs


class _Chunk:
    """The state of one batch of images: membranes, running counts, outputs."""

    def __init__(self, network: GraphNetwork, layers: list[SimLayer], rows: np.ndarray, exact: bool):
        self.network, self.layers, self.exact = network, layers, exact
        self.values: dict[Source, np.ndarray] = {NETWORK_INPUT: rows}
        batch = len(rows)
        dtype = np.int64 if exact else np.float64
        self.constant: dict[int, np.ndarray] = {}
        self.constant = {layer.index: self.current(layer) for layer in layers if layer.fed_by_input}
        self.membranes = {layer.index: np.full((batch, layer.bias.size), layer.initial, dtype=dtype)
                          for layer in layers}
        self.counts = {pool.source: np.zeros((batch, network.layer(pool.source.index).neurons), np.int64)
                       for pool in network.max_pools}
        self.pool_sent = {pool.index: np.zeros((batch, pool.neurons), np.int64) for pool in network.max_pools}
        self.spike_counts = np.zeros((batch, len(layers) - 1), dtype=np.int64)
        self.pool_spike_counts = np.zeros((batch, len(network.max_pools)), dtype=np.int64)
        self.synops = np.zeros(batch, dtype=np.int64)

    def current(self, layer: SimLayer) -> np.ndarray:
        """sum_e W_e (*) s_src(e) + b_n (int64 in the exact model: the float64 sums are exact integers)."""
        if layer.index in self.constant:
            return self.constant[layer.index]
        total = np.zeros((len(self.values[NETWORK_INPUT]), layer.bias.size))
        for source, edge_map in zip(layer.sources, layer.maps):
            total += edge_map.apply(self.values[source])
        if self.exact:
            total = np.rint(total).astype(np.int64)
        return total + layer.bias[None, :]

    def fire(self, layer: SimLayer, step: int) -> np.ndarray:
        """Integrate, fire and soft-reset spiking ``layer`` at step ``step`` (0-based); its spikes (0/1 int64)."""
        current = self.current(layer) + layer.charges[step]
        if layer.current_bound is not None:
            assert np.all(np.abs(current) <= layer.current_bound), f"layer {layer.index}: |Z| over its 5.6 bound"
        membrane = self.membranes[layer.index]
        membrane += current
        fired = membrane >= layer.threshold
        membrane -= layer.threshold * fired
        spikes = fired.astype(np.int64)
        self.spike_counts[:, layer.index - 1] += spikes.sum(axis=1)
        source = Source(LAYER, layer.index)
        if source in self.counts:
            self.counts[source] += spikes
        return spikes

    def pool(self, index: int) -> np.ndarray:
        """Max-pool node ``index``'s spikes: the growth of its running maximum D_p."""
        node = self.network.max_pools[index - 1]
        running_max = max_pool(node, self.counts[node.source])
        spikes = running_max - self.pool_sent[index]
        self.pool_sent[index] = running_max
        self.pool_spike_counts[:, index - 1] += spikes.sum(axis=1)
        return spikes


def _run_chunk(network: GraphNetwork, layers: list[SimLayer], rows: np.ndarray, timesteps: int, fan_outs: dict,
               exact: bool, record_spikes: bool) -> GraphResult:
    state = _Chunk(network, layers, rows, exact)
    output = layers[-1]
    trains = {source: [] for source in network.schedule()} if record_spikes else None
    for step in range(timesteps):
        for source in network.schedule():
            spikes = state.fire(layers[source.index - 1], step) if source.kind == LAYER else state.pool(source.index)
            state.values[source] = spikes
            if source in fan_outs:
                state.synops += spikes @ fan_outs[source]
            if record_spikes:
                trains[source].append(spikes.astype(bool))
        state.membranes[output.index] += state.current(output)
    membrane = state.membranes[output.index]
    if output.current_bound is not None:
        assert np.all(np.abs(membrane) <= timesteps * output.current_bound), "output membrane over its 5.6 bound"
    spikes = {source: np.stack(steps) for source, steps in trains.items()} if record_spikes else None
    return GraphResult(np.argmax(membrane, axis=1), membrane, state.spike_counts, state.pool_spike_counts,
                       state.synops, spikes)


def simulate_graph(network: GraphNetwork, layers: list[SimLayer], rows: np.ndarray, timesteps: int,
                   fan_outs: dict[Source, np.ndarray], exact: bool, record_spikes: bool = False) -> GraphResult:
    """Run ``layers`` (1..N, in the network's numbering) on input rows (B, C * H * W) channel-major for
    T = ``timesteps`` (>= 1); ``exact``: integer currents and membranes (int64), else float64."""
    parts = [_run_chunk(network, layers, rows[start:start + CHUNK], timesteps, fan_outs, exact, record_spikes)
             for start in range(0, len(rows), CHUNK)]
    spikes = None
    if record_spikes:
        spikes = {source: np.concatenate([part.spikes[source] for part in parts], axis=1) for source in parts[0].spikes}
    membrane = np.concatenate([part.output_membrane for part in parts])
    return GraphResult(np.argmax(membrane, axis=1), membrane,
                       np.concatenate([part.spike_counts for part in parts]),
                       np.concatenate([part.pool_spike_counts for part in parts]),
                       np.concatenate([part.synops for part in parts]), spikes)
