"""The CNN's float64 forward pass over a GraphNetwork: the reference for calibration (docs/arithmetic.md 1.3, 5.2).

Layer n computes ``z_n = sum over edges of L_e(a_src(e)) + b_n`` and, for n < N, ``a_n = ReLU(z_n)``
(clipped at ``clip`` when set); a max-pool node takes the maximum of its windows; ``a_N`` are the
logits. Sources are evaluated in ``GraphNetwork.schedule()`` order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .edge_map import EdgeMap
from .network import LAYER, MAX_POOL, NETWORK_INPUT, GraphNetwork, Layer, Source
from .pooling import max_pool

CHUNK = 256  # images per step, to bound the memory of the conv patches


@dataclass
class Activations:
    """Every activation of a batch, each (B, neurons) channel-major: ``layers`` a_1 .. a_{N-1},
    ``max_pools`` the max-pool nodes 1..P, ``logits`` a_N."""

    layers: list[np.ndarray]
    max_pools: list[np.ndarray]
    logits: np.ndarray


def _pre_activation(layer: Layer, maps: list[EdgeMap], values: dict) -> np.ndarray:
    total = layer.bias_per_neuron()[None, :]
    for edge, edge_map in zip(layer.edges, maps):
        total = total + edge_map.apply(values[edge.source])
    return total


def forward(network: GraphNetwork, x: np.ndarray) -> Activations:
    """The activations of ``network`` on ``x`` (B, *input model shape), in the model's own input layout."""
    maps = {layer.index: [EdgeMap.of(edge) for edge in layer.edges] for layer in network.layers}
    rows = network.input.channel_major(x).astype(np.float64)
    if not len(rows):
        raise ValueError("forward needs at least one image")
    chunks = []
    for start in range(0, len(rows), CHUNK):
        values: dict[Source, np.ndarray] = {NETWORK_INPUT: rows[start:start + CHUNK]}
        for source in network.schedule():
            if source.kind == LAYER:
                layer = network.layer(source.index)
                value = np.maximum(_pre_activation(layer, maps[layer.index], values), 0.0)
                values[source] = value if layer.clip is None else np.minimum(value, layer.clip)
            else:
                node = network.max_pools[source.index - 1]
                values[source] = max_pool(node, values[node.source])
        output = network.output_layer
        chunks.append(([values[Source(LAYER, layer.index)] for layer in network.spiking_layers],
                       [values[Source(MAX_POOL, p.index)] for p in network.max_pools],
                       _pre_activation(output, maps[output.index], values)))
    return Activations([np.concatenate([c[0][i] for c in chunks]) for i in range(len(network.spiking_layers))],
                       [np.concatenate([c[1][i] for c in chunks]) for i in range(len(network.max_pools))],
                       np.concatenate([c[2] for c in chunks]))
