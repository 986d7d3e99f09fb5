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


def _affine(graph: Graph, node: Node) -> Node:
    if node.attributes.get("training_mode", 0) or any(name and name in graph.consumers for name in node.outputs[1:]):
        graph.fail(node, "training mode is not supported (export the model in eval mode)")
    if not all(name in graph.constants for name in node.inputs[1:5]):
        graph.fail(node, "scale, bias, mean and variance must be constants")
    gamma, beta, mean, var = (np.asarray(graph.constants[name], dtype=np.float64).reshape(-1)
                              for name in node.inputs[1:5])
    scale = gamma / np.sqrt(var + float(node.attributes.get("epsilon", 1e-5)))
    return node.canonical("ChannelAffine", {"scale": scale, "shift": beta - scale * mean})


def fold_batchnorm(graph: Graph) -> Graph:
    """Every BatchNormalization becomes a ChannelAffine."""
    return graph.with_nodes(_affine(graph, n) if n.op in HANDLES else n for n in graph.nodes)
