"""``ecc-hw build``: fit check, board top, Yosys + nextpnr + packer (YoWASP), report.

Chain parameter folders build ``rtl_gen.top.EccSnn``, graph folders (residual adds, concats, max pools,
grouped convolutions) ``rtl_gen.graph_top.EccGraphSnn`` (dual-port block RAM banks only), behind the same
UART framing (docs/boards.md, docs/graph_boards.md). Nothing is written when the fit check fails
(one-line ``FitError``, exit status 2). Builds are deterministic: Amaranth's built-in Yosys for the
netlist text, fixed nextpnr seed, fixed options.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ecc_hw.errors import UserError
from ecc_hw.variants import InputKind

from .targets import BOARDS, Board, BoardWrapper

SEED = 1
MAX_BAUD_ERROR = 0.02     # a UART receiver samples mid-bit: 2% over 10 bits stays inside the bit
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


# Names of the design's memories with registered read ports (rtl_gen and the board top); ``counts`` and
# ``maxima`` are the graph design's max-pool memories (``rtl_gen.max_pool_unit``).
BLOCK_RAM_NAMES = ("weights", "membrane*", "current*", "words", "image", "counts", "maxima")


def must_be_block_ram(name: str) -> bool:
    from fnmatch import fnmatch
    leaf = re.split(r"[./]", name)[-1]
    return any(fnmatch(leaf, pattern) for pattern in BLOCK_RAM_NAMES)


class FitError(UserError):
    """The network cannot fit the board (one line naming the resource and the numbers)."""


def _tool(name: str) -> str:
    """Absolute path of a YoWASP tool script next to this Python (the venv's bin)."""
    for folder in (Path(sys.executable).parent, *map(Path, os.environ.get("PATH", "").split(os.pathsep))):
        path = folder / f"yowasp-{name}"
        if path.is_file():
            return str(path)
    raise UserError(f"yowasp-{name} is not installed: pip install -e '.[boards]' (or make board)")


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
    ``FitError`` line with every candidate's reason. A graph network (``GraphParams``) is built with
    dual-port block RAM banks only: any other ``memory`` is a one-line ``UserError``."""
    from ecc_hw.networks import is_graph
    from ecc_hw.rtl_gen.plan import make_plan
    from ecc_hw.variants import Memory

    if is_graph(params):
        from ecc_hw.rtl_gen.graph_plan import make_graph_plan
        if memory is not None and Memory(memory) != Memory.BRAM:
            raise UserError(f"{memory}: graph networks are built with dual-port block RAM banks only "
                            f"(--memory bram)", field="memory")
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


def _yosys_script(board: Board) -> str:
    synth = "synth_ice40 -dsp -top top" if board.family == "ice40" else "synth_ecp5 -top top"
    return "\n".join([
        "read_rtlil top.il",
        "hierarchy -top top",
        "proc",
        "memory_collect",
        # the memories with a registered read port go to block RAM (policy in boards.targets)
        "setattr -set ram_style \"block\" " + " ".join(f"c:{name}" for name in BLOCK_RAM_NAMES),
        synth,
        "tee -q -o yosys_stat.json stat -json",
        "write_json top.json",
        ""])


def _run(cmd: list[str], cwd: Path, log: Path, status, label: str) -> None:
    start = time.monotonic()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if status is not None:
                status.update(f"[bold]{label}[/] ({time.monotonic() - start:.0f} s) ...")
            time.sleep(0.2)
    if proc.returncode:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise UserError(f"{label} failed (see {log}): {' | '.join(tail)}")


def bundled_calibration(params) -> Path | None:
    """The bundled data file named as the parameter folder's calibration source (``ecc_hw/data`` or one of
    its subfolders, e.g. ``fashion/fashion_calib.npz``), or None."""
    from ecc_hw import data as data_mod

    source = (params.provenance or {}).get("calibration", {}).get("source")
    if not source:
        return None
    name = Path(str(source)).name
    for candidate in (data_mod.PACKAGE_DATA / str(source), *sorted(data_mod.PACKAGE_DATA.glob(f"*/{name}"))):
        if candidate.is_file():
            return candidate
    return None


def _images(params, data: str | None, limit: int):
    """Quantised inputs for the cycle model: --data, else the parameter file's calibration file if
    it is bundled, else random inputs. Returns (x_q, labels or None, description); the labels only
    from --data. A chain's x_q is (N, C, H, W); a graph's the channel-major rows (N, C * H * W) of
    ``IntegerGraph.quantise_input`` (the order the UART framing sends them in)."""
    from ecc_hw import data as data_mod
    from ecc_hw.golden import quantize_input
    from ecc_hw.networks import is_graph

    graph = is_graph(params)
    labels = data is not None
    if data is None:
        bundled = bundled_calibration(params)
        data = None if bundled is None else str(bundled)
    if data is None:
        if graph:
            rng = np.random.default_rng(0)
            top = params.input_full_scale
            low = -top if params.input_signed else 0
            rows = rng.integers(low, top + 1, size=(limit, int(np.prod(params.network.input.shape))))
            return rows.astype(np.int64), None, f"{limit} random inputs"
        from ecc_hw.testing import random_inputs
        return random_inputs(params, limit, seed=0), None, f"{limit} random inputs"
    shape = params.network.input.model_shape if graph else params.input_shape
    x, y = data_mod.load_npz(data, need_labels=False, input_shape=shape)
    x = x[:limit]
    y = y[:limit] if labels and y is not None else None
    x_q = params.graph.quantise_input(x) if graph else quantize_input(params, x)
    return x_q, y, f"{len(x)} images of {Path(data).name}"


def model_cycles(params, plan, x_q) -> dict:
    """The cycle model on ``x_q`` (chain or graph): cycles per image, the ideal per image
    (docs/arithmetic.md 4) and the golden model's predictions."""
    from ecc_hw.networks import is_graph

    if is_graph(params):
        from ecc_hw.graph.cycle_model import cycles_per_image, ideal_cycles
        from ecc_hw.graph.golden import run_graph

        graph = params.graph
        ref = run_graph(graph, x_q, plan.timesteps, params.tre_mode, record_spikes=True)
        cycles = cycles_per_image(graph, ref.spikes, x_q, plan.lanes, plan.timesteps)
        ideal = ideal_cycles(graph, ref.synops, plan.lanes, plan.timesteps)
        return {"cycles": np.asarray(cycles), "ideal": np.asarray(ideal), "predictions": np.asarray(ref.predictions)}
    from ecc_hw import golden
    from ecc_hw.cycle_model import cycles_per_image, ideal_cycles

    result = golden.run(params, x_q, timesteps=plan.timesteps, record_spikes=True)
    cycles = cycles_per_image(params, result, plan.lanes, plan.timesteps, x_q=x_q, memory=plan.memory)
    ideal = ideal_cycles(params, result, plan.lanes, plan.timesteps)
    return {"cycles": np.asarray(cycles), "ideal": np.asarray(ideal), "predictions": np.asarray(result.predictions)}


