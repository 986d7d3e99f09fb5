"""Readout: the output layer's membranes (plus the bias) onto the result stream, then the class word."""
from __future__ import annotations

from typing import Callable

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory

from .banks import MembraneBanks
from .checks import check_int, check_stream, check_type
from .plan import LayerPlan, bits_for, rom_depth


def result_layout(layer: LayerPlan) -> data.StructLayout:
    """Payload of the result stream for the output ``layer``: output neuron ``index`` and its final
    membrane ``value``; the last word of an image has ``is_class`` = 1 and carries the prediction (and
    its membrane)."""
    return data.StructLayout({"index": bits_for(layer.neurons - 1), "value": signed(layer.membrane_width),
                              "is_class": 1})


class Readout:
    """Sends the output membranes V_N in neuron order, then the prediction (argmax, lowest index on ties).

    Neuron i (channel c = i // (H * W), position p) sits in lane c % P at word (c // P) * H * W + p. Per
    neuron: READ presents the bank address, LATCH registers the bank's read data plus the bias (the bank's
    clock-to-out gets a cycle of its own), SEND compares the registered value with the best so far and
    sends it. CLASS sends the best index and its membrane.

    Members
    -------
    reading : Signal
        High in READ, LATCH and SEND: the output banks' read address is ``read_addr``.
    read_addr : Signal
        The current neuron's word in its lane's bank.

    Latency and throughput: ``CYCLES_PER_NEURON`` = 3 cycles per output neuron (READ, LATCH, SEND;
    more while the result stream is not ready) and ``CLASS_WORDS`` = 1 for the class word.

    The states are the controller's (one state register for the whole schedule): :meth:`add_states`
    adds their cases to its ``Switch``. Flattened (``add_to`` adds the bias ROM and statements to the
    parent module, no module of its own), so the design's Verilog is the same as before the top was
    split into components.

    Parameters (keyword-only)
    ----------
    layer : LayerPlan
        The output (non-spiking) layer.
    lanes : int, at least 1
    bias_scale : int, at least 1
        How often the bias enters the membrane: T with rate coding (once per step), 1 with binary coding.
    banks : MembraneBanks
        The output layer's banks.
    result : stream.Interface
        The result stream (payload :func:`result_layout`).
    """

    STATES = ("READ", "LATCH", "SEND", "CLASS")
    # READ (the address), LATCH (read data + bias registered), SEND (the result word).
    CYCLES_PER_NEURON = 3
    # CLASS: one word with the prediction.
    CLASS_WORDS = 1

    def __init__(self, *, layer: LayerPlan, lanes: int, bias_scale: int, banks: MembraneBanks,
                 result: stream.Interface):
        owner = "Readout"
        check_type(owner, "layer", layer, LayerPlan)
        if layer.spiking:
            raise ValueError(f"{owner}: layer {layer.index + 1} spikes; the readout reads the output layer")
        check_int(owner, "lanes", lanes, 1)
        check_int(owner, "bias_scale", bias_scale, 1)
        check_type(owner, "banks", banks, MembraneBanks)
        if banks.target is not layer.target:
            raise ValueError(f"{owner}: banks must be the output layer's")
        check_stream(owner, "result", result)
        self.layer = layer
        self.lanes = lanes
        self.bias_scale = bias_scale
        self.banks = banks
        self.result = result
        target = layer.target
        self.read_addr = Signal(bits_for(target.depth_used - 1), name="read_addr")
        self.reading = Signal(name="reading")
        self.r_lane = Signal(bits_for(lanes - 1), name="r_lane")
        self.r_group = Signal(bits_for(target.groups - 1), name="r_group")
        self.r_pos = Signal(bits_for(target.out_hw - 1), name="r_pos")
        self.r_index = Signal(bits_for(layer.neurons - 1), name="r_index")
        self.r_channel = Signal(bits_for(target.out_shape[0] - 1), name="r_channel")
        self.best = Signal(signed(layer.membrane_width), name="best")
        self.best_index = Signal.like(self.r_index, name="best_index")
        self.first = Signal(name="first")
        self.out_value = Signal(signed(layer.membrane_width), name="out_value")
        self.bias_rom = Memory(shape=signed(layer.bias_width), depth=rom_depth(len(layer.bias)),
                               init=[bias_scale * b for b in layer.bias])
        tb_port = self.bias_rom.read_port(domain="comb")
        self.bias_port = tb_port
        self.lane_data = Array([rp.data for rp, _ in banks.ports] + [0] * (lanes - len(banks.ports)))

    def add_to(self, m: Module) -> None:
        """Add the output bias ROM (``output_bias``) and the address arithmetic to ``m``."""
        m.submodules.output_bias = self.bias_rom
        m.d.comb += [self.bias_port.addr.eq(self.r_channel),
                     self.read_addr.eq(self.r_group * self.layer.target.out_hw + self.r_pos)]

    def restart(self, m: Module) -> None:
        """Statements (in the controller's current branch) that point the readout at neuron 0."""
        m.d.sync += [self.r_lane.eq(0), self.r_group.eq(0), self.r_pos.eq(0), self.r_index.eq(0),
                     self.r_channel.eq(0), self.first.eq(1)]

    def add_states(self, m: Module, *, codes: dict, goto: Callable[[str], None], then: str) -> None:
        """The cases of :data:`STATES` in the controller's ``Switch`` (state codes ``codes``, state
        changes by ``goto``); after the class word the controller goes to state ``then``."""
        result, out_value = self.result, self.out_value
        out_hw = self.layer.target.out_hw
        with m.Case(codes["READ"]):
            m.d.comb += self.reading.eq(1)
            goto("LATCH")
        with m.Case(codes["LATCH"]):
            m.d.comb += self.reading.eq(1)
            m.d.sync += out_value.eq(self.lane_data[self.r_lane] + self.bias_port.data)
            goto("SEND")
        with m.Case(codes["SEND"]):
            m.d.comb += [self.reading.eq(1), result.valid.eq(1), result.payload.index.eq(self.r_index),
                         result.payload.value.eq(out_value)]
            with m.If(result.ready):
                with m.If(self.first | (out_value > self.best)):
                    m.d.sync += [self.best.eq(out_value), self.best_index.eq(self.r_index), self.first.eq(0)]
                m.d.sync += self.r_index.eq(self.r_index + 1)
                with m.If(self.r_pos == out_hw - 1):
                    m.d.sync += [self.r_pos.eq(0), self.r_channel.eq(self.r_channel + 1)]
                    with m.If(self.r_lane == self.lanes - 1):
                        m.d.sync += [self.r_lane.eq(0), self.r_group.eq(self.r_group + 1)]
                    with m.Else():
                        m.d.sync += self.r_lane.eq(self.r_lane + 1)
                with m.Else():
                    m.d.sync += self.r_pos.eq(self.r_pos + 1)
                with m.If(self.r_index == self.layer.neurons - 1):
                    goto("CLASS")
                with m.Else():
                    goto("READ")
        with m.Case(codes["CLASS"]):
            m.d.comb += [result.valid.eq(1), result.payload.index.eq(self.best_index),
                         result.payload.value.eq(self.best), result.payload.is_class.eq(1)]
            with m.If(result.ready):
                goto(then)
