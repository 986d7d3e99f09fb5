"""Pass: Add, Sub, Mul and Div by a scalar or per-channel constant become a ChannelAffine.

Contract: ``x + c``, ``c + x``, ``x - c``, ``c - x``, ``x * c``, ``c * x`` and ``x / c`` become
``ChannelAffine`` with ``scale`` and ``shift`` (C,) over the channel axis (axis 1), such as an input
normalisation ``(x - mean) / std``. An Add of two data tensors of the same shape stays an ``Add``.
A constant that varies over space (or does not broadcast to the data without changing its shape), a
division by a data tensor or by zero, and Sub, Mul or Div of two data tensors are errors.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

HANDLES = ("Add", "Sub", "Mul", "Div")


def _per_channel(graph: Graph, node: Node, data: str, constant: np.ndarray) -> np.ndarray:
    """The constant as one value per channel of ``data``; an error when it varies over space."""
    shape = graph.shape(data, node)
    try:
        full = np.broadcast_to(np.asarray(constant, dtype=np.float64), shape)
    except ValueError:
        graph.fail(node, f"constant of shape {constant.shape} does not broadcast to the data {shape}")
    per_channel = full[(0, slice(None)) + (0,) * (len(shape) - 2)]
    if not np.array_equal(full, np.broadcast_to(per_channel.reshape((1, -1) + (1,) * (len(shape) - 2)), shape)):
        graph.fail(node, f"constant of shape {constant.shape} varies over space; only a scalar or a per-channel "
                         "constant is supported")
    return np.array(per_channel)


def _rewrite(graph: Graph, node: Node) -> Node:
    data = graph.data_inputs(node)
    if len(data) == 2:
        if node.op != "Add":
            graph.fail(node, f"{node.op} of two data tensors is not supported (only Add of two tensors)")
        if graph.shape(data[0], node) != graph.shape(data[1], node):
            graph.fail(node, f"adds tensors of shapes {graph.shape(data[0], node)} and {graph.shape(data[1], node)}; "
                             "only tensors of the same shape are supported")
        return node
    data_first = node.inputs[0] == data[0]
    value = _per_channel(graph, node, data[0], graph.constants[node.inputs[1 if data_first else 0]])
    ones, zeros = np.ones_like(value), np.zeros_like(value)
    if node.op == "Add":
        scale, shift = ones, value
    elif node.op == "Sub":
        scale, shift = (ones, -value) if data_first else (-ones, value)
    elif node.op == "Mul":
        scale, shift = value, zeros
    else:
        if not data_first:
            graph.fail(node, "division by a data tensor is not supported (not linear)")
        if np.any(value == 0):
            graph.fail(node, "division by zero")
        scale, shift = 1.0 / value, zeros
    return node.canonical("ChannelAffine", {"scale": scale, "shift": shift}, inputs=(data[0],))


def constant_arithmetic(graph: Graph) -> Graph:
    """Every Add/Sub/Mul/Div with one constant operand becomes a ChannelAffine."""
    return graph.with_nodes(_rewrite(graph, n) if n.op in HANDLES else n for n in graph.nodes)
