"""Pass: a BatchNormalization over features that Keras exporters wrap in two Transposes becomes a plain one.

Contract (docs/arithmetic.md 5.7): onnxmltools writes a Keras BatchNormalization of (1, F) features
as Transpose -> BatchNormalization of the (F, 1) tensor with F-element statistics -> Transpose back
to (1, F). ONNX would read the (F, 1) tensor's axis 1 as its single channel, so onnxruntime refuses
such a model for F > 1; the statistics can only mean one value per feature, which is what Keras
computes. The three nodes become one BatchNormalization of the (1, F) features (batch norm folding
follows). Other Transposes are left to the layout pass.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Node

HANDLES = ()
SWAP = (1, 0)


def _swaps_features(graph: Graph, node: Node) -> bool:
    """True for a Transpose exchanging the two axes of a tensor with a batch of 1."""
    if node.op != "Transpose" or tuple(node.attributes.get("perm", SWAP)) != SWAP:
        return False
    shape = graph.shapes.get(node.inputs[0])
    return shape is not None and len(shape) == 2 and 1 in shape


def _only_reader(graph: Graph, name: str) -> Node | None:
    readers = graph.consumers.get(name, [])
    return readers[0] if len(readers) == 1 and name != graph.output else None


def _feature_batchnorm(graph: Graph, into: Node) -> tuple[Node, Node] | None:
    """The BatchNormalization and closing Transpose of the Keras pattern opened by ``into``, or None."""
    if not _swaps_features(graph, into) or graph.shapes[into.inputs[0]][0] != 1:
        return None
    features = graph.shapes[into.inputs[0]][1]
    norm = _only_reader(graph, into.output)
    if norm is None or norm.op != "BatchNormalization" or norm.inputs[0] != into.output:
        return None
    if any(name not in graph.constants or graph.constants[name].size != features for name in norm.inputs[1:5]):
        return None
    back = _only_reader(graph, norm.output)
    return (norm, back) if back is not None and _swaps_features(graph, back) else None


def untranspose_batchnorm(graph: Graph) -> Graph:
    """The graph with each Transpose -> BatchNormalization -> Transpose over (1, F) features replaced by
    one BatchNormalization of the features."""
    replaced: dict[Node, Node] = {}
    dropped: set[Node] = set()
    for node in graph.nodes:
        pattern = _feature_batchnorm(graph, node)
        if pattern is not None:
            norm, back = pattern
            replaced[norm] = replace(norm, inputs=(node.inputs[0], *norm.inputs[1:]),
                                     outputs=(back.output, *norm.outputs[1:]))
            dropped.update((node, back))
    return graph.with_nodes(replaced.get(n, n) for n in graph.nodes if n not in dropped)
