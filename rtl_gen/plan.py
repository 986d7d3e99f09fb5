"""The hardware plan: checks a ``NetworkParams`` and derives every table, depth and width.

Pure Python (numpy), no Amaranth: everything here is decided before elaboration, and anything the
hardware cannot implement raises a one-line :class:`~rtl_gen.errors.HardwareError`.

Banking (docs/hardware.md): output channel ``co`` of a layer lives in lane ``co % P`` at group
``g = co // P``; a neuron (co, y, x) has the lane-local address ``g * H * W + y * W + x``.
A dense layer is treated as a convolution whose kernel covers its whole pooled input map
(output 1 x 1), so one fan-out walker serves both kinds.

Fan-out of an input neuron (c, y, x) (before the composed pool): the pairs (ky, oy) reachable
from row y (through every pool row containing y, then every kernel row that lands on a valid
output row) times the pairs (kx, ox) reachable from column x, times the output channels.
Their number equals ``LinearMap.fan_out()`` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecc_hw.arithmetic import layer1_max_input, membrane_bounds, tre_counter_constants, weight_full_scale
from ecc_hw.linear import LinearMap
from ecc_hw.params import NetworkParams
from ecc_hw.variants import Coding, InputKind, Memory, Method, TreMode

from .errors import HardwareError
from .spram_layout import SpramLayout, spram_layout

MAX_LANES = 64
MAX_WEIGHT_BITS = 16
MAX_INPUT_BITS = 16
MAX_MEMBRANE_WIDTH = 48
MAX_TIMESTEPS = 1 << 16
MAX_COUNT_SCALE = (1 << 16) - 1


def bits_for(value: int) -> int:
    """Unsigned bits needed to hold 0..value (at least 1)."""
    return max(1, int(value).bit_length())


def signed_bits_for(magnitude: int) -> int:
    """Two's complement bits holding -magnitude..magnitude (at least 2)."""
    return max(2, int(magnitude).bit_length() + 1)


def pow2_depth(words: int) -> int:
    """The power of two >= words, at least 2 (a one-word memory would have a 0-bit address)."""
    return max(2, 1 << int(words - 1).bit_length()) if words > 1 else 2


def rom_depth(words: int) -> int:
    """Depth of a small ROM read asynchronously: its entries, at least 2 (no 0-bit address)."""
    return max(2, int(words))


@dataclass
class AxisTable:
    """Reachable (kernel offset, output offset) pairs of one axis, per input row (or column).

    ``counts[y]`` pairs for input row y, stored at ``entries[y * stride + k]`` as
    (output partial address, weight partial address).
    """

    counts: list[int]
    entries: list[tuple[int, int]]
    stride: int


@dataclass
class TargetPlan:
    """The linear map into one layer, as the fan-out walker and the synapse lanes see it."""

    index: int                       # 0-based layer index
    kind: str
    in_shape: tuple[int, int, int]   # (C_in, H_in, W_in) before the composed pool
    out_shape: tuple[int, int, int]  # (C_out, H_out, W_out)
    kernel: tuple[int, int]          # effective (dense: the pooled map)
    groups: int                      # ceil(C_out / P)
    rows: AxisTable
    cols: AxisTable
    weight_roms: list[list[int]]     # one per lane: [(g * C_in + c) * kh * kw + ky * kw + kx]
    fan_out_cycles: np.ndarray       # per input neuron: walker cycles rows * cols * groups
    channel_groups: list[tuple[int, int]] | None = None   # per input channel: lane groups (first, count)

    @property
    def out_hw(self) -> int:
        return self.out_shape[1] * self.out_shape[2]

    @property
    def depth_used(self) -> int:
        """Words of each lane's membrane bank that hold neurons (groups * H_out * W_out)."""
        return self.groups * self.out_hw


@dataclass
class LayerPlan:
    """One layer's constants and widths."""

    index: int
    target: TargetPlan
    spiking: bool
    neurons: int
    membrane_width: int
    membrane_bound: int
    bias: list[int]                  # per output channel
    bias_width: int
    threshold: int = 0
    tre_charge: int = 0
    tre_quotient: int = 0
    tre_remainder: int = 0


