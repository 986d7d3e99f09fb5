"""The integer IF network over a graph (docs/arithmetic.md 5.5, 5.6): the golden model of graph networks.

Every integer (Wq_e, bq_n, theta_n, R_n) is read from the ``IntegerGraph``; the TRE schedule is
``ecc_hw.arithmetic``'s; the dynamics are ``ecc_hw.graph.simulate``'s with integer currents and membranes
(exact integers in float32, int32 or int64 as the bounds allow; int64 results), and the bounds of 5.6 are
asserted on every |Z| and on the output membrane.

The edge maps run in float32 where the bounds prove every partial sum an integer below 2^24 (exact in
float32, in any order of summation), else in float64 (below 2^53): see ``map_dtype``.
"""
from __future__ import annotations

import numpy as np

from ..arithmetic import integer_tre_charges
from ..backends import is_torch
from ..linear import EXACT_FLOAT32, EXACT_FLOAT64
from ..variants import TreMode
from .bounds import current_bound, edge_sums
from .quantise import IntegerGraph, IntegerLayer
from .simulate import GraphResult, SimLayer, fan_outs_by_source, simulate_graph


def source_fan_outs(graph: IntegerGraph) -> dict:
    """For every source (input, layer, max-pool node), each neuron's fan-out summed over all edges that
    leave it (5.6); sources no edge reads are absent."""
    return fan_outs_by_source(graph.layers)


def map_dtype(layer: IntegerLayer, timesteps: int, input_largest: int):
    """The float dtype in which ``layer``'s edge maps are exact on what the simulation feeds them: a source
    value is at most ``input_largest`` (the network input, |x_q|) or 1 (a spike) per step, and on the output
    layer, which reads spike counts over T steps, T times that. Every partial sum of a map and of the sum
    over its edges is bounded by ``edge_sums`` (``ecc_hw.graph.bounds``) times that factor, plus |bq_n| on a
    spiking layer (whose bias the simulation adds in the same dtype): float32 when the largest bound is below
    2^24, else float64 (below 2^53; OverflowError beyond)."""
    if layer.spiking:
        sums = edge_sums(layer, input_largest) + np.abs(layer.bias)
    else:
        sums = timesteps * edge_sums(layer, input_largest)
    bound = float(np.max(sums, initial=0))
    if bound < EXACT_FLOAT32:
        return np.float32
    if bound >= EXACT_FLOAT64:
        raise OverflowError(f"layer {layer.index}: partial sums up to {bound:.3g} exceed exact float64 integers")
    return np.float64


def _sim_layer(graph: IntegerGraph, layer: IntegerLayer, timesteps: int, tre_mode: TreMode,
               input_largest: int) -> SimLayer:
    charges, initial = (integer_tre_charges(tre_mode, layer.tre_charge, timesteps) if layer.spiking
                        else (None, 0))
    return SimLayer(layer.index, tuple(edge.source for edge in layer.edges),
                    tuple(edge.edge_map() for edge in layer.edges), layer.bias, layer.threshold, charges, initial,
                    current_bound(graph, layer, timesteps), map_dtype(layer, timesteps, input_largest))


def run_graph(graph: IntegerGraph, x_q: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
              record_spikes: bool = False, workers: int | None = None, backend=None) -> GraphResult:
    """Run the integer IF network of ``graph`` for T = ``timesteps`` on quantised input rows ``x_q``
    (B, C * H * W) channel-major, as ``IntegerGraph.quantise_input`` gives them; int64 exact. Chunks of
    images run on ``workers`` threads (default: every CPU; the result does not depend on it); a torch
    ``backend`` (``ecc_hw.backends.select_backend``) gives the same integers."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    x_q = np.asarray(x_q, dtype=np.int64)
    input_largest = max(graph.input_full_scale, int(np.abs(x_q).max(initial=0)))
    layers = [_sim_layer(graph, layer, timesteps, TreMode(tre_mode), input_largest) for layer in graph.layers]
    if is_torch(backend):
        from ..backends import torch_graph
        return torch_graph.simulate_graph(graph.network, layers, x_q, timesteps, source_fan_outs(graph), True,
                                          record_spikes, backend, workers)
    return simulate_graph(graph.network, layers, x_q, timesteps, source_fan_outs(graph), exact=True,
                          record_spikes=record_spikes, workers=workers)
