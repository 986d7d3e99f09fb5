"""Cocotb lane bench: P synapse lanes and a fire sweep (``lane_harness.LaneHarness``) against a plain
Python model of docs/arithmetic.md section 3's neuron update, for T steps of random integration bursts (idle
cycles, hot neurons updated back to back) each followed by a fire sweep with the TRE charge of
docs/arithmetic.md 2.4.

The model keeps membranes as the hardware does: ``membrane_width``-bit two's complement words
(synapse sums and the soft reset are written back truncated; the threshold test uses the full sum).
With ``+extremes`` the first step drives lane 0's word 0 to the most negative word and lane 1's word
0 to the most positive one, through the widest weights.

Parts, apart: ``LaneModel`` (the reference), the drivers ``UpdateDriver`` (the walker's command
shared by the lanes; the bursts' pattern is a ``BurstPattern``) and ``FireDriver`` (starts a sweep),
the monitors ``SpikeMonitor`` (a sweep's spike words) and ``MembraneMonitor`` (the banks' debug read
ports), the checks ``check_spikes`` and ``check_membranes``, and ``LaneTB`` that puts them together.

The configuration comes from ``+config=lane_config.json`` (see ``lane_harness.LaneConfig``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from ecc_hw.golden import tre_schedule_counter
from ecc_hw.sim.lane_harness import LaneConfig

CLOCK_PERIOD_NS = 10
DRAIN_CYCLES = 5               # the lanes' pipeline drains (issued k, written k + 4)
INPUTS = ("upd_valid", "upd_group", "upd_maddr", "upd_waddr", "upd_value", "fire_start", "charge", "dbg_addr")


def wrap(value: int, width: int) -> int:
    """``value`` as a ``width``-bit two's complement word."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


