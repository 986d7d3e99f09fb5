"""The network bench on the host: the design compiled with its wrapper, and runs of images through it.

``build`` compiles a ``design.Design`` with ``tb_ecc_snn.v`` (cached: the build folder is named by
the digest of every source and of the wrapper's parameters); ``Bench.run`` streams whole images
through the build in runs of at most ``MAX_IMAGES_PER_RUN`` images (and, with event input, of at most
the wrapper's word capacity) and returns the joined ``records.Record``. The testbench's parts and
their plusargs are in ``network_tb``.

Idle gaps are allowed only before words up to the load phase's last word that starts a fan-out walk
(nonzero, with a nonzero fan-out; with event input each frame is a load phase): later ones can
overlap the synapse pipeline's drain and need not add a whole cycle (``tb_ecc_snn.v``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecc_hw.variants import Memory

from . import hdl
from .design import Design
from .network_tb import DEFAULT_STIMULUS, RecordMonitor, Stimulus, WordSource, run_plusargs
from .records import Record, join_records
from .runner import build_hdl, default_build_root, digest, run_cocotb
from .simulators import check_simulator, icarus_copy

MAX_IMAGES_PER_RUN = 256
EVENT_WORDS_PER_RUN = 1 << 18   # event input: words of one run of the wrapper (runs are split to fit)
BUILD_FORMAT = "2"              # bump when the way builds are made changes (invalidates cached builds)
# the runner asks for every signal to be public (--public-flat-rw), which stops most of Verilator's
# optimisations; the wrapper marks the two that the test touches instead
VERILATOR_ARGS = ("--no-public-flat-rw", "-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast")
SPRAM_MODEL = hdl.package_file(hdl.SPRAM_MODEL_FILE)   # added to designs generated with memory="spram"


@dataclass
class Build:
    """A compiled simulation of one design with the wrapper, on one simulator."""

    design: Design
    simulator: str
    build_dir: Path
    build_seconds: float
    waves: bool = False


def event_input(manifest: dict) -> bool:
    """Whether the design takes event words (else pixels)."""
    return "events" in manifest["ports"]


def wrapper_words(manifest: dict) -> int:
    """Capacity of the wrapper's word memory: MAX_IMAGES_PER_RUN images, or with event input
    EVENT_WORDS_PER_RUN words and at least one image's worst case (every pixel in every frame)."""
    pixels = int(np.prod(manifest["input"]["shape"]))
    if event_input(manifest):
        return max(EVENT_WORDS_PER_RUN, manifest["timesteps"] * (pixels + 1))
    return MAX_IMAGES_PER_RUN * pixels


def wrapper_parameters(manifest: dict) -> dict:
    """The wrapper's Verilog parameters for a design (port widths, class bit, memory sizes)."""
    ports = manifest["ports"]
    result = ports["result"]["payload"]
    return {
        "IN_W": ports["events" if event_input(manifest) else "pixels"]["payload"]["width"],
        "RESULT_W": result["width"],
        "TRACE_W": ports["trace"]["payload"]["width"],
        "CLASS_BIT": result["fields"]["is_class"]["offset"],
        "WORDS": wrapper_words(manifest),
        "MAX_IMAGES": MAX_IMAGES_PER_RUN,
    }


def wrapper_defines(manifest: dict) -> dict:
    """The wrapper's Verilog defines for a design (``EVENT_INPUT`` with event input)."""
    return {"EVENT_INPUT": 1} if event_input(manifest) else {}


def build(design: Design, simulator: str, build_root: Path | None = None, waves: bool | None = None,
          log=None) -> Build:
    """Compile ``design`` + wrapper (cached: the build folder is named by the hash of every source).

    Icarus builds always include the runner's FST dump module (off unless a run asks for waves);
    Verilator is built without tracing unless ``waves`` (tracing slows it down), so a waveform rerun
    uses a second, traced build.
    """
    check_simulator(simulator)
    if waves is None:
        waves = simulator == "icarus"
    root = Path(build_root or default_build_root())
    wrapper, waiver = hdl.package_file(hdl.WRAPPER_FILE), hdl.package_file(hdl.WAIVER_FILE)
    models = [SPRAM_MODEL] if design.memory == Memory.SPRAM else []
    parameters, defines = wrapper_parameters(design.manifest), wrapper_defines(design.manifest)
    key = digest(BUILD_FORMAT.encode(), design.verilog_hash.encode(), wrapper.read_bytes(), waiver.read_bytes(),
                 *(model.read_bytes() for model in models),
                 json.dumps([parameters, defines], sort_keys=True).encode(), simulator.encode(), str(waves).encode())
    build_dir = root / f"{simulator}-{key[:16]}{'-waves' if waves and simulator == 'verilator' else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    icarus = simulator == "icarus"
    verilog = icarus_copy(design.verilog, build_dir) if icarus else design.verilog
    seconds = build_hdl(simulator, build_dir, hdl.WRAPPER_TOPLEVEL, [verilog, *models, wrapper],
                        control_files=[waiver], build_args=() if icarus else VERILATOR_ARGS,
                        parameters=parameters, defines=defines, waves=waves,
                        stamp_info={"design": str(design.folder)}, log=log, name=design.folder.name)
    return Build(design, simulator, build_dir, seconds, waves)


