"""Cocotb test of the board top (``boards.top.BoardTop`` converted to Verilog) through its UART pins.

The host side works at the bit level, as a USB-serial adapter would: one coroutine drives ``rx``
one bit per ``clocks_per_bit`` cycles (8N1, LSB first), another waits for each falling edge of
``tx`` and samples it in the middle of every bit. Frames go stop-and-wait (the next one after the
answer plus the board's idle timeout, so a frame that left the board draining is over).

What to send and what to expect comes from the JSON file named by ``$ECC_HW_UART_EXPECT``
(written by ``tests/test_boards_uart_sim.py``)::

    {"clocks_per_bit": 4, "timeout_cycles": 200,
     "exchanges": [{"frame": "a56200...", "prediction": 0, "membranes": [...], "cycles": 3547}
                   | {"frame": "...", "error": 2}, ...]}

Each answer is decoded with the host codec (``boards.framing.decode_answer``) and compared: the
predicted class, the output membranes and the on-chip cycle count for a result, the error code for
an error frame; the LEDs are checked after each answer (class LEDs = last class, error LED).
"""
import io
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, RisingEdge, SimTimeoutError, with_timeout

from ecc_hw.boards import framing

EXPECT_ENV = "ECC_HW_UART_EXPECT"
CLOCK_NS = 10


class UartHost:
    """The host end of the link: ``send(bytes)`` drives rx; every byte from tx lands in ``received``."""

    def __init__(self, dut, clocks_per_bit: int):
        self.dut = dut
        self.n = clocks_per_bit
        self.received = bytearray()
        self.framing_errors = 0
        self.new_byte = Event()

    async def send(self, data: bytes) -> None:
        dut, n = self.dut, self.n
        await RisingEdge(dut.clk)
        for byte in data:
            for bit in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                dut.rx.value = bit
                await ClockCycles(dut.clk, n)

    async def receive_forever(self) -> None:
        dut, n = self.dut, self.n
        while True:
            await FallingEdge(dut.tx)
            await ClockCycles(dut.clk, n // 2)            # the middle of the start bit
            if int(dut.tx.value) != 0:
                continue                                   # a glitch, not a start bit
            value = 0
            for i in range(8):
                await ClockCycles(dut.clk, n)
                value |= int(dut.tx.value) << i
            await ClockCycles(dut.clk, n)                  # the middle of the stop bit
            if int(dut.tx.value) != 1:
                self.framing_errors += 1
            self.received.append(value)
            self.new_byte.set()

    def _frame_end(self, start: int) -> int | None:
        """The end of the answer frame starting at ``start`` (a sync byte) once all of it is in."""
        data = self.received
        if len(data) - start < 4:
            return None
        end = start + 5 + (data[start + 2] | data[start + 3] << 8)
        return end if len(data) >= end else None

    async def answer(self, start: int) -> bytes:
        """Wait for one whole answer frame from byte ``start`` of the received stream."""
        while self._frame_end(start) is None:
            self.new_byte.clear()
            await self.new_byte.wait()
        return bytes(self.received[start:self._frame_end(start)])


@cocotb.test()
async def board_top_over_uart(dut):
    """Images in, golden classes, membranes and cycle counts out; corrupted frames give error frames."""
    with open(os.environ[EXPECT_ENV]) as file:
        spec = json.load(file)
    n, timeout = int(spec["clocks_per_bit"]), int(spec["timeout_cycles"])
    dut.rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    host = UartHost(dut, n)
    cocotb.start_soon(host.receive_forever())
    for number, exchange in enumerate(spec["exchanges"]):
        frame = bytes.fromhex(exchange["frame"])
        start = len(host.received)
        await host.send(frame)
        # the longest answer: a whole image's cycles after the frame, then the answer's bytes
        limit = (int(exchange.get("cycles", 0)) + timeout + 40 * n * 10) * CLOCK_NS * 4
        where = f"frame {number} ({exchange.get('what', '')})"
        try:
            answer = await with_timeout(host.answer(start), limit, "ns")
        except SimTimeoutError:
            raise AssertionError(f"{where}: no whole answer within {limit} ns; got "
                                 f"{bytes(host.received[start:]).hex() or 'nothing'}") from None
        assert answer[0] == framing.SYNC_OUT, f"{where}: answer starts with {answer[0]:#x}"
        assert host.framing_errors == 0, f"{where}: a tx byte with a low stop bit"
        try:
            result = framing.decode_answer(io.BytesIO(answer).read)
            code = None
        except framing.FrameError as error:
            result, code = None, error.code
            assert code is not None, f"{where}: broken answer {answer.hex()}: {error}"
        if "error" in exchange:
            assert code == exchange["error"], f"{where}: expected error {exchange['error']}, got " \
                f"{'a result' if result else f'error {code}'} ({answer.hex()})"
            dut._log.info("%s: error frame, code %d", where, code)
        else:
            assert result is not None, f"{where}: expected a result, got error {code} ({answer.hex()})"
            assert result.prediction == exchange["prediction"], \
                f"{where}: class {result.prediction}, golden {exchange['prediction']}"
            assert result.membranes.tolist() == exchange["membranes"], \
                f"{where}: membranes {result.membranes.tolist()}, golden {exchange['membranes']}"
            assert result.cycles == exchange["cycles"], \
                f"{where}: {result.cycles} cycles, cycle model {exchange['cycles']}"
            dut._log.info("%s: class %d, membranes %s, %d cycles", where, result.prediction,
                          result.membranes.tolist(), result.cycles)
        # stop-and-wait: the next frame after the board's idle timeout (ends a DRAIN), as a host does
        await ClockCycles(dut.clk, timeout + 10 * n)
        if result is not None:
            assert int(dut.class_leds.value) == result.prediction, f"{where}: class LEDs"
            assert int(dut.error_led.value) == 0, f"{where}: error LED on after a result"
        else:
            assert int(dut.error_led.value) == 1, f"{where}: error LED off after an error frame"
        assert int(dut.busy_led.value) == 0, f"{where}: busy LED on after the answer"
        assert len(host.received) == start + len(answer), \
            f"{where}: stray bytes after the answer: {bytes(host.received[start + len(answer):]).hex()}"
