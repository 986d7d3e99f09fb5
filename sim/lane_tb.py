"""Cocotb lane bench: P synapse lanes and a fire sweep (``lane_harness.LaneHarness``) against a plain
Python model of docs/arithmetic.md section 3's neuron update, for T steps of random integration bursts (idle
cycles, hot neurons updated back to back) each followed by a fire sweep with the TRE charge of
docs/arithmetic.md 2.4.

The model keeps membranes as the hardware does: ``membrane_width``-bit two's complement words
(synapse sums and the soft reset are written back truncated; the threshold test uses the full sum).
With ``+extremes`` the first step drives lane 0's word 0 to the most negative word and lane 1's word
0 to the most positive one, through the widest weights.

The configuration comes from ``+config=lane_config.json`` (see ``lane_harness.LaneConfig``).
"""
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from ecc_hw.golden import tre_schedule_counter
from ecc_hw.sim.lane_harness import LaneConfig


def wrap(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


class LaneModel:
    """Plain reference: one list of membrane words per lane."""

    def __init__(self, cfg: LaneConfig, threshold_offset: int = 0):
        self.cfg = cfg
        self.threshold = cfg.threshold + threshold_offset
        self.v = [[0] * cfg.depth_used for _ in range(cfg.lanes)]

    def lane_groups(self, lane: int) -> int:
        return max(0, -(-(self.cfg.channels - lane) // self.cfg.lanes))

    def update(self, group: int, maddr: int, waddr: int, value: int) -> None:
        for lane in range(self.cfg.lanes):
            if group < self.lane_groups(lane):
                weight = self.cfg.weights[lane][waddr]
                self.v[lane][maddr] = wrap(self.v[lane][maddr] + weight * value, self.cfg.membrane_width)

    def fire(self, charge: int) -> set:
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


def _value_range(cfg: LaneConfig):
    if cfg.value_bits == 0:
        return 1, 1
    return -(1 << (cfg.value_bits - 1)), (1 << (cfg.value_bits - 1)) - 1


async def _drive_to(dut, model, cfg, lane, maddr, target):
    """Updates (value 1) that bring lane ``lane``'s word ``maddr`` (group 0) to ``target``, through
    ROM words that are 0 in every other lane (the command is shared by the lanes)."""
    weights = cfg.weights[lane]
    own = [k for k in range(len(weights))
           if all(cfg.weights[other][k] == 0 for other in range(cfg.lanes) if other != lane)]
    order = sorted(own, key=lambda k: -abs(weights[k]))
    remaining = target - model.v[lane][maddr]
    while remaining:
        k = next(k for k in order if weights[k] and abs(weights[k]) <= abs(remaining)
                 and (weights[k] > 0) == (remaining > 0))
        await _issue(dut, model, 0, maddr, k, 1)
        remaining -= weights[k]


async def _issue(dut, model, group, maddr, waddr, value):
    dut.upd_valid.value = 1
    dut.upd_group.value = group
    dut.upd_maddr.value = maddr
    dut.upd_waddr.value = waddr
    dut.upd_value.value = value
    await RisingEdge(dut.clk)
    model.update(group, maddr, waddr, value)


@cocotb.test()
async def lane_bench(dut):
    cfg = LaneConfig.from_json(Path(cocotb.plusargs["config"]).read_text())
    rng = random.Random(cfg.seed)
    model = LaneModel(cfg, int(cocotb.plusargs.get("model_threshold_offset", 0)))
    hw = cfg.height * cfg.width
    low, high = _value_range(cfg)
    Clock(dut.clk, 10, unit="ns").start()
    for name in ("upd_valid", "upd_group", "upd_maddr", "upd_waddr", "upd_value", "fire_start", "charge",
                 "dbg_addr"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    charges = tre_schedule_counter(cfg.tre_charge, cfg.timesteps)
    updates = spikes = 0
    for t in range(cfg.timesteps):
        if t == 0 and "extremes" in cocotb.plusargs:
            await _drive_to(dut, model, cfg, 0, 0, -(1 << (cfg.membrane_width - 1)))
            if cfg.lanes > 1:
                await _drive_to(dut, model, cfg, 1, 0, (1 << (cfg.membrane_width - 1)) - 1)
        hot = [rng.randrange(cfg.depth_used) for _ in range(2)]
        for _ in range(rng.randint(0, 4 * cfg.depth_used)):
            if rng.random() < 0.15:
                dut.upd_valid.value = 0
                await RisingEdge(dut.clk)
                continue
            maddr = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(cfg.depth_used)
            value = rng.choice([low, high, rng.randint(low, high)])
            if cfg.value_bits and value == 0:
                value = high
            await _issue(dut, model, maddr // hw, maddr, rng.randrange(len(cfg.weights[0])), value)
            updates += 1
        dut.upd_valid.value = 0
        for _ in range(5):                      # the lanes' pipeline drains (issued k, written k + 4)
            await RisingEdge(dut.clk)
        charge = int(charges[t])
        dut.charge.value = charge
        dut.fire_start.value = 1
        await RisingEdge(dut.clk)
        dut.fire_start.value = 0
        got = set()
        while True:
            await ReadOnly()
            if int(dut.spike_valid.value):
                mask, neuron = int(dut.spike_mask.value), int(dut.spike_neuron.value)
                got |= {neuron + lane * hw for lane in range(cfg.lanes) if mask >> lane & 1}
            busy = int(dut.fire_busy.value)
            await RisingEdge(dut.clk)
            if not busy:
                break
        want = model.fire(charge)
        spikes += len(want)
        assert got == want, (f"step {t + 1}: spikes differ: missing {sorted(want - got)[:8]}, "
                             f"extra {sorted(got - want)[:8]}")
        for s in range(cfg.depth_used):
            dut.dbg_addr.value = s
            await Timer(1, unit="ns")
            for lane in range(cfg.lanes):
                if s // hw < model.lane_groups(lane):
                    word = getattr(dut, f"dbg_data{lane}").value.to_signed()
                    assert word == model.v[lane][s], (f"step {t + 1}: lane {lane} word {s}: membrane "
                                                      f"expected {model.v[lane][s]}, got {word}")
    dut._log.info("lane bench: %d steps, %d updates, %d spikes, all spikes and membranes agree",
                  cfg.timesteps, updates, spikes)
