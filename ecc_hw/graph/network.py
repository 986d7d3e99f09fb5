"""The converted graph network (docs/arithmetic.md 5.1, 5.4, 5.7): spiking layers, edges, max-pool nodes.

Everything here is float64 and before current normalisation: the CNN's own folded weights, composed
per edge. CN (5.2), quantisation (5.3), the golden model (5.5) and the metrics (5.6) read this
structure; ``ecc_hw.graph.edge_map.EdgeMap`` applies an edge's geometry to float or integer weights.

Neuron order: every source (the input, a layer, a max-pool node) is a (C, H, W) map flattened
channel-major, ``index = (c * H + y) * W + x``; a dense layer's outputs are (F, 1, 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import Pool

INPUT = "input"
LAYER = "layer"
MAX_POOL = "max_pool"
LAYOUTS = ("NCHW", "NHWC", "NCL", "NLC", "NF")


@dataclass(frozen=True)
class Source:
    """What an edge reads: the network input (``kind`` "input", index 0), spiking layer n ("layer",
    n = 1..N-1) or max-pool node p ("max_pool", p = 1..P)."""

    kind: str
    index: int = 0

    def __str__(self) -> str:
        return "input" if self.kind == INPUT else f"{self.kind} {self.index}"


NETWORK_INPUT = Source(INPUT, 0)


@dataclass(frozen=True)
class Geometry:
    """The shape of an edge's linear map, without its weights (the key that merges edges, 5.1).

    ``kind`` is "conv", "dense" or "identity". The map reads its source as the (C, H, W)
    ``input_shape``, sum-pools it with ``pool`` (a composed AveragePool, docs/arithmetic.md 1.2; its
    1/area is in the weights), then applies: conv, weights (C_out, C_in / groups, kh, kw) over the
    pooled map with ``stride``, ``padding`` (top, left, bottom, right), ``dilation`` and ``groups``;
    dense, weights (neurons of ``output_shape``, C * H * W of the pooled map), both channel-major;
    identity, one gain per source channel (C,), source channel c feeding the layer's channel
    ``channel_offset + c`` (the offset is not 0 only for one part of a Concat). ``output_shape`` is the
    (C, H, W) of the layer it feeds.
    """

    kind: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    pool: Pool | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    channel_offset: int = 0

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) map the conv, dense or identity map reads, after the composed pool."""
        channels, height, width = self.input_shape
        return (channels, height, width) if self.pool is None else (channels, *self.pool.output_hw(height, width))

    def weight_shape(self) -> tuple[int, ...]:
        """The shape the float or integer weights of this geometry have."""
        channels, height, width = self.pooled_shape
        if self.kind == "conv":
            return (self.output_shape[0], channels // self.groups, *self.kernel)
        if self.kind == "dense":
            return (int(np.prod(self.output_shape)), channels * height * width)
        return (channels,)

    def nominal_fan_in(self) -> int:
        """docs/arithmetic.md 4 and 5.6: kernel area x input channels of a group (conv), the pooled
        inputs (dense), 1 (identity); the additions of a composed pool are not counted."""
        channels, height, width = self.pooled_shape
        if self.kind == "conv":
            return self.kernel[0] * self.kernel[1] * channels // self.groups
        if self.kind == "dense":
            return channels * height * width
        return 1


@dataclass(frozen=True)
class Edge:
    """One term ``L_e(a_src(e))`` of a layer's pre-activation (docs/arithmetic.md 5.1).

    ``weight`` is float64 in ``geometry.weight_shape()``, every BatchNormalization, constant scale and
    composed pool through the edge multiplied in. ``concat_ranges`` are the channel ranges
    [start, stop) of the consumer's Concat input this edge stands for (several after a merge; empty
    when no Concat was involved). ``nodes`` names the ONNX nodes that built it, for messages.
    """

    source: Source
    geometry: Geometry
    weight: np.ndarray
    concat_ranges: tuple[tuple[int, int], ...] = ()
    nodes: tuple[str, ...] = ()

    @property
    def nominal_fan_in(self) -> int:
        """Nominal fan-in of the edge's map (docs/arithmetic.md 5.6)."""
        return self.geometry.nominal_fan_in()


@dataclass(frozen=True)
class Layer:
    """Layer n: ``z_n = sum over edges of L_e(a_src(e)) + b_n`` (docs/arithmetic.md 5.1).

    Layers 1..N-1 are spiking (``spiking``: the CNN applies a ReLU, clipped at ``clip`` when not
    None); layer N is the output accumulator. ``bias`` is (C,) when b_n is the same across each
    channel, else (C, H, W) per neuron. ``name`` is the ONNX node whose output this layer is.
    """

    index: int
    name: str
    output_shape: tuple[int, int, int]
    bias: np.ndarray
    edges: tuple[Edge, ...]
    spiking: bool
    clip: float | None = None

    @property
    def neurons(self) -> int:
        """Number of neurons of the layer."""
        return int(np.prod(self.output_shape))

    def bias_per_neuron(self) -> np.ndarray:
        """b_n for every neuron, channel-major (a per-channel bias repeated over its map)."""
        if self.bias.ndim == 1:
            return np.repeat(self.bias, self.output_shape[1] * self.output_shape[2])
        return self.bias.reshape(-1)

    @property
    def sources(self) -> tuple[Source, ...]:
        """The distinct sources of the layer's edges, in edge order."""
        return tuple(dict.fromkeys(edge.source for edge in self.edges))


@dataclass(frozen=True)
class MaxPoolNode:
    """Max-pool node p over spiking layer ``source`` (docs/arithmetic.md 5.4): no membrane.

    Windows of ``kernel`` with ``stride``, ``dilation`` and ``padding`` (top, left, bottom, right)
    over the source's (C, H, W) map; a window takes the maximum of its non-padding cells. With
    ``ceil_mode`` the last window may run past the padded map (those cells are padding too).
    """

    index: int
    name: str
    source: Source
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    @property
    def neurons(self) -> int:
        """Number of pool outputs."""
        return int(np.prod(self.output_shape))


@dataclass(frozen=True)
class InputSpec:
    """The network input (docs/arithmetic.md 5.7): ONNX tensor ``name`` in ``layout`` (one of LAYOUTS)
    with ``model_shape`` (the model's own layout, no batch), read as the channel-major (C, H, W)
    ``shape``: NCHW as is, NHWC transposed, (N, C, L) as H = 1, (N, L, C) transposed to it, (N, F) as
    C = F, H = W = 1."""

    name: str
    layout: str
    model_shape: tuple[int, ...]
    shape: tuple[int, int, int]

    def channel_major(self, x: np.ndarray) -> np.ndarray:
        """(B, C * H * W) channel-major rows of a batch ``x`` (B, *model_shape) in the model's layout."""
        x = np.asarray(x)
        if x.shape[1:] != tuple(self.model_shape):
            raise ValueError(f"input batch has shape {x.shape}, the model takes (B, {self.model_shape})")
        if self.layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        elif self.layout == "NLC":
            x = x.transpose(0, 2, 1)
        return x.reshape(len(x), -1)


@dataclass(frozen=True)
class GraphNetwork:
    """A converted graph network: its input, layers 1..N (the last is the output layer) and max-pool
    nodes 1..P. Layers are numbered in topological order (ONNX node order on ties)."""

    source_file: str
    input: InputSpec
    layers: tuple[Layer, ...]
    max_pools: tuple[MaxPoolNode, ...]

    @property
    def spiking_layers(self) -> tuple[Layer, ...]:
        """Layers 1..N-1."""
        return self.layers[:-1]

    @property
    def output_layer(self) -> Layer:
        """Layer N, the accumulator of the logits."""
        return self.layers[-1]

    def layer(self, index: int) -> Layer:
        """Layer ``index`` (1-based)."""
        return self.layers[index - 1]

    def shape_of(self, source: Source) -> tuple[int, int, int]:
        """The (C, H, W) map of a source."""
        if source.kind == INPUT:
            return self.input.shape
        if source.kind == LAYER:
            return self.layers[source.index - 1].output_shape
        return self.max_pools[source.index - 1].output_shape

    def schedule(self) -> tuple[Source, ...]:
        """Spiking layers and max-pool nodes in a topological order: each max-pool node right after its
        source layer (docs/arithmetic.md 5.5)."""
        order = []
        for layer in self.spiking_layers:
            order.append(Source(LAYER, layer.index))
            order.extend(Source(MAX_POOL, pool.index) for pool in self.max_pools
                         if pool.source.index == layer.index)
        return tuple(order)