def _memory_mapping(log_text: str) -> tuple[list[str], list[str]]:
    """(memories in block RAM, memories in logic) from the Yosys log."""
    block, logic = [], []
    for line in log_text.splitlines():
        found = re.search(r"mapping memory (\S+) via (\S+)", line)
        if found:
            (logic if "LUTRAM" in found.group(2) or "DPR16" in found.group(2) else block).append(
                found.group(1))
        found = re.search(r"using FF mapping for memory (\S+)", line)
        if found:
            logic.append(found.group(1))
    return sorted(set(block)), sorted(set(logic))


def _resources(board: Board, stat: dict, pnr: dict) -> dict:
    cells = {}
    for module in stat.get("modules", {}).values():
        for kind, count in module.get("num_cells_by_type", {}).items():
            cells[kind] = cells.get(kind, 0) + count
    design = stat.get("design", {}).get("num_cells_by_type")
    if design:
        cells = dict(design)
    util = pnr.get("utilization", {})

    def used(name):
        return int(util.get(name, {}).get("used", 0))

    if board.family == "ice40":
        return {"lut": cells.get("SB_LUT4", 0),
                "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
                "lc": used("ICESTORM_LC"), "bram": used("ICESTORM_RAM"), "spram": used("ICESTORM_SPRAM"),
                "dsp": used("ICESTORM_DSP")}
    return {"lut": used("TRELLIS_COMB"), "ff": used("TRELLIS_FF"), "bram": used("DP16KD"),
            "dsp": used("MULT18X18D"), "lutram": used("TRELLIS_RAMW")}


