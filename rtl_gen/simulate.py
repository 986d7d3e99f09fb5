"""Drive the design in the Amaranth simulator: images in, results, spikes and cycle counts out.

Used by the tests (and usable by benches). The design under test is built from the same plan as
``generate``; nothing here imports the golden model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from .plan import HardwarePlan
from .top import EccSnn


@dataclass
class SimResult:
    """Per image: predictions (N,), output membranes (N, classes), cycles (N,), and with trace the
    spikes as a list (per spiking layer) of bool arrays (T, N, neurons) like the golden model's."""

    predictions: np.ndarray
    output_membrane: np.ndarray
    cycles: np.ndarray
    spikes: list | None


def run_images(plan: HardwarePlan, x_q: np.ndarray, trace: bool = True,
               max_cycles: int = 10_000_000) -> SimResult:
    """Stream the images ``x_q`` (N, C, H, W) back to back (input always valid, output always ready).

    ``cycles[i]`` counts the cycles from the first cycle of image i's clear phase (the first cycle
    after reset, or the cycle after image i-1's last result handshake) up to and including its last
    result handshake.
    """
    dut = EccSnn(plan, trace=trace)
    images = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1)
    count = len(images)
    classes = plan.num_classes
    T = plan.timesteps
    membranes = np.zeros((count, classes), dtype=np.int64)
    predictions = np.zeros(count, dtype=np.int64)
    cycles = np.zeros(count, dtype=np.int64)
    spikes = None
    if trace:
        spikes = [np.zeros((T, count, layer.neurons), dtype=bool) for layer in plan.spiking]
        map_sizes = [layer.target.out_hw for layer in plan.spiking]

    async def testbench(ctx):
        image, pixel, edge, last_edge = 0, 0, 0, 0
        ctx.set(dut.result.ready, 1)
        ctx.set(dut.pixels.valid, 1)
        ctx.set(dut.pixels.payload, int(images[0][0]))
        sampled = [dut.pixels.valid, dut.pixels.ready, dut.result.valid, dut.result.payload]
        if trace:
            sampled += [dut.trace.valid, dut.trace.payload]
        async for _clk, _rst, *values in ctx.tick().sample(*sampled):
            edge += 1
            if edge > max_cycles:
                raise RuntimeError(f"simulation did not finish within {max_cycles} cycles")
            in_valid, in_ready, out_valid, out_payload = values[:4]
            if trace and values[4]:
                word = values[5]
                layer = int(word.layer) - 1
                base, mask = int(word.neuron), int(word.mask)
                for lane in range(plan.lanes):
                    if mask >> lane & 1:
                        spikes[layer][int(word.t) - 1, image, base + lane * map_sizes[layer]] = True
            if in_valid and in_ready:
                pixel += 1
                if pixel < images.shape[1]:
                    ctx.set(dut.pixels.payload, int(images[image][pixel]))
                else:
                    ctx.set(dut.pixels.valid, 0)
            if out_valid:
                if out_payload.is_class:
                    predictions[image] = int(out_payload.index)
                    cycles[image] = edge - last_edge
                    last_edge = edge
                    image += 1
                    if image == count:
                        return
                    pixel = 0
                    ctx.set(dut.pixels.payload, int(images[image][0]))
                    ctx.set(dut.pixels.valid, 1)
                else:
                    membranes[image, int(out_payload.index)] = int(out_payload.value)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return SimResult(predictions, membranes, cycles, spikes)
