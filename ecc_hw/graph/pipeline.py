"""ONNX file to GraphNetwork: the passes in order, then the edge builder (docs/arithmetic.md 5).

``PASSES`` lists the passes; ``SUPPORTED_OPS`` is the union of the ONNX ops they declare, so the list
a user sees cannot drift from the code that handles the ops.
"""
from __future__ import annotations

from .edges import build_network
from .ir import Graph, load_graph
from .network import GraphNetwork
from .passes import (average_pool, batchnorm, clipped_relu, commute_maxpool, constant_arithmetic,
                     drop_output_softmax, fold_constants, layout, linear_maps, max_pool, remove_identities,
                     remove_unused, transposed_batchnorm, zero_pad)

_MODULES = (fold_constants, remove_identities, remove_unused, drop_output_softmax, linear_maps, transposed_batchnorm,
            batchnorm, constant_arithmetic, clipped_relu, average_pool, max_pool, zero_pad, layout, commute_maxpool)
SUPPORTED_OPS = tuple(sorted({op for module in _MODULES for op in module.HANDLES}))


def check_supported(graph: Graph) -> Graph:
    """The graph unchanged when every node left after constant folding has a supported op; else an error
    naming the first node that does not (and the supported ops)."""
    for node in graph.nodes:
        if node.op in fold_constants.HANDLES:
            graph.fail(node, f"op {node.op} is only supported on constants and tensor shapes, not on the data")
        if node.op not in SUPPORTED_OPS:
            graph.fail(node, f"op {node.op} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
    return graph


PASSES = (
    fold_constants.fold_constants,
    remove_identities.remove_identities,
    remove_unused.remove_unused,
    check_supported,
    drop_output_softmax.drop_output_softmax,
    linear_maps.to_linear_maps,
    transposed_batchnorm.untranspose_batchnorm,
    batchnorm.fold_batchnorm,
    constant_arithmetic.constant_arithmetic,
    clipped_relu.clipped_relu,
    average_pool.average_pool,
    max_pool.max_pool,
    zero_pad.absorb_zero_pad,
    layout.apply_layout,
    commute_maxpool.commute_maxpool,
)


def canonical_graph(path, input_shape=None, keep_epsilon: bool = True) -> Graph:
    """The graph of the ONNX file ``path`` after every pass: canonical ops only, layout recorded.
    ``keep_epsilon=False`` folds BatchNormalization without its epsilon (the wn2017 method)."""
    graph = load_graph(path, input_shape)
    for apply in PASSES:
        graph = apply(graph) if keep_epsilon or apply is not batchnorm.fold_batchnorm else apply(graph, epsilon=0.0)
    return graph


def convert_graph(path, input_shape=None, keep_epsilon: bool = True) -> GraphNetwork:
    """The GraphNetwork of the ONNX file ``path``; every problem is a one-line ``UserError``."""
    return build_network(canonical_graph(path, input_shape, keep_epsilon))
