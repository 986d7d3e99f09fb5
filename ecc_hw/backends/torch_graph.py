"""Graph networks on the PyTorch backend: the rate-coded IF dynamics of ``ecc_hw.graph.simulate`` (integer
golden model and float SNN) and the radix golden model of ``ecc_hw.graph.radix``, bit-exact with NumPy on
the integer models.

The layers come from the NumPy code (``SimLayer``: edge maps, biases, thresholds, TRE charges, the 5.6
bounds and the map dtype its proof chose; the radix bounds of ``membrane_bound``), so both backends run
the very same integers in the very same dtypes; only the arithmetic runs in torch, a chunk of images at a
time, each source for all T steps at once in schedule order (as NumPy).
"""
from __future__ import annotations

import numpy as np

from ..graph.network import LAYER, NETWORK_INPUT
from ..graph.simulate import GraphResult, _membrane_dtype
from ..if_network import batch_chunk
from .torch_device import exact_mode, tensor, to_numpy, torch_module
from .torch_fire import compare_and_subtract, fire, horner, synops
from .torch_maps import TorchMap, max_pool
from .torch_threads import map_chunks


def _maps(layers, device) -> list[list[TorchMap]]:
    """Every layer's edge maps on ``device``."""
    return [[TorchMap.of_edge(edge_map, device) for edge_map in layer.maps] for layer in layers]


def _current(layer, maps, values: dict):
    """sum_e W_e (*) s_src(e) + b_n in the map dtype (exact: the proof of ``map_dtype``): (B, n) for a
    layer fed only by the input, else (T, B, n)."""
    leading = values[layer.sources[0]].shape[:-1]
    total = None
    for source, edge_map in zip(layer.sources, maps):
        rows = values[source].reshape(-1, values[source].shape[-1])
        term = edge_map.apply(rows, layer.map_dtype)
        total = term if total is None else total.add_(term)
    total += tensor(layer.bias, total.device, layer.map_dtype)
    return total.reshape(*leading, -1)


def _check_bound(layer, current, charges) -> None:
    """|Z(t)| = |current(t) + e(t)| <= Zmax per neuron at every step (5.6), as NumPy asserts it."""
    if layer.current_bound is None:
        return
    torch = torch_module()
    dim = 0 if current.dim() == 2 else 1
    charges = tensor(charges, current.device, np.int64)
    highest = current.amax(dim=dim).to(torch.int64) + charges[:, None]
    lowest = current.amin(dim=dim).to(torch.int64) + charges[:, None]
    largest = torch.maximum(highest.abs(), lowest.abs())
    assert bool((largest <= tensor(layer.current_bound, current.device, np.int64)).all()), \
        f"layer {layer.index}: |Z| over its 5.6 bound"


def _count_kind(timesteps: int):
    """The integer dtype of spike counts over T steps."""
    torch = torch_module()
    return torch.int32 if timesteps < 2 ** 31 else torch.int64


def _pool_spikes(node, source_spikes):
    """Rate coding: the growth of the window maximum of the source's running spike counts (5.4)."""
    torch = torch_module()
    timesteps, batch, _ = source_spikes.shape
    running = torch.cumsum(source_spikes.to(torch.int32), dim=0)
    maximum = max_pool(node, running.reshape(timesteps * batch, -1)).reshape(timesteps, batch, -1)
    previous = torch.cat([torch.zeros_like(maximum[:1]), maximum[:-1]])
    return (maximum - previous).to(torch.bool)


