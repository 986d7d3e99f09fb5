"""The hardware plan of a graph network (docs/graph_hardware.md): layers with several edges, max-pool nodes.

Pure Python (numpy), no Amaranth, like ``rtl_gen.plan`` for chains, whose tables it reuses: every edge is one
``TargetPlan`` (its walker tables and lane weight ROMs) into its layer's banks, banked as chains are
(channel ``co`` in lane ``co % P``, group ``co // P``). A grouped or depthwise convolution and an identity
edge (a residual skip, a Concat part) walk only the lane groups their input channel reaches
(``TargetPlan.channel_groups``); the lanes' ROMs hold zeros for the other channels of those groups.

Each source (the input, a spiking layer, a max-pool node) feeds its consumers one after another in step t:
its edges in the order of the layers they feed, then the max-pool nodes over it (``consumers``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ecc_hw.arithmetic import tre_counter_constants, weight_full_scale
from ecc_hw.graph.bounds import input_current_bound, membrane_bounds, radix_membrane_bounds
from ecc_hw.graph.edge_map import EdgeMap
from ecc_hw.graph.network import INPUT, LAYER, MAX_POOL, Geometry, MaxPoolNode, Source
from ecc_hw.graph.quantise import IntegerEdge
from ecc_hw.graph.store import GraphParams
from ecc_hw.variants import Coding, Memory, Method, TreMode

from .errors import HardwareError
from .graph_spram import check_stack_depths, graph_spram_layout
from .plan import (MAX_INPUT_BITS, MAX_LANES, MAX_MEMBRANE_WIDTH, MAX_TIMESTEPS, MAX_WEIGHT_BITS, LayerPlan,
                   TargetPlan, bits_for, build_target, pow2_depth, rom_depth, signed_bits_for)
from .spram_layout import SpramLayout


@dataclass
class EdgePlan:
    """Edge ``name`` (``<layer>e<k>``, k from 1 in the layer's edge order) from ``source`` into layer
    ``layer`` (1-based): its walker tables and lane ROMs."""

    name: str
    layer: int
    source: Source
    target: TargetPlan
    geometry: Geometry


@dataclass
class PoolPlan:
    """Max-pool node ``number`` over spiking layer ``node.source.index``: its window and its spike words
    (one per pool spike, at most one per pool neuron and step)."""

    number: int
    node: MaxPoolNode
    groups: int
    lanes: int

    @property
    def neurons(self) -> int:
        """Pool outputs."""
        return self.node.neurons

    @property
    def banks(self) -> int:
        """The unit's lane banks (``rtl_gen.max_pool_unit``: one per lane that holds a channel)."""
        return min(self.lanes, self.node.output_shape[0])

    @property
    def count_words(self) -> int:
        """Words per count bank: ceil(C / P) H W."""
        return self.groups * int(np.prod(self.node.input_shape[1:]))

    @property
    def max_words(self) -> int:
        """Words per maximum (or binary state) bank: ceil(C / P) Ho Wo."""
        return self.groups * int(np.prod(self.node.output_shape[1:]))


@dataclass
class GraphLayerPlan:
    """Layer n: ``layer`` (the chain plan's ``LayerPlan``: banks, widths, bias, threshold, TRE), its
    ``edges`` and whether one of them reads the network input (its constant current, walked in once per
    image into the layer's current banks and added by every sweep)."""

    number: int
    layer: LayerPlan
    edges: list[EdgePlan]
    reads_input: bool

    @property
    def membrane_width(self) -> int:
        """Bits of the layer's membranes."""
        return self.layer.membrane_width


@dataclass
class GraphPlan:
    """Everything the graph design is built from."""

    lanes: int
    timesteps: int
    tre_mode: str
    coding: Coding
    input_shape: tuple[int, int, int]
    input_layout: str
    input_bits: int
    input_signed: bool
    weight_bits: int
    current_width: int
    layers: list[GraphLayerPlan] = field(default_factory=list)
    pools: list[PoolPlan] = field(default_factory=list)
    schedule: tuple[Source, ...] = ()
    memory: Memory = Memory.BRAM
    spram: SpramLayout | None = None  # memory="spram": the stacks of rtl_gen.graph_spram

    events = False                   # graph designs take images (no event input)

    @property
    def issue_interval(self) -> int:
        """Cycles between two updates of one bank: 1 (BRAM) or 2 (SPRAM: read, then write)."""
        return 2 if self.spram is not None else 1

    @property
    def binary(self) -> bool:
        """Binary-coded (radix) neurons: each source fires its T bits before its consumers fire."""
        return self.coding == Coding.BINARY

    @property
    def num_classes(self) -> int:
        """Output neurons."""
        return self.output.layer.neurons

    @property
    def lane_units(self) -> int:
        """Synapse lanes built: one set per edge (each edge has its own walker and lanes)."""
        return sum(min(self.lanes, layer.layer.target.out_shape[0]) for layer in self.layers for _ in layer.edges)

    @property
    def spiking(self) -> list[GraphLayerPlan]:
        """Layers 1..N-1."""
        return self.layers[:-1]

    @property
    def output(self) -> GraphLayerPlan:
        """Layer N."""
        return self.layers[-1]

    @property
    def input_edges(self) -> list[EdgePlan]:
        """The edges that read the network input (one per layer at most), in layer order."""
        return [edge for layer in self.layers for edge in layer.edges if edge.source.kind == INPUT]

    @property
    def trace_sources(self) -> list[Source]:
        """What the trace stream reports, in its ``layer`` field's order 1, 2, ...: the spiking layers, then
        the max-pool nodes."""
        return ([Source(LAYER, layer.number) for layer in self.spiking]
                + [Source(MAX_POOL, pool.number) for pool in self.pools])

    def consumers(self, source: Source) -> list[EdgePlan | PoolPlan]:
        """Who reads ``source``'s spikes, in the order they take them in a step: its edges by layer, then
        the max-pool nodes over it."""
        edges = [edge for layer in self.layers for edge in layer.edges if edge.source == source]
        pools = [pool for pool in self.pools if source.kind == LAYER and pool.node.source.index == source.index]
        return edges + pools

    @property
    def clear_depth(self) -> int:
        """Cycles of the clear sweep: the deepest used bank (with SPRAM: the state stack's words, its regions
        one after the other), count or maximum memory."""
        depths = [layer.layer.target.depth_used for layer in self.layers]
        if self.spram is not None:
            depths = [self.spram.state.depth]
        for pool in self.pools:
            depths += [pool.count_words, pool.max_words]
        return max(depths)

    def memories(self) -> list[dict]:
        """Every memory of the design: name, depth, width, count (lanes), kind."""
        mems, p = [], self.lanes
        # in SPRAM a bank takes its used words of a stack region (no power-of-two rounding)
        bank = "spram" if self.spram is not None else "ram"
        for layer in self.layers:
            n = layer.number
            t = layer.layer.target
            for edge in layer.edges:
                e = edge.target
                mems.append({"name": f"edge{edge.name}_weights", "count": min(p, t.out_shape[0]),
                             "depth": rom_depth(len(e.weight_roms[0])), "width": self.weight_bits, "kind": "rom"})
            depth = t.depth_used if self.spram is not None else pow2_depth(t.depth_used)
            if layer.reads_input:
                mems.append({"name": f"layer{n}_current", "count": min(p, t.out_shape[0]),
                             "depth": depth, "width": self.current_width, "kind": bank})
            mems.append({"name": f"layer{n}_membrane", "count": min(p, t.out_shape[0]),
                         "depth": depth, "width": layer.layer.membrane_width, "kind": bank})
            if layer.layer.spiking:
                mems.append({"name": f"layer{n}_spike_buffer", "count": 1, "depth": depth,
                             "width": self.spike_word_width(t.groups, t.out_shape), "kind": bank})
        for pool in self.pools:
            node = pool.node
            count_width = bits_for(self.timesteps)
            if self.binary:     # a word per pool neuron: tied and survivor masks, the step it last fired
                mems.append({"name": f"pool{pool.number}_state", "count": pool.banks,
                             "depth": pow2_depth(pool.max_words), "kind": "ram",
                             "width": 2 * node.kernel[0] * node.kernel[1] + count_width})
            else:
                mems.append({"name": f"pool{pool.number}_counts", "count": pool.banks,
                             "depth": pow2_depth(pool.count_words), "width": count_width, "kind": "ram"})
                mems.append({"name": f"pool{pool.number}_maxima", "count": pool.banks,
                             "depth": pow2_depth(pool.max_words), "width": count_width, "kind": "ram"})
            mems.append({"name": f"pool{pool.number}_spike_buffer", "count": 1, "depth": pow2_depth(pool.neurons),
                         "width": self.spike_word_width(pool.groups, node.output_shape), "kind": "ram"})
        return mems

    def memory_bits(self) -> int:
        """Predicted memory bits (sum of count x depth x width)."""
        return sum(m["count"] * m["depth"] * m["width"] for m in self.memories())

    def spike_word_width(self, groups: int, shape) -> int:
        """Bits of one spike word (group, y, x, lane mask)."""
        _, h, w = shape
        return bits_for(groups - 1) + bits_for(h - 1) + bits_for(w - 1) + self.lanes

    def lane_utilisation(self) -> dict:
        """Per edge: the fraction of lane slots of its walk that update a neuron the edge reaches (a spike
        of a depthwise edge reaches one channel of a group of P)."""
        out = {}
        for layer in self.layers:
            for edge in layer.edges:
                t = edge.target
                cycles = int(t.fan_out_cycles.sum())
                fan = int(EdgeMap(edge.geometry, np.zeros(edge.geometry.weight_shape())).fan_out().sum())
                out[edge.name] = round(fan / (cycles * self.lanes), 4) if cycles else 0.0
        return out


def pool_overlaps(plan: GraphPlan, pool: PoolPlan) -> bool:
    """Whether max-pool node ``pool``'s first consumer is an edge, which then takes the pool's spikes while
    the pool's pass makes them."""
    consumers = plan.consumers(Source(MAX_POOL, pool.number))
    return bool(consumers) and isinstance(consumers[0], EdgePlan)


def _check_options(params: GraphParams, lanes, timesteps: int, memory) -> None:
    if memory not in Memory.values():
        raise HardwareError(f"memory must be bram or spram, got {memory!r}")
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
        raise HardwareError(f"lanes must be an integer, got {lanes!r}")
    if not 1 <= int(lanes) <= MAX_LANES or int(lanes) & (int(lanes) - 1):
        raise HardwareError(f"lanes must be a power of two in 1..{MAX_LANES}, got {lanes}")
    if not 1 <= timesteps <= MAX_TIMESTEPS:
        raise HardwareError(f"timesteps must be in 1..{MAX_TIMESTEPS}, got {timesteps}")
    if Method(params.method).coding is Coding.BINARY:
        if timesteps != params.timesteps:
            raise HardwareError(f"radix: the integers are built for T={params.timesteps}, got T={timesteps}")
    if params.tre_mode not in TreMode.values():
        raise HardwareError(f"unsupported tre_mode {params.tre_mode!r} (spread or initial)")
    graph = params.graph
    if not 2 <= graph.weight_bits <= MAX_WEIGHT_BITS:
        raise HardwareError(f"weight bits {graph.weight_bits} outside 2..{MAX_WEIGHT_BITS}")
    low = 2 if params.input_signed else 1
    if not low <= graph.input_bits <= MAX_INPUT_BITS:
        raise HardwareError(f"input bits {graph.input_bits} outside {low}..{MAX_INPUT_BITS}")


def _edge_target(layer_index: int, edge: IntegerEdge, lanes: int, where: str) -> TargetPlan:
    """The walker tables and lane ROMs of one edge (docs/graph_hardware.md: every kind as a convolution)."""
    g = edge.geometry
    c_in, h_in, w_in = g.input_shape
    _, ph, pw = g.pooled_shape
    if ph < 1 or pw < 1:
        raise HardwareError(f"{where}: the pool leaves an empty map")
    weight = np.asarray(edge.weight, dtype=np.int64)
    out_shape = tuple(int(v) for v in g.output_shape)
    c_out = out_shape[0]
    unit = ((1, 1), (0, 0, 0, 0), (1, 1))
    channel_groups = None
    if g.kind == "dense":
        f_out = int(np.prod(out_shape))
        if out_shape[1:] != (1, 1):
            raise HardwareError(f"{where}: a dense edge into a {out_shape} map is not supported")
        full = weight.reshape(f_out, c_in, ph, pw)
        kernel, (stride, pad, dil) = (ph, pw), unit
    elif g.kind == "identity":
        if out_shape[1:] != (ph, pw):
            raise HardwareError(f"{where}: identity edge from a {(c_in, ph, pw)} map into {out_shape}")
        full = np.zeros((c_out, c_in, 1, 1), dtype=np.int64)
        offset = g.channel_offset
        full[offset + np.arange(c_in), np.arange(c_in), 0, 0] = weight
        kernel, (stride, pad, dil) = (1, 1), unit
        channel_groups = [((offset + c) // lanes, 1) for c in range(c_in)]
    else:
        kernel, stride, pad, dil = tuple(g.kernel), tuple(g.stride), tuple(g.padding), tuple(g.dilation)
        groups = g.groups
        cpg_in, cpg_out = c_in // groups, c_out // groups
        full = np.zeros((c_out, c_in, *kernel), dtype=np.int64)
        for gi in range(groups):
            outs = slice(gi * cpg_out, (gi + 1) * cpg_out)
            full[outs, gi * cpg_in:(gi + 1) * cpg_in] = weight[outs]
        if groups > 1:
            channel_groups = []
            for c in range(c_in):
                low = c // cpg_in * cpg_out
                channel_groups.append((low // lanes, (low + cpg_out - 1) // lanes - low // lanes + 1))
    target = build_target(layer_index, g.kind, (c_in, h_in, w_in), out_shape, g.pool, kernel, stride, pad, dil,
                          full, lanes, channel_groups)
    reached = {"dense": int(np.prod(out_shape)), "identity": 1}.get(g.kind, c_out // g.groups)
    per_channel = np.full(c_in, target.groups) if channel_groups is None else np.array([n for _, n in channel_groups])
    positions = target.fan_out_cycles.reshape(c_in, -1) // np.maximum(per_channel, 1)[:, None]
    fan = EdgeMap(g, np.zeros(g.weight_shape())).fan_out()
    assert np.array_equal(positions.reshape(-1) * reached, fan), f"{where}: fan-out tables disagree with EdgeMap"
    return target


def _bias_list(bias: np.ndarray, shape, per_neuron_ok: bool, where: str) -> list[int]:
    """A layer's bias per channel when it is constant across each channel's map, else per neuron."""
    c, h, w = shape
    per_neuron = np.asarray(bias, dtype=np.int64).reshape(c, h * w)
    if np.all(per_neuron == per_neuron[:, :1]):
        return [int(v) for v in per_neuron[:, 0]]
    if not per_neuron_ok:
        raise HardwareError(f"{where}: an output layer with a bias per neuron is not supported")
    return [int(v) for v in per_neuron.reshape(-1)]


def make_graph_plan(params: GraphParams, lanes: int, timesteps: int | None = None,
                    memory: Memory = Memory.BRAM) -> GraphPlan:
    """Check a graph parameter folder and ``lanes`` and derive the plan; ``HardwareError`` (one line).
    ``memory="spram"`` adds the SPRAM stacks (``rtl_gen.graph_spram``), refused when one is deeper than an SPRAM."""
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    _check_options(params, lanes, timesteps, memory)
    lanes = int(lanes)
    graph, network = params.graph, params.network
    if len(graph.layers) < 2:
        raise HardwareError("the network needs at least one spiking layer and an output layer")
    readers = [layer for layer in graph.layers if any(edge.source.kind == INPUT for edge in layer.edges)]
    for layer in readers:
        count = sum(edge.source.kind == INPUT for edge in layer.edges)
        if count > 1:
            raise HardwareError(f"layer {layer.index} ('{layer.name}') takes {count} edges from the network input; "
                                f"the hardware takes one per layer (its current banks)")
        if not layer.spiking:
            raise HardwareError(f"the network input feeds the output layer ('{layer.name}') directly; the hardware "
                                f"takes the input into spiking layers only")
    wmax = weight_full_scale(graph.weight_bits)
    binary = Method(params.method).coding is Coding.BINARY
    try:
        bounds = radix_membrane_bounds(graph, timesteps) if binary else membrane_bounds(graph, timesteps)
    except (OverflowError, ValueError) as error:
        raise HardwareError(f"membrane bounds: {error}") from None
    current_width = max(signed_bits_for(input_current_bound(graph, layer)) for layer in readers)
    spec = network.input
    plan = GraphPlan(lanes, timesteps, params.tre_mode, Coding.BINARY if binary else Coding.RATE,
                     tuple(spec.shape), spec.layout,
                     graph.input_bits, params.input_signed, graph.weight_bits, current_width,
                     schedule=network.schedule(), memory=memory)
    for layer in graph.layers:
        where = f"layer {layer.index} ('{layer.name}')"
        if any(np.abs(edge.weight).max(initial=0) > wmax for edge in layer.edges):
            raise HardwareError(f"{where}: weights exceed {graph.weight_bits} bits")
        if layer.spiking and (layer.threshold < 1 or layer.tre_charge < 0):
            raise HardwareError(f"{where}: threshold must be >= 1 and TRE charge >= 0")
        width = signed_bits_for(bounds[layer.index - 1])
        if width > MAX_MEMBRANE_WIDTH:
            raise HardwareError(f"{where}: membrane width {width} exceeds {MAX_MEMBRANE_WIDTH} bits")
        edges = [EdgePlan(f"{layer.index}e{k + 1}", layer.index, edge.source,
                          _edge_target(layer.index - 1, edge, lanes, f"{where}, edge {k + 1} from {edge.source}"),
                          edge.geometry)
                 for k, edge in enumerate(layer.edges)]
        banks = replace(edges[0].target, index=layer.index - 1)
        bias = _bias_list(layer.bias, banks.out_shape, layer.spiking, where)
        scale = 1 if layer.spiking or binary else timesteps     # rate: the output adds T biases
        lp = LayerPlan(layer.index - 1, banks, layer.spiking, layer.neurons, width, bounds[layer.index - 1], bias,
                       signed_bits_for(max(abs(b) for b in bias) * scale))
        if layer.spiking:
            lp.threshold = int(layer.threshold)
        if layer.spiking and not binary:                      # radix has no TRE
            lp.tre_charge = int(layer.tre_charge)
            lp.tre_quotient, lp.tre_remainder = tre_counter_constants(lp.tre_charge, timesteps)
        plan.layers.append(GraphLayerPlan(layer.index, lp, edges, any(e.source.kind == INPUT for e in layer.edges)))
    for node in network.max_pools:
        plan.pools.append(PoolPlan(node.index, node, -(-node.output_shape[0] // lanes), lanes))
    if memory == Memory.SPRAM:
        layout = graph_spram_layout(plan)
        check_stack_depths(plan, layout)
        plan.spram = layout
    return plan
