"""The IF dynamics of a graph network (docs/arithmetic.md 5.5), shared by the integer golden model
(``ecc_hw.graph.golden``) and the float ECC-SNN (``ecc_hw.graph.float_snn``), vectorised over a batch.

Per step t, every spiking layer and max-pool node in ``GraphNetwork.schedule()`` order: a layer adds
``sum_e W_e (*) s_src(e)(t) + b_n + e_n(t)`` (a layer fed only by the input: its current once per
image), fires where ``V >= theta`` and subtracts theta (soft reset); a max-pool node keeps its source's
spike counts D_i(t) and emits ``s_p(t) = D_p(t) - D_p(t-1)`` with D_p the window maximum (rate coding);
then the output layer accumulates its edges and bias. A spike of step t reaches every consumer in step t.

The graph is acyclic and a source always comes before its consumers in the schedule, so the spikes of a
layer at every step depend only on its sources' spikes up to that step: each source is simulated for
all T steps of a chunk of images at once, its edges' currents being one batched linear map over the
T x B spike rows, and only the membrane update runs step by step. The output layer is linear, so its
final membrane is ``sum_e W_e (*) (spike counts of src(e)) + T b_N``. Chunks of images run on threads
(NumPy and BLAS release the GIL; BLAS is held to one thread per product meanwhile).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..if_network import batch_chunk, default_workers
from ..linear import EXACT_FLOAT32
from .edge_map import EdgeMap
from .network import LAYER, NETWORK_INPUT, GraphNetwork, Source
from .pooling import max_pool

ROW_ELEMENTS = 1 << 19  # currents computed at once (2 MiB in float32), so that the edges' sums stay in cache


@dataclass(frozen=True)
class SimLayer:
    """One layer as the simulation sees it: its edges' ``sources`` and ``maps``, ``bias`` per neuron,
    ``threshold`` (None on the output layer), the TRE ``charges`` of steps 1..T and the ``initial``
    membrane; ``current_bound`` (per neuron, or None) is asserted on |Z| at every step. ``map_dtype`` is
    the dtype its edge maps run in: in the integer model one that holds every partial sum of what the
    simulation feeds them exactly (spikes per step, the input, or on the output layer counts over T)."""

    index: int
    sources: tuple[Source, ...]
    maps: tuple[EdgeMap, ...]
    bias: np.ndarray
    threshold: float | None
    charges: np.ndarray | None
    initial: float
    current_bound: np.ndarray | None = None
    map_dtype: type = np.float64

    @property
    def fed_by_input(self) -> bool:
        """True when the network input is the layer's only source."""
        return all(source == NETWORK_INPUT for source in self.sources)


@dataclass
class GraphResult:
    """Outputs for B images. ``spikes`` (when asked for) maps every spiking layer and max-pool node (a
    ``Source``) to its bool spike trains (T, B, neurons)."""

    predictions: np.ndarray        # (B,) argmax of the final output membrane, lowest index on ties
    output_membrane: np.ndarray    # (B, classes) final V_N (int64 in the integer model)
    spike_counts: np.ndarray       # (B, N-1) int64 spikes per spiking layer
    pool_spike_counts: np.ndarray  # (B, P) int64 spikes per max-pool node
    synops: np.ndarray             # (B,) int64: each spike's fan-outs over every edge leaving its neuron
    spikes: dict | None


def fan_outs_by_source(layers) -> dict[Source, np.ndarray]:
    """Each source neuron's fan-out summed over all edges that leave it (5.6), for ``layers`` with
    ``edges`` (each with ``source`` and ``geometry``); sources no edge reads are absent."""
    fan_outs: dict[Source, np.ndarray] = {}
    for layer in layers:
        for edge in layer.edges:
            counts = EdgeMap(edge.geometry, np.zeros(edge.geometry.weight_shape())).fan_out()
            fan_outs[edge.source] = fan_outs.get(edge.source, 0) + counts
    return fan_outs


def _count_dtype(timesteps: int):
    """The narrowest unsigned type that holds a neuron's spike count over T steps."""
    return np.uint8 if timesteps < 256 else np.uint16 if timesteps < 65536 else np.uint32


