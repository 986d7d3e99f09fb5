"""Where a graph design's banks live with ``memory="spram"`` (docs/graph_hardware.md): pure Python.

The two stacks of ``rtl_gen.spram_layout``, filled from a ``GraphPlan``:

- the **state stack**: one region ``layer<n>`` per layer (every layer of the graph, in layer order), its
  word holding the layer's membrane banks side by side (and, in the layer fed by the input, its current
  banks): all the edges into a layer write the same banks, one edge at a time;
- the **spike stack**: one region ``layer<n>_spike_buffer`` per spiking layer, the words of the buffer its
  sweep fills and that is replayed (rewound) to each of its consumers in turn.

A max-pool node keeps its count and maximum memories and its own spike buffer in block RAM: its pass reads
its source's buffer (the spike stack) while it writes its spike words, and its first consumer edge takes
them while the pass runs, so they cannot share a single-port SPRAM with either.
"""
from __future__ import annotations

from .errors import HardwareError
from .plan import MAX_LANES
from .spram_layout import SPRAM_WORDS, SpramLayout, SpramStack


def graph_spram_layout(plan) -> SpramLayout:
    """The state and spike stacks of ``plan`` (a ``GraphPlan``), see the module docstring."""
    state, spikes = SpramStack("state"), SpramStack("spikes")
    for layer in plan.layers:
        n, target = layer.number, layer.layer.target
        lanes = min(plan.lanes, target.out_shape[0])
        banks = [(f"layer{n}_membrane", lane, layer.membrane_width) for lane in range(lanes)]
        if layer.reads_input:
            banks += [(f"layer{n}_current", lane, plan.current_width) for lane in range(lanes)]
        state.add(f"layer{n}", target.depth_used, banks)
    for layer in plan.spiking:
        target = layer.layer.target
        name = f"layer{layer.number}_spike_buffer"
        spikes.add(name, target.depth_used, [(name, 0, plan.spike_word_width(target.groups, target.out_shape))])
    return SpramLayout(state, spikes)


def _depths(plan, lanes: int) -> tuple[int, int]:
    """The state and spike stacks' words of ``plan``'s layers at ``lanes`` lanes."""
    words = [-(-c // lanes) * h * w for c, h, w in (layer.layer.target.out_shape for layer in plan.layers)]
    return sum(words), sum(words[:-1])


def check_stack_depths(plan, layout: SpramLayout) -> None:
    """``HardwareError`` (one line) when a stack of ``layout`` is deeper than one SPRAM: the first region
    that does not fit, the word it would start at, how many are left, and the lanes at which both stacks
    would fit (their words are ceil(C/P) x H x W per layer), if any up to ``MAX_LANES``."""
    for stack in (layout.state, layout.spikes):
        if stack.depth <= SPRAM_WORDS:
            continue
        region = next(r for r in stack.regions if r.offset + r.depth > SPRAM_WORDS)
        layer = next(layer for layer in plan.layers if region.name in (f"layer{layer.number}",
                                                                      f"layer{layer.number}_spike_buffer"))
        what = "membranes" if stack is layout.state else "spike buffer"
        wider = [p for p in (1 << k for k in range(MAX_LANES.bit_length())) if plan.lanes < p <= MAX_LANES
                 and max(_depths(plan, p)) <= SPRAM_WORDS]
        hint = f"fits at {wider[0]} lanes" if wider else f"no lane count up to {MAX_LANES} fits"
        raise HardwareError(
            f"memory spram: the {stack.name} stack needs {stack.depth:,} of {SPRAM_WORDS:,} words: layer "
            f"{layer.number}'s {what} ({region.name}) need {region.depth:,} words from word {region.offset:,}, "
            f"{max(SPRAM_WORDS - region.offset, 0):,} are left ({hint}; or --memory bram)")
