"""The board top in Amaranth's simulator, driven at the bit level through its UART pins.

``SimBoard`` runs the simulation in a thread and serves bytes through a pseudo-terminal, so that
``ecc-hw run --port PTY`` (pyserial) talks to it exactly as to a board.
"""
from __future__ import annotations

import os
import select
import threading
import time
import tty

from amaranth.sim import Simulator

from .top import BoardTop


def _bench(dut: BoardTop, source, sink, stop):
    """A testbench: ``source()`` -> bytes to send now (b"" if none), ``sink(byte)`` per answer byte."""
    n = dut.clocks_per_bit

    async def tb(ctx):
        queue = bytearray()
        bit_timer, rx_bits = 0, []
        tx_state, tx_timer, tx_bits = "idle", 0, []
        while not stop():
            if not queue:
                queue += source()
            # drive rx: one byte = 10 bit periods
            if rx_bits or bit_timer:
                if bit_timer == 0:
                    ctx.set(dut.rx, rx_bits.pop(0))
                    bit_timer = n
                bit_timer -= 1
            elif queue:
                value = queue.pop(0)
                rx_bits = [0] + [value >> i & 1 for i in range(8)] + [1]
                bit_timer = 0
                continue
            # sample tx in the middle of each bit
            tx = ctx.get(dut.tx)
            if tx_state == "idle":
                if not tx:
                    tx_state, tx_timer, tx_bits = "bits", n + n // 2, []
            else:
                tx_timer -= 1
                if tx_timer == 0:
                    tx_bits.append(tx)
                    tx_timer = n
                    if len(tx_bits) == 9:
                        sink(sum(b << i for i, b in enumerate(tx_bits[:8])))
                        tx_state = "idle"
            await ctx.tick()
    return tb


def exchange(dut: BoardTop, frames: list[bytes], max_cycles: int = 5_000_000) -> bytes:
    """Send ``frames`` into the simulated board stop-and-wait (each one the board's timeout after
    the previous answer, as a host does) and return the bytes it answers, one frame per frame."""
    out = bytearray()
    sent = [0]
    cycles = [0]
    answers = len(frames)
    answered_at = [0]

    def source():
        if sent[0] < answers and frames_done() == sent[0]:
            if sent[0] and cycles[0] - answered_at[0] <= dut.timeout_cycles + 10 * dut.clocks_per_bit:
                return b""
            sent[0] += 1
            return frames[sent[0] - 1]
        return b""

    def sink(byte):
        out.append(byte)
        answered_at[0] = cycles[0]

    def frames_done():
        pos, done = 0, 0
        while pos + 4 <= len(out):
            length = out[pos + 2] | out[pos + 3] << 8
            if pos + 5 + length > len(out):
                break
            pos += 5 + length
            done += 1
        return done

    def stop():
        cycles[0] += 1
        if cycles[0] > max_cycles:
            raise RuntimeError(f"the simulated board did not answer in time (got {bytes(out).hex()})")
        return frames_done() >= answers

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(_bench(dut, source, sink, stop))
    sim.run()
    return bytes(out)


class SimBoard:
    """Serve the simulated board on a pseudo-terminal: ``with SimBoard(dut) as port: ...``."""

    def __init__(self, dut: BoardTop):
        self.dut = dut
        self._stop = False

    def __enter__(self) -> str:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self.port

    def _run(self):
        def source():
            ready, _, _ = select.select([self.master], [], [], 0)
            if ready:
                try:
                    return os.read(self.master, 4096)
                except OSError:
                    return b""
            return b""

        def sink(byte):
            os.write(self.master, bytes([byte]))

        polled = [0]

        def stop():
            polled[0] += 1
            if polled[0] % 20000 == 0:
                time.sleep(0)
            return self._stop

        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_testbench(_bench(self.dut, source, sink, stop))
        sim.run()

    def __exit__(self, *exc):
        self._stop = True
        self.thread.join(timeout=30)
        os.close(self.master)
        os.close(self._slave)
