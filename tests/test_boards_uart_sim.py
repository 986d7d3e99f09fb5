"""Board top (issue 6) through its UART at the bit level, on Icarus and Verilator (``boards.uart_tb``).

The same scenario as ``tests/test_boards_top.py`` (Amaranth's simulator), on the Verilog that the
board flow synthesises: three images give the golden predictions and output membranes and the cycle
model's counts; a corrupted byte gives a checksum error frame, a lost byte a timeout error frame, a
wrong length a length error frame; a good image after them still works. Twice: with the banks in
block RAM (the ULX3S) and in SPRAM (the iCEBreaker; ``sim/sb_spram256ka.v`` models the primitive).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ecc_hw.boards import framing
from ecc_hw import golden
from ecc_hw.cycle_model import cycles_per_image
from ecc_hw.testing import random_inputs, random_network
from ecc_hw.sim import hdl
from ecc_hw.sim.network_bench import SPRAM_MODEL, VERILATOR_ARGS
from ecc_hw.sim.runner import build_hdl, digest, run_cocotb
from ecc_hw.sim.simulators import SIMULATORS, icarus_copy
from ecc_hw.sim.testing import need_simulator

LANES = 2
CLOCKS_PER_BIT = 4
TIMEOUT_CYCLES = 200
TOPLEVEL = "board_top"
TEST_MODULE = "ecc_hw.boards.uart_tb"
PORTS = ("clk", "rst", "rx", "tx", "class_leds", "error_led", "busy_led")
BUILD_FORMAT = "1"          # bump when the way these builds are made changes


def _scenario(net, memory):
    """The frames to send and what each answer must be (JSON for ``boards.uart_tb``)."""
    # network 3 predicts class 0 for most inputs: take two of those and the first other class, so
    # the class byte and the LEDs change between answers
    pool = random_inputs(net, 64, seed=1)
    predicted = golden.run(net, pool).predictions
    other = int(np.flatnonzero(predicted != 0)[0])
    zero = [int(i) for i in np.flatnonzero(predicted == 0)[:2]]
    x = pool[[zero[0], other, zero[1]]]
    gold = golden.run(net, x, record_spikes=True)
    model = cycles_per_image(net, gold, LANES, x_q=x, memory=memory)

    def result(i, what):
        return {"frame": framing.encode_image(x[i]).hex(), "what": what,
                "prediction": int(gold.predictions[i]),
                "membranes": [int(v) for v in gold.output_membrane[i]], "cycles": int(model[i])}

    corrupt = bytearray(framing.encode_image(x[0]))
    corrupt[7] ^= 0x10
    lost = framing.encode_image(x[1])
    lost = lost[:9] + lost[10:]
    wrong = bytes([framing.SYNC_IN, 3, 0, 1, 2, 3, 6])
    exchanges = [result(i, f"image {i}") for i in range(3)] + [
        {"frame": bytes(corrupt).hex(), "what": "corrupted byte", "error": framing.ERR_CHECKSUM},
        {"frame": lost.hex(), "what": "lost byte", "error": framing.ERR_TIMEOUT},
        {"frame": wrong.hex(), "what": "wrong length", "error": framing.ERR_LENGTH},
        result(2, "image 2 again"),
    ]
    assert len(set(gold.predictions.tolist())) > 1
    return {"clocks_per_bit": CLOCKS_PER_BIT, "timeout_cycles": TIMEOUT_CYCLES, "exchanges": exchanges}


@pytest.fixture(scope="module", params=["bram", "spram"])
def board_design(request):
    """The board top's Verilog (deterministic: Amaranth's built-in Yosys), the scenario, the memory."""
    from amaranth.back import verilog

    from ecc_hw.boards.top import BoardTop
    from ecc_hw.rtl_gen.plan import make_plan

    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    net = random_network(3, input_bits=4)
    memory = request.param
    top = BoardTop(make_plan(net, LANES, memory=memory), clocks_per_bit=CLOCKS_PER_BIT,
                   timeout_cycles=TIMEOUT_CYCLES)
    # every BoardTop port is a plain Signal (no struct views to unwrap)
    text = verilog.convert(top, name=TOPLEVEL, emit_src=False)
    return text, _scenario(net, memory), memory


def _verilator_config() -> str:
    """The project's waiver for this file name, plus the ports that the test touches made public."""
    return hdl.package_file(hdl.WAIVER_FILE).read_text().replace("*ecc_snn.v", f"*{TOPLEVEL}.v") + "".join(
        f'public_flat_rw -module "{TOPLEVEL}" -var "{port}"\n' for port in PORTS)


def _build(text: str, simulator: str, root: Path, memory: str) -> Path:
    """Compile the board top on ``simulator`` (cached by the Verilog's hash); return the build dir."""
    models = [SPRAM_MODEL] if memory == "spram" else []
    key = digest(BUILD_FORMAT.encode(), text.encode(), _verilator_config().encode(),
                 simulator.encode(), *(model.read_bytes() for model in models))
    build_dir = root / f"board-uart-{simulator}-{key[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    if simulator == "icarus":
        # Yosys's time-zero triggers of always @* blocks: see ecc_hw.sim.simulators.icarus_copy
        build_hdl(simulator, build_dir, TOPLEVEL, [icarus_copy(source, build_dir), *models])
    else:
        # the same benign patterns as the accelerator's Verilog (see the waiver); the test touches
        # only the top-level ports: those are public, the rest is left to Verilator's optimiser
        waiver = build_dir / "waiver.vlt"
        waiver.write_text(_verilator_config())
        build_hdl(simulator, build_dir, TOPLEVEL, [source, *models], control_files=[waiver],
                  build_args=VERILATOR_ARGS)
    return build_dir


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_board_top_uart_bit_level(simulator, board_design, sim_build_root):  # noqa: F811
    need_simulator(simulator)
    text, scenario, memory = board_design
    build_dir = _build(text, simulator, sim_build_root, memory)
    run_dir = build_dir / "run"
    run_dir.mkdir(exist_ok=True)
    expect = run_dir / "expect.json"
    expect.write_text(json.dumps(scenario, indent=1) + "\n")
    run = run_cocotb(simulator, build_dir, TOPLEVEL, TEST_MODULE, run_dir,
                     extra_env={"ECC_HW_UART_EXPECT": str(expect)})
    if run.failed or run.tests != 1 or run.exit_code:
        pytest.fail(f"cocotb test failed on {simulator} (exit {run.exit_code}, {run.failed} of {run.tests} failed): "
                    f"{run.log_lines('Error', 'assert', limit=4)}; see {run.log}")
    print(f"{simulator}: board top over UART passed in {run.seconds:.1f} s (build dir {build_dir})")