@dataclass
class HardwarePlan:
    """Everything the design is built from."""

    lanes: int
    timesteps: int
    tre_mode: str
    coding: Coding                   # rate (ecc, wn2017, rmp) or binary (radix, ecc_hw.radix)
    input_shape: tuple[int, int, int]
    input_bits: int
    input_signed: bool
    weight_bits: int
    current_width: int               # layer 1's constant-current RAM (without its bias); 0 for events
    layers: list[LayerPlan] = field(default_factory=list)
    memory: Memory = Memory.BRAM     # dual-port banks, or SPRAM stacks (rtl_gen.spram_layout)
    spram: SpramLayout | None = None
    count_scale: int = 0             # event input: C, the largest input spike count per pixel and frame

    @property
    def events(self) -> bool:
        """Event input (``rtl_gen.event_input``): layer 1 integrates input events every step (no
        current RAM)."""
        return self.count_scale > 0

    @property
    def binary(self) -> bool:
        """Binary-coded (radix) neurons: a spike at step t weighs 2^(T-t); layers run one after another."""
        return self.coding == Coding.BINARY

    @property
    def num_classes(self) -> int:
        return self.layers[-1].neurons

    @property
    def spiking(self) -> list[LayerPlan]:
        return self.layers[:-1]

    @property
    def issue_interval(self) -> int:
        """Cycles between two updates of one bank: 1 (BRAM) or 2 (SPRAM: read, then write)."""
        return 2 if self.memory == Memory.SPRAM else 1

    @property
    def clear_depth(self) -> int:
        """Cycles of the clear sweep: the deepest used bank (BRAM), the state stack's depth (SPRAM)."""
        if self.spram is not None:
            return self.spram.state.depth
        return max(layer.target.depth_used for layer in self.layers)

    def memories(self) -> list[dict]:
        """Every memory of the design: name, depth, width, count (lanes)."""
        mems = []
        p = self.lanes
        for layer in self.layers:
            t = layer.target
            n = layer.index + 1
            mems.append({"name": f"layer{n}_weights", "count": p,
                         "depth": rom_depth(len(t.weight_roms[0])), "width": self.weight_bits,
                         "kind": "rom"})
            mems.append({"name": f"layer{n}_rows", "count": 1, "depth": rom_depth(len(t.rows.entries)),
                         "width": _entry_width(t.rows), "kind": "rom"})
            mems.append({"name": f"layer{n}_cols", "count": 1, "depth": rom_depth(len(t.cols.entries)),
                         "width": _entry_width(t.cols), "kind": "rom"})
            # in SPRAM a bank takes its used words of a stack region (no power-of-two rounding)
            bank = "spram" if self.spram is not None else "ram"
            depth = t.depth_used if self.spram is not None else pow2_depth(t.depth_used)
            if layer.index == 0 and not self.events:
                mems.append({"name": "layer1_current", "count": p, "depth": depth,
                             "width": self.current_width, "kind": bank})
            mems.append({"name": f"layer{n}_membrane", "count": p, "depth": depth,
                         "width": layer.membrane_width, "kind": bank})
            if layer.spiking:
                mems.append({"name": f"layer{n + 1}_spike_buffer", "count": 1, "depth": depth,
                             "width": self.spike_word_width(layer), "kind": bank})
        return mems

    def memory_bits(self) -> int:
        """Predicted memory bits (sum of count x depth x width)."""
        return sum(m["count"] * m["depth"] * m["width"] for m in self.memories())

    def spike_word_width(self, layer: LayerPlan) -> int:
        c, h, w = layer.target.out_shape
        return bits_for(layer.target.groups - 1) + bits_for(h - 1) + bits_for(w - 1) + self.lanes


