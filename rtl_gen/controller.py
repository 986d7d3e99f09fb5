"""Controller: the one state machine that schedules clear, load, fire sweeps, integrations and readout."""
from __future__ import annotations

from amaranth.hdl import Module, Signal

from ecc_hw.variants import TreMode

from .checks import check_bool, check_choice, check_int, check_list, check_type
from .engine import IntegrationEngine
from .fire_stage import TRE_MODES, FireStage
from .input_feed import InputFeed
from .plan import bits_for
from .readout import Readout


class StepCounter:
    """The time step t (1..T) and, with binary coding and T > 1, the weight shift T - t.

    Members
    -------
    t : Signal(range(T + 1)), init 1
    shift : Signal(range(T)) or None
        T - t, a register of its own (set with t), so its users see no subtractor.

    Latency: :meth:`set` statements take effect in the next cycle (both registers).

    Parameters (keyword-only)
    ----------
    timesteps : int, at least 1
    binary : bool
        Binary coding (radix): spikes of step t weigh 2^(T - t), hence ``shift``.
    """

    def __init__(self, *, timesteps: int, binary: bool):
        owner = "StepCounter"
        check_int(owner, "timesteps", timesteps, 1)
        check_bool(owner, "binary", binary)
        self.timesteps = timesteps
        self.t = Signal(bits_for(timesteps), init=1, name="t")
        self.shift = None
        if binary and timesteps > 1:
            self.shift = Signal(range(timesteps), name="shift", init=timesteps - 1)

    def set(self, value) -> list:
        """Statements: t (and shift) take ``value`` next cycle."""
        return [self.t.eq(value)] + ([self.shift.eq(self.timesteps - value)] if self.shift is not None else [])


