"""Pass: a Pad with zeros in front of convolutions is absorbed into their padding.

Contract: a constant-mode Pad with value 0 that pads only the spatial axes (by amounts >= 0), and
whose every reader is a ConvMap, is removed; each ConvMap reads the Pad's input and adds the pads to
its own ``padding`` (top, left, bottom, right; 1-D as H = 1). Any other Pad is an error.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node, rename_tensor

HANDLES = ("Pad",)


def _spatial_pads(graph: Graph, node: Node) -> tuple[int, int, int, int]:
    """The Pad's amounts as (top, left, bottom, right) of a 1-D or 2-D map."""
    rank = len(graph.shape(node.inputs[0], node))
    mode = node.attributes.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        graph.fail(node, f"mode {mode!r} is not supported (only constant zeros)")
    value = graph.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if float(node.attributes.get("value", 0.0)) != 0.0 or (value is not None and np.any(np.asarray(value) != 0)):
        graph.fail(node, "only padding with zeros is supported")
    if "pads" in node.attributes:
        pads = np.asarray(node.attributes["pads"], dtype=np.int64)
    elif len(node.inputs) > 1 and node.inputs[1] in graph.constants:
        pads = np.asarray(graph.constants[node.inputs[1]], dtype=np.int64).reshape(-1)
    else:
        graph.fail(node, "the pads must be a constant")
    axes = list(range(rank))
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [int(a) % rank for a in np.ravel(graph.constants[node.inputs[3]])]
    begin, end = dict.fromkeys(range(rank), 0), dict.fromkeys(range(rank), 0)
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = int(pads[i]), int(pads[len(axes) + i])
    amounts = list(begin.values()) + list(end.values())
    if begin[0] or end[0] or begin[1] or end[1] or min(amounts) < 0 or rank not in (3, 4):
        graph.fail(node, f"pads {pads.tolist()}: only padding of the spatial axes of a 1-D or 2-D map by >= 0 "
                         "is supported")
    if rank == 3:
        return (0, begin[2], 0, end[2])
    return (begin[2], begin[3], end[2], end[3])


def absorb_zero_pad(graph: Graph) -> Graph:
    """Every zero Pad feeding only convolutions becomes part of their padding."""
    while True:
        node = next((n for n in graph.nodes if n.op in HANDLES), None)
        if node is None:
            return graph
        readers = graph.consumers.get(node.output, [])
        if not readers or node.output == graph.output or any(r.op != "ConvMap" for r in readers):
            graph.fail(node, "only a Pad in front of convolutions is supported")
        top, left, bottom, right = _spatial_pads(graph, node)
        nodes = []
        for n in graph.nodes:
            if n in readers:
                t, lft, b, r = n.attributes["padding"]
                n = replace(n, attributes={**n.attributes, "padding": (t + top, lft + left, b + bottom, r + right)})
            if n is not node:
                nodes.append(n)
        nodes, output = rename_tensor(graph, nodes, node.output, node.inputs[0])
        graph = graph.with_nodes(nodes, output=output)
