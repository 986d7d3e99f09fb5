"""Exact cycle model of the graph accelerator (``rtl_gen.graph_top``), from the golden model's spikes.

Plain Python like ``ecc_hw.cycle_model`` (whose constants and integration timings it shares): it does not
import the RTL, and the benches check it against the simulated design cycle for cycle. What is counted is
the same: from the first cycle of an image's clear up to and including its class word, the input always
valid and the result always ready.

Schedule (P lanes; a layer's channel co in lane co % P, group co // P; D_n = ceil(C_n / P) H_n W_n words):

- clear: the deepest memory's words (membrane banks, and each max-pool node's counts and maxima, banked by
  lane like the membranes: ceil(C / P) words per map position);
- load: the pixels through the input edges, as a chain's load; with several (into different layers) each
  pixel goes to all their walkers at once, so it costs its longest walk (``input_walk_cycles``);
- per step t, per source of the schedule (spiking layers in order, each max-pool node right after its
  layer), its phases, each starting where the previous one's transition cycle E is:
  - a spiking layer's sweep from its start pulse S, as a chain's; when its first consumer is an edge, that
    edge integrates the spikes as they come (a chain's overlapped integration), else the sweep ends in
    ``E = S + D + FIRE_OVERHEAD - 1``;
  - each further consumer replays the source's spike buffer: rewound in E, its spikes offered back to
    back from E + 2 (E + 1 ends the phase when the source did not spike); an edge's walks cost as in a
    chain's integration; a max-pool node's pass (its first consumer: from E + 1, the buffer's words
    already waiting) costs max(1, F) cycles per spike, F the pool neurons whose window holds the spiking cell,
    and a pool spike word comes out ``POOL_SPIKE_LATENCY + j`` cycles after its event is taken (j: the
    neuron's place among the event's F, row-major);
  - a max-pool node's first consumer, when it is an edge, takes the pool's spike words during the pass,
    in the order they were made, each from ``SpikeBuffer.REPLAY_LATENCY`` cycles after it was pushed (the
    phase ends when both are done); a max-pool node's first consumer that is another max-pool node takes
    them after the pass, in a phase of its own;
- readout: as a chain's.
"""
from __future__ import annotations

import numpy as np

from ..cycle_model import (FIRE_OVERHEAD, OVERLAP_LATENCY, READOUT_ENTRY, READOUT_PER_NEURON,
                           CLASS_WORDS, integration_end, overlapped_integration_end)
from .edge_map import EdgeMap
from .network import INPUT, LAYER, MAX_POOL, Geometry, MaxPoolNode, Source
from .quantise import IntegerGraph

# MaxPoolUnit: back-to-back events cost max(1, F) cycles each; an event at a (the cycle before its issue)
# has pool neuron j's spike word out in a + POOL_SPIKE_LATENCY + j, and with no event after it the unit's
# busy is low from a + POOL_BUSY_LATENCY + F, where the pass ends
POOL_SPIKE_LATENCY = 4
POOL_BUSY_LATENCY = 4
POOL_INLET_LATENCY = 2      # the FIFO before a max-pool unit: a spike offered in cycle k reaches the unit in k + 2
BUFFER_REPLAY_LATENCY = 3   # SpikeBuffer: a word pushed in cycle k is offered from k + 3
REWIND_LATENCY = 2          # SpikeBuffer: after a rewind pulse in cycle k, the first spike is offered in k + 2


