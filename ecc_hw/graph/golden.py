"""The integer IF network over a graph (docs/arithmetic.md 5.5, 5.6): the golden model of graph networks.

Every integer (Wq_e, bq_n, theta_n, R_n) is read from the ``IntegerGraph``; the TRE schedule is
``ecc_hw.arithmetic``'s; the dynamics are ``ecc_hw.graph.simulate``'s with int64 currents and membranes,
and the bounds of 5.6 are asserted on every |Z| and on the output membrane.
"""
from __future__ import annotations

import numpy as np

from ..arithmetic import integer_tre_charges
from ..variants import TreMode
from .edge_map import EdgeMap
from .network import INPUT
from .quantise import IntegerGraph, IntegerLayer
from .simulate import GraphResult, SimLayer, fan_outs_by_source, simulate_graph


def source_fan_outs(graph: IntegerGraph) -> dict:
    """For every source (input, layer, max-pool node), each neuron's fan-out summed over all edges that
    leave it (5.6); sources no edge reads are absent."""
    return fan_outs_by_source(graph.layers)


def current_bound(graph: IntegerGraph, layer: IntegerLayer, timesteps: int) -> np.ndarray:
    """Zmax_n per neuron (5.6): sum_e sum_j |Wq_e(i, j)| m_src(e) + |bq_n,i|, plus q_n + 1 on spiking
    layers; m = u for the network input and 1 otherwise."""
    total = np.abs(layer.bias).astype(np.float64)
    for edge in layer.edges:
        largest = graph.input_full_scale if edge.source.kind == INPUT else 1
        ones = np.full((1, int(np.prod(edge.geometry.input_shape))), float(largest))
        total = total + EdgeMap(edge.geometry, np.abs(edge.weight).astype(np.float64)).apply(ones)[0]
    if layer.spiking:
        total = total + layer.tre_charge // timesteps + 1
    return np.rint(total).astype(np.int64)


def _sim_layer(graph: IntegerGraph, layer: IntegerLayer, timesteps: int, tre_mode: TreMode) -> SimLayer:
    charges, initial = (integer_tre_charges(tre_mode, layer.tre_charge, timesteps) if layer.spiking
                        else (None, 0))
    return SimLayer(layer.index, tuple(edge.source for edge in layer.edges),
                    tuple(edge.edge_map() for edge in layer.edges), layer.bias, layer.threshold, charges, initial,
                    current_bound(graph, layer, timesteps))


def run_graph(graph: IntegerGraph, x_q: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
              record_spikes: bool = False) -> GraphResult:
    """Run the integer IF network of ``graph`` for T = ``timesteps`` on quantised input rows ``x_q``
    (B, C * H * W) channel-major, as ``IntegerGraph.quantise_input`` gives them; int64 exact."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    layers = [_sim_layer(graph, layer, timesteps, TreMode(tre_mode)) for layer in graph.layers]
    return simulate_graph(graph.network, layers, np.asarray(x_q, dtype=np.int64), timesteps,
                          source_fan_outs(graph), exact=True, record_spikes=record_spikes)
