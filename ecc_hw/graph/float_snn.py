"""The float ECC-SNN of a graph network (docs/arithmetic.md 5.5, 1.5): the integer network's real-valued twin.

The same network with the float ``W'_e`` and ``b'_n`` of CN per edge (5.2), threshold kappa and the TRE
charge eta * kappa / T per step (or all of it at t = 0); a layer fed by the input receives
``W'_e clip(x / lambda_0, lo, 1) + b'_n``. The dynamics are ``ecc_hw.graph.simulate``'s in float64.
"""
from __future__ import annotations

import numpy as np

from ..backends import is_torch
from ..arithmetic import current_normalised, float_tre_charges, normalised_input
from ..variants import TreMode
from .calibrate import GraphLambdas
from .edge_map import EdgeMap
from .network import GraphNetwork, Layer
from .simulate import GraphResult, SimLayer, fan_outs_by_source, simulate_graph


def _sim_layer(layer: Layer, lambdas: GraphLambdas, kappa: float, charges, initial: float) -> SimLayer:
    lambda_layer = lambdas.layers[layer.index - 1]
    maps, bias = [], None
    for edge in layer.edges:
        weight, bias = current_normalised(edge.weight, layer.bias_per_neuron(), kappa, lambdas.of(edge.source),
                                          lambda_layer)
        maps.append(EdgeMap(edge.geometry, weight))
    sources = tuple(edge.source for edge in layer.edges)
    if not layer.spiking:
        return SimLayer(layer.index, sources, tuple(maps), bias, None, None, 0.0)
    return SimLayer(layer.index, sources, tuple(maps), bias, kappa, charges, initial)


def run_float_graph(network: GraphNetwork, lambdas: GraphLambdas, x: np.ndarray, timesteps: int,
                    kappa: float = 100.0, eta: float = 0.5, tre_mode: TreMode = TreMode.SPREAD,
                    record_spikes: bool = False, backend=None) -> GraphResult:
    """The float ECC-SNN of ``network`` with ``lambdas`` on raw inputs ``x`` (B, *model input shape), on the
    NumPy or a torch ``backend`` (float64 both; the sums may round in another order)."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    charges, initial = float_tre_charges(TreMode(tre_mode), eta * kappa, timesteps)
    layers = [_sim_layer(layer, lambdas, kappa, charges, initial) for layer in network.layers]
    rows = normalised_input(network.input.channel_major(x), lambdas.input, lambdas.input_signed)
    if is_torch(backend):
        from ..backends import torch_graph
        return torch_graph.simulate_graph(network, layers, rows, timesteps, fan_outs_by_source(network.layers), False,
                                          record_spikes, backend)
    return simulate_graph(network, layers, rows, timesteps, fan_outs_by_source(network.layers), exact=False,
                          record_spikes=record_spikes)
