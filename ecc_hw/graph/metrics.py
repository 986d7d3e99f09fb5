"""Operation counts of a graph network (docs/arithmetic.md 5.6, 5.4; section 4 for chains).

SynOps come from the simulation (``ecc_hw.graph.golden``); these are the counts that do not depend on
the spikes: CNN MACs, the first-layer MACs of the SNN, spiking neurons and max-pool compares.
"""
from __future__ import annotations

from ..metrics import energy_from_counts
from .network import INPUT, GraphNetwork
from .pooling import window_cells


def macs_per_image(network: GraphNetwork) -> int:
    """CNN MACs: nominal fan-in x neurons summed over every edge of every layer (an identity edge counts 1
    per neuron; the additions of a composed pool are not counted)."""
    return sum(edge.nominal_fan_in * layer.neurons for layer in network.layers for edge in layer.edges)


def first_layer_macs_per_image(network: GraphNetwork) -> int:
    """The SNN's constant currents, once per image: fan-in x neurons over every layer fed by the input."""
    return sum(edge.nominal_fan_in * layer.neurons for layer in network.layers
               if all(e.source.kind == INPUT for e in layer.edges) for edge in layer.edges)


def spiking_neurons(network: GraphNetwork) -> int:
    """Neurons of layers 1..N-1 (each is swept once per step)."""
    return sum(layer.neurons for layer in network.spiking_layers)


def maxpool_compares_per_image(network: GraphNetwork, timesteps: int) -> int:
    """Non-padding window cells x pool neurons x T, over every max-pool node (5.4)."""
    return sum(int(window_cells(node).sum()) for node in network.max_pools) * timesteps



def energy_uj(network: GraphNetwork, synops_per_image: float) -> dict:
    """``ecc_hw.metrics.energy_from_counts`` with the graph's first-layer MACs and MACs (section 4)."""
    return energy_from_counts(first_layer_macs_per_image(network), macs_per_image(network), synops_per_image)