def _run_rate_chunk(network, layers, maps, rows, timesteps: int, fan_outs: dict, exact: bool,
                    record_spikes: bool) -> GraphResult:
    """One chunk: every source of the schedule for all T steps, then the output layer (as NumPy's)."""
    torch = torch_module()
    device = rows.device
    batch = len(rows)
    values = {NETWORK_INPUT: rows}
    counts = {}
    spike_counts = torch.zeros((batch, len(layers) - 1), dtype=torch.int64, device=device)
    pool_counts = torch.zeros((batch, len(network.max_pools)), dtype=torch.int64, device=device)
    total_synops = torch.zeros(batch, dtype=torch.int64, device=device)
    for source in network.schedule():
        if source.kind == LAYER:
            layer = layers[source.index - 1]
            dtype = _membrane_dtype(layer, timesteps)
            current = _current(layer, maps[source.index - 1], values)
            _check_bound(layer, current, layer.charges)
            spikes = fire(current, layer.threshold, layer.charges, layer.initial, timesteps, dtype)
        else:
            node = network.max_pools[source.index - 1]
            spikes = _pool_spikes(node, values[node.source])
        values[source] = spikes
        counts[source] = spikes.view(torch.uint8).sum(dim=0, dtype=_count_kind(timesteps))  # bytes: faster
        totals = counts[source].sum(dim=1, dtype=torch.int64)
        (spike_counts if source.kind == LAYER else pool_counts)[:, source.index - 1] = totals
        if source in fan_outs:
            total_synops += synops(counts[source], fan_outs[source])
    output = layers[-1]
    membrane = None
    for source, edge_map in zip(output.sources, maps[-1]):
        part = edge_map.apply(counts[source], output.map_dtype)
        membrane = part if membrane is None else membrane.add_(part)
    if exact:
        membrane = membrane.to(torch.int64) + timesteps * tensor(output.bias, device, np.int64)[None, :]
    else:
        membrane = membrane.to(torch.float64) + timesteps * tensor(output.bias, device, np.float64)[None, :]
    if output.current_bound is not None:
        bound = timesteps * tensor(output.current_bound, device, np.int64)
        assert bool((membrane.abs() <= bound).all()), "output membrane over its 5.6 bound"
    membrane = to_numpy(membrane)
    spikes = ({source: to_numpy(values[source]) for source in network.schedule()} if record_spikes else None)
    return GraphResult(np.argmax(membrane, axis=1), membrane, to_numpy(spike_counts), to_numpy(pool_counts),
                       to_numpy(total_synops), spikes)


def _join(parts: list[GraphResult]) -> GraphResult:
    """The results of consecutive chunks as one."""
    spikes = None
    if parts[0].spikes is not None:
        spikes = {source: np.concatenate([part.spikes[source] for part in parts], axis=1) for source in parts[0].spikes}
    membrane = np.concatenate([part.output_membrane for part in parts])
    return GraphResult(np.argmax(membrane, axis=1), membrane, np.concatenate([p.spike_counts for p in parts]),
                       np.concatenate([p.pool_spike_counts for p in parts]),
                       np.concatenate([p.synops for p in parts]), spikes)


def simulate_graph(network, layers, rows: np.ndarray, timesteps: int, fan_outs: dict, exact: bool,
                   record_spikes: bool, backend, workers: int | None = None) -> GraphResult:
    """``ecc_hw.graph.simulate.simulate_graph`` on the torch ``backend``: the same arguments, the same
    results (bit-exact with ``exact``), chunks of images of at most NumPy's size on ``workers`` threads
    (``torch_threads.map_chunks``)."""
    from .torch_device import device_of

    device = device_of(backend)
    widest = max([layer.bias.size for layer in layers] + [pool.neurons for pool in network.max_pools])
    row_dtype = np.int64 if exact else np.float64
    with exact_mode(backend):
        maps = _maps(layers, device)
        fan = {source: tensor(value, device, np.int64) for source, value in fan_outs.items()}

        def run_chunk(start: int, stop: int) -> GraphResult:
            with exact_mode(backend):
                return _run_rate_chunk(network, layers, maps, tensor(rows[start:stop], device, row_dtype), timesteps,
                                       fan, exact, record_spikes)

        parts = map_chunks(run_chunk, len(rows), batch_chunk(timesteps, widest), backend, workers)
    return _join(parts)


# --------------------------------------------------------------------------------------------------- radix

def _edge_input(edge_map: TorchMap, value):
    """Wq_e (*) x_q (B, n) for input rows, or sum_t 2^(T-t) Wq_e (*) s(t) for bits (T, B, n): float64 maps
    (exact, as NumPy's), rounded to int64, Horner over the steps."""
    torch = torch_module()
    if value.dim() == 2:
        return torch.round(edge_map.apply(value, np.float64)).to(torch.int64)
    timesteps, batch, _ = value.shape
    per_step = torch.round(edge_map.apply(value.reshape(timesteps * batch, -1), np.float64)).to(torch.int64)
    return horner(per_step.reshape(timesteps, batch, -1))


