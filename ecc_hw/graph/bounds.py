"""The bounds of docs/arithmetic.md 5.6 on a quantised graph: |Z| per neuron and |V| per layer.

Shared by the golden model (which asserts them) and the hardware plan (which sizes its memories from them).
"""
from __future__ import annotations

import numpy as np

from .edge_map import EdgeMap
from .network import INPUT
from .quantise import IntegerGraph, IntegerLayer


def edge_sums(layer: IntegerLayer, input_largest: int, sources=None, levels: int = 1) -> np.ndarray:
    """sum_e sum_j |Wq_e(i, j)| m_src(e) per neuron i over the composed maps, m = ``input_largest`` for the
    network input and ``levels`` (a spike: 1) otherwise; only the edges whose source kind is in ``sources``
    when given."""
    total = np.zeros(layer.neurons)
    for edge in layer.edges:
        if sources is not None and edge.source.kind not in sources:
            continue
        largest = input_largest if edge.source.kind == INPUT else levels
        ones = np.full((1, int(np.prod(edge.geometry.input_shape))), float(largest))
        total = total + EdgeMap(edge.geometry, np.abs(edge.weight).astype(np.float64)).apply(ones)[0]
    return total


def current_bound(graph: IntegerGraph, layer: IntegerLayer, timesteps: int) -> np.ndarray:
    """Zmax_n per neuron (5.6): sum_e sum_j |Wq_e(i, j)| m_src(e) + |bq_n,i|, plus q_n + 1 on spiking
    layers; m = u for the network input and 1 otherwise."""
    total = np.abs(layer.bias).astype(np.float64) + edge_sums(layer, graph.input_full_scale)
    if layer.spiking:
        total = total + layer.tre_charge // timesteps + 1
    return np.rint(total).astype(np.int64)


def membrane_bounds(graph: IntegerGraph, timesteps: int) -> list[int]:
    """|V_n| per layer at T steps (rate coding): T * Zmax_n + theta_n on spiking layers, T * Zmax_N on the
    output layer (as section 3 for chains)."""
    return [timesteps * int(current_bound(graph, layer, timesteps).max(initial=0)) + (layer.threshold or 0)
            for layer in graph.layers]


def input_current_bound(graph: IntegerGraph, layer: IntegerLayer) -> int:
    """The largest |sum of layer's input edges| over its neurons, inputs up to u: the width of a constant
    current."""
    return int(np.rint(edge_sums(layer, graph.input_full_scale, sources=(INPUT,)).max(initial=0)))


def radix_membrane_bounds(graph: IntegerGraph, timesteps: int) -> list[int]:
    """|V_n| per layer for binary (radix) coding: sum_e sum_j |Wq_e(i, j)| m_src(e) + |bq_n,i| with m = u for the
    input and 2^T - 1 (the largest weighted input sum_t 2^(T-t) s(t)) otherwise; compare-and-subtract moves V
    towards 0 without crossing it (``ecc_hw.graph.radix``)."""
    levels = (1 << timesteps) - 1
    bounds = []
    for layer in graph.layers:
        total = np.abs(layer.bias).astype(np.float64) + edge_sums(layer, graph.input_full_scale, levels=levels)
        bounds.append(int(np.rint(total).max(initial=0)))
    return bounds