def build(net: str, board_name: str, out: str, lanes: int = 8, clock_mhz: float | None = None,
          data: str | None = None, limit: int = 200, timesteps: int | None = None, seed: int = SEED,
          baud: int | None = None, console=None, memory: str | None = None) -> dict:
    """Build ``net`` for ``board_name`` into ``out``; return the report (also OUT/report.json).
    ``memory``: the banks' memory; default the board's first that the network fits."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"   # deterministic Verilog (Amaranth uses a Yosys on PATH otherwise)
    from ecc_hw.networks import is_graph, load_network

    from .top import BoardTop

    if board_name not in BOARDS:
        raise UserError(f"unknown board {board_name!r} (choose from {', '.join(BOARDS)})")
    board = BOARDS[board_name]
    params = load_network(net)
    graph = is_graph(params)
    if not graph and params.input_kind == InputKind.EVENTS:
        raise UserError(f"{net}: event input runs in simulation only (ecc-hw verify); the boards' UART "
                        "framing carries images")
    plan, prediction = choose_memory(board, params, lanes, timesteps, memory)   # before anything is written
    memory = plan.memory
    clock = float(clock_mhz or board.default_clock_mhz)
    from .targets import ecp5_pll, ice40_pll
    if abs(clock - board.board_clock_mhz) > 1e-6:
        clock = (ice40_pll if board.family == "ice40" else ecp5_pll)(board.board_clock_mhz, clock)["mhz"]
    baud = int(baud or board.baud)
    clocks_per_bit = round(clock * 1e6 / baud)
    error = abs(clock * 1e6 / max(clocks_per_bit, 1) - baud) / baud
    if clocks_per_bit < 4 or error > MAX_BAUD_ERROR:
        raise UserError(f"{baud}: at {clock:g} MHz the UART bit takes {clocks_per_bit} cycles, "
                        f"{100 * error:.1f}% off (at most {100 * MAX_BAUD_ERROR:g}% and 4 cycles): choose "
                        "another baud rate or clock", field="baud")
    tools = {name: _tool(name) for name in ("yosys", f"nextpnr-{board.family}",
                                            "icepack" if board.family == "ice40" else "ecppack")}

    from rich.console import Console
    console = console or Console(stderr=True)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with console.status("elaborating the board top ...") as status:
        top = BoardTop(plan, clocks_per_bit)
        platform = board.platform()
        bplan = platform.prepare(BoardWrapper(board, top, clock), name="top", emit_src=False,
                                 debug_verilog=True)
        files = {name: content for name, content in bplan.files.items()
                 if name in ("top.il", "top.debug.v", "top.pcf", "top.lpf")}
        for name, content in files.items():
            target = outdir / ("top.v" if name == "top.debug.v" else name)
            target.write_text(content) if isinstance(content, str) else target.write_bytes(content)
        verilog = (outdir / "top.v").read_bytes()
        (outdir / "top.ys").write_text(_yosys_script(board))
        _run([tools["yosys"], "-q", "-l", "yosys.log", "top.ys"], outdir, outdir / "yosys.out", status,
             "yosys (synthesis)")
        constraint = ["--pcf", "top.pcf", "--asc", "top.asc"] if board.family == "ice40" else \
            ["--lpf", "top.lpf", "--textcfg", "top.config"]
        _run([tools[f"nextpnr-{board.family}"], *board.nextpnr_args, "--json", "top.json", *constraint,
              "--freq", f"{clock:g}", "--seed", str(seed), "--report", "pnr_report.json",
              "--log", "nextpnr.log", "--timing-allow-fail", "-q"], outdir, outdir / "nextpnr.out", status,
             f"nextpnr-{board.family} (place and route)")
        if board.family == "ice40":
            bitstream = "top.bin"
            _run([tools["icepack"], "top.asc", bitstream], outdir, outdir / "pack.log", status, "icepack")
        else:
            bitstream = "top.bit"
            _run([tools["ecppack"], "--compress", "top.config", bitstream], outdir, outdir / "pack.log",
                 status, "ecppack")
        status.update("cycle model on the images ...")
        x_q, labels, described = _images(params, data, limit)
        modelled = model_cycles(params, plan, x_q)
        cycles = modelled["cycles"]

    stat = json.loads((outdir / "yosys_stat.json").read_text())
    pnr = json.loads((outdir / "pnr_report.json").read_text())
    block, logic = _memory_mapping((outdir / "yosys.log").read_text(errors="replace"))
    fmax = min((v.get("achieved", 0.0) for v in pnr.get("fmax", {}).values()), default=0.0)
    used = _resources(board, stat, pnr)
    mean_cycles = float(np.mean(cycles))
    ideal = modelled["ideal"]
    accuracy = None
    if labels is not None:
        accuracy = {"value": float(np.mean(modelled["predictions"] == labels)), "images": len(labels),
                    "note": "the golden model's predictions on --data (the design is bit-exact)"}
    report = {
        "board": board.name, "device": board.device, "net": str(net), "lanes": plan.lanes,
        "topology": "graph" if graph else "chain", "lane_units": lane_units_of(plan),
        "timesteps": plan.timesteps, "clock_mhz": clock, "board_clock_mhz": board.board_clock_mhz,
        "pll": abs(clock - board.board_clock_mhz) > 1e-6, "baud": baud, "clocks_per_bit": clocks_per_bit,
        "fmax_mhz": round(fmax, 2), "timing_met": fmax >= clock, "seed": seed,
        "resources": {k: {"used": v, "available": board.limits.get(k)} for k, v in used.items()},
        "memory": memory,
        "predicted": {"bram": prediction["bram"], "spram": prediction["spram"], "lut": prediction["lut"],
                      "memory_bits": prediction["memory_bits"], "spram_bits": prediction["spram_bits"],
                      "spram_stacks": prediction["spram_stacks"]},
        "memories_in_spram": sorted(m["name"] for m in plan.memories() if m["kind"] == "spram"),
        "memories_in_block_ram": block,
        "memories_in_logic": [name for name in logic if must_be_block_ram(name)],
        "tables_in_logic": [name for name in logic if not must_be_block_ram(name)],
        "cycles_per_image": {"mean": mean_cycles, "min": int(cycles.min()), "max": int(cycles.max()),
                             "images": described},
        "ideal_cycles_per_image": {"mean": float(np.mean(ideal)), "images": described},
        "cycles_over_ideal": {"mean": float(np.mean(cycles / ideal)), "min": float(np.min(cycles / ideal)),
                              "max": float(np.max(cycles / ideal))},
        "images_per_second": clock * 1e6 / mean_cycles,
        "accuracy": accuracy,
        "accuracy_note": "predictions equal the golden model's (bit-exact design)",
        "verilog_sha256": hashlib.sha256(verilog).hexdigest(),
        "bitstream": bitstream,
        "bitstream_sha256": hashlib.sha256((outdir / bitstream).read_bytes()).hexdigest(),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (outdir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def print_report(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    board = BOARDS[report["board"]]
    table = Table(title=f"{board.title}, {report['lanes']} lanes, T={report['timesteps']}: {report['net']}")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    for key, entry in report["resources"].items():
        if key == "lutram" and not entry["used"]:
            continue
        label = board.labels.get(key, key.upper())
        avail = entry["available"]
        share = f" ({100 * entry['used'] / avail:.1f}%)" if avail else ""
        table.add_row(label, f"{entry['used']:,} / {avail:,}{share}" if avail else f"{entry['used']:,}")
    table.add_row("memories in logic", ", ".join(report["memories_in_logic"]) or "none")
    if report.get("memories_in_spram"):
        table.add_row("memories in SPRAM", ", ".join(report["memories_in_spram"]))
    table.add_row("clock", f"{report['clock_mhz']:g} MHz" + (" (PLL)" if report["pll"] else ""))
    table.add_row("post-route Fmax", f"{report['fmax_mhz']:.1f} MHz "
                  + ("[green]met[/]" if report["timing_met"] else "[red]NOT met[/]"))
    cyc = report["cycles_per_image"]
    table.add_row("cycles/image", f"{cyc['mean']:,.0f} (min {cyc['min']:,}, max {cyc['max']:,}; {cyc['images']})")
    if "cycles_over_ideal" in report:
        table.add_row("cycles / ideal", f"{report['cycles_over_ideal']['mean']:.2f} "
                      f"(ideal {report['ideal_cycles_per_image']['mean']:,.0f})")
    table.add_row("images/s", f"{report['images_per_second']:,.0f}")
    if report.get("accuracy"):
        acc = report["accuracy"]
        table.add_row("accuracy", f"{100 * acc['value']:.2f}% ({acc['images']:,} images, golden model)")
    table.add_row("Verilog sha256", report["verilog_sha256"][:16])
    table.add_row("bitstream", f"{report['bitstream']} (sha256 {report['bitstream_sha256'][:16]})")
    (console or Console()).print(table)
