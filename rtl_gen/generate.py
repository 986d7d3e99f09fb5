"""Write ``ecc_snn.v`` and ``manifest.json`` for a parameter file (``ecc-hw generate``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth.hdl import Shape, Signal
from amaranth.lib import data, wiring

from ecc_hw.atomic import write_text
from ecc_hw.params import NetworkParams
from ecc_hw.variants import Memory

from .latency import cycle_constants
from .plan import make_plan
from .top import EccSnn

MANIFEST_FORMAT = "ecc-hw-rtl"
MANIFEST_VERSION = 1


def _shape_json(shape) -> dict | int:
    if isinstance(shape, data.StructLayout):
        fields = {}
        for name, member in shape.members.items():
            cast = Shape.cast(member)
            fields[name] = {"offset": shape[name].offset, "width": cast.width, "signed": cast.signed}
        return {"width": shape.size, "fields": fields}
    shape = Shape.cast(shape)
    return {"width": shape.width, "signed": shape.signed}


def _port_json(dut: EccSnn) -> dict:
    ports = {"clk": {"dir": "in", "width": 1}, "rst": {"dir": "in", "width": 1,
                                                       "note": "synchronous, active high"}}
    for name, member in dut.signature.members.items():
        port = getattr(dut, name)
        direction = "in" if member.flow == wiring.In else "out"
        always_ready = not isinstance(port.ready, Signal)
        entry = {"dir": direction, "payload": _shape_json(port.payload.shape()),
                 "valid": f"{name}__valid", "ready": None if always_ready else f"{name}__ready",
                 "data": f"{name}__payload"}
        ports[name] = entry
    return ports


def _ports(dut: EccSnn) -> list:
    """The top's port signals, struct payloads unwrapped from their views (constant members such as
    an always-ready ``ready`` are not ports)."""
    ports = []
    for _path, _member, value in dut.signature.flatten(dut):
        if isinstance(value, data.View):
            value = value.as_value()
        if isinstance(value, Signal):
            ports.append(value)
    return ports


def to_verilog(dut: EccSnn) -> str:
    """The design's Verilog text, deterministic: Amaranth's built-in Yosys, no source locations."""
    from amaranth.back import verilog as back

    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    return back.convert(dut, name="ecc_snn", emit_src=False, ports=_ports(dut))


def _input_json(plan) -> dict:
    if plan.events:
        return {"kind": "events", "shape": list(plan.input_shape), "count_scale": plan.count_scale,
                "order": "events (c, y, x, count) frame by frame, each frame closed by a frame_end word "
                         "(rtl_gen.event_input)"}
    return {"shape": list(plan.input_shape), "bits": plan.input_bits, "signed": plan.input_signed,
            "order": "channel-major (c, y, x)"}


def generate(params: NetworkParams, out_dir, lanes: int, trace: bool,
             timesteps: int | None = None, memory: Memory = Memory.BRAM) -> dict:
    """Write ``out_dir/ecc_snn.v`` and ``out_dir/manifest.json`` (each atomically); return the manifest.

    ``memory="spram"`` puts the banks in SB_SPRAM256KA instances (iCE40 UP5K; simulate them with
    ``sim/sb_spram256ka.v``).

    Raises ``rtl_gen.errors.HardwareError`` before elaborating anything it cannot build.
    """
    plan = make_plan(params, lanes, timesteps, memory)
    dut = EccSnn(plan, trace=trace)
    text = to_verilog(dut)
    layers = []
    for layer in plan.layers:
        entry = {"index": layer.index + 1, "kind": layer.target.kind, "spiking": layer.spiking,
                 "neurons": layer.neurons, "membrane_width": layer.membrane_width,
                 "membrane_bound": layer.membrane_bound, "groups": layer.target.groups,
                 "bank_words_used": layer.target.depth_used}
        if layer.spiking:
            entry.update({"threshold": layer.threshold, "tre_charge": layer.tre_charge,
                          "tre_quotient": layer.tre_quotient, "tre_remainder": layer.tre_remainder})
        layers.append(entry)
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "top": "ecc_snn",
        "lanes": plan.lanes, "timesteps": plan.timesteps, "trace": bool(trace),
        "tre_mode": plan.tre_mode, "coding": plan.coding, "memory": plan.memory,
        "spram_blocks": plan.spram.blocks if plan.spram is not None else 0,
        "input": _input_json(plan),
        "weight_bits": plan.weight_bits, "current_width": plan.current_width,
        "membrane_widths": [layer.membrane_width for layer in plan.layers],
        "layers": layers,
        "ports": _port_json(dut),
        "memories": plan.memories(),
        "memory_bits": plan.memory_bits(),
        "cycle_model": cycle_constants(plan),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ecc_snn.v", text)
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
