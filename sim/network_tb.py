"""Cocotb test of ``tb_ecc_snn``: clock the wrapper until it has streamed every image.

Nothing runs in Python per cycle: the wrapper (``tb_ecc_snn.v``) feeds the input words (pixels, or
event words with ``EVENT_INPUT`` defined), inserts idle gaps and back-pressure and records every
word; ``ecc_hw.verify`` checks the record after the run.
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


@cocotb.test()
async def stream_images(dut):
    """Start the clock (implemented in the simulator interface, not in Python) and wait for done."""
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    await RisingEdge(dut.done)
    for _ in range(2):                  # the record is closed in the cycle that raises done
        await RisingEdge(dut.clk)
