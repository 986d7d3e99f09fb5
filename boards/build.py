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
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ecc_hw.errors import UserError
from ecc_hw.variants import InputKind

from .fit import BLOCK_RAM_NAMES, choose_memory, lane_units_of, must_be_block_ram
from .targets import BOARDS, Board, BoardWrapper

SEED = 1
MAX_BAUD_ERROR = 0.02     # a UART receiver samples mid-bit: 2% over 10 bits stays inside the bit
def _tool(name: str) -> str:
    """Absolute path of a YoWASP tool script next to this Python (the venv's bin)."""
    for folder in (Path(sys.executable).parent, *map(Path, os.environ.get("PATH", "").split(os.pathsep))):
        path = folder / f"yowasp-{name}"
        if path.is_file():
            return str(path)
    raise UserError(f"yowasp-{name} is not installed: pip install -e '.[boards]' (or make board)")


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
