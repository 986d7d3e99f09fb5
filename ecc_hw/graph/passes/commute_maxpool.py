"""Pass: move each MaxPool2d after the ReLU it precedes (docs/arithmetic.md 5.4).

Contract: while a MaxPool2d's output is read only by an Activation (a ReLU or clipped ReLU: both are
non-decreasing) or by a ChannelAffine whose scales are all > 0, and is not the graph output, the two
swap: the Activation or ChannelAffine reads the pool's input and the pool reads its result. The
values are unchanged: max(f(x)) = f(max(x)) for every non-decreasing f, and a window always holds a
cell that is not padding.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node

HANDLES = ()


def _commutes(node: Node) -> bool:
    if node.op == "Activation":
        return True
    return node.op == "ChannelAffine" and bool(np.all(node.attributes["scale"] > 0))


def _swap_once(graph: Graph) -> Graph | None:
    """The graph with one MaxPool2d moved past its reader, or None when none can move."""
    for pool in graph.nodes:
        readers = graph.consumers.get(pool.output, [])
        if pool.op != "MaxPool2d" or pool.output == graph.output or len(readers) != 1 or not _commutes(readers[0]):
            continue
        reader = readers[0]
        before_pool = f"{reader.output}/before/{pool.name}"
        nodes = list(graph.nodes)
        nodes[nodes.index(pool)] = replace(reader, inputs=(pool.inputs[0],), outputs=(before_pool,))
        nodes[nodes.index(reader)] = replace(pool, inputs=(before_pool,), outputs=reader.outputs)
        return graph.with_nodes(nodes, shapes={**graph.shapes, before_pool: graph.shapes[pool.inputs[0]]})
    return None


def commute_maxpool(graph: Graph) -> Graph:
    """The graph with every MaxPool2d moved past the ReLUs and positive affine maps that follow it."""
    while (swapped := _swap_once(graph)) is not None:
        graph = swapped
    return graph