def _groups(channels: int, lanes: int) -> int:
    return -(-channels // lanes)


def edge_walk_cycles(geometry: Geometry, lanes: int) -> np.ndarray:
    """Walker cycles per source neuron of an edge: reachable positions x the lane groups its input channel
    reaches (every group of the layer; one for an identity edge; a grouped conv's group's)."""
    fan = EdgeMap(geometry, np.zeros(geometry.weight_shape())).fan_out()
    c_in = geometry.input_shape[0]
    c_out = geometry.output_shape[0]
    if geometry.kind == "dense":
        outputs = int(np.prod(geometry.output_shape))
        return fan // outputs * _groups(outputs, lanes)
    if geometry.kind == "identity":
        return fan.copy()
    per_group_in, per_group_out = c_in // geometry.groups, c_out // geometry.groups
    reach = np.full(c_in, _groups(c_out, lanes), dtype=np.int64)
    if geometry.groups > 1:
        low = np.arange(c_in) // per_group_in * per_group_out
        reach = (low + per_group_out - 1) // lanes - low // lanes + 1
    positions = fan.reshape(c_in, -1) // per_group_out
    return (positions * reach[:, None]).reshape(-1)


def layer_sweep_words(shape, lanes: int) -> int:
    """Lane-local words of a (C, H, W) layer's banks: groups x H x W."""
    return _groups(shape[0], lanes) * shape[1] * shape[2]


def sweep_order(shape, lanes: int) -> np.ndarray:
    """Neuron indices (channel-major) of a (C, H, W) layer in the order its sweep emits them."""
    channels, hw = shape[0], shape[1] * shape[2]
    index = np.arange(channels * hw)
    channel, pos = index // hw, index % hw
    return index[np.lexsort((channel % lanes, pos, channel // lanes))]


def sweep_word(shape, lanes: int) -> np.ndarray:
    """Per neuron (channel-major) of a (C, H, W) layer, the sweep word holding it."""
    hw = shape[1] * shape[2]
    index = np.arange(shape[0] * hw)
    return index // hw // lanes * hw + index % hw


def pool_windows(node: MaxPoolNode) -> list[list[int]]:
    """For each source cell (channel-major), the pool neurons whose window holds it as a non-padding cell,
    in row-major (pool row, pool column) order."""
    c, h, w = node.input_shape
    _, out_h, out_w = node.output_shape
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    top, left = node.padding[0], node.padding[1]
    rows = [[p for p in range(out_h) if any(p * sh - top + i * dh == y for i in range(kh))] for y in range(h)]
    cols = [[q for q in range(out_w) if any(q * sw - left + j * dw == x for j in range(kw))] for x in range(w)]
    return [[(ch * out_h + p) * out_w + q for p in rows[y] for q in cols[x]]
            for ch in range(c) for y in range(h) for x in range(w)]


def input_walk_cycles(graph: IntegerGraph, lanes: int) -> np.ndarray:
    """Walker cycles per input pixel: the longest of its walks through the edges that read the input
    (the pixel is taken by all their walkers at once)."""
    walks = [edge_walk_cycles(edge.geometry, lanes) for layer in graph.layers for edge in layer.edges
             if edge.source.kind == INPUT]
    return np.max(walks, axis=0)


class _Tables:
    """The per-source constants of one graph network at P lanes."""

    def __init__(self, graph: IntegerGraph, lanes: int):
        network = graph.network
        self.graph = graph
        self.lanes = lanes
        self.consumers: dict[Source, list] = {}
        for layer in graph.layers:
            for edge in layer.edges:
                walks = edge_walk_cycles(edge.geometry, lanes)
                self.consumers.setdefault(edge.source, []).append(("edge", walks))
        for node in network.max_pools:
            self.consumers.setdefault(node.source, []).append(("pool", node))
        self.windows = {node.index: pool_windows(node) for node in network.max_pools}
        self.input_walks = input_walk_cycles(graph, lanes)
        self.shapes = {Source(LAYER, layer.index): layer.output_shape for layer in graph.spiking_layers}
        self.shapes.update({Source(MAX_POOL, node.index): node.output_shape for node in network.max_pools})
        self.orders = {s: sweep_order(shape, lanes) for s, shape in self.shapes.items() if s.kind == LAYER}
        self.words = {s: sweep_word(shape, lanes) for s, shape in self.shapes.items() if s.kind == LAYER}
        depths = [layer_sweep_words(layer.output_shape, lanes) for layer in graph.layers]
        for node in network.max_pools:     # lane-banked: ceil(C / P) words per map position
            groups = _groups(node.output_shape[0], lanes)
            depths += [groups * int(np.prod(node.input_shape[1:])), groups * int(np.prod(node.output_shape[1:]))]
        self.clear_cycles = max(depths)


def _pool_pass(start: int, events: np.ndarray, counts_before: np.ndarray, maxima: np.ndarray, windows):
    """One max-pool pass: events (source neurons, in replay order) offered back to back from ``start``.
    Updates ``counts_before`` and ``maxima`` in place; returns (end cycle, spiking pool neurons in the
    order their words come out, the cycles they come out)."""
    cycle, emitted, times = start, [], []
    last_end = start
    for i in events:
        counts_before[i] += 1
        new = counts_before[i]
        cells = windows[i]
        for j, p in enumerate(cells):
            if new > maxima[p]:
                maxima[p] = new
                emitted.append(p)
                times.append(cycle + POOL_SPIKE_LATENCY + j)
        last_end = cycle + POOL_BUSY_LATENCY + len(cells)
        cycle += max(1, len(cells))
    return (last_end if len(events) else start), np.asarray(emitted, dtype=np.int64), np.asarray(times, dtype=np.int64)


def _radix_pool_pass(start: int, events: np.ndarray, tied: list, windows):
    """One max-pool pass of binary coding (5.4: a pool neuron fires when a cell still tied for its maximum
    fires; the tied cells that did not fire drop out): ``tied`` (a set of cells per pool neuron) is updated in
    place; returns what ``_pool_pass`` returns."""
    cycle, emitted, times, survivors = start, [], [], {}
    end = start
    for i in events:
        cells = windows[i]
        for j, p in enumerate(cells):
            if i not in tied[p]:
                continue
            if p not in survivors:
                survivors[p] = set()
                emitted.append(p)
                times.append(cycle + POOL_SPIKE_LATENCY + j)
            survivors[p].add(i)
        end = cycle + POOL_BUSY_LATENCY + len(cells)
        cycle += max(1, len(cells))
    for p, cells in survivors.items():
        tied[p] = cells
    return end, np.asarray(emitted, dtype=np.int64), np.asarray(times, dtype=np.int64)


def _initial_tied(node: MaxPoolNode, windows) -> list:
    """Every pool neuron's non-padding window cells (all tied at the start of an image)."""
    tied = [set() for _ in range(node.neurons)]
    for cell, pools in enumerate(windows):
        for p in pools:
            tied[p].add(cell)
    return tied


class PoolPasses:
    """The max-pool nodes during one image: their counts and maxima (rate) or tied sets (binary), and the
    spike words each pass made (``made[node, t]``: the pool neurons and the cycles their words came out)."""

    def __init__(self, network, tables: _Tables, binary: bool):
        self.network, self.tables, self.binary = network, tables, binary
        self.counts = {node.index: np.zeros(int(np.prod(node.input_shape)), dtype=np.int64)
                       for node in network.max_pools}
        self.maxima = {node.index: np.zeros(node.neurons, dtype=np.int64) for node in network.max_pools}
        self.tied = {node.index: _initial_tied(node, tables.windows[node.index]) for node in network.max_pools}
        self.made: dict = {}

    def run(self, node: MaxPoolNode, start: int, fired: np.ndarray, t: int):
        """Node ``node``'s pass of step t over its source's spikes ``fired``, offered from ``start`` (after
        the inlet); returns (end cycle, pool neurons made, the cycles their words came out)."""
        windows = self.tables.windows[node.index]
        if self.binary:
            result = _radix_pool_pass(start, fired, self.tied[node.index], windows)
        else:
            result = _pool_pass(start, fired, self.counts[node.index], self.maxima[node.index], windows)
        self.made[node.index, t] = result[1:]
        return result

    def phase(self, node: MaxPoolNode, start: int, fired: np.ndarray, t: int, phase_start: int,
              interval: int = 1) -> int:
        """A pass's phase from ``start`` (the inlet ahead of it), with the pool's first consumer, when it is
        an edge (updating every ``interval`` cycles), taking the spike words as they are made: its end."""
        cycle, made, times = self.run(node, start + POOL_INLET_LATENCY, fired, t)
        takers = self.tables.consumers.get(Source(MAX_POOL, node.index), [])
        if takers and takers[0][0] == "edge" and len(made):
            offered_at = np.maximum(times + BUFFER_REPLAY_LATENCY, phase_start)
            cycle = overlapped_integration_end(cycle, offered_at, takers[0][1][made], interval)
        return cycle

    def end_of_source(self, source: Source, t: int) -> None:
        """After ``source``'s phases of step t: a pass that never ran (its source did not spike) made nothing."""
        for node in self.network.max_pools:
            if node.source == source and (node.index, t) not in self.made:
                self.made[node.index, t] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def cycles_per_image(graph: IntegerGraph, spikes: dict, x_q: np.ndarray, lanes: int, timesteps: int,
                     binary: bool = False) -> np.ndarray:
    """Exact cycles of one inference per image (module docstring). ``spikes``: the golden model's traces
    (``GraphResult.spikes``: every spiking layer and max-pool node, (T, B, neurons)); ``x_q``: the
    quantised input rows (B, C * H * W) channel-major. ``binary``: radix coding, whose sources fire their T
    bits one source after another (the same phases, in the order source, then step)."""
    tables = _Tables(graph, lanes)
    network = graph.network
    images = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1)
    out = np.zeros(len(images), dtype=np.int64)
    classes = graph.output_layer.neurons
    for b, image in enumerate(images):
        cycle = integration_end(tables.clear_cycles, np.where(image != 0, tables.input_walks, 0))
        pools = PoolPasses(network, tables, binary)
        schedule = network.schedule()
        order = ([(t, source) for source in schedule for t in range(timesteps)] if binary
                 else [(t, source) for t in range(timesteps) for source in schedule])
        for t, source in order:
            consumers = tables.consumers.get(source, [])
            if source.kind == LAYER:
                order = tables.orders[source]
                fired = order[spikes[source][t, b, order]]
                offered = None
                start = cycle
                words = layer_sweep_words(tables.shapes[source], lanes)
                after_sweep = start + words + FIRE_OVERHEAD
                first = 0
                if consumers and consumers[0][0] == "edge":
                    offered_at = start + OVERLAP_LATENCY + tables.words[source][fired]
                    cycle = overlapped_integration_end(after_sweep, offered_at, consumers[0][1][fired])
                    first = 1
                else:
                    cycle = after_sweep - 1
            else:   # the first consumer (an edge) took the pool's spikes during the pass
                fired, made_at = pools.made[source.index, t]
                offered = made_at + BUFFER_REPLAY_LATENCY
                first = 1 if consumers and consumers[0][0] == "edge" else 0
            for k in range(first, len(consumers)):
                kind, what = consumers[k]
                rewound = k > 0
                phase_start = cycle + 1
                if rewound:
                    start, available = cycle + REWIND_LATENCY, None
                else:   # the first consumer: a pool's words as they were made, a layer's at once
                    start, available = phase_start, offered
                if len(fired) == 0:
                    cycle = phase_start
                elif kind == "edge":
                    if available is None:
                        cycle = integration_end(start, what[fired])
                    else:
                        cycle = overlapped_integration_end(phase_start, np.maximum(available, phase_start),
                                                           what[fired])
                else:
                    cycle = pools.phase(what, start, fired, t, phase_start)
            pools.end_of_source(source, t)
        out[b] = cycle + READOUT_ENTRY + READOUT_PER_NEURON * classes + CLASS_WORDS
    return out





def ideal_cycles(graph: IntegerGraph, synops: np.ndarray, lanes: int, timesteps: int) -> np.ndarray:
    """docs/arithmetic.md 4's hardware ideal per image for a graph: (first-layer MACs + SynOps over every
    edge + T x spiking neurons) / P; max-pool compares are not in it."""
    from .metrics import first_layer_macs_per_image, spiking_neurons

    network = graph.network
    fixed = first_layer_macs_per_image(network) + timesteps * spiking_neurons(network)
    return (fixed + np.asarray(synops, dtype=np.float64)) / lanes
