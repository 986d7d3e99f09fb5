"""Pass: BatchNormalization becomes a per-channel ChannelAffine with the model's own epsilon.

Contract (docs/arithmetic.md 1.1): ``scale = gamma / sqrt(var + eps)``, ``shift = beta - scale * mean``
over the channel axis (axis 1, any rank: 1-D and 2-D maps, or (1, F) features). The edge builder
multiplies every edge through it by ``scale`` (after a Conv or Gemm this is the fold W^, b^ of 1.1;
after an Add of two tensors it scales each edge). Training mode is an error.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

HANDLES = ("BatchNormalization",)


def _affine(graph: Graph, node: Node, epsilon: float | None) -> Node:
    if node.attributes.get("training_mode", 0) or any(name and name in graph.consumers for name in node.outputs[1:]):
        graph.fail(node, "training mode is not supported (export the model in eval mode)")
    if not all(name in graph.constants for name in node.inputs[1:5]):
        graph.fail(node, "scale, bias, mean and variance must be constants")
    gamma, beta, mean, var = (np.asarray(graph.constants[name], dtype=np.float64).reshape(-1)
                              for name in node.inputs[1:5])
    epsilon = float(node.attributes.get("epsilon", 1e-5)) if epsilon is None else epsilon
    if not np.all(var + epsilon > 0):
        graph.fail(node, "a zero variance cannot be folded without epsilon")
    scale = gamma / np.sqrt(var + epsilon)
    return node.canonical("ChannelAffine", {"scale": scale, "shift": beta - scale * mean})


def fold_batchnorm(graph: Graph, epsilon: float | None = None) -> Graph:
    """Every BatchNormalization becomes a ChannelAffine, with the model's epsilon or ``epsilon`` when given
    (0 for the wn2017 method, which folds without it)."""
    return graph.with_nodes(_affine(graph, n, epsilon) if n.op in HANDLES else n for n in graph.nodes)
