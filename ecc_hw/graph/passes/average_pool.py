"""Pass: AveragePool(k, stride k, no padding), GlobalAveragePool and ReduceMean over the spatial axes
become the canonical ``AvgPool2d`` (docs/arithmetic.md 1.2).

Contract: ``AvgPool2d`` with ``kernel`` and ``stride`` (2-D; 1-D as H = 1), floor mode. A global pool
(GlobalAveragePool, or ReduceMean over every spatial axis) has the whole map as its kernel. Padding,
a stride other than the kernel, a ceil-mode output that differs from floor mode, and a ReduceMean
over other axes are errors.
"""
from __future__ import annotations

import numpy as np

from ...params import Pool
from ..ir import Graph, Node
from .spatial import as_2d, spatial_rank

HANDLES = ("AveragePool", "GlobalAveragePool", "ReduceMean")


def _global_kernel(graph: Graph, node: Node) -> tuple[int, int]:
    rank = spatial_rank(graph, node)
    if node.op == "ReduceMean":
        axes = node.attributes.get("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            axes = graph.constants.get(node.inputs[1])
        if axes is None or sorted(int(a) % (rank + 2) for a in np.ravel(axes)) != list(range(2, rank + 2)):
            graph.fail(node, "only a mean over all spatial axes (a global average pool) is supported")
    return as_2d(graph.shape(node.inputs[0], node)[2:], rank, 1)


def _pool(graph: Graph, node: Node) -> Node:
    if node.op == "AveragePool":
        rank = spatial_rank(graph, node)
        kernel = as_2d(node.attributes["kernel_shape"], rank, 1)
        stride = as_2d(node.attributes.get("strides", (1,) * rank), rank, 1)
        auto_pad = node.attributes.get("auto_pad", b"NOTSET")
        if any(node.attributes.get("pads", ())) or auto_pad not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            graph.fail(node, "padding is not supported (only pads = 0)")
        if stride != kernel:
            graph.fail(node, f"stride {stride} differs from kernel {kernel}; only AveragePool(k, stride k) is "
                             "supported")
        height, width = as_2d(graph.shape(node.inputs[0], node)[2:], rank, 1)
        expected = Pool(kernel, stride).output_hw(height, width)
        if tuple(as_2d(graph.shape(node.output, node)[2:], rank, 1)) != expected:
            graph.fail(node, "a ceil-mode output is not supported (only floor mode)")
    else:
        kernel = stride = _global_kernel(graph, node)
    return node.canonical("AvgPool2d", {"kernel": kernel, "stride": stride})


def average_pool(graph: Graph) -> Graph:
    """Every average pool becomes an AvgPool2d."""
    return graph.with_nodes(_pool(graph, n) if n.op in HANDLES else n for n in graph.nodes)