def input_words(manifest: dict, image: np.ndarray, walks: np.ndarray) -> np.ndarray:
    """One image's input words for the wrapper: the payload, and bit IN_W set where an idle gap
    may come before the word (up to the load phase's last word that starts a walk)."""
    width = wrapper_parameters(manifest)["IN_W"]
    if event_input(manifest):
        from ecc_hw.rtl_gen.event_input import frame_words, pack_words

        fields = manifest["ports"]["events"]["payload"]["fields"]
        words = frame_words(image)
        payload = pack_words(words, {name: spec["offset"] for name, spec in fields.items()})
        c, y, x, count, marker = words.T
        _, height, width_in = manifest["input"]["shape"]
        busy = (count != 0) & (marker == 0) & (walks[(c * height + y) * width_in + x] > 0)
        frame = np.cumsum(marker) - marker
        last_busy = np.full(frame[-1] + 1, -1)
        np.maximum.at(last_busy, frame[busy], np.flatnonzero(busy))
        gaps = np.arange(len(words)) <= last_busy[frame]
    else:
        pixels = image.reshape(-1)
        payload = (pixels & ((1 << width) - 1)).astype(np.uint64)
        busy = np.flatnonzero((pixels != 0) & (walks > 0))
        gaps = np.arange(len(pixels)) <= (busy[-1] if len(busy) else -1)
    return payload | (gaps.astype(np.uint64) << np.uint64(width))


def _hex_lines(values, width: int) -> str:
    """``values`` as ``$readmemh`` text, ``width`` bits each."""
    mask = (1 << width) - 1
    digits = (width + 3) // 4
    return "\n".join(f"{int(v) & mask:0{digits}x}" for v in values) + "\n"


class Bench:
    """Runs images through one ``Build``."""

    def __init__(self, build_: Build):
        self.build = build_
        self.manifest = build_.design.manifest

    def run(self, x_q: np.ndarray, walk_lengths: np.ndarray, stimulus: Stimulus = DEFAULT_STIMULUS, first: int = 0,
            waves: bool = False, run_dir: Path | None = None, max_cycles: int = 50_000_000) -> Record:
        """Stream ``x_q`` (N, C, H, W), or with event input the spike counts (N, T, C, H, W) as event
        words (``rtl_gen.event_input.frame_words``), back to back, in runs of at most
        MAX_IMAGES_PER_RUN images (and, with events, of at most the wrapper's word capacity).

        ``walk_lengths``: layer 1's fan-out walk cycles per input pixel
        (``cycle_model.walk_cycles``); idle gaps stop after the last word of the image (with events:
        of each frame) that starts a walk.
        """
        walks = np.asarray(walk_lengths).reshape(-1)
        streams = [input_words(self.manifest, image, walks) for image in np.asarray(x_q, dtype=np.int64)]
        capacity = wrapper_words(self.manifest)
        parts, start = [], 0
        while start < len(streams):
            stop, words = start, 0
            while (stop < len(streams) and stop - start < MAX_IMAGES_PER_RUN
                   and (stop == start or words + len(streams[stop]) <= capacity)):
                words += len(streams[stop])
                stop += 1
            parts.append(self._run(streams[start:stop], stimulus, first + start, waves, run_dir, max_cycles))
            start = stop
        return join_records(parts)

    def _run(self, streams, stimulus, first, waves, run_dir, max_cycles) -> Record:
        """One run of the wrapper on ``streams`` (at most its capacity)."""
        b = self.build
        run_dir = Path(run_dir or b.build_dir / "run")
        run_dir.mkdir(parents=True, exist_ok=True)
        width = wrapper_parameters(self.manifest)["IN_W"] + 1
        words = np.concatenate(streams)
        source = WordSource(run_dir / "words.hex", len(words), run_dir / "lengths.hex", len(streams))
        source.words_file.write_text(_hex_lines(words, width))
        source.lengths_file.write_text(_hex_lines([len(stream) for stream in streams], 32))
        monitor = RecordMonitor(run_dir / "record.txt")
        monitor.clear()
        plusargs = source.plusargs() + monitor.plusargs() + stimulus.plusargs() + run_plusargs(first, max_cycles)
        if waves and b.simulator == "icarus":
            plusargs.append(f"+dumpfile_path={run_dir / 'waves.fst'}")
        run = run_cocotb(b.simulator, b.build_dir, hdl.WRAPPER_TOPLEVEL, hdl.cocotb_module(hdl.NETWORK_TB), run_dir,
                         plusargs, waves=waves, extra_env={"COCOTB_LOG_LEVEL": "WARNING"})
        if run.exit_code:      # the runner exits when the simulator fails
            raise RuntimeError(f"{b.simulator} run failed (exit {run.exit_code}); see {run.log}")
        if run.failed:
            raise RuntimeError(f"cocotb test failed on {b.simulator}; see {run.log}")
        record = monitor.read(self.manifest, len(streams))
        record.sim_seconds = run.seconds
        return record
