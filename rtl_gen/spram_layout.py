"""Where the banks live in the iCE40 UP5K's single-port SPRAMs (``memory="spram"``): pure Python.

Two stacks of SB_SPRAM256KA blocks (16,384 x 16 bits each, a 4-bit write mask per nibble):

- the **state stack** holds every layer's membrane banks (and layer 1's current banks, image input): one region
  per layer, the regions one after the other in depth (layer 1 at address 0). A region's word holds
  all its banks side by side (lane l's membrane, then, in layer 1, lane l's current), each field
  nibble-aligned so that a write touches only its own field. Every bank of a region is read and
  written at one address per cycle (the lanes share the walker's and the sweep's address), and the
  phases that use different regions never overlap, so one address per SPRAM is enough.
- the **spike stack** holds the spike buffers, one region per spiking layer: buffer n+1 is written
  during layer n's sweep and read during layer n+1's integration, never at the same time as another.

The stack's width sets its columns (SPRAMs side by side); its depth (the sum of the regions' used
words) must stay within one SPRAM. Region offsets are the running sums of the regions' depths, so the
clear phase walks addresses 0 .. depth - 1 of the state stack once (``ecc_hw.cycle_model``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

SPRAM_WORDS = 16384
SPRAM_WIDTH = 16
NIBBLE = 4


@dataclass(frozen=True)
class SpramField:
    """One bank inside a region's word: bits ``bit .. bit + width - 1`` of the stack word."""

    name: str
    lane: int
    bit: int
    width: int


@dataclass
class SpramRegion:
    """A range of stack addresses ``offset .. offset + depth - 1`` and the banks in its words."""

    name: str
    offset: int
    depth: int
    fields: list[SpramField] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max((f.bit + f.width for f in self.fields), default=0)

    def field(self, name: str, lane: int = 0) -> SpramField:
        return next(f for f in self.fields if f.name == name and f.lane == lane)


@dataclass
class SpramStack:
    """Regions stacked in depth over ``columns`` SPRAMs side by side."""

    name: str
    regions: list[SpramRegion] = field(default_factory=list)

    def add(self, name: str, depth: int, banks: list[tuple[str, int, int]]) -> SpramRegion:
        """Append a region of ``depth`` words holding ``banks`` (name, lane, width), nibble-aligned."""
        region = SpramRegion(name, self.depth, depth)
        bit = 0
        for bank, lane, width in banks:
            region.fields.append(SpramField(bank, lane, bit, width))
            bit += -(-width // NIBBLE) * NIBBLE
        self.regions.append(region)
        return region

    @property
    def depth(self) -> int:
        return sum(r.depth for r in self.regions)

    @property
    def width(self) -> int:
        return max((r.width for r in self.regions), default=0)

    @property
    def columns(self) -> int:
        return -(-self.width // SPRAM_WIDTH)

    def region(self, name: str) -> SpramRegion:
        return next(r for r in self.regions if r.name == name)


@dataclass
class SpramLayout:
    """The state stack and the spike stack of one design."""

    state: SpramStack
    spikes: SpramStack

    @property
    def blocks(self) -> int:
        """SB_SPRAM256KA blocks used."""
        return self.state.columns + self.spikes.columns

    @property
    def bits(self) -> int:
        """Bits of the used fields (for the fit report)."""
        return sum(r.depth * sum(f.width for f in r.fields)
                   for stack in (self.state, self.spikes) for r in stack.regions)

    def too_deep(self) -> SpramStack | None:
        """The first stack deeper than one SPRAM, if any."""
        return next((s for s in (self.state, self.spikes) if s.depth > SPRAM_WORDS), None)


def spram_layout(plan) -> SpramLayout:
    """The layout of ``plan``'s membrane, current and spike-buffer banks (see the module docstring)."""
    state, spikes = SpramStack("state"), SpramStack("spikes")
    for layer in plan.layers:
        n = layer.index + 1
        lanes = min(plan.lanes, layer.target.out_shape[0])
        banks = [(f"layer{n}_membrane", lane, layer.membrane_width) for lane in range(lanes)]
        if layer.index == 0 and not plan.events:
            banks += [("layer1_current", lane, plan.current_width) for lane in range(lanes)]
        state.add(f"layer{n}", layer.target.depth_used, banks)
    for layer in plan.spiking:
        name = f"layer{layer.index + 2}_spike_buffer"
        spikes.add(name, layer.target.depth_used, [(name, 0, plan.spike_word_width(layer))])
    return SpramLayout(state, spikes)
