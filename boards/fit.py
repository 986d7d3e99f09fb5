"""The fit check of ``ecc-hw build``: predicted block RAMs, SPRAMs and LUTs of a plan on a board, and the
memory (BRAM or SPRAM banks) a network fits with; a one-line ``FitError`` otherwise."""
from __future__ import annotations

import math
import re

import numpy as np

from ecc_hw.errors import UserError

from .targets import Board

# Logic model for the fit check (LUT4s), fitted to the builds in the README's tables: a fixed part
# (UART, framing, controller, walkers) plus a part per lane unit (a layer's lanes are min(P, its
# output channels): multiply or shift, forwarding, fire arithmetic, bank multiplexers). ECP5: within
# 1% of ecc P = 1..8 (2,814..7,004), 6% over radix P = 16 (8,501). iCE40: a 2-layer network at
# P = 2 in block RAM (1,840).
LUT_BASE = {"ice40": 1400, "ecp5": 2200}
LUT_PER_LANE = {"ice40": 110, "ecp5": 200}
# Graph designs count their lane units per edge (``GraphPlan.lane_units``: every edge has its own walker
# and lanes), the same constants per unit, plus a part per max-pool node (its walk, count and max stages),
# fitted to the builds of docs/graph_boards.md: ECP5 Fashion MaxPool P = 8 (3 nodes, 10,316 LUTs; the
# ResNet at P = 8, no node, is 19,099 against 19,800 predicted), iCE40 conv1d fixture P = 2 (1 node, 2,205).
LUT_PER_POOL = {"ice40": 150, "ecp5": 570}
# SPRAM banks (iCEBreaker): the per-SPRAM address, mask and data multiplexers and the read-then-write
# schedule; fitted to the bundled network at P = 1 (2,190 LUTs).
LUT_PER_SPRAM = 115


# Names of the design's memories with registered read ports (rtl_gen and the board top); ``counts<l>``,
# ``maxima<l>`` and ``pool_state<l>`` are the graph design's max-pool banks (``rtl_gen.max_pool_unit``).
BLOCK_RAM_NAMES = ("weights", "membrane*", "current*", "words", "image", "counts*", "maxima*", "pool_state*")


def must_be_block_ram(name: str) -> bool:
    from fnmatch import fnmatch
    leaf = re.split(r"[./]", name)[-1]
    return any(fnmatch(leaf, pattern) for pattern in BLOCK_RAM_NAMES)


class FitError(UserError):
    """The network cannot fit the board (one line naming the resource and the numbers)."""


def sync_memories(plan, image_pixels: int) -> list[dict]:
    """The memories with registered read ports that must become block RAM (those in SPRAM are not)."""
    mems = [dict(m) for m in plan.memories()
            if not m["name"].endswith(("_rows", "_cols")) and m["kind"] != "spram"]
    depth = max(2, 1 << (image_pixels - 1).bit_length())
    mems.append({"name": "uart_image_buffer", "count": 1, "depth": depth, "width": 8, "kind": "ram"})
    return mems


def blocks_for(board: Board, depth: int, width: int) -> int:
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in board.bram_shapes)


def is_graph_plan(plan) -> bool:
    """True for a graph network's plan (``rtl_gen.graph_plan.GraphPlan``)."""
    from ecc_hw.rtl_gen.graph_plan import GraphPlan
    return isinstance(plan, GraphPlan)


def lane_units_of(plan) -> int:
    """Synapse lane units built: per layer min(P, its output channels); a graph's per edge."""
    if is_graph_plan(plan):
        return plan.lane_units
    return sum(min(plan.lanes, layer.target.out_shape[0]) for layer in plan.layers)


def predict(board: Board, plan) -> dict:
    """Predicted block RAMs, SPRAMs, memory bits (block RAM + SPRAM fields) and LUTs of the board top."""
    c, h, w = plan.input_shape
    mems = sync_memories(plan, c * h * w)
    for m in mems:
        m["blocks"] = m["count"] * blocks_for(board, m["depth"], m["width"])
    bits = sum(m["count"] * m["depth"] * m["width"] for m in mems)
    spram = plan.spram
    lane_units = lane_units_of(plan)
    luts = LUT_BASE[board.family] + LUT_PER_LANE[board.family] * lane_units
    luts += LUT_PER_POOL[board.family] * len(getattr(plan, "pools", ()))
    luts += LUT_PER_SPRAM * (spram.blocks if spram else 0)
    return {"memories": mems, "bram": sum(m["blocks"] for m in mems), "lut": luts,
            "memory_bits": bits + (spram.bits if spram else 0), "bram_bits": bits,
            "spram": spram.blocks if spram else 0, "spram_bits": spram.bits if spram else 0,
            "spram_stacks": {s.name: {"columns": s.columns, "width": s.width, "depth": s.depth,
                                      "regions": [r.name for r in s.regions]}
                             for s in ((spram.state, spram.spikes) if spram else ())}}


