"""Drive the design in the Amaranth simulator: images in, results, spikes and cycle counts out.

Used by the tests (and usable by benches). The design under test is built from the same plan as
``generate``; nothing here imports the golden model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from .event_input import event_word_layout, field_offsets, frame_words, pack_words
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


def input_words(plan: HardwarePlan, x_q: np.ndarray) -> list:
    """Per image, the input stream's words: its pixels, or with event input (``x_q`` of spike counts
    (N, T, C, H, W)) its ``rtl_gen.event_input.frame_words``, packed."""
    if plan.events:
        offsets = field_offsets(event_word_layout(plan))
        return [pack_words(frame_words(frames), offsets) for frames in np.asarray(x_q, dtype=np.int64)]
    return list(np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1))


def run_images(plan: HardwarePlan, x_q: np.ndarray, trace: bool = True,
               max_cycles: int = 10_000_000) -> SimResult:
    """Stream the images ``x_q`` (N, C, H, W), or with event input their spike counts (N, T, C, H, W)
    as event words, back to back (input always valid, output always ready).

    ``cycles[i]`` counts the cycles from the first cycle of image i's clear phase (the first cycle
    after reset, or the cycle after image i-1's last result handshake) up to and including its last
    result handshake.
    """
    return run_words(plan, input_words(plan, x_q), trace, max_cycles)


def run_words(plan: HardwarePlan, images: list, trace: bool = True,
              max_cycles: int = 10_000_000) -> SimResult:
    """``run_images`` for given input words: per image, the integers of its input stream."""
    dut = EccSnn(plan, trace=trace)
    source = getattr(dut, dut.input_name)
    input_word = Value.cast(source.payload)     # a pixel, or an event word's struct view as its bits
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
        ctx.set(source.valid, 1)
        ctx.set(input_word, int(images[0][0]))
        sampled = [source.valid, source.ready, dut.result.valid, dut.result.payload]
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
                if pixel < len(images[image]):
                    ctx.set(input_word, int(images[image][pixel]))
                else:
                    ctx.set(source.valid, 0)
            if out_valid:
                if out_payload.is_class:
                    predictions[image] = int(out_payload.index)
                    cycles[image] = edge - last_edge
                    last_edge = edge
                    image += 1
                    if image == count:
                        return
                    pixel = 0
                    ctx.set(input_word, int(images[image][0]))
                    ctx.set(source.valid, 1)
                else:
                    membranes[image, int(out_payload.index)] = int(out_payload.value)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return SimResult(predictions, membranes, cycles, spikes)
