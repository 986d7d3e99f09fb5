"""The event input stream: one word per input event, frames in order, each closed by a marker.

Word layout (``event_word_layout``, least significant field first):

- ``c``: input channel of the event (for DVS data the polarity: 0 OFF, 1 ON, as in
  ``ecc_hw.events.preprocess``), ``bits_for(C - 1)`` bits;
- ``y``, ``x``: the pixel, ``bits_for(H - 1)`` and ``bits_for(W - 1)`` bits;
- ``count``: the event's multiplicity, 1..count_scale (``count`` events of one pixel and channel in one
  frame may come as one word or as several words whose counts add up; a frame must not bring more
  than ``count_scale`` events to one pixel and channel, the bound the membrane widths are built for),
  ``bits_for(count_scale)`` bits; a word with count 0 is a no-op;
- ``frame_end``: 1 closes the current frame (the word carries no event; the other fields are
  ignored). An image is exactly T frames, so its T-th marker ends it; an empty frame is a marker alone.

The frame of an event is implicit: the number of markers before it. Within a frame events may come
in any order; ``frame_words`` (what the benches send and what ``ecc_hw.cycle_model`` counts) sends
each frame's nonzero pixels in channel-major (c, y, x) order, one word per pixel with its count.

Throughput (``rtl_gen.top.EccSnn``): the stream is ready only while a frame is loading; an event
costs max(1, its fan-out walk) cycles (twice the walk with SPRAM banks), a marker one cycle, after
which the input waits until step t's sweeps and integrations are done.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import unsigned
from amaranth.lib import data

from .plan import HardwarePlan, bits_for


def event_word_layout(plan: HardwarePlan) -> data.StructLayout:
    """Payload of the event input stream (module docstring)."""
    c_in, h_in, w_in = plan.input_shape
    return data.StructLayout({"c": bits_for(c_in - 1), "y": bits_for(h_in - 1), "x": bits_for(w_in - 1),
                              "count": count_shape(plan), "frame_end": 1})


def count_shape(plan: HardwarePlan):
    """Shape of an event's multiplicity: 0..count_scale (one bit, no multiplier, for C = 1)."""
    return unsigned(bits_for(plan.count_scale))


def frame_words(frames: np.ndarray) -> np.ndarray:
    """The words of one image's spike counts ``frames`` (T, C, H, W): an int64 array (K, 5) of
    (c, y, x, count, frame_end), each frame's nonzero pixels in channel-major order, then its marker."""
    frames = np.asarray(frames, dtype=np.int64)
    rows = []
    for frame in frames:
        where = np.argwhere(frame != 0)                       # channel-major (c, y, x) order
        counts = frame[tuple(where.T)]
        rows.append(np.column_stack([where, counts, np.zeros(len(where), dtype=np.int64)]))
        rows.append(np.array([[0, 0, 0, 0, 1]], dtype=np.int64))
    return np.concatenate(rows).reshape(-1, 5)


FIELDS = ("c", "y", "x", "count", "frame_end")


def field_offsets(layout: data.StructLayout) -> dict:
    """Bit offset of each field of ``layout`` (the generator's manifest lists the same)."""
    return {name: layout[name].offset for name in FIELDS}


def pack_words(words: np.ndarray, offsets: dict) -> np.ndarray:
    """Words (K, 5) as the stream's integers (uint64), each field at its bit offset."""
    words = np.asarray(words, dtype=np.uint64).reshape(-1, 5)
    packed = np.zeros(len(words), dtype=np.uint64)
    for column, name in enumerate(FIELDS):
        packed |= words[:, column] << np.uint64(offsets[name])
    return packed