def fit_check(board: Board, plan) -> dict:
    """Raise ``FitError`` (one line) when the predicted design cannot fit ``board``."""
    from ecc_hw.rtl_gen.spram_layout import SPRAM_WIDTH, SPRAM_WORDS

    from .framing import MAX_PIXELS

    p = predict(board, plan)
    where = f"does not fit {board.title} at {plan.lanes} lanes"
    pixels = int(np.prod(plan.input_shape))
    if pixels > MAX_PIXELS:
        raise FitError(f"{where}: the UART frame carries at most {MAX_PIXELS:,} pixels, the input has {pixels:,}")
    if plan.spram is not None:
        deep = plan.spram.too_deep()
        if deep is not None:
            raise FitError(f"{where}: SPRAM {deep.name} stack needs {deep.depth:,} of {SPRAM_WORDS:,} words "
                           f"(regions {', '.join(f'{r.name} {r.depth:,}' for r in deep.regions)})")
        if p["spram"] > board.limits.get("spram", 0):
            state, spikes = plan.spram.state, plan.spram.spikes
            raise FitError(f"{where}: SPRAM needs {p['spram']} of {board.limits.get('spram', 0)} blocks "
                           f"(state word {state.width} bits = {state.columns} x {SPRAM_WIDTH}, spike word "
                           f"{spikes.width} bits = {spikes.columns} x {SPRAM_WIDTH}; {p['spram_bits']:,} bits)")
    if p["bram"] > board.limits["bram"]:
        big = max(p["memories"], key=lambda m: m["blocks"])
        raise FitError(f"{where}: block RAM needs {p['bram']} of {board.limits['bram']} blocks "
                       f"({p['bram_bits']:,} memory bits; largest {big['name']} {big['count']}x"
                       f"{big['depth']}x{big['width']} = {big['blocks']} blocks)")
    if p["lut"] > board.limits["lut"]:
        raise FitError(f"{where}: logic needs about {p['lut']:,} of {board.limits['lut']:,} LUTs")
    return p


def choose_memory(board: Board, params, lanes: int, timesteps: int | None, memory: str | None = None):
    """The plan and fit prediction for the first of ``board.memories`` (or ``memory``) that the
    network fits; raises ``UserError`` for a memory the board lacks and, when none fits, one
    ``FitError`` line with every candidate's reason. A graph network (``GraphParams``) is built for a board
    with dual-port block RAM banks only (its SPRAM design, ``ecc-hw generate --memory spram``, has no board
    build yet): any other ``memory`` is a one-line ``UserError``."""
    from ecc_hw.networks import is_graph
    from ecc_hw.rtl_gen.plan import make_plan
    from ecc_hw.variants import Memory

    if is_graph(params):
        from ecc_hw.rtl_gen.graph_plan import make_graph_plan
        if memory is not None and Memory(memory) != Memory.BRAM:
            raise UserError(f"{memory}: graph networks are built with dual-port block RAM banks only on a board "
                            f"(--memory bram; ecc-hw generate and verify take --memory spram)", field="memory")
        if Memory.BRAM not in board.memories:
            raise UserError(f"{board.name} has no dual-port block RAM banks for a graph network", field="memory")
        plan = make_graph_plan(params, lanes, timesteps, Memory.BRAM)
        return plan, fit_check(board, plan)
    if memory is not None and memory not in board.memories:
        raise UserError(f"{memory}: {board.name} has {', '.join(board.memories)} for the banks", field="memory")
    reasons = []
    for candidate in (memory,) if memory else board.memories:
        plan = make_plan(params, lanes, timesteps, candidate)
        try:
            return plan, fit_check(board, plan)
        except FitError as error:
            reasons.append(str(error) if not reasons else f"with {candidate} banks: {str(error).split(': ', 1)[1]}")
    raise FitError("; ".join(reasons))