def _radix_membrane(layer, maps, values: dict):
    """V_n = bq_n + the weighted inputs of every edge (B, n) int64."""
    total = None
    for edge, edge_map in zip(layer.edges, maps):
        term = _edge_input(edge_map, values[edge.source])
        total = term if total is None else total + term
    return total + tensor(layer.bias, total.device, np.int64)[None, :]


def max_pool_bits(node, spikes):
    """Binary coding: s_p(t) = D_p(t) - 2 D_p(t-1), D_p the window maximum of the MSB-first prefixes (5.4)."""
    torch = torch_module()
    prefix = torch.zeros(spikes.shape[1:], dtype=torch.int64, device=spikes.device)
    running = torch.zeros((spikes.shape[1], node.neurons), dtype=torch.int64, device=spikes.device)
    bits = torch.empty((len(spikes), *running.shape), dtype=torch.bool, device=spikes.device)
    for step in range(len(spikes)):
        prefix = 2 * prefix + spikes[step].to(torch.int64)
        maximum = max_pool(node, prefix)
        bit = maximum - 2 * running
        assert bool(((bit == 0) | (bit == 1)).all()), f"max-pool node {node.index}: a bit outside 0..1"
        bits[step], running = bit.to(torch.bool), maximum
    return bits


def run_radix_graph(graph, x_q: np.ndarray, timesteps: int, record_spikes: bool, backend, chunk: int,
                    fan_outs: dict, bounds: list) -> GraphResult:
    """``ecc_hw.graph.radix.run_radix_graph`` on the torch ``backend`` (chunks of ``chunk`` images, the
    ``fan_outs`` per source and membrane ``bounds`` per layer it computed): int64 membranes, float64 maps."""
    from .torch_device import device_of

    torch = torch_module()
    device = device_of(backend)
    network = graph.network
    parts = []
    with exact_mode(backend):
        maps = [[TorchMap.of_edge(edge.edge_map(), device) for edge in layer.edges] for layer in graph.layers]
        fan_outs = {source: tensor(value, device, np.int64) for source, value in fan_outs.items()}
        bounds = [tensor(bound, device, np.int64) for bound in bounds]
        for start in range(0, len(x_q), chunk):
            rows = tensor(x_q[start:start + chunk], device, np.int64)
            batch = len(rows)
            values = {NETWORK_INPUT: rows}
            spike_counts = torch.zeros((batch, len(graph.spiking_layers)), dtype=torch.int64, device=device)
            pool_counts = torch.zeros((batch, len(network.max_pools)), dtype=torch.int64, device=device)
            total_synops = torch.zeros(batch, dtype=torch.int64, device=device)
            for source in network.schedule():
                if source.kind == LAYER:
                    layer = graph.layers[source.index - 1]
                    membrane = _radix_membrane(layer, maps[source.index - 1], values)
                    assert bool((membrane.abs() <= bounds[source.index - 1]).all()), \
                        f"layer {source.index}: |V| over its bound"
                    spikes = compare_and_subtract(membrane, layer.threshold, timesteps)
                else:
                    node = network.max_pools[source.index - 1]
                    spikes = max_pool_bits(node, values[node.source])
                values[source] = spikes
                per_neuron = spikes.sum(dim=0, dtype=torch.int64)
                counts = spike_counts if source.kind == LAYER else pool_counts
                counts[:, source.index - 1] = per_neuron.sum(dim=1)
                if source in fan_outs:
                    total_synops += synops(per_neuron, fan_outs[source])
            output = _radix_membrane(graph.output_layer, maps[-1], values)
            assert bool((output.abs() <= bounds[-1]).all()), "output membrane over its bound"
            output = to_numpy(output)
            trains = {source: to_numpy(values[source]) for source in network.schedule()} if record_spikes else None
            parts.append(GraphResult(np.argmax(output, axis=1), output, to_numpy(spike_counts), to_numpy(pool_counts),
                                     to_numpy(total_synops), trains))
    return _join(parts)