def _entry_width(table: AxisTable) -> int:
    outs = max((e[0] for e in table.entries), default=0)
    wts = max((e[1] for e in table.entries), default=0)
    return bits_for(outs) + bits_for(wts)


def _axis_table(size: int, pool, pool_axis: int, pad_before: int, kernel: int, stride: int,
                dilation: int, out_size: int, out_scale: int, weight_scale: int) -> AxisTable:
    """Reachable pairs along one axis for every input coordinate 0..size-1."""
    per_coord = []
    for y in range(size):
        if pool is None:
            pooled = [y]
        else:
            pk, ps = pool.kernel[pool_axis], pool.stride[pool_axis]
            cells = (size - pk) // ps + 1
            pooled = [p for p in range(cells) if p * ps <= y < p * ps + pk]
        pairs = []
        for p in pooled:
            for k in range(kernel):
                num = p + pad_before - k * dilation
                if num >= 0 and num % stride == 0 and num // stride < out_size:
                    pairs.append((num // stride * out_scale, k * weight_scale))
        per_coord.append(pairs)
    stride_entries = max(1, max(len(p) for p in per_coord))
    entries = []
    for pairs in per_coord:
        entries.extend(pairs + [(0, 0)] * (stride_entries - len(pairs)))
    return AxisTable([len(p) for p in per_coord], entries, stride_entries)


def _target(index: int, layer, lanes: int, weight_bits: int) -> TargetPlan:
    linear = LinearMap.of(layer)
    c_in, h_in, w_in = (int(v) for v in layer.input_shape)
    _, ph, pw = (int(v) for v in linear.pooled_shape)
    where = f"layer {index + 1} ({layer.name or layer.kind})"
    if ph < 1 or pw < 1:
        raise HardwareError(f"{where}: the pool leaves an empty map")
    weight = np.asarray(layer.weight, dtype=np.int64)
    if layer.kind == "dense":
        f_out = int(np.prod(layer.output_shape))
        if weight.shape != (f_out, c_in * ph * pw):
            raise HardwareError(f"{where}: dense weight shape {weight.shape} does not match "
                                f"({f_out}, {c_in * ph * pw})")
        weight = weight.reshape(f_out, c_in, ph, pw)
        out_shape = (f_out, 1, 1)
        kernel, stride, pad, dil = (ph, pw), (1, 1), (0, 0, 0, 0), (1, 1)
    elif layer.kind == "pool":           # an average pool kept as its own layer: a 1x1 conv over the
        out_shape = tuple(int(v) for v in layer.output_shape)    # pooled map, channel c to c only
        if weight.size != 1 or out_shape != (c_in, ph, pw):
            raise HardwareError(f"{where}: a pool layer needs one weight and output shape {(c_in, ph, pw)}")
        weight = np.eye(c_in, dtype=np.int64).reshape(c_in, c_in, 1, 1) * int(weight.reshape(()))
        kernel, stride, pad, dil = (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)
    else:
        out_shape = tuple(int(v) for v in layer.output_shape)
        kernel, stride = tuple(layer.kernel), tuple(layer.stride)
        pad, dil = tuple(layer.padding), tuple(layer.dilation)
        if min(*kernel, *stride, *dil) < 1 or min(pad) < 0:
            raise HardwareError(f"{where}: invalid convolution geometry")
        expect = (out_shape[0], c_in, *kernel)
        if weight.shape != expect:
            raise HardwareError(f"{where}: conv weight shape {weight.shape} does not match {expect}")
        for axis, size in ((0, ph), (1, pw)):
            span = size + pad[axis] + pad[axis + 2] - dil[axis] * (kernel[axis] - 1) - 1
            if span < 0 or span // stride[axis] + 1 != out_shape[axis + 1]:
                raise HardwareError(f"{where}: output shape {out_shape} does not match the geometry")
    target = build_target(index, layer.kind, (c_in, h_in, w_in), out_shape, layer.pool, kernel, stride, pad, dil,
                          weight, lanes)
    fan = linear.fan_out()        # a pool layer's synapses are the diagonal: one per cell, not c_out
    per_position = 1 if layer.kind == "pool" else target.out_shape[0]
    assert np.array_equal(target.fan_out_cycles // target.groups * per_position, fan), \
        f"{where}: fan-out tables disagree with LinearMap"
    return target


def build_target(index: int, kind: str, in_shape, out_shape, pool, kernel, stride, pad, dil, weight: np.ndarray,
                 lanes: int, channel_groups: list[tuple[int, int]] | None = None) -> TargetPlan:
    """The walker tables and lane weight ROMs of one linear map: ``weight`` (C_out, C_in, kh, kw) over the
    (C_in, H_in, W_in) input sum-pooled by ``pool``, with the conv geometry (a dense map: a kernel over the
    whole pooled map). ``channel_groups``: per input channel, the lane groups (first, count) its fan-out
    reaches (grouped and identity maps); ``None``: every group."""
    c_in, h_in, w_in = in_shape
    c_out, h_out, w_out = out_shape
    kh, kw = kernel
    groups = -(-c_out // lanes)
    rows = _axis_table(h_in, pool, 0, pad[0], kh, stride[0], dil[0], h_out, w_out, kw)
    cols = _axis_table(w_in, pool, 1, pad[1], kw, stride[1], dil[1], w_out, 1, 1)
    roms = []
    for lane in range(lanes):
        rom = np.zeros((groups, c_in, kh, kw), dtype=np.int64)
        for g in range(groups):
            co = g * lanes + lane
            if co < c_out:
                rom[g] = weight[co]
        roms.append([int(v) for v in rom.reshape(-1)])
    row_n = np.asarray(rows.counts, dtype=np.int64)
    col_n = np.asarray(cols.counts, dtype=np.int64)
    per_channel = np.full(c_in, groups, dtype=np.int64)
    if channel_groups is not None:
        per_channel = np.asarray([count for _, count in channel_groups], dtype=np.int64)
    cycles = ((row_n[:, None] * col_n[None, :])[None, :, :] * per_channel[:, None, None]).reshape(-1)
    return TargetPlan(index, kind, (c_in, h_in, w_in), tuple(out_shape), tuple(kernel), groups, rows, cols,
                      roms, cycles.copy(), channel_groups)


def make_plan(params: NetworkParams, lanes: int, timesteps: int | None = None,
              memory: Memory = Memory.BRAM) -> HardwarePlan:
    """Check ``params`` and ``lanes`` and derive the plan; raises ``HardwareError`` (one line).

    ``memory``: ``"bram"`` (every bank a simple dual-port RAM) or ``"spram"`` (membranes, currents
    and spike buffers in single-port SB_SPRAM256KA stacks, half the update rate: see
    ``rtl_gen.spram_layout``).
    """
    if memory not in Memory.values():
        raise HardwareError(f"memory must be bram or spram, got {memory!r}")
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
        raise HardwareError(f"lanes must be an integer, got {lanes!r}")
    lanes = int(lanes)
    if not 1 <= lanes <= MAX_LANES or lanes & (lanes - 1):
        raise HardwareError(f"lanes must be a power of two in 1..{MAX_LANES}, got {lanes}")
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    if not 1 <= timesteps <= MAX_TIMESTEPS:
        raise HardwareError(f"timesteps must be in 1..{MAX_TIMESTEPS}, got {timesteps}")
    events = params.input_kind == InputKind.EVENTS
    if params.input_kind not in InputKind.values():
        raise HardwareError(f"input kind {params.input_kind!r} is not supported (image or events)")
    if params.tre_mode not in TreMode.values():
        raise HardwareError(f"unsupported tre_mode {params.tre_mode!r} (spread or initial)")
    if not 2 <= params.weight_bits <= MAX_WEIGHT_BITS:
        raise HardwareError(f"weight bits {params.weight_bits} outside 2..{MAX_WEIGHT_BITS}")
    low = 2 if params.input_signed else 1
    if not low <= params.input_bits <= MAX_INPUT_BITS:
        raise HardwareError(f"input bits {params.input_bits} outside {low}..{MAX_INPUT_BITS}")
    if len(params.layers) < 2:
        raise HardwareError("the network needs at least one spiking layer and an output layer")
    wmax = weight_full_scale(params.weight_bits)
    for i, layer in enumerate(params.layers):
        where = f"layer {i + 1} ({layer.name or layer.kind})"
        if layer.kind not in ("conv", "dense", "pool"):
            raise HardwareError(f"{where}: layer kind {layer.kind!r} is not supported (conv, dense or pool)")
        if layer.kind == "pool" and np.asarray(layer.weight).size != 1:
            raise HardwareError(f"{where}: a pool layer needs one weight, got {np.asarray(layer.weight).size}")
        if layer.spiking != (i < len(params.layers) - 1):
            raise HardwareError(f"{where}: layers 1..N-1 must spike and layer N must not")
        if np.abs(np.asarray(layer.weight)).max(initial=0) > wmax:
            raise HardwareError(f"{where}: weights exceed {params.weight_bits} bits")
        if layer.spiking and (layer.threshold < 1 or layer.tre_charge < 0):
            raise HardwareError(f"{where}: threshold must be >= 1 and TRE charge >= 0")
    if tuple(params.layers[0].input_shape) != tuple(params.input_shape):
        raise HardwareError("layer 1's input shape differs from the network input shape")
    binary = params.method == Method.RADIX
    if events and binary:
        raise HardwareError("radix (binary-coded) parameter files with event input are not supported "
                            "in hardware")
    if events and timesteps != params.timesteps:
        raise HardwareError(f"event input: the integers are built for T={params.timesteps}, got T={timesteps}")
    count_scale = layer1_max_input(params) if events else 0
    if events and not 1 <= count_scale <= MAX_COUNT_SCALE:
        raise HardwareError(f"event input: count scale {count_scale} outside 1..{MAX_COUNT_SCALE}")
    try:
        bounds = membrane_bounds(params, timesteps)
    except (OverflowError, ValueError) as error:
        raise HardwareError(f"membrane bounds: {error}") from None
    current_width = 0                                    # event input: no constant-current RAM
    if not events:
        current_width = signed_bits_for(int(LinearMap.of(params.layers[0]).max_abs_output(params.input_full_scale)))
    plan = HardwarePlan(lanes, timesteps, params.tre_mode, Coding.BINARY if binary else Coding.RATE,
                        tuple(params.input_shape), params.input_bits, params.input_signed, params.weight_bits,
                        current_width, memory=memory, count_scale=count_scale)
    for i, layer in enumerate(params.layers):
        where = f"layer {i + 1} ({layer.name or layer.kind})"
        width = signed_bits_for(bounds[i])
        if width > MAX_MEMBRANE_WIDTH:
            raise HardwareError(f"{where}: membrane width {width} exceeds {MAX_MEMBRANE_WIDTH} bits")
        target = _target(i, layer, lanes, params.weight_bits)
        bias = [int(b) for b in np.asarray(layer.bias, dtype=np.int64).reshape(-1)]
        if len(bias) != target.out_shape[0]:
            raise HardwareError(f"{where}: {len(bias)} biases for {target.out_shape[0]} channels")
        scale = timesteps if not (layer.spiking or binary) else 1   # rate: the output adds T biases
        lp = LayerPlan(i, target, layer.spiking, layer.neurons, width, bounds[i], bias,
                       signed_bits_for(max(abs(b) for b in bias) * scale))
        if layer.spiking:
            lp.threshold = int(layer.threshold)
        if layer.spiking and not binary:                         # radix has no TRE
            lp.tre_charge = int(layer.tre_charge)
            lp.tre_quotient, lp.tre_remainder = tre_counter_constants(lp.tre_charge, timesteps)
        plan.layers.append(lp)
    if memory == Memory.SPRAM:
        plan.spram = spram_layout(plan)
    return plan
