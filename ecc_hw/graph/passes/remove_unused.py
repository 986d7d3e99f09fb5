"""Pass: remove the nodes that do not lead to the graph output (dead branches, unread outputs).

Contract: a node is kept exactly when one of its outputs is the graph output or is read by a kept node.
"""
from __future__ import annotations

from ..ir import Graph

HANDLES = ()


def remove_unused(graph: Graph) -> Graph:
    """The graph restricted to the nodes the output depends on."""
    needed = {graph.output}
    kept = []
    for node in reversed(graph.nodes):
        if any(name in needed for name in node.outputs):
            kept.append(node)
            needed.update(name for name in node.inputs if name)
    return graph.with_nodes(reversed(kept))
