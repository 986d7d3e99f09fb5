"""Write ``ecc_snn.v`` and ``manifest.json`` for a parameter file (``ecc-hw generate``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth.hdl import Shape, Signal
from amaranth.lib import data, wiring

from ecc_hw.atomic import write_text
from ecc_hw.graph.store import GraphParams
from ecc_hw.params import NetworkParams
from ecc_hw.variants import Memory

from .graph_plan import GraphPlan, make_graph_plan
from .graph_top import EccGraphSnn
from .latency import cycle_constants, graph_cycle_constants
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

    A graph parameter folder (``ecc_hw.graph.store.GraphParams``) gives the graph design
    (``rtl_gen.graph_top``).

    Raises ``rtl_gen.errors.HardwareError`` before elaborating anything it cannot build.
    """
    if isinstance(params, GraphParams):
        return generate_graph(params, out_dir, lanes, trace, timesteps, memory)
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
    return _write(out_dir, text, manifest)


def _write(out_dir, text: str, manifest: dict) -> dict:
    """``ecc_snn.v`` and ``manifest.json`` into ``out_dir``, each atomically; returns the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ecc_snn.v", text)
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _graph_layer_json(plan: GraphPlan, layer) -> dict:
    lp = layer.layer
    entry = {"index": layer.number, "kind": "graph", "spiking": lp.spiking, "neurons": lp.neurons,
             "membrane_width": lp.membrane_width, "membrane_bound": lp.membrane_bound,
             "groups": lp.target.groups, "bank_words_used": lp.target.depth_used,
             "edges": [{"name": edge.name, "source": str(edge.source), "kind": edge.geometry.kind,
                        "groups": edge.geometry.groups, "walk_cycles": int(edge.target.fan_out_cycles.sum()),
                        "lane_utilisation": plan.lane_utilisation()[edge.name]} for edge in layer.edges]}
    if lp.spiking:
        entry.update({"threshold": lp.threshold, "tre_charge": lp.tre_charge, "tre_quotient": lp.tre_quotient,
                      "tre_remainder": lp.tre_remainder})
    return entry


def generate_graph(params: GraphParams, out_dir, lanes: int, trace: bool, timesteps: int | None = None,
                   memory: Memory = Memory.BRAM) -> dict:
    """``generate`` for a graph network: the design of ``rtl_gen.graph_top`` and its manifest (the trace's
    sources, every edge's walk and lane utilisation, the memories)."""
    plan = make_graph_plan(params, lanes, timesteps, memory)
    dut = EccGraphSnn(plan, trace=trace)
    text = to_verilog(dut)
    trace_sources = ([{"source": f"layer {layer.number}", "neurons": layer.layer.neurons,
                       "groups": layer.layer.target.groups, "bank_words_used": layer.layer.target.depth_used}
                      for layer in plan.spiking]
                     + [{"source": f"max_pool {pool.number}", "neurons": pool.neurons, "groups": pool.groups,
                         "bank_words_used": pool.groups * pool.node.output_shape[1] * pool.node.output_shape[2]}
                        for pool in plan.pools])
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "top": "ecc_snn", "topology": "graph",
        "lanes": plan.lanes, "timesteps": plan.timesteps, "trace": bool(trace), "tre_mode": plan.tre_mode,
        "coding": plan.coding, "memory": plan.memory,
        "spram_blocks": plan.spram.blocks if plan.spram is not None else 0,
        "input": {"shape": list(plan.input_shape), "bits": plan.input_bits, "signed": plan.input_signed,
                  "layout": plan.input_layout,
                  "order": "channel-major (c, y, x) of the (C, H, W) map, whatever the model's layout"},
        "weight_bits": plan.weight_bits, "current_width": plan.current_width,
        "membrane_widths": [layer.layer.membrane_width for layer in plan.layers],
        "layers": [_graph_layer_json(plan, layer) for layer in plan.layers],
        "max_pools": [{"index": pool.number, "source": str(pool.node.source), "kernel": list(pool.node.kernel),
                       "stride": list(pool.node.stride), "neurons": pool.neurons} for pool in plan.pools],
        "trace_sources": trace_sources,
        "ports": _port_json(dut),
        "memories": plan.memories(),
        "memory_bits": plan.memory_bits(),
        "cycle_model": graph_cycle_constants(plan),
    }
    return _write(out_dir, text, manifest)
