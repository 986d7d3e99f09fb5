"""The graph design's controller: clear, load, then per step every source's fire (or pool pass) and replays."""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Signal

from ecc_hw.variants import TreMode

from .controller import StepCounter
from .fire_stage import FireStage
from .input_feed import InputFeed
from .plan import bits_for
from .readout import Readout


@dataclass
class Replay:
    """One replay phase: the spikes of ``buffer`` (a ``SpikeBuffer``) into one consumer.

    ``select`` is the consumer's enable (comb, high in the phase), ``busy`` the consumer's busy, ``rewind``:
    the buffer is replayed again from its first word (not the source's first consumer), ``clear``: the
    consumer's own spike buffer to empty on entry (a max-pool node's pass), or None; ``alongside``: the
    replay that runs in the same phase (a max-pool node's first consumer takes the pool's spikes while the
    pass makes them), or None."""

    name: str
    buffer: object
    select: Signal
    busy: object
    rewind: bool
    clear: object = None
    alongside: Replay | None = None


@dataclass
class SourcePhases:
    """A source's phases in step t: its fire stage (None for a max-pool node, whose pass is one of its
    source's replays), whether its first replay overlaps the sweep (for a max-pool node: the pass), and its
    replays in order."""

    name: str
    stage: FireStage | None
    overlap: bool
    replays: list[Replay]


