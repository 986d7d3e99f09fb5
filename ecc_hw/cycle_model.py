"""Exact cycle model of the ``rtl_gen`` accelerator, from the golden model's spikes (issue 3).

Derived from the parameter file alone (it does not import the RTL); the tests check it against the
Amaranth simulation cycle for cycle.

What is counted: ``cycles_per_image`` is the number of clock cycles from the first cycle of an
image's clear phase (the first cycle after reset, or the cycle after the previous image's last
result handshake) up to and including the image's last result handshake, with the input stream
always valid and the result stream always ready. Images do not overlap, so this is also the
period of back-to-back inference. The first pixel handshake happens ``clear_cycles`` cycles in.

Schedule (P lanes; channel ``co`` of a layer in lane ``co % P``, group ``co // P``; G = ceil(C/P)):

- clear: ``D = max_n G_n * H_n * W_n`` cycles (every bank's used words written in parallel);
- load: pixel events in channel-major order, integration phase below with cost 0 for a zero pixel;
- for t = 1..T, n = 1..N-1: fire sweep of layer n, started in cycle S: ``G_n H_n W_n`` neurons per
  lane, the next phase starts in cycle ``J = S + G_n H_n W_n + FIRE_OVERHEAD``; then the integration
  of its spikes into layer n+1 in sweep order (group, y, x, lane);
- an integration phase starting in cycle J with events of walk lengths L_k (L = rows x cols x
  groups of the target layer: ``fan_out / C_out * G``; 0 for no-ops) accepts event k in cycle
  ``a_k = J + sum_{i<k} max(1, L_i)``, and ends (the next phase starts) in cycle
  ``max(a_last + 1, U + LANE_DRAIN)`` where U is the cycle of the last issued update (``J`` if there
  are no events; ``SPRAM_LANE_DRAIN`` on single-port banks);
- with dual-port banks the integration of layer n's spikes into layer n+1 overlaps layer n's
  sweep: the spikes of sweep word w (group * H * W + position) are offered from cycle
  ``S + OVERLAP_LATENCY + w``, event k is accepted in ``a_k = max(a_{k-1} + max(1, L_{k-1}),
  offered_k)``, and the next phase starts at the later of J and the integration's end as above;
- readout: 3 cycles per output neuron (address, registered read data, result word) and 1 for the
  class word, after one cycle of transition.

Event input (``params.input_kind == "events"``, ``rtl_gen.event_input``): no load phase; for
t = 1..T an integration phase into layer 1 of frame t's words (each nonzero pixel of the frame, in
channel-major order, walk length ``walk_cycles(layer 1)``, then the frame's marker, a no-op), then
the sweeps and integrations of step t as above. Frame 1's phase starts right after the clear, frame
t+1's ``FRAME_ENTRY`` cycle after step t's last integration ends.

Binary-coded (radix) parameter files: the same phases with the same costs, in the order
n = 1..N-1, t = 1..T (each layer fires its T bits before the next layer fires). A phase's cost
depends only on its own spikes, not on the cycle it starts in, so the count is the same sum as
for the step-major order, and one loop serves both.

Memory schedules (``memory``): with ``"bram"`` every bank is a simple dual-port RAM and the above
holds as written (issue interval r = 1). With ``"spram"`` (the iCEBreaker's SB_SPRAM256KA, single
ported) every membrane, current and spike-buffer bank shares single-port SPRAMs, so each bank is read
in one cycle and written in the next: the walkers issue one update every r = 2 cycles (an event of
walk length L costs 2L cycles, its last update is issued 2L - 1 cycles after it is accepted), a fire
sweep of D words lasts 2D + SPRAM_FIRE_OVERHEAD - 1 cycles (no extra read-data stage), and the clear phase
writes the stacked banks one after the other: ``sum_n G_n H_n W_n`` cycles (``rtl_gen.spram_layout``).
"""
from __future__ import annotations

import numpy as np

from .linear import LinearMap
from .params import NetworkParams
from .variants import InputKind, Memory

