"""Pass: remove Identity and inference-mode Dropout nodes on the data path.

Contract: every reader of the node's output (and the graph output) reads its input instead. A Dropout
in training mode, or one whose mask output is read, is an error.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, rename_tensor

HANDLES = ("Identity", "Dropout")


def remove_identities(graph: Graph) -> Graph:
    """The graph without Identity and Dropout nodes."""
    while True:
        node = next((n for n in graph.nodes if n.op in HANDLES), None)
        if node is None:
            return graph
        if node.op == "Dropout":
            training = graph.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
            if node.attributes.get("training_mode") or (training is not None and bool(np.asarray(training))):
                graph.fail(node, "training mode is not supported (export the model in eval mode)")
            if len(node.outputs) > 1 and node.outputs[1] and (node.outputs[1] in graph.consumers
                                                             or node.outputs[1] == graph.output):
                graph.fail(node, "its mask output is read; only an inference-mode Dropout is supported")
        nodes, output = rename_tensor(graph, [n for n in graph.nodes if n is not node], node.output, node.inputs[0])
        graph = graph.with_nodes(nodes, output=output)
