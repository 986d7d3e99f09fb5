"""Pass: ReLU, clipped ReLU (Clip with min 0) and ReLU followed by Min become the canonical Activation.

Contract: ``Activation`` with ``clip`` None (a ReLU) or the clip maximum c > 0 (``Clip(x, 0, c)``, or
``Min(Relu(x), c)`` as the new exporter writes ``clamp(relu(x), max=c)``; the Min is merged into the
Activation when that Activation has no other reader). A Clip with a minimum other than 0, or a Min
anywhere else, is an error.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node

HANDLES = ("Relu", "Clip", "Min")


def _bound(graph: Graph, node: Node, attribute: str, position: int, default: float) -> float:
    if attribute in node.attributes:
        return float(node.attributes[attribute])
    name = node.inputs[position] if len(node.inputs) > position else ""
    if not name:
        return default
    if name not in graph.constants:
        graph.fail(node, f"the {attribute} bound must be a constant")
    return float(np.asarray(graph.constants[name]).reshape(()))


def _clip(graph: Graph, node: Node) -> Node:
    low, high = _bound(graph, node, "min", 1, -np.inf), _bound(graph, node, "max", 2, np.inf)
    if low != 0.0:
        graph.fail(node, f"only a clipped ReLU (min = 0) is supported, got min {low}")
    if not high > 0:
        graph.fail(node, f"clip maximum {high} must be > 0")
    return node.canonical("Activation", {"clip": None if np.isinf(high) else high})


def _merge_min(graph: Graph, node: Node, nodes: list[Node]) -> None:
    """Merge ``Min(Relu(x), c)`` into the Activation already in ``nodes``, in place."""
    data = graph.data_inputs(node)
    constants = list(graph.constant_inputs(node).values())
    producer = next((n for n in nodes if data and n.output == data[0]), None)
    if (len(data) != 1 or producer is None or producer.op != "Activation" or producer.attributes["clip"] is not None
            or len(graph.consumers.get(data[0], [])) != 1 or data[0] == graph.output):
        graph.fail(node, "only supported right after a Relu that nothing else reads (a clipped ReLU)")
    if len(constants) != 1 or np.asarray(constants[0]).size != 1:
        graph.fail(node, "needs one scalar constant (a clipped ReLU)")
    high = float(np.asarray(constants[0]).reshape(()))
    if not high > 0:
        graph.fail(node, f"clip maximum {high} must be > 0")
    nodes[nodes.index(producer)] = replace(producer, outputs=node.outputs[:1], attributes={"clip": high})


def clipped_relu(graph: Graph) -> Graph:
    """Every Relu, Clip and Relu + Min becomes an Activation."""
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op == "Relu":
            nodes.append(node.canonical("Activation", {"clip": None}))
        elif node.op == "Clip":
            nodes.append(_clip(graph, node))
        elif node.op == "Min":
            _merge_min(graph, node, nodes)
        else:
            nodes.append(node)
    return graph.with_nodes(nodes)
