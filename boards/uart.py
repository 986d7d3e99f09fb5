"""8N1 UART receiver and transmitter (LSB first), ``clocks_per_bit`` clock cycles per bit."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    """Receiver: ``rx`` pin in (idle high), one ``data`` word per received byte (always ready: a
    byte is dropped if nobody takes it). A byte whose stop bit is low (framing error) is dropped,
    which the framing layer then sees as a lost byte.

    Samples the middle of each bit after a 2-FF synchroniser.
    """

    def __init__(self, clocks_per_bit: int):
        if clocks_per_bit < 4:
            raise ValueError("clocks_per_bit must be >= 4")
        self.clocks_per_bit = int(clocks_per_bit)
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        n = self.clocks_per_bit
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(n + n // 2 + 1))
        bit = Signal(range(10))
        shift = Signal(8)
        m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(n // 2 - 1), bit.eq(0)]
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"          # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += timer.eq(n - 1)
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(n - 1), shift.eq(shift.shift_right(1) | (rx << 7)),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UartTx(wiring.Component):
    """Transmitter: takes one byte from ``data`` when idle, drives ``tx`` (idle high)."""

    def __init__(self, clocks_per_bit: int):
        self.clocks_per_bit = int(clocks_per_bit)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        n = self.clocks_per_bit
        timer = Signal(range(n))
        shift = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        m.d.comb += [self.tx.eq(shift[0]), self.data.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [shift.eq((1 << 9) | (self.data.payload << 1)), bits.eq(10),
                             timer.eq(n - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [timer.eq(n - 1), shift.eq((1 << 9) | shift[1:]), bits.eq(bits - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
