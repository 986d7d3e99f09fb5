"""Plain-loop reference of the integer graph network, written from docs/arithmetic.md 5.4-5.6 without
ecc_hw.graph.golden: neuron by neuron, step by step, one image at a time.

An edge's linear map is ``EdgeMap.apply`` on one image (tested against plain loops in test_graph_edge_map);
everything else (order of updates, constant currents, TRE, fire and reset, max-pool running counts, SynOps
counted at the consumer as the synapses from firing neurons) is written here.
"""
from __future__ import annotations

import numpy as np

from ecc_hw.graph.edge_map import EdgeMap
from ecc_hw.graph.network import INPUT, LAYER, MAX_POOL, Source


def _edge_sum(edge, source_values) -> list[int]:
    """Wq_e (*) s for one image, as Python ints."""
    row = np.asarray(source_values, dtype=np.float64)[None, :]
    return [int(v) for v in np.rint(EdgeMap(edge.geometry, edge.weight.astype(np.float64)).apply(row)[0])]


def _synapses_used(edge, spikes) -> int:
    """Synapses of the edge's geometry leaving the neurons that fired (every weight set to 1)."""
    ones = np.ones(edge.geometry.weight_shape())
    return int(np.rint(EdgeMap(edge.geometry, ones).apply(np.asarray(spikes, dtype=np.float64)[None, :])[0].sum()))


def _max_pool_loop(node, counts: list[int]) -> list[int]:
    """D_p: the maximum of the non-padding cells of every window, channel-major."""
    channels, height, width = node.input_shape
    _, out_h, out_w = node.output_shape
    top, left, _, _ = node.padding
    out = []
    for c in range(channels):
        for oy in range(out_h):
            for ox in range(out_w):
                cells = []
                for ky in range(node.kernel[0]):
                    for kx in range(node.kernel[1]):
                        iy = oy * node.stride[0] - top + ky * node.dilation[0]
                        ix = ox * node.stride[1] - left + kx * node.dilation[1]
                        if 0 <= iy < height and 0 <= ix < width:
                            cells.append(counts[(c * height + iy) * width + ix])
                out.append(max(cells))
    return out


def golden_graph_loop(graph, image_q, timesteps: int, initial_charge: bool = False) -> dict:
    """One image through the integer graph network: final output membrane, spike count per layer and per
    max-pool node, SynOps and the spike trains {Source: [T lists of 0/1]}."""
    network = graph.network
    values = {Source(INPUT, 0): [int(v) for v in image_q]}
    membranes = {layer.index: [layer.tre_charge if initial_charge else 0] * layer.neurons
                 for layer in graph.spiking_layers}
    running = {Source(LAYER, layer.index): [0] * layer.neurons for layer in graph.spiking_layers}
    pool_sent = {pool.index: [0] * pool.neurons for pool in network.max_pools}
    constant, synops = {}, 0
    trains = {}
    output = graph.output_layer
    output_membrane = [0] * output.neurons

    def current(layer) -> list[int]:
        nonlocal synops
        if layer.index in constant:
            return constant[layer.index]
        total = [int(b) for b in layer.bias]
        for edge in layer.edges:
            for i, value in enumerate(_edge_sum(edge, values[edge.source])):
                total[i] += value
            if edge.source.kind != INPUT:
                synops += _synapses_used(edge, values[edge.source])
        if all(edge.source.kind == INPUT for edge in layer.edges):
            constant[layer.index] = total
        return total

    for t in range(1, timesteps + 1):
        for layer in graph.spiking_layers:
            total_charge = layer.tre_charge
            charge = 0 if initial_charge else (total_charge * t) // timesteps - (total_charge * (t - 1)) // timesteps
            z = current(layer)
            spikes = []
            for i in range(layer.neurons):
                membranes[layer.index][i] += z[i] + charge
                fired = 1 if membranes[layer.index][i] >= layer.threshold else 0
                membranes[layer.index][i] -= layer.threshold * fired
                spikes.append(fired)
                running[Source(LAYER, layer.index)][i] += fired
            source = Source(LAYER, layer.index)
            values[source] = spikes
            trains.setdefault(source, []).append(spikes)
            for pool in network.max_pools:
                if pool.source.index == layer.index:
                    maximum = _max_pool_loop(pool, running[source])
                    sent = [m - d for m, d in zip(maximum, pool_sent[pool.index])]
                    pool_sent[pool.index] = maximum
                    values[Source(MAX_POOL, pool.index)] = sent
                    trains.setdefault(Source(MAX_POOL, pool.index), []).append(sent)
        for i, value in enumerate(current(output)):
            output_membrane[i] += value
    return {
        "output_membrane": output_membrane,
        "spike_counts": [sum(map(sum, trains[Source(LAYER, layer.index)])) for layer in graph.spiking_layers],
        "pool_spike_counts": [sum(map(sum, trains[Source(MAX_POOL, pool.index)])) for pool in network.max_pools],
        "synops": synops,
        "trains": trains,
    }
