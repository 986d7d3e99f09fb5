"""Pass: skip a final Softmax or LogSoftmax (docs/arithmetic.md 5.1: they do not change the argmax).

Contract: when the graph output is produced by a Softmax or LogSoftmax, the output becomes its input
and the node is removed. A Softmax or LogSoftmax anywhere else is an error.
"""
from __future__ import annotations

from ..ir import Graph

HANDLES = ("Softmax", "LogSoftmax")


def drop_output_softmax(graph: Graph) -> Graph:
    """The graph without its final Softmax / LogSoftmax."""
    for node in graph.nodes:
        if node.op in HANDLES and node.output != graph.output:
            graph.fail(node, "only supported as the last node (producing the graph output)")
    final = graph.producers.get(graph.output)
    if final is None or final.op not in HANDLES:
        return graph
    return graph.with_nodes([n for n in graph.nodes if n is not final], output=final.inputs[0])
