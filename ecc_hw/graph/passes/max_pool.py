"""Pass: MaxPool becomes the canonical ``MaxPool2d`` (docs/arithmetic.md 5.4).

Contract: ``MaxPool2d`` with ``kernel``, ``stride``, ``padding`` (top, left, bottom, right),
``dilation`` and ``ceil_mode`` (2-D; 1-D as H = 1); padding cells never win (ONNX pads with -inf).
A read Indices output is an error.
"""
from __future__ import annotations

from ..ir import Graph, Node
from .spatial import as_2d, spatial_geometry, spatial_rank

HANDLES = ("MaxPool",)


def _max_pool(graph: Graph, node: Node) -> Node:
    if len(node.outputs) > 1 and node.outputs[1] and node.outputs[1] in graph.consumers:
        graph.fail(node, "its Indices output is read; only the pooled values are supported")
    kernel = as_2d(node.attributes["kernel_shape"], spatial_rank(graph, node), 1)
    attributes = {"kernel": kernel, "ceil_mode": bool(node.attributes.get("ceil_mode", 0)),
                  **spatial_geometry(graph, node, kernel)}
    return node.canonical("MaxPool2d", attributes)


def max_pool(graph: Graph) -> Graph:
    """Every MaxPool becomes a MaxPool2d."""
    return graph.with_nodes(_max_pool(graph, n) if n.op in HANDLES else n for n in graph.nodes)
