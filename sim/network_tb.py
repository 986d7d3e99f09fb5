"""Cocotb testbench of ``tb_ecc_snn`` (the network bench): driver, sink, monitor and check apart.

The per-cycle work is done in Verilog by the wrapper (``tb_ecc_snn.v``), so that no Python runs per
clock cycle; each of its parts is configured by plusargs that the classes here write:

- driver, ``WordSource``: the wrapper's source streams the input words of every image back to back
  (pixels, or event words with ``EVENT_INPUT`` defined; ``network_bench.input_words``), inserting
  random idle gaps before the words that allow one;
- sink: the wrapper's result sink lowers ready at random (back-pressure);
- ``Stimulus``: the pattern of both, one set of parameters for every run (seed, idle and stall
  probabilities), never a copy of the test;
- monitor, ``RecordMonitor``: the wrapper records every trace and result word and each image's cycles
  and stalls (``records.parse_record`` decodes the file);
- check: on the host after the run (``check.check``, against the golden model and the cycle model).

In the simulator, ``NetworkTB`` only drives the clock (in the simulator interface, not in Python) and
waits for the monitor to close the record.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

CLOCK_PERIOD_NS = 10
CLOSING_CYCLES = 2            # the record is closed in the cycle that raises done


@dataclass(frozen=True)
class Stimulus:
    """Random idle gaps and back-pressure, each a probability in 1/256 per decision."""

    seed: int = 1
    idle: int = 64
    stall: int = 64

    def plusargs(self) -> list[str]:
        """The wrapper's plusargs of the pattern (re-seeded per image, so an image rerun alone sees the same)."""
        return [f"+seed={self.seed}", f"+idle={self.idle}", f"+stall={self.stall}"]


DEFAULT_STIMULUS = Stimulus()


@dataclass(frozen=True)
class WordSource:
    """The driver: the words file (payload plus the gap-allowed bit) and one length per image."""

    words_file: Path
    word_count: int
    lengths_file: Path
    image_count: int

    def plusargs(self) -> list[str]:
        """The wrapper's plusargs of the source."""
        return [f"+words={self.words_file}", f"+nwords={self.word_count}",
                f"+lengths={self.lengths_file}", f"+nimages={self.image_count}"]


@dataclass(frozen=True)
class RecordMonitor:
    """The monitor: the record file the wrapper writes (see ``records``)."""

    record_file: Path

    def plusargs(self) -> list[str]:
        """The wrapper's plusarg of the monitor."""
        return [f"+out={self.record_file}"]

    def clear(self) -> None:
        """Remove the record of an earlier run."""
        self.record_file.unlink(missing_ok=True)

    def read(self, manifest: dict, image_count: int):
        """The decoded record (``records.Record``; an empty record when the run wrote none)."""
        from .records import parse_record

        text = self.record_file.read_text() if self.record_file.exists() else ""
        return parse_record(text, manifest, image_count)


def run_plusargs(first_image: int, max_cycles: int) -> list[str]:
    """The wrapper's plusargs of a run: the first image's number (seeds, record) and the watchdog."""
    return [f"+first={first_image}", f"+max_cycles={max_cycles}"]


class NetworkTB:
    """The wrapper as the cocotb test sees it: a clock to drive and the monitor's ``done`` to wait for."""

    def __init__(self, dut):
        self.dut = dut

    def start_clock(self) -> None:
        """Start the clock, implemented in the simulator interface (no Python per cycle)."""
        Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start()

    async def wait_for_record(self) -> None:
        """Wait until the wrapper has streamed every image and closed its record."""
        await RisingEdge(self.dut.done)
        for _ in range(CLOSING_CYCLES):
            await RisingEdge(self.dut.clk)


@cocotb.test()
async def stream_images(dut):
    """Clock the wrapper until it has streamed every image."""
    tb = NetworkTB(dut)
    tb.start_clock()
    await tb.wait_for_record()
