"""Pass: Conv, Gemm and MatMul with constant weights become the canonical ConvMap and DenseMap.

Contract: a Conv (any group count, 1-D read as H = 1) becomes ``ConvMap`` with float64 ``weight``
(C_out, C_in / groups, kh, kw), ``bias`` (C_out,), ``stride``, ``padding`` (top, left, bottom, right),
``dilation`` and ``groups``. A Gemm (transA = 0) or a MatMul of a (1, F) input by a constant matrix
becomes ``DenseMap`` with ``weight`` (F_out, F_in) (alpha and transB applied) and ``bias`` (F_out,)
(beta applied; zero for MatMul, whose following Add becomes a ChannelAffine). Non-constant weights
are an error.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .spatial import spatial_geometry, spatial_rank

HANDLES = ("Conv", "Gemm", "MatMul")


def _constant(graph: Graph, node: Node, position: int, what: str) -> np.ndarray:
    name = node.inputs[position] if len(node.inputs) > position else ""
    if not name or name not in graph.constants:
        graph.fail(node, f"the {what} (input {position}) must be a constant")
    return np.asarray(graph.constants[name], dtype=np.float64)


def _conv(graph: Graph, node: Node) -> Node:
    rank = spatial_rank(graph, node)
    weight = _constant(graph, node, 1, "weight")
    if weight.ndim != rank + 2:
        graph.fail(node, f"weight of shape {weight.shape} does not match a {rank}-D convolution")
    if rank == 1:
        weight = weight[:, :, None, :]
    groups = int(node.attributes.get("group", 1))
    bias = _constant(graph, node, 2, "bias") if len(node.inputs) > 2 and node.inputs[2] else np.zeros(len(weight))
    attributes = {"weight": weight, "bias": bias.reshape(-1), "groups": groups,
                  **spatial_geometry(graph, node, tuple(weight.shape[2:]))}
    return node.canonical("ConvMap", attributes)


def _dense(graph: Graph, node: Node) -> Node:
    if graph.is_constant(node.inputs[0]):
        graph.fail(node, "the first input must be the data (a constant times the data is not supported)")
    if len(graph.shape(node.inputs[0], node)) != 2:
        graph.fail(node, f"only a (1, F) input is supported, got {graph.shape(node.inputs[0], node)}")
    matrix = _constant(graph, node, 1, "weight matrix")
    if node.op == "MatMul":
        if matrix.ndim != 2:
            graph.fail(node, f"the weight must be a matrix, got shape {matrix.shape}")
        weight, bias = matrix.T, np.zeros(matrix.shape[1])
    else:
        if node.attributes.get("transA", 0):
            graph.fail(node, "transA = 1 is not supported")
        weight = float(node.attributes.get("alpha", 1.0)) * (matrix if node.attributes.get("transB", 0) else matrix.T)
        bias = np.zeros(len(weight))
        if len(node.inputs) > 2 and node.inputs[2]:
            addend = _constant(graph, node, 2, "bias")
            bias = float(node.attributes.get("beta", 1.0)) * np.broadcast_to(addend.reshape(-1), (len(weight),))
    return node.canonical("DenseMap", {"weight": np.ascontiguousarray(weight),
                                       "bias": np.array(bias, dtype=np.float64)})


def to_linear_maps(graph: Graph) -> Graph:
    """Every Conv becomes a ConvMap and every Gemm / MatMul a DenseMap."""
    return graph.with_nodes(_conv(graph, n) if n.op == "Conv" else _dense(graph, n) if n.op in ("Gemm", "MatMul")
                            else n for n in graph.nodes)