class LaneModel:
    """Plain reference: one list of membrane words per lane."""

    def __init__(self, cfg: LaneConfig, threshold_offset: int = 0):
        self.cfg = cfg
        self.threshold = cfg.threshold + threshold_offset
        self.v = [[0] * cfg.depth_used for _ in range(cfg.lanes)]

    def lane_groups(self, lane: int) -> int:
        """How many channel groups lane ``lane`` holds (the last group may leave lanes empty)."""
        return max(0, -(-(self.cfg.channels - lane) // self.cfg.lanes))

    def update(self, group: int, maddr: int, waddr: int, value: int) -> None:
        """One synapse update: every lane that holds ``group`` adds its weight ``waddr`` times ``value``."""
        for lane in range(self.cfg.lanes):
            if group < self.lane_groups(lane):
                weight = self.cfg.weights[lane][waddr]
                self.v[lane][maddr] = wrap(self.v[lane][maddr] + weight * value, self.cfg.membrane_width)

    def fire(self, charge: int) -> set:
        """One fire sweep with the TRE ``charge``: soft reset in place; returns the spiking neurons."""
        cfg, hw = self.cfg, self.cfg.height * self.cfg.width
        spikes = set()
        for lane in range(cfg.lanes):
            for s in range(cfg.depth_used):
                group, pos = divmod(s, hw)
                if group >= self.lane_groups(lane):
                    continue
                channel = group * cfg.lanes + lane
                total = self.v[lane][s] + cfg.bias[channel] + charge
                fired = total >= self.threshold
                self.v[lane][s] = wrap(total - (self.threshold if fired else 0), cfg.membrane_width)
                if fired:
                    spikes.add(channel * hw + pos)
        return spikes


def value_range(cfg: LaneConfig) -> tuple[int, int]:
    """The smallest and largest input value (1-bit spikes: always 1)."""
    if cfg.value_bits == 0:
        return 1, 1
    return -(1 << (cfg.value_bits - 1)), (1 << (cfg.value_bits - 1)) - 1


@dataclass(frozen=True)
class BurstPattern:
    """A step's random integration burst: up to ``words_factor`` updates per membrane word, an idle
    cycle with probability ``idle``, an update to one of ``hot_words`` words (picked per step) with
    probability ``hot`` (back-to-back updates of one neuron), else to any word."""

    idle: float = 0.15
    hot: float = 0.5
    hot_words: int = 2
    words_factor: int = 4


class UpdateDriver:
    """Drives the walker's update command (shared by the lanes) and applies it to the model."""

    def __init__(self, dut, model: LaneModel):
        self.dut = dut
        self.model = model

    async def issue(self, group: int, maddr: int, waddr: int, value: int) -> None:
        """One command in one cycle."""
        self.dut.upd_valid.value = 1
        self.dut.upd_group.value = group
        self.dut.upd_maddr.value = maddr
        self.dut.upd_waddr.value = waddr
        self.dut.upd_value.value = value
        await RisingEdge(self.dut.clk)
        self.model.update(group, maddr, waddr, value)

    async def idle(self) -> None:
        """One cycle without a command."""
        self.dut.upd_valid.value = 0
        await RisingEdge(self.dut.clk)

    async def drain(self) -> None:
        """Stop issuing and wait until the lanes' pipeline has written everything back."""
        self.dut.upd_valid.value = 0
        for _ in range(DRAIN_CYCLES):
            await RisingEdge(self.dut.clk)

    async def drive_to(self, lane: int, maddr: int, target: int) -> None:
        """Updates (value 1) that bring lane ``lane``'s word ``maddr`` (group 0) to ``target``, through
        ROM words that are 0 in every other lane (the command is shared by the lanes)."""
        cfg = self.model.cfg
        weights = cfg.weights[lane]
        own = [k for k in range(len(weights))
               if all(cfg.weights[other][k] == 0 for other in range(cfg.lanes) if other != lane)]
        order = sorted(own, key=lambda k: -abs(weights[k]))
        remaining = target - self.model.v[lane][maddr]
        while remaining:
            k = next(k for k in order if weights[k] and abs(weights[k]) <= abs(remaining)
                     and (weights[k] > 0) == (remaining > 0))
            await self.issue(0, maddr, k, 1)
            remaining -= weights[k]

    async def burst(self, rng: random.Random, pattern: BurstPattern) -> int:
        """One random burst drawn from ``rng`` after ``pattern``; returns the number of updates."""
        cfg = self.model.cfg
        hw = cfg.height * cfg.width
        low, high = value_range(cfg)
        hot = [rng.randrange(cfg.depth_used) for _ in range(pattern.hot_words)]
        updates = 0
        for _ in range(rng.randint(0, pattern.words_factor * cfg.depth_used)):
            if rng.random() < pattern.idle:
                await self.idle()
                continue
            maddr = rng.choice(hot) if rng.random() < pattern.hot else rng.randrange(cfg.depth_used)
            value = rng.choice([low, high, rng.randint(low, high)])
            if cfg.value_bits and value == 0:
                value = high
            await self.issue(maddr // hw, maddr, rng.randrange(len(cfg.weights[0])), value)
            updates += 1
        return updates


class FireDriver:
    """Starts a fire sweep with a TRE charge."""

    def __init__(self, dut):
        self.dut = dut

    async def start(self, charge: int) -> None:
        """Pulse ``fire_start`` for one cycle with ``charge`` applied."""
        self.dut.charge.value = charge
        self.dut.fire_start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.fire_start.value = 0


class SpikeMonitor:
    """Collects the spike words of one fire sweep (mask over the lanes, neuron within a lane's map)."""

    def __init__(self, dut, cfg: LaneConfig):
        self.dut = dut
        self.cfg = cfg

    async def collect(self) -> set:
        """The neurons that spiked, sampled every cycle until the sweep is no longer busy."""
        hw = self.cfg.height * self.cfg.width
        got = set()
        while True:
            await ReadOnly()
            if int(self.dut.spike_valid.value):
                mask, neuron = int(self.dut.spike_mask.value), int(self.dut.spike_neuron.value)
                got |= {neuron + lane * hw for lane in range(self.cfg.lanes) if mask >> lane & 1}
            busy = int(self.dut.fire_busy.value)
            await RisingEdge(self.dut.clk)
            if not busy:
                break
        return got


class MembraneMonitor:
    """Reads membrane words through the banks' combinational debug port."""

    def __init__(self, dut):
        self.dut = dut

    async def select(self, word: int) -> None:
        """Address ``word`` in every bank and let the read settle."""
        self.dut.dbg_addr.value = word
        await Timer(1, unit="ns")

    def read(self, lane: int) -> int:
        """Lane ``lane``'s selected word."""
        return getattr(self.dut, f"dbg_data{lane}").value.to_signed()


def check_spikes(step: int, got: set, want: set) -> None:
    """The sweep's spikes must be the model's."""
    assert got == want, (f"step {step}: spikes differ: missing {sorted(want - got)[:8]}, "
                         f"extra {sorted(got - want)[:8]}")


async def check_membranes(step: int, monitor: MembraneMonitor, model: LaneModel) -> None:
    """Every membrane word that a lane holds must be the model's."""
    cfg = model.cfg
    hw = cfg.height * cfg.width
    for s in range(cfg.depth_used):
        await monitor.select(s)
        for lane in range(cfg.lanes):
            if s // hw < model.lane_groups(lane):
                word = monitor.read(lane)
                assert word == model.v[lane][s], (f"step {step}: lane {lane} word {s}: membrane "
                                                  f"expected {model.v[lane][s]}, got {word}")


class LaneTB:
    """The harness with its drivers, monitors and model (``threshold_offset``: a wrong model)."""

    def __init__(self, dut, cfg: LaneConfig, threshold_offset: int = 0):
        self.dut = dut
        self.cfg = cfg
        self.model = LaneModel(cfg, threshold_offset)
        self.updates = UpdateDriver(dut, self.model)
        self.fire = FireDriver(dut)
        self.spikes = SpikeMonitor(dut, cfg)
        self.membranes = MembraneMonitor(dut)

    async def reset(self) -> None:
        """Start the clock, zero every input and hold reset for two cycles."""
        Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
        for name in INPUTS:
            getattr(self.dut, name).value = 0
        self.dut.rst.value = 1
        await RisingEdge(self.dut.clk)
        await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def drive_extremes(self) -> None:
        """Lane 0's word 0 to the most negative word, lane 1's to the most positive one."""
        width = self.cfg.membrane_width
        await self.updates.drive_to(0, 0, -(1 << (width - 1)))
        if self.cfg.lanes > 1:
            await self.updates.drive_to(1, 0, (1 << (width - 1)) - 1)

    async def sweep(self, step: int, charge: int) -> int:
        """Fire with ``charge`` and check spikes and membranes; returns the number of spikes."""
        await self.fire.start(charge)
        got = await self.spikes.collect()
        want = self.model.fire(charge)
        check_spikes(step, got, want)
        await check_membranes(step, self.membranes, self.model)
        return len(want)


@cocotb.test()
async def lane_bench(dut):
    """T steps of a random burst then a checked fire sweep (see the module docstring)."""
    cfg = LaneConfig.from_json(Path(cocotb.plusargs["config"]).read_text())
    rng = random.Random(cfg.seed)
    tb = LaneTB(dut, cfg, int(cocotb.plusargs.get("model_threshold_offset", 0)))
    pattern = BurstPattern()
    await tb.reset()
    charges = tre_schedule_counter(cfg.tre_charge, cfg.timesteps)
    updates = spikes = 0
    for t in range(cfg.timesteps):
        if t == 0 and "extremes" in cocotb.plusargs:
            await tb.drive_extremes()
        updates += await tb.updates.burst(rng, pattern)
        await tb.updates.drain()
        spikes += await tb.sweep(t + 1, int(charges[t]))
    dut._log.info("lane bench: %d steps, %d updates, %d spikes, all spikes and membranes agree",
                  cfg.timesteps, updates, spikes)