class GraphController:
    """Runs one image through the graph design (``rtl_gen.graph_top.EccGraphSnn``).

    States, in order of their codes (from 1): CLEAR, LOAD, LOAD_DRAIN, then per source of the schedule
    FIRE<name> (spiking layers: the sweep; with ``overlap`` its first consumer already takes the spikes)
    and one REPLAY<name>_<k> per consumer k (until the buffer has no spike left and the consumer is idle;
    a max-pool node's first consumer runs alongside the pass that makes its spikes, no phase of its own),
    then the readout's states. After the last source's last replay, step t + 1 starts with layer 1's
    sweep, or after step T the readout. Binary coding (radix): the loops are swapped, each source fires
    (and replays) its T bits before the next source's first.

    Entry actions happen in the cycle a phase ends (its last cycle): a sweep's start pulse (its buffer is
    emptied, the TRE charge steps); a rewind pulse for a replay that is not its source's first; the clear
    of a max-pool node's spike buffer before its pass. Every next state begins one cycle later
    (``Controller.STATE_CHANGE``).

    Members
    -------
    state : Signal
    clearing : Signal
        High during CLEAR; ``clear_addr`` the clear sweep's address 0..clear_depth - 1.
    clear_addr : Signal

    Latency and throughput: one image at a time; ``ecc_hw.graph.cycle_model`` counts its cycles.

    Parameters (keyword-only)
    ----------
    step : StepCounter
    clear_depth : int
    tre_mode : "spread" or "initial"
    binary : bool
        Binary coding: source by source, T bits each.
    load_busy : Value
        The input edge's engine is busy.
    sources : list of SourcePhases, in schedule order (the first is layer 1)
    stages : list of FireStage
        Every spiking layer's stage (their counters and charges are reset in CLEAR).
    feed : InputFeed
    readout : Readout
    """

    def __init__(self, *, step: StepCounter, clear_depth: int, tre_mode: str, binary: bool, load_busy,
                 sources: list[SourcePhases], stages: list[FireStage], feed: InputFeed, readout: Readout):
        self.step = step
        self.binary = binary
        self.clear_depth = clear_depth
        self.tre_mode = tre_mode
        self.load_busy = load_busy
        self.sources = sources
        self.stages = stages
        self.feed = feed
        self.readout = readout
        self.phases = []                         # (state name, source, replay index or None)
        self.group_start = []                    # per phase: the index of its source's first phase
        for source in sources:
            first = len(self.phases)
            if source.stage is not None:
                self.phases.append((f"FIRE{source.name}", source, None))
            for k, _ in enumerate(source.replays):
                if k or source.stage is not None or not source.overlap:   # a pool's first: in its pass
                    self.phases.append((f"REPLAY{source.name}_{k}", source, k))
            self.group_start += [first] * (len(self.phases) - first)
        names = ["CLEAR", "LOAD", "LOAD_DRAIN"] + [name for name, _, _ in self.phases] + list(Readout.STATES)
        self.codes = {name: code + 1 for code, name in enumerate(names)}
        self.state = Signal(bits_for(len(names)), init=self.codes["CLEAR"], name="state")
        self.clearing = Signal(name="clearing")
        self.clear_addr = Signal(bits_for(clear_depth - 1), name="clear_addr")

    def add_to(self, m: Module) -> None:
        """Add the state machine to ``m``."""
        codes, step = self.codes, self.step

        def goto(name):
            m.d.sync += self.state.eq(codes[name])

        def enter(index, after=None):
            """Statements (in the current branch) that begin phase ``index`` next cycle (or after the last
            phase, the next step or the readout); binary coding: after the last phase of a source (``after``,
            the phase just done), the same source's next bit, or after bit T the next source's first."""
            if self.binary and after is not None and (index == len(self.phases)
                                                      or self.group_start[index] != self.group_start[after]):
                with m.If(step.t == step.timesteps):
                    if index == len(self.phases):
                        self.readout.restart(m)
                        goto("READ")
                    else:
                        m.d.sync += step.set(1)
                        enter(index)
                with m.Else():
                    m.d.sync += step.set(step.t + 1)
                    enter(self.group_start[after])
                return
            if index == len(self.phases):
                with m.If(step.t == step.timesteps):
                    self.readout.restart(m)
                    goto("READ")
                with m.Else():
                    m.d.sync += step.set(step.t + 1)
                    enter(0)
                return
            name, source, k = self.phases[index]
            if k is None:
                source.stage.start(m)
            else:
                replay = source.replays[k]
                if replay.rewind:
                    m.d.comb += replay.buffer.rewind.eq(1)
                if replay.clear is not None:
                    m.d.comb += replay.clear.eq(1)
            goto(name)

        with m.Switch(self.state):
            with m.Case(codes["CLEAR"]):
                m.d.comb += self.clearing.eq(1)
                m.d.sync += self.clear_addr.eq(self.clear_addr + 1)
                with m.If(self.clear_addr == self.clear_depth - 1):
                    m.d.sync += [self.clear_addr.eq(0), *step.set(1)] + [c.eq(0) for c in self.feed.counters]
                    m.d.sync += [stage.counter.eq(0) for stage in self.stages if stage.counter is not None]
                    if self.tre_mode == TreMode.INITIAL:
                        m.d.sync += [stage.charge.eq(0) for stage in self.stages if stage.charge is not None]
                    goto("LOAD")
            with m.Case(codes["LOAD"]):
                with self.feed.loading(m):
                    goto("LOAD_DRAIN")
            with m.Case(codes["LOAD_DRAIN"]):
                with m.If(~self.load_busy):
                    enter(0)
            for index, (name, source, k) in enumerate(self.phases):
                with m.Case(codes[name]):
                    if k is None:
                        if source.overlap:
                            m.d.comb += [source.stage.buffer.enable.eq(1), source.replays[0].select.eq(1)]
                        with m.If(~source.stage.sweep.busy):
                            enter(index + 1, index)
                    else:
                        replay = source.replays[k]
                        m.d.comb += [replay.buffer.enable.eq(1), replay.select.eq(1)]
                        done = ~replay.buffer.pending & ~replay.busy
                        if replay.alongside is not None:
                            other = replay.alongside
                            m.d.comb += [other.buffer.enable.eq(1), other.select.eq(1)]
                            done = done & ~other.buffer.pending & ~other.busy
                        with m.If(done):
                            enter(index + 1, index)
            self.readout.add_states(m, codes=codes, goto=goto, then="CLEAR")