# start pulse cycle + two pipeline stages (read data registered) + the spike buffer's registered push + the state change
FIRE_OVERHEAD = 5
SPRAM_FIRE_OVERHEAD = 3  # single-port banks: one pipeline stage (the next read follows the write)
# an update issued in cycle U leaves the walker in U + 1, is written in U + 5; the state changes in U + 6
LANE_DRAIN = 6
SPRAM_LANE_DRAIN = 4   # single-port banks: no read-data stage in the lanes, written in U + 3
READOUT_ENTRY = 1      # the cycle from the last integration to the first read
READOUT_PER_NEURON = 3  # read address, registered read data, then the result word
CLASS_WORDS = 1
FRAME_ENTRY = 1        # event input: from step t's last integration to frame t+1's first word
OVERLAP_LATENCY = 6    # sweep word s (start pulse in S): pushed in S+3+s, registered, written and read
                       # in S+4+s, in the word register in S+5+s, its first spike offered in S+6+s
MEMORIES = Memory.values()


def fire_overhead(interval: int) -> int:
    """Cycles of a fire sweep beyond its ``interval * D - (interval - 1)`` issue cycles."""
    return FIRE_OVERHEAD if interval == 1 else SPRAM_FIRE_OVERHEAD


def lane_drain(interval: int) -> int:
    """Cycles from an integration's last issued update to the next phase's first cycle."""
    return LANE_DRAIN if interval == 1 else SPRAM_LANE_DRAIN


def issue_interval(memory: str) -> int:
    """Cycles between two updates of one bank: 1 (dual-port BRAM) or 2 (single-port SPRAM)."""
    if memory not in MEMORIES:
        raise ValueError(f"memory must be one of {', '.join(MEMORIES)}, got {memory!r}")
    return 1 if memory == Memory.BRAM else 2