class Controller:
    """Runs one image through the design: the schedule of ``rtl_gen.top.EccSnn`` (its docstring).

    States, in order of their codes (from 1: an all-zero code makes Yosys print ``!state``, which
    Verilator reports as WIDTHTRUNC): CLEAR (the clear sweep writes every bank's used words), LOAD (the
    input stream into layer 1's walker), LOAD_DRAIN (until layer 1's engine is idle), then per spiking
    layer n FIRE<n> (its sweep; with dual-port banks layer n+1 already integrates the spikes) and
    INTEGRATE<n+1> (until the spikes are replayed and layer n+1's engine is idle), then the readout's
    states (:class:`~rtl_gen.readout.Readout`).

    Members
    -------
    state : Signal
        The state register.
    clearing : Signal
        High during CLEAR; ``clear_addr`` is the clear sweep's address 0..clear_depth - 1.
    clear_addr : Signal

    Latency and throughput: a phase ends in the first cycle in which its units are idle; a sweep that
    follows an integration starts in that cycle (its start pulse), any other next phase (FIRE to
    INTEGRATE, the readout, the next frame's LOAD) begins ``STATE_CHANGE`` = 1 cycle later, through the
    state register. One image at a time (``ecc_hw.cycle_model`` counts its cycles).

    Flattened (``add_to`` adds the state machine to the parent module, no module of its own), so the
    design's Verilog is the same as before the top was split into components.

    Parameters (keyword-only)
    ----------
    step : StepCounter
    clear_depth : int, at least 1
        Cycles of the clear sweep.
    tre_mode : "spread" or "initial"
    binary : bool
        Binary coding: layer by layer (all T bits of layer n, then layer n+1), not step by step.
    events : bool
        Event input: a LOAD of frame t before the sweeps of every step t.
    interval : 1 or 2
        1: dual-port banks (the integration overlaps the sweep); 2: single-port banks.
    engines : list of IntegrationEngine, one per layer
    stages : list of FireStage, one per spiking layer
    feed : InputFeed
    readout : Readout
    """

    # The state register: a next state chosen in cycle k is the state of cycle k+1.
    STATE_CHANGE = 1

    def __init__(self, *, step: StepCounter, clear_depth: int, tre_mode: str, binary: bool, events: bool,
                 interval: int, engines: list[IntegrationEngine], stages: list[FireStage], feed: InputFeed,
                 readout: Readout):
        owner = "Controller"
        check_type(owner, "step", step, StepCounter)
        check_int(owner, "clear_depth", clear_depth, 1)
        check_choice(owner, "tre_mode", tre_mode, TRE_MODES)
        check_bool(owner, "binary", binary)
        check_bool(owner, "events", events)
        check_choice(owner, "interval", check_int(owner, "interval", interval), (1, 2))
        check_list(owner, "engines", engines, IntegrationEngine)
        check_list(owner, "stages", stages, FireStage)
        if len(engines) != len(stages) + 1:
            raise ValueError(f"{owner}: {len(engines)} engines for {len(stages)} spiking layers "
                             f"(one engine per layer)")
        check_type(owner, "feed", feed, InputFeed)
        check_type(owner, "readout", readout, Readout)
        self.step = step
        self.clear_depth = clear_depth
        self.tre_mode = tre_mode
        self.binary = binary
        self.events = events
        self.interval = interval
        self.engines = engines
        self.stages = stages
        self.feed = feed
        self.readout = readout
        names = ["CLEAR", "LOAD", "LOAD_DRAIN"]
        for stage in stages:
            names += [f"FIRE{stage.number}", f"INTEGRATE{stage.number + 1}"]
        names += list(Readout.STATES)
        self.codes = {name: code + 1 for code, name in enumerate(names)}
        self.state = Signal(bits_for(len(names)), init=self.codes["CLEAR"], name="state")
        self.clearing = Signal(name="clearing")
        self.clear_addr = Signal(bits_for(clear_depth - 1), name="clear_addr")

    def add_to(self, m: Module) -> None:
        """Add the state machine to ``m``."""
        codes, step, stages, engines = self.codes, self.step, self.stages, self.engines
        clear_addr = self.clear_addr

        def goto(name):
            m.d.sync += self.state.eq(codes[name])

        def start_fire(idx):
            """Statements (in the current FSM branch) that start layer idx's sweep next cycle."""
            stages[idx].start(m)
            goto(f"FIRE{idx + 1}")

        with m.Switch(self.state):
            with m.Case(codes["CLEAR"]):
                m.d.comb += self.clearing.eq(1)
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == self.clear_depth - 1):
                    m.d.sync += [clear_addr.eq(0), *step.set(1)] + [c.eq(0) for c in self.feed.counters]
                    m.d.sync += [stage.counter.eq(0) for stage in stages if stage.counter is not None]
                    if self.tre_mode == TreMode.INITIAL:
                        m.d.sync += [stage.charge.eq(0) for stage in stages if stage.charge is not None]
                    goto("LOAD")
            with m.Case(codes["LOAD"]):
                with self.feed.loading(m):
                    goto("LOAD_DRAIN")
            with m.Case(codes["LOAD_DRAIN"]):
                with m.If(~engines[0].busy):
                    start_fire(0)
            for idx, stage in enumerate(stages):
                with m.Case(codes[f"FIRE{idx + 1}"]):
                    if self.interval == 1:     # dual-port banks: layer n+1 integrates while layer n sweeps
                        m.d.comb += stage.buffer.enable.eq(1)
                    with m.If(~stage.sweep.busy):
                        goto(f"INTEGRATE{idx + 2}")
                with m.Case(codes[f"INTEGRATE{idx + 2}"]):
                    m.d.comb += stage.buffer.enable.eq(1)
                    with m.If(~stage.buffer.pending & ~engines[idx + 1].busy):
                        self._after_integration(m, idx, goto, start_fire)
            self.readout.add_states(m, codes=codes, goto=goto, then="CLEAR")

    def _after_integration(self, m, idx, goto, start_fire):
        """The next phase once layer idx + 1 has integrated layer idx's spikes."""
        step, T, last = self.step, self.step.timesteps, idx + 1 == len(self.stages)
        if self.binary:        # layer by layer: bits t = 1..T of layer n, then layer n+1
            with m.If(step.t == T):
                if not last:
                    m.d.sync += step.set(1)
                    start_fire(idx + 1)
                else:
                    self._start_readout(m, goto)
            with m.Else():
                m.d.sync += step.set(step.t + 1)
                start_fire(idx)
        elif not last:
            start_fire(idx + 1)
        else:
            with m.If(step.t == T):
                self._start_readout(m, goto)
            with m.Else():
                m.d.sync += step.set(step.t + 1)
                if self.events:          # frame t + 1's events first
                    goto("LOAD")
                else:
                    start_fire(0)

    def _start_readout(self, m, goto):
        """Point the readout at neuron 0 and enter READ next cycle."""
        self.readout.restart(m)
        goto("READ")
