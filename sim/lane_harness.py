"""The IF-neuron lane units alone, as Verilog for the lane bench (``sim/lane_tb.py``).

``LaneHarness`` puts P ``SynapseLane`` units (rtl_gen/lane.py) and one ``FireSweep`` (rtl_gen/fire.py)
on P membrane banks, multiplexed exactly as in the top level (the fire sweep owns the banks while it
runs), with flat ports a cocotb test can drive and a combinational debug read port per bank.
``LaneConfig`` holds everything random about one instance (weights, biases, threshold, TRE charge,
widths); it is also the JSON the cocotb test reads.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ecc_hw.rtl_gen.fire import FireSweep
from ecc_hw.rtl_gen.lane import SynapseLane
from ecc_hw.rtl_gen.plan import bits_for, pow2_depth


@dataclass
class LaneConfig:
    lanes: int
    channels: int
    height: int
    width: int
    weight_bits: int
    value_bits: int            # 0: 1-bit spikes (no multiplier); else a signed value of this width
    membrane_width: int
    weights: list              # per lane: ROM words (the bench addresses them freely)
    bias: list                 # per channel
    threshold: int
    tre_charge: int
    timesteps: int
    seed: int = 0

    @property
    def groups(self) -> int:
        return -(-self.channels // self.lanes)

    @property
    def depth_used(self) -> int:
        return self.groups * self.height * self.width

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "LaneConfig":
        return cls(**json.loads(text))


class LaneHarness(wiring.Component):
    """P synapse lanes + one fire sweep on P membrane banks (see the module docstring).

    Ports: ``upd_valid``, ``upd_group``, ``upd_maddr``, ``upd_waddr``, ``upd_value`` (the walker's
    command, shared by the lanes); ``fire_start``, ``charge``; ``spike_valid``, ``spike_mask``,
    ``spike_neuron``, ``fire_busy``, ``lane_busy``; ``dbg_addr`` and ``dbg_data<l>`` (bank l's word).
    """

    def __init__(self, cfg: LaneConfig):
        self.cfg = cfg
        depth = pow2_depth(cfg.depth_used)
        value_shape = unsigned(1) if cfg.value_bits == 0 else signed(cfg.value_bits)
        self.update_layout = data.StructLayout({
            "group": bits_for(cfg.groups - 1), "maddr": bits_for(cfg.depth_used - 1),
            "waddr": bits_for(max(len(w) for w in cfg.weights) - 1), "value": value_shape})
        self.fire = FireSweep(channels=cfg.channels, height=cfg.height, width=cfg.width, lanes=cfg.lanes,
                              threshold=cfg.threshold, bias=list(cfg.bias), membrane_width=cfg.membrane_width,
                              tre_quotient=cfg.tre_charge // cfg.timesteps)
        members = {
            "upd_valid": In(1), "upd_group": In(self.update_layout.members["group"]),
            "upd_maddr": In(self.update_layout.members["maddr"]),
            "upd_waddr": In(self.update_layout.members["waddr"]), "upd_value": In(value_shape),
            "fire_start": In(1), "charge": In(self.fire.charge_shape),
            "spike_valid": Out(1), "spike_mask": Out(cfg.lanes),
            "spike_neuron": Out(bits_for(cfg.channels * cfg.height * cfg.width - 1)),
            "fire_busy": Out(1), "lane_busy": Out(1), "dbg_addr": In(bits_for(depth - 1)),
        }
        for lane in range(cfg.lanes):
            members[f"dbg_data{lane}"] = Out(signed(cfg.membrane_width))
        self.depth = depth
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.fire = fire = self.fire
        m.d.comb += [fire.start.eq(self.fire_start), fire.charge.eq(self.charge),
                     self.spike_valid.eq(fire.spikes.valid), self.spike_mask.eq(fire.spikes.payload.mask),
                     self.spike_neuron.eq(fire.neuron), self.fire_busy.eq(fire.busy)]
        busy = 0
        for lane in range(cfg.lanes):
            unit = SynapseLane(weights=cfg.weights[lane], weight_bits=cfg.weight_bits,
                               update_layout=self.update_layout, width=cfg.membrane_width, depth=self.depth,
                               lane=lane, lanes=cfg.lanes, channels=cfg.channels)
            m.submodules[f"lane{lane}"] = unit
            m.d.comb += [unit.update.valid.eq(self.upd_valid),
                         unit.update.payload.group.eq(self.upd_group),
                         unit.update.payload.maddr.eq(self.upd_maddr),
                         unit.update.payload.waddr.eq(self.upd_waddr),
                         unit.update.payload.value.eq(self.upd_value)]
            busy = busy | unit.busy
            bank = Memory(shape=signed(cfg.membrane_width), depth=self.depth, init=[])
            m.submodules[f"bank{lane}"] = bank
            wp = bank.write_port()
            rp = bank.read_port(transparent_for=(wp,))
            dbg = bank.read_port(domain="comb")
            m.d.comb += [dbg.addr.eq(self.dbg_addr), getattr(self, f"dbg_data{lane}").eq(dbg.data),
                         unit.rd_data.eq(rp.data), fire.v_data[lane].eq(rp.data),
                         rp.addr.eq(Mux(fire.busy, fire.rd_addr, unit.rd_addr))]
            with m.If(fire.wr_en):
                m.d.comb += [wp.addr.eq(fire.wr_addr), wp.data.eq(fire.wr_data[lane]), wp.en.eq(1)]
            with m.Elif(unit.wr_en):
                m.d.comb += [wp.addr.eq(unit.wr_addr), wp.data.eq(unit.wr_data), wp.en.eq(1)]
        m.d.comb += self.lane_busy.eq(busy)
        return m


def write_verilog(cfg: LaneConfig, folder) -> str:
    """Write ``lane_harness.v`` and ``lane_config.json`` into ``folder``; return the Verilog path."""
    from amaranth.back import verilog

    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    os.makedirs(folder, exist_ok=True)
    text = verilog.convert(LaneHarness(cfg), name="lane_harness", emit_src=False)
    path = os.path.join(folder, "lane_harness.v")
    with open(path, "w") as handle:
        handle.write(text)
    with open(os.path.join(folder, "lane_config.json"), "w") as handle:
        handle.write(cfg.to_json())
    return path