def _membrane_dtype(layer: SimLayer, timesteps: int):
    """float64 in the float model. In the integer model every current, charge and membrane value is an
    integer with |V - E(t)| <= |V(0)| + T * Zmax + theta + sum of the charges (E(t): the charge added up to
    step t, see ``_fire``): float32 (exact below 2^24, and what float32 maps give, so no conversion) when
    that holds, else int32 below 2^31, else int64."""
    if layer.current_bound is None:
        return np.float64
    largest = (abs(int(layer.initial)) + timesteps * int(np.max(layer.current_bound, initial=0))
               + int(layer.threshold) + int(np.abs(layer.charges).sum()))
    if largest < EXACT_FLOAT32 and layer.map_dtype == np.float32:
        return np.float32
    return np.int32 if largest < 2 ** 31 else np.int64


def _current(layer: SimLayer, values: dict, dtype) -> np.ndarray:
    """sum_e W_e (*) s_src(e) + b_n in ``dtype``: (B, n) for a layer fed only by the input, else
    (T, B, n) over the (T, B, neurons) spike trains of its sources. Computed over blocks of rows that stay
    in cache, every edge of a block summed in the map dtype (integers: the sums are exact) and written,
    with the bias, into the result."""
    leading = values[layer.sources[0]].shape[:-1]
    flat = [values[source].reshape(-1, values[source].shape[-1]) for source in layer.sources]
    total = np.empty((len(flat[0]), layer.bias.size), dtype=dtype)
    bias = layer.bias.astype(layer.map_dtype)
    block = max(1, ROW_ELEMENTS // layer.bias.size)
    for start in range(0, len(total), block):
        part = None
        for rows, edge_map in zip(flat, layer.maps):
            term = edge_map.apply(rows[start:start + block], layer.map_dtype)
            part = term if part is None else np.add(part, term, out=part)
        np.add(part, bias, out=total[start:start + block], casting="unsafe")
    return total.reshape(*leading, -1)


def _check_bound(layer: SimLayer, current: np.ndarray, charges: np.ndarray) -> None:
    """Assert |Z(t)| = |current(t) + e(t)| <= Zmax per neuron at every step (5.6)."""
    if layer.current_bound is None:
        return
    axis = 0 if current.ndim == 2 else 1
    highest = current.max(axis=axis).astype(np.int64) + charges[:, None]
    lowest = current.min(axis=axis).astype(np.int64) + charges[:, None]
    largest = np.maximum(np.abs(highest), np.abs(lowest))
    assert np.all(largest <= layer.current_bound), f"layer {layer.index}: |Z| over its 5.6 bound"


def _fire(layer: SimLayer, current: np.ndarray, timesteps: int, dtype) -> np.ndarray:
    """Integrate ``current`` ((T, B, n), or (B, n) the same every step) plus the TRE charge of each step,
    fire and soft-reset; the spikes (T, B, n) bool. Plain in-place ufuncs into preallocated arrays; the
    charge is not added to every membrane: with E(t) the charge added up to step t, the loop keeps
    V - E(t) and compares it with theta - E(t), which fires and resets exactly as V against theta."""
    batch, neurons = current.shape[-2:]
    _check_bound(layer, current, np.asarray(layer.charges))
    charged = np.cumsum(layer.charges).astype(dtype)
    membrane = np.full((batch, neurons), layer.initial, dtype=dtype)
    reset = np.empty_like(membrane)
    spikes = np.empty((timesteps, batch, neurons), dtype=bool)
    threshold = dtype(layer.threshold)
    for step in range(timesteps):
        membrane += current if current.ndim == 2 else current[step]
        np.greater_equal(membrane, threshold - charged[step], out=spikes[step])
        np.multiply(spikes[step], threshold, out=reset)
        membrane -= reset
    return spikes


def _pool_spikes(network: GraphNetwork, index: int, source_spikes: np.ndarray) -> np.ndarray:
    """Max-pool node ``index``'s spikes (T, B, n) bool: the growth of its running maximum D_p(t) of the
    source's running counts D_i(t)."""
    node = network.max_pools[index - 1]
    timesteps, batch, _ = source_spikes.shape
    running = np.cumsum(source_spikes, axis=0, dtype=_count_dtype(timesteps))
    maximum = max_pool(node, running.reshape(timesteps * batch, -1)).reshape(timesteps, batch, -1)
    return np.diff(maximum, axis=0, prepend=np.zeros_like(maximum[:1])).astype(bool)


def _run_chunk(network: GraphNetwork, layers: list[SimLayer], rows: np.ndarray, timesteps: int, fan_outs: dict,
               exact: bool, record_spikes: bool) -> GraphResult:
    """Every source of the schedule for all T steps of one chunk of images, then the output layer."""
    batch = len(rows)
    values: dict[Source, np.ndarray] = {NETWORK_INPUT: rows}
    counts: dict[Source, np.ndarray] = {NETWORK_INPUT: timesteps * rows}
    spike_counts = np.zeros((batch, len(layers) - 1), dtype=np.int64)
    pool_spike_counts = np.zeros((batch, len(network.max_pools)), dtype=np.int64)
    synops = np.zeros(batch, dtype=np.int64)
    for source in network.schedule():
        if source.kind == LAYER:
            layer = layers[source.index - 1]
            dtype = _membrane_dtype(layer, timesteps)
            spikes = _fire(layer, _current(layer, values, dtype), timesteps, dtype)
        else:
            spikes = _pool_spikes(network, source.index, values[network.max_pools[source.index - 1].source])
        values[source] = spikes
        counts[source] = spikes.sum(axis=0, dtype=_count_dtype(timesteps))
        totals = counts[source].sum(axis=1, dtype=np.int64)
        if source.kind == LAYER:
            spike_counts[:, source.index - 1] = totals
        else:
            pool_spike_counts[:, source.index - 1] = totals
        if source in fan_outs:
            synops += counts[source] @ fan_outs[source]
    output = layers[-1]
    membrane = None
    for source, edge_map in zip(output.sources, output.maps):
        part = edge_map.apply(counts[source], output.map_dtype)
        membrane = part if membrane is None else np.add(membrane, part, out=membrane)
    membrane = membrane.astype(np.int64) if exact else membrane
    membrane += timesteps * output.bias[None, :]
    if output.current_bound is not None:
        assert np.all(np.abs(membrane) <= timesteps * output.current_bound), "output membrane over its 5.6 bound"
    spikes = {source: values[source] for source in network.schedule()} if record_spikes else None
    return GraphResult(np.argmax(membrane, axis=1), membrane, spike_counts, pool_spike_counts, synops, spikes)


def simulate_graph(network: GraphNetwork, layers: list[SimLayer], rows: np.ndarray, timesteps: int,
                   fan_outs: dict[Source, np.ndarray], exact: bool, record_spikes: bool = False,
                   workers: int | None = None) -> GraphResult:
    """Run ``layers`` (1..N, in the network's numbering) on input rows (B, C * H * W) channel-major for
    T = ``timesteps`` (>= 1); ``exact``: integer currents and membranes (int64 results), else float64.

    Chunks of images run on ``workers`` threads (default: every CPU, as ``ecc_hw.golden.run``); every
    chunk is computed as if alone, so the integer results do not depend on ``workers``. Its twin on the
    torch backend is ``ecc_hw.backends.torch_graph.simulate_graph``."""
    workers = default_workers() if workers is None else max(1, int(workers))
    widest = max([layer.bias.size for layer in layers] + [pool.neurons for pool in network.max_pools])
    chunk = max(1, min(batch_chunk(timesteps, widest), -(-len(rows) // workers)))
    starts = range(0, len(rows), chunk)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda start: _run_chunk(network, layers, rows[start:start + chunk], timesteps,
                                                       fan_outs, exact, record_spikes), starts))
    spikes = None
    if record_spikes:
        spikes = {source: np.concatenate([part.spikes[source] for part in parts], axis=1) for source in parts[0].spikes}
    membrane = np.concatenate([part.output_membrane for part in parts])
    return GraphResult(np.argmax(membrane, axis=1), membrane,
                       np.concatenate([part.spike_counts for part in parts]),
                       np.concatenate([part.pool_spike_counts for part in parts]),
                       np.concatenate([part.synops for part in parts]), spikes)
