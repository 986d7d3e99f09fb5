"""Pass: read the input's layout and remove the layout-only ops (docs/arithmetic.md 5.7).

Contract: the input is (N, C, H, W); (N, H, W, C) when it is 4-D and every reader is a
Transpose(0, 3, 1, 2); (N, L, C) (Keras' Conv1D) when it is 3-D and every reader is a Transpose(0, 2, 1);
(N, C, L), read as C x 1 x L; or (N, F), read as F x 1 x 1. The result's
``input_spec`` records it. Transpose, Flatten, Reshape, Squeeze and Unsqueeze are removed: each tensor
is tracked as a view (which channel-major element of which tensor each of its elements is). A
DenseMap may read any view (its columns are permuted to channel-major order, which absorbs a
Transpose + Flatten in front of a dense layer); every other op, and the graph output, must read a
tensor in its own channel-major order. A Concat must join channels (axis 1). Afterwards every data
tensor's shape is (1, C, H, W). A layout op that moves or merges the batch axis is an error; a
Flatten(axis=0), which Keras exports write for their fixed batch of 1, is read as Reshape(1, -1) at batch 1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ir import Graph, Node
from ..network import InputSpec

HANDLES = ("Transpose", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Concat")
LAYOUT_OPS = HANDLES[:-1]
NHWC_TO_NCHW = (0, 3, 1, 2)
NLC_TO_NCL = (0, 2, 1)


@dataclass(frozen=True)
class _View:
    """A tensor as elements of ``base``: ``index`` has the tensor's ONNX shape and holds, for each
    element, its channel-major index in ``base``; ``via`` are the layout nodes that made it."""

    base: str
    index: np.ndarray
    via: tuple[Node, ...] = ()


def channel_major_shape(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """The (C, H, W) a batch-1 ONNX shape is read as: (1, F) -> (F, 1, 1), (1, C, L) -> (C, 1, L)."""
    if len(shape) == 2:
        return (shape[1], 1, 1)
    if len(shape) == 3:
        return (shape[1], 1, shape[2])
    if len(shape) == 4:
        return tuple(shape[1:])
    return None


def _read_channels_last(graph: Graph, perm: tuple[int, ...]) -> bool:
    """True when the input has rank len(perm) and every reader is a Transpose(perm) to channels first."""
    readers = graph.consumers.get(graph.input, [])
    return len(graph.shape(graph.input)) == len(perm) and bool(readers) and all(
        r.op == "Transpose" and tuple(r.attributes.get("perm", ())) == perm for r in readers)


def _input_view(graph: Graph) -> tuple[InputSpec, _View]:
    shape = graph.shape(graph.input)
    name = graph.input
    if _read_channels_last(graph, NHWC_TO_NCHW):
        height, width, channels = shape[1:]
        index = np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0)[None]
        return InputSpec(name, "NHWC", tuple(shape[1:]), (channels, height, width)), _View(name, index)
    if _read_channels_last(graph, NLC_TO_NCL):
        length, channels = shape[1:]
        index = np.arange(channels * length).reshape(channels, length).transpose(1, 0)[None]
        return InputSpec(name, "NLC", tuple(shape[1:]), (channels, 1, length)), _View(name, index)
    layout = {4: "NCHW", 3: "NCL", 2: "NF"}.get(len(shape))
    if layout is None:
        graph.fail(None, f"input '{name}' has shape {shape}; only (N, C, H, W), (N, H, W, C), (N, C, L), "
                         "(N, L, C) and (N, F) are supported")
    spec = InputSpec(name, layout, tuple(shape[1:]), channel_major_shape(shape))
    return spec, _View(name, np.arange(int(np.prod(shape))).reshape(shape))


def _axes(graph: Graph, node: Node) -> list[int] | None:
    axes = node.attributes.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = graph.constants[node.inputs[1]]
    return None if axes is None else [int(a) for a in np.ravel(axes)]


def _through(graph: Graph, node: Node, view: _View) -> _View:
    """``view`` after the layout node ``node``."""
    in_rank = view.index.ndim
    out_shape = graph.shape(node.output, node)
    moves_batch = out_shape[0] != 1
    perm = None
    if node.op == "Transpose":
        perm = tuple(node.attributes.get("perm", range(in_rank)[::-1]))
        moves_batch = moves_batch or perm[0] != 0
    elif node.op in ("Squeeze", "Unsqueeze"):
        axes = _axes(graph, node)
        rank = in_rank if node.op == "Squeeze" else len(out_shape)
        moves_batch = moves_batch or axes is None or 0 in [a % rank for a in axes]
    if moves_batch:
        graph.fail(node, "changes the batch axis; only layout changes that keep axis 0 are supported")
    index = view.index.transpose(perm) if perm is not None else view.index.reshape(out_shape)
    return _View(view.base, index, view.via + (node,))


def _is_plain(view: _View, chw: dict) -> bool:
    return (channel_major_shape(view.index.shape) == chw[view.base]
            and np.array_equal(view.index.reshape(-1), np.arange(view.index.size)))


def _plain_input(graph: Graph, node: Node, name: str, views: dict, chw: dict) -> str:
    """The base tensor ``node`` reads for input ``name``; an error unless it is read in its own order."""
    if name not in views:
        graph.fail(node, f"input '{name}' is a constant; only data inputs are supported here")
    view = views[name]
    if not _is_plain(view, chw):
        via = ", ".join(n.describe() for n in view.via)
        graph.fail(node, f"reads '{name}' reshaped or reordered by {via}; such layout changes are only supported "
                         "in front of a dense layer (Gemm/MatMul)")
    return view.base


def _dense_input(graph: Graph, node: Node, views: dict, chw: dict) -> Node:
    """A DenseMap reading its input's base tensor, its columns permuted to the base's channel-major order."""
    view = views[node.inputs[0]]
    order = view.index.reshape(-1)
    weight = node.attributes["weight"]
    if weight.shape[1] != order.size:
        graph.fail(node, f"weight of shape {weight.shape} does not match {order.size} inputs")
    permuted = np.empty_like(weight)
    permuted[:, order] = weight
    return replace(node, inputs=(view.base,), attributes={**node.attributes, "weight": permuted})


def apply_layout(graph: Graph) -> Graph:
    """The graph with its input layout recorded and no layout-only ops; every data tensor (1, C, H, W)."""
    spec, input_view = _input_view(graph)
    views, chw = {graph.input: input_view}, {graph.input: spec.shape}
    nodes = []
    for node in graph.nodes:
        if node.op in LAYOUT_OPS:
            views[node.output] = _through(graph, node, views[node.inputs[0]])
            continue
        if node.op == "DenseMap":
            node = _dense_input(graph, node, views, chw)
        else:
            node = replace(node, inputs=tuple(_plain_input(graph, node, name, views, chw) for name in node.inputs))
        out_shape = graph.shape(node.output, node)
        if node.op == "Concat":
            if int(node.attributes.get("axis", 0)) % len(out_shape) != 1:
                graph.fail(node, f"axis {node.attributes.get('axis')}: only a Concat along channels is supported")
            node = replace(node, attributes={"axis": 1})
        chw[node.output] = channel_major_shape(out_shape) or graph.fail(
            node, f"output of shape {out_shape}: only (1, F), (1, C, L) and (1, C, H, W) tensors are supported")
        views[node.output] = _View(node.output, np.arange(int(np.prod(out_shape))).reshape(out_shape))
        nodes.append(node)
    output = views[graph.output]
    if not np.array_equal(output.index.reshape(-1), np.arange(output.index.size)):
        graph.fail(output.via[-1], "reorders the graph output; the logits must stay in channel-major order")
    shapes = {name: (1, *shape) for name, shape in chw.items()}
    return graph.with_nodes(nodes, output=output.base, shapes=shapes, input_spec=spec)
