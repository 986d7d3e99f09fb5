"""The edge builder: a canonical graph becomes a ``GraphNetwork`` (docs/arithmetic.md 5.1, 5.4).

Nodes are read in order, each tensor's value kept as an ``Expr`` (``ecc_hw.graph.terms``). Every
Activation (ReLU or clipped ReLU, even one over activations) closes a spiking layer: its expression's
terms become the layer's edges (merged where source and geometry agree), its bias the layer's
``b_n``, and the tensor becomes that layer's activation. A MaxPool2d over activations becomes one
max-pool node per Concat part. The graph output's expression becomes the output layer N.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..params import Pool
from . import terms
from .ir import Graph, Node
from .network import INPUT, LAYER, MAX_POOL, NETWORK_INPUT, GraphNetwork, Layer, MaxPoolNode, Source
from .pooling import window_cells
from .terms import CompositionError, Expr


@dataclass
class _Built:
    """What the builder has made so far."""

    layers: list[Layer] = field(default_factory=list)
    max_pools: list[MaxPoolNode] = field(default_factory=list)


def _is_activation(expr: Expr) -> bool:
    """True when ``expr`` is exactly activations of spiking layers or max-pool nodes, each channel once."""
    ranges = sorted(t.channels for t in expr.terms)
    return (bool(expr.terms) and not np.any(expr.bias)
            and all(t.geometry.kind == "identity" and t.geometry.pool is None and t.source.kind != INPUT
                    and np.all(t.weight == 1) for t in expr.terms)
            and ranges[0][0] == 0 and ranges[-1][1] == expr.shape[0]
            and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])))


def _layer_parts(expr: Expr, output: bool):
    """The edges and the stored bias of a layer made of ``expr``; CompositionError for what 5.1 forbids."""
    if not expr.terms:
        raise CompositionError("its value does not depend on the input")
    for term in expr.terms:
        if term.linear and term.channels != (0, expr.shape[0]):
            raise CompositionError("applies to a Concat of pre-activations (Inception style), which is not supported; "
                                   "concatenate activations instead" if not output else
                                   "the output is a Concat of pre-activations, which is not supported")
        if term.head and not output:
            raise CompositionError(f"'{term.head}' pools the output of '{term.linear}' with no activation between; "
                                   "only a 1x1, stride-1, unpadded conv composes with a pool (docs/arithmetic.md 5.1)")
    if len({term.source.kind == INPUT for term in expr.terms}) > 1:
        raise CompositionError("mixes the network input with spiking sources in one layer, which is not supported")
    return terms.merged_edges(tuple(_into_layer(term, expr.shape) for term in expr.terms)), terms.layer_bias(expr.bias)


def _into_layer(term: terms.Term, shape: tuple[int, int, int]) -> terms.Term:
    """An identity term from one part of a Concat as an identity map into the whole layer, at its channel offset."""
    if term.linear or term.channels == (0, shape[0]):
        return term
    geometry = replace(term.geometry, output_shape=shape, channel_offset=term.channels[0])
    return replace(term, geometry=geometry, channels=(0, shape[0]))


def _spiking_layer(built: _Built, node: Node, expr: Expr) -> Expr:
    clip = node.attributes["clip"]
    edges, bias = _layer_parts(expr, output=False)
    index = len(built.layers) + 1
    built.layers.append(Layer(index, node.name, expr.shape, bias, edges, spiking=True, clip=clip))
    return terms.source_expr(Source(LAYER, index), expr.shape, node.name)


def _max_pool(built: _Built, node: Node, expr: Expr, out_shape: tuple[int, int, int]) -> Expr:
    for term in expr.terms:
        if term.geometry.kind != "identity":
            raise CompositionError("reads a pre-activation; a MaxPool must follow a ReLU (or precede one, with at "
                                   "most a positive per-channel scale between them)")
        if term.source.kind == INPUT:
            raise CompositionError("a MaxPool over the network input is not supported")
        if term.source.kind == MAX_POOL or term.geometry.pool is not None:
            raise CompositionError("a MaxPool over a pooled tensor is not supported")
        if not np.all(term.weight == 1):
            raise CompositionError("a MaxPool over a scaled tensor is not supported")
    if not _is_activation(expr):
        raise CompositionError("a MaxPool over a shifted tensor or a sum of activations is not supported")
    parts = sorted(expr.terms, key=lambda t: t.channels)
    pooled = []
    for term in parts:
        start, stop = term.channels
        index = len(built.max_pools) + 1
        name = node.name if len(parts) == 1 else f"{node.name}[{start}:{stop}]"
        shape = (stop - start, *out_shape[1:])
        pool = MaxPoolNode(
            index, name, term.source, term.geometry.input_shape, shape, tuple(node.attributes["kernel"]),
            tuple(node.attributes["stride"]), tuple(node.attributes["padding"]), tuple(node.attributes["dilation"]),
            bool(node.attributes["ceil_mode"]))
        if window_cells(pool).min() == 0:
            raise CompositionError("has a window that holds only padding (the CNN's output there is -inf); "
                                   "use less padding or dilation")
        built.max_pools.append(pool)
        part = terms.source_expr(Source(MAX_POOL, index), shape, name).terms[0]
        pooled.append(replace(part, channels=(start, stop)))
    return Expr(tuple(pooled), np.zeros(out_shape))


def _value(built: _Built, graph: Graph, node: Node, values: dict) -> Expr:
    """The expression of ``node``'s output."""
    inputs = [values[name] for name in node.inputs]
    out_shape = tuple(graph.shape(node.output, node)[1:])
    if node.op == "ConvMap":
        return terms.conv(inputs[0], node.name, node.attributes, out_shape)
    if node.op == "DenseMap":
        return terms.dense(inputs[0], node.name, node.attributes, out_shape)
    if node.op == "ChannelAffine":
        return terms.affine(inputs[0], node.name, node.attributes)
    if node.op == "Add":
        return terms.add(*inputs)
    if node.op == "Concat":
        return terms.concat(inputs)
    if node.op == "AvgPool2d":
        return terms.avg_pool(inputs[0], node.name, Pool(tuple(node.attributes["kernel"]),
                                                         tuple(node.attributes["stride"])))
    if node.op == "MaxPool2d":
        return _max_pool(built, node, inputs[0], out_shape)
    if node.op == "Activation":
        return _spiking_layer(built, node, inputs[0])
    graph.fail(node, "is not supported here (no pass turned it into a canonical op)")


