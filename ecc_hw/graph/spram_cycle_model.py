"""Exact cycle model of the graph accelerator built with ``memory="spram"`` (``rtl_gen.graph_spram``).

The schedule of ``ecc_hw.graph.cycle_model`` (whose tables, max-pool passes and notation it uses), with the
single-port timing of a chain's SPRAM banks (``ecc_hw.cycle_model``, ``memory="spram"``):

- clear: the state stack's words (every layer's banks, one region after the other), or a max-pool node's
  deeper count or maximum memory;
- every walker issues one update every 2 cycles (an event of walk length L costs max(1, 2L) cycles, its last
  update is issued 2L - 1 cycles after it is accepted, ``SPRAM_LANE_DRAIN`` after that the next phase
  begins); the load likewise;
- a spiking layer's sweep of D words from its start pulse S ends in ``E = S + 2D + SPRAM_FIRE_OVERHEAD - 2``
  and no consumer takes its spikes during it (the sweep and an integration would need two addresses in the
  state stack, and the buffer's pushes and reads two in the spike stack, in one cycle): its first consumer
  gets a replay of its own, like every further one;
- a layer's buffer is single-ported: each replay (rewound or not) offers its spikes from E + 1
  (``SpikeBuffer.SINGLE_PORT_REWIND_LATENCY``); an edge's walks cost as above, a max-pool node's pass as with
  block RAM (the unit's memories and the pool's own spike buffer stay in block RAM);
- a max-pool node's buffer is dual-ported as with block RAM: its first consumer, when it is an edge, takes the
  pool's spike words during the pass (at 2 cycles per update), later ones after a rewind (first spike in E + 2);
- readout: as a chain's.
"""
from __future__ import annotations

import numpy as np

from ..cycle_model import CLASS_WORDS, READOUT_ENTRY, READOUT_PER_NEURON, SPRAM_FIRE_OVERHEAD, integration_end
from .cycle_model import REWIND_LATENCY, PoolPasses, _Tables, layer_sweep_words
from .network import LAYER
from .quantise import IntegerGraph

INTERVAL = 2                   # single-port banks: read in one cycle, write in the next
LAYER_REWIND_LATENCY = 1       # a layer's single-port buffer: after a rewind in cycle k, its first spike in k + 1


def spram_clear_cycles(graph: IntegerGraph, lanes: int, tables: _Tables | None = None) -> int:
    """Cycles of the clear sweep: the state stack's words (every layer's, one region after the other), or the
    block-RAM clear's (``_Tables.clear_cycles``: the deepest bank, max-pool count or maximum memory) if longer."""
    tables = _Tables(graph, lanes) if tables is None else tables
    return max(sum(layer_sweep_words(layer.output_shape, lanes) for layer in graph.layers), tables.clear_cycles)


def spram_cycles_per_image(graph: IntegerGraph, spikes: dict, x_q: np.ndarray, lanes: int, timesteps: int,
                           binary: bool = False) -> np.ndarray:
    """Exact cycles of one inference per image with SPRAM banks (module docstring); the arguments are those
    of ``ecc_hw.graph.cycle_model.cycles_per_image``."""
    tables = _Tables(graph, lanes)
    network = graph.network
    images = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1)
    out = np.zeros(len(images), dtype=np.int64)
    clear = spram_clear_cycles(graph, lanes, tables)
    schedule = network.schedule()
    order = ([(t, source) for source in schedule for t in range(timesteps)] if binary
             else [(t, source) for t in range(timesteps) for source in schedule])
    for b, image in enumerate(images):
        cycle = integration_end(clear, np.where(image != 0, tables.input_walks, 0), INTERVAL)
        pools = PoolPasses(network, tables, binary)
        for t, source in order:
            consumers = tables.consumers.get(source, [])
            if source.kind == LAYER:
                sweep = tables.orders[source]
                fired = sweep[spikes[source][t, b, sweep]]
                cycle += INTERVAL * layer_sweep_words(tables.shapes[source], lanes) + SPRAM_FIRE_OVERHEAD - 2
                first = 0
            else:   # the first consumer (an edge) took the pool's spikes during the pass
                fired, _ = pools.made[source.index, t]
                first = 1 if consumers and consumers[0][0] == "edge" else 0
            for k in range(first, len(consumers)):
                kind, what = consumers[k]
                phase_start = cycle + 1
                start = phase_start
                if k > 0:
                    start = cycle + (LAYER_REWIND_LATENCY if source.kind == LAYER else REWIND_LATENCY)
                if len(fired) == 0:
                    cycle = phase_start
                elif kind == "edge":
                    cycle = integration_end(start, what[fired], INTERVAL)
                else:
                    cycle = pools.phase(what, start, fired, t, phase_start, INTERVAL)
            pools.end_of_source(source, t)
        out[b] = cycle + READOUT_ENTRY + READOUT_PER_NEURON * graph.output_layer.neurons + CLASS_WORDS
    return out