def _groups(channels: int, lanes: int) -> int:
    return -(-channels // lanes)


def _target_channels(layer) -> int:
    return int(np.prod(layer.output_shape)) if layer.kind == "dense" else int(layer.output_shape[0])


def _out_hw(layer) -> int:
    return 1 if layer.kind == "dense" else int(layer.output_shape[1] * layer.output_shape[2])


def walk_cycles(layer, lanes: int) -> np.ndarray:
    """Walker cycles per input neuron of ``layer`` (before its pool): fan-out / C_out x groups (a
    pool layer, walked as a 1x1 conv with diagonal weights: its cells x groups)."""
    channels = _target_channels(layer)
    positions = LinearMap.of(layer).fan_out()
    if layer.kind != "pool":
        positions = positions // channels
    return positions * _groups(channels, lanes)


def sweep_words(layer, lanes: int) -> int:
    """Lane-local words of a layer's banks: groups x H x W."""
    return _groups(_target_channels(layer), lanes) * _out_hw(layer)


def sweep_order(layer, lanes: int) -> np.ndarray:
    """Neuron indices (channel-major) of ``layer`` in the order its fire sweep emits spikes."""
    channels = _target_channels(layer)
    hw = _out_hw(layer)
    index = np.arange(channels * hw)
    channel, pos = index // hw, index % hw
    return index[np.lexsort((channel % lanes, pos, channel // lanes))]


def sweep_word(layer, lanes: int) -> np.ndarray:
    """For each neuron (channel-major) of ``layer``, the index of the sweep word (cycle) holding it:
    group * H * W + position."""
    channels = _target_channels(layer)
    hw = _out_hw(layer)
    index = np.arange(channels * hw)
    return index // hw // lanes * hw + index % hw


def constants(params: NetworkParams, lanes: int, memory: Memory = Memory.BRAM) -> dict:
    """The model's constants (for the generator's manifest)."""
    words = [sweep_words(layer, lanes) for layer in params.layers]
    interval = issue_interval(memory)
    extra = {"frame_entry": FRAME_ENTRY} if params.input_kind == InputKind.EVENTS else {}
    return {**extra, "clear_cycles": max(words) if interval == 1 else sum(words), "issue_interval": interval,
            "fire_overhead": fire_overhead(interval), "lane_drain": lane_drain(interval),
            "readout_entry": READOUT_ENTRY, "readout_per_neuron": READOUT_PER_NEURON,
            "class_words": CLASS_WORDS,
            "sweep_words": [sweep_words(layer, lanes) for layer in params.spiking_layers]}


def integration_end(start: int, lengths: np.ndarray, interval: int = 1) -> int:
    """Cycle in which the phase after an integration phase starting at ``start`` begins (walks of
    ``lengths`` updates, one update every ``interval`` cycles)."""
    if len(lengths) == 0:
        return start
    cost = np.maximum(lengths * interval, 1)
    accept = start + np.cumsum(cost) - cost
    end = int(accept[-1]) + 1
    busy = np.flatnonzero(lengths > 0)
    if len(busy):
        k = busy[-1]
        end = max(end, int(accept[k] + interval * lengths[k] - (interval - 1)) + lane_drain(interval))
    return end


def overlapped_integration_end(end_of_sweep: int, available: np.ndarray, lengths: np.ndarray,
                               interval: int = 1) -> int:
    """Cycle in which the phase after a sweep with overlapped integration begins: event k (walk
    length L_k, one update every ``interval`` cycles) is accepted in ``a_k = max(a_{k-1} + max(1,
    interval L_{k-1}), available_k)``; the phase ends at the later of the sweep's end and the
    integration's (as ``integration_end``)."""
    if len(lengths) == 0:
        return end_of_sweep
    cost = np.maximum(lengths * interval, 1)
    before = np.cumsum(cost) - cost
    accept = before + np.maximum.accumulate(available - before)
    end = int(accept[-1]) + 1
    busy = np.flatnonzero(lengths > 0)
    if len(busy):
        k = busy[-1]
        end = max(end, int(accept[k] + interval * lengths[k] - (interval - 1)) + lane_drain(interval))
    return max(end_of_sweep, end)


def _spikes_of(golden_result_or_spikes):
    spikes = getattr(golden_result_or_spikes, "spikes", golden_result_or_spikes)
    if spikes is None:
        raise ValueError("the golden result has no spike trains: run it with record_spikes=True")
    return spikes


def cycles_per_image(params: NetworkParams, golden_result_or_spikes, lanes: int,
                     timesteps: int | None = None, x_q: np.ndarray | None = None,
                     memory: Memory = Memory.BRAM) -> np.ndarray:
    """Exact cycles of one inference per image (see the module docstring for what is counted).

    ``memory``: the banks' memory schedule, ``"bram"`` or ``"spram"`` (module docstring).
    ``golden_result_or_spikes``: a ``GoldenResult`` run with ``record_spikes=True``, or its
    ``spikes`` list. ``x_q`` (N, C, H, W): the quantised images, needed because the load phase
    skips zero pixels; with event input the spike counts (N, T, C, H, W).
    """
    if x_q is None:
        raise ValueError("x_q is required: the load phase costs depend on which pixels are zero")
    spikes = _spikes_of(golden_result_or_spikes)
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    layers = params.layers
    events = params.input_kind == InputKind.EVENTS
    images = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), timesteps if events else 1, -1)
    consts = constants(params, lanes, memory)
    interval = consts["issue_interval"]
    load_walk = walk_cycles(layers[0], lanes)
    walks = [walk_cycles(layer, lanes) for layer in layers[1:]]
    orders = [sweep_order(layer, lanes) for layer in params.spiking_layers]
    words = consts["sweep_words"]
    word_of = [sweep_word(layer, lanes) for layer in params.spiking_layers]
    out = np.zeros(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        cycle = consts["clear_cycles"]
        if not events:
            cycle = integration_end(cycle, np.where(image[0] != 0, load_walk, 0), interval)
        for t in range(timesteps):
            if events:
                cycle += FRAME_ENTRY if t else 0
                frame = image[t]
                cycle = integration_end(cycle, np.append(load_walk[frame != 0], 0), interval)
            for n in range(len(params.spiking_layers)):
                start = cycle
                cycle += interval * words[n] + fire_overhead(interval) - (interval - 1)
                fired = orders[n][spikes[n][t, i, orders[n]]]
                if interval == 1:     # the integration overlaps the sweep: spikes as they come
                    cycle = overlapped_integration_end(cycle, start + OVERLAP_LATENCY + word_of[n][fired],
                                                    walks[n][fired])
                else:
                    cycle = integration_end(cycle, walks[n][fired], interval)
        out[i] = cycle + READOUT_ENTRY + READOUT_PER_NEURON * layers[-1].neurons + CLASS_WORDS
    return out


def ideal_cycles(params: NetworkParams, golden_result, lanes: int, timesteps: int | None = None) -> np.ndarray:
    """docs/arithmetic.md 4's hardware ideal per image: (first-layer MACs + SynOps + T x spiking neurons) / P
    (event input: no first-layer MACs; the input events are in the SynOps)."""
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    first = params.layers[0]
    macs = 0 if params.input_kind == InputKind.EVENTS else first.nominal_fan_in * first.neurons
    neurons = sum(layer.neurons for layer in params.spiking_layers)
    return (macs + np.asarray(golden_result.synops, dtype=np.float64) + timesteps * neurons) / lanes