def build_network(graph: Graph) -> GraphNetwork:
    """The GraphNetwork of a canonical graph (after the layout pass): layers 1..N-1 in node order, the
    max-pool nodes, and the output layer N made of the graph output's expression."""
    final = graph.producers.get(graph.output)
    if final is None:
        graph.fail(None, "the graph output is the input itself; there is no layer")
    if final.op in ("Activation", "MaxPool2d"):
        graph.fail(final, "produces the graph output; the logits must come from a linear node such as Conv or Gemm, "
                          "followed at most by Softmax (docs/arithmetic.md 0)")
    built = _Built()
    values = {graph.input: terms.source_expr(NETWORK_INPUT, graph.input_spec.shape)}
    for node in graph.nodes:
        try:
            values[node.output] = _value(built, graph, node, values)
        except CompositionError as error:
            graph.fail(node, str(error))
    if not built.layers:
        graph.fail(None, "the network has no ReLU; it needs at least one spiking layer before the output layer")
    try:
        edges, bias = _layer_parts(values[graph.output], output=True)
    except CompositionError as error:
        graph.fail(final, str(error))
    output = Layer(len(built.layers) + 1, final.name, values[graph.output].shape, bias, edges, spiking=False)
    return GraphNetwork(graph.path, graph.input_spec, tuple(built.layers) + (output,), tuple(built.max_pools))
