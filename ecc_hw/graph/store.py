"""The parameter folder of a graph network (topology "graph"; the frame is ``ecc_hw.manifest``).

``manifest.json`` holds the input (ONNX name, layout, the model's own shape, the channel-major shape,
bits, signedness, full scale u), the lambdas (lambda_0, per layer, per max-pool node), kappa, eta, the
TRE mode, the method, the T the network was made for and, when the biases were calibrated (5.8), the
T they were calibrated for and the per-channel corrections. Per layer: name, output shape, spiking,
clip, threshold theta_n, TRE charge R_n, gain g_n, unit u_n and its edges; per edge: its source, its
geometry (kind, shapes, composed pool, kernel, stride, padding, dilation, groups, channel offset) and
the Concat ranges it stands for. The max-pool nodes with their windows. Arrays, one ``.npy`` each:
per layer the float b_n (``layerN_float_bias``, (C,) or (C, H, W)) and bq_n (``layerN_bias``, int64
per neuron); per edge the float W_e and the int64 Wq_e, both in the geometry's weight shape.

Loading checks everything ``ecc_hw.manifest.read_manifest`` checks, then that every edge reads a
source that comes before its layer, that its geometry matches both ends, and every array's dtype and
shape; a ``ParamFileError`` (one line, naming the file) otherwise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..manifest import GRAPH, MANIFEST, TOPOLOGY_KEY, ParamFileError, load_array, read_manifest, write_folder
from ..params import Pool
from ..variants import Method, TreMode
from .calibrate import GraphLambdas
from .network import (INPUT, LAYER, LAYOUTS, MAX_POOL, Edge, Geometry, GraphNetwork, InputSpec, Layer, MaxPoolNode,
                      Source)
from .quantise import IntegerEdge, IntegerGraph, IntegerLayer


@dataclass(frozen=True)
class GraphParams:
    """A converted graph network as its parameter folder holds it: the quantised ``graph``, the ``method``
    and ``tre_mode``, the T it was made for (``timesteps``), ``bias_calibrated_for`` (the T of 5.8's bias
    calibration, or None) with its per-layer ``bias_corrections``, and the ``provenance``."""

    graph: IntegerGraph
    method: Method = Method.ECC
    tre_mode: TreMode = TreMode.SPREAD
    timesteps: int = 128
    bias_calibrated_for: int | None = None
    bias_corrections: tuple[tuple[int, ...], ...] = ()
    provenance: dict = field(default_factory=dict)

    @property
    def network(self) -> GraphNetwork:
        """The float network (input layout, layers with edges, max-pool nodes)."""
        return self.graph.network

    @property
    def input_lambda(self) -> float:
        """lambda_0."""
        return self.graph.lambdas.input

    @property
    def input_signed(self) -> bool:
        """True when the input was calibrated as signed."""
        return self.graph.lambdas.input_signed

    @property
    def input_full_scale(self) -> int:
        """u, the integer that stands for |x| = lambda_0."""
        return self.graph.input_full_scale


def _source_json(source: Source) -> dict:
    return {"kind": source.kind, "index": source.index}


def _geometry_json(geometry: Geometry) -> dict:
    return {"kind": geometry.kind, "input_shape": list(geometry.input_shape),
            "output_shape": list(geometry.output_shape),
            "pool": None if geometry.pool is None else {"kernel": list(geometry.pool.kernel),
                                                        "stride": list(geometry.pool.stride)},
            "kernel": list(geometry.kernel), "stride": list(geometry.stride), "padding": list(geometry.padding),
            "dilation": list(geometry.dilation), "groups": geometry.groups, "channel_offset": geometry.channel_offset}


def _layer_json(layer: Layer, integers: IntegerLayer, arrays: dict) -> dict:
    stem = f"layer{layer.index}"
    arrays[f"{stem}_float_bias.npy"] = np.asarray(layer.bias, dtype=np.float64)
    arrays[f"{stem}_bias.npy"] = np.asarray(integers.bias, dtype=np.int64)
    edges = []
    for number, (edge, quantised) in enumerate(zip(layer.edges, integers.edges), start=1):
        arrays[f"{stem}_edge{number}_float_weight.npy"] = np.asarray(edge.weight, dtype=np.float64)
        arrays[f"{stem}_edge{number}_weight.npy"] = np.asarray(quantised.weight, dtype=np.int64)
        edges.append({"source": _source_json(edge.source), "geometry": _geometry_json(edge.geometry),
                      "concat_ranges": [list(pair) for pair in edge.concat_ranges], "nodes": list(edge.nodes),
                      "float_weight": f"{stem}_edge{number}_float_weight.npy",
                      "weight": f"{stem}_edge{number}_weight.npy"})
    return {"index": layer.index, "name": layer.name, "output_shape": list(layer.output_shape),
            "spiking": layer.spiking, "clip": layer.clip, "bias_per_channel": layer.bias.ndim == 1,
            "threshold": integers.threshold, "tre_charge": integers.tre_charge, "gain": integers.gain,
            "unit": integers.unit,
            "float_bias": f"{stem}_float_bias.npy", "bias": f"{stem}_bias.npy", "edges": edges}


def _pool_json(pool: MaxPoolNode) -> dict:
    return {"index": pool.index, "name": pool.name, "source": _source_json(pool.source),
            "input_shape": list(pool.input_shape), "output_shape": list(pool.output_shape),
            "kernel": list(pool.kernel), "stride": list(pool.stride), "padding": list(pool.padding),
            "dilation": list(pool.dilation), "ceil_mode": pool.ceil_mode}


def save(params: GraphParams, path: str | os.PathLike) -> None:
    """Write ``params`` as the parameter folder ``path``, atomically."""
    graph, network, arrays = params.graph, params.graph.network, {}
    layers = [_layer_json(layer, integers, arrays) for layer, integers in zip(network.layers, graph.layers)]
    spec = network.input
    write_folder(path, arrays, {
        TOPOLOGY_KEY: GRAPH, "method": params.method, "tre_mode": params.tre_mode, "timesteps": params.timesteps,
        "weight_bits": graph.weight_bits, "kappa": graph.kappa, "eta": graph.eta,
        "input": {"name": spec.name, "layout": spec.layout, "model_shape": list(spec.model_shape),
                  "shape": list(spec.shape), "bits": graph.input_bits, "signed": graph.lambdas.input_signed,
                  "full_scale": graph.input_full_scale},
        "lambdas": {"input": graph.lambdas.input, "layers": list(graph.lambdas.layers),
                    "max_pools": list(graph.lambdas.max_pools)},
        "bias_calibration": None if params.bias_calibrated_for is None else {
            "timesteps": params.bias_calibrated_for,
            "corrections": [list(map(int, values)) for values in params.bias_corrections]},
        "source_file": network.source_file, "layers": layers,
        "max_pools": [_pool_json(pool) for pool in network.max_pools],
        "provenance": params.provenance,
    })


class _Reader:
    """Reads one manifest's entries with one-line errors naming the manifest and the entry."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder, self.manifest, self.path = folder, manifest, folder / MANIFEST

    def fail(self, where: str, message: str):
        raise ParamFileError(f"{self.path}: {where}: {message}")

    def ints(self, value, length: int | None, where: str, minimum: int = 0) -> tuple[int, ...]:
        if (not isinstance(value, list) or (length is not None and len(value) != length)
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)):
            count = f"{length} " if length is not None else ""
            self.fail(where, f"expected a list of {count}integers >= {minimum}, got {value!r}")
        return tuple(value)

    def source(self, value, where: str, before: int, pools: int) -> Source:
        kind, index = (value.get("kind"), value.get("index")) if isinstance(value, dict) else (None, None)
        valid = ((kind == INPUT and index == 0) or (kind == LAYER and isinstance(index, int) and 1 <= index < before)
                 or (kind == MAX_POOL and isinstance(index, int) and 1 <= index <= pools))
        if not valid:
            self.fail(where, f"source {value!r} is not the input, an earlier layer or a max-pool node")
        return Source(kind, index)

    def geometry(self, value: dict, where: str) -> Geometry:
        pool = value["pool"]
        kind = value["kind"]
        if kind not in ("conv", "dense", "identity"):
            self.fail(where, f"edge kind {kind!r} is not conv, dense or identity")
        geometry = Geometry(
            kind, self.ints(value["input_shape"], 3, where, 1), self.ints(value["output_shape"], 3, where, 1),
            None if pool is None else Pool(self.ints(pool["kernel"], 2, where, 1),
                                           self.ints(pool["stride"], 2, where, 1)),
            self.ints(value["kernel"], 2, where, 1), self.ints(value["stride"], 2, where, 1),
            self.ints(value["padding"], 4, where), self.ints(value["dilation"], 2, where, 1),
            self.ints([value["groups"]], 1, where, 1)[0], self.ints([value["channel_offset"]], 1, where)[0])
        if geometry.kind == "conv" and geometry.input_shape[0] % geometry.groups:
            self.fail(where, f"{geometry.groups} groups do not divide {geometry.input_shape[0]} input channels")
        return geometry

    def array(self, name, dtype, shape, what: str) -> np.ndarray:
        return load_array(self.folder, name, self.manifest["sha256"], dtype, shape, what)


def _load_pool(reader: _Reader, entry: dict, index: int, layer_count: int) -> MaxPoolNode:
    where = f"max-pool node {index}"
    source = reader.source(entry["source"], where, layer_count, 0)
    if source.kind != LAYER or entry["index"] != index:
        reader.fail(where, "a max-pool node reads one spiking layer and is numbered in order")
    return MaxPoolNode(index, str(entry["name"]), source, reader.ints(entry["input_shape"], 3, where, 1),
                       reader.ints(entry["output_shape"], 3, where, 1), reader.ints(entry["kernel"], 2, where, 1),
                       reader.ints(entry["stride"], 2, where, 1), reader.ints(entry["padding"], 4, where),
                       reader.ints(entry["dilation"], 2, where, 1), bool(entry["ceil_mode"]))


def _load_layer(reader: _Reader, entry: dict, index: int, count: int, pools: tuple, shape_of
                ) -> tuple[Layer, IntegerLayer]:
    where = f"layer {index}"
    if entry["index"] != index:
        reader.fail(where, f"numbered {entry['index']!r}")
    output_shape = reader.ints(entry["output_shape"], 3, where, 1)
    spiking = index < count
    if bool(entry["spiking"]) != spiking:
        reader.fail(where, "layers 1..N-1 spike and layer N is the output accumulator")
    threshold, charge = entry["threshold"], entry["tre_charge"]
    if spiking != (isinstance(threshold, int) and threshold >= 1 and isinstance(charge, int) and charge >= 0):
        reader.fail(where, f"threshold {threshold!r} and TRE charge {charge!r}: integers >= 1 and >= 0 on a "
                           "spiking layer, null on the output layer")
    edges, integer_edges = [], []
    for number, value in enumerate(entry["edges"], start=1):
        at = f"{where} edge {number}"
        source = reader.source(value["source"], at, index, len(pools))
        if source.kind == MAX_POOL and pools[source.index - 1].source.index >= index:
            reader.fail(at, f"reads {source}, which comes after the layer")
        geometry = reader.geometry(value["geometry"], at)
        if geometry.input_shape != shape_of(source) or geometry.output_shape != output_shape:
            reader.fail(at, f"geometry {geometry.input_shape} -> {geometry.output_shape} does not join "
                            f"{source} {shape_of(source)} to the layer's {output_shape}")
        shape = geometry.weight_shape()
        weight = reader.array(value["float_weight"], np.float64, shape, f"the float weights of {at}")
        ranges = tuple(reader.ints(pair, 2, at) for pair in value["concat_ranges"])
        edges.append(Edge(source, geometry, weight, ranges, tuple(map(str, value["nodes"]))))
        integer_edges.append(IntegerEdge(source, geometry, reader.array(value["weight"], np.int64, shape,
                                                                        f"the weights of {at}")))
    if not edges:
        reader.fail(where, "a layer needs at least one edge")
    neurons = int(np.prod(output_shape))
    bias_shape = (output_shape[0],) if entry["bias_per_channel"] is True else output_shape
    float_bias = reader.array(entry["float_bias"], np.float64, bias_shape, f"the float bias of {where}")
    clip = None if entry["clip"] is None else float(entry["clip"])
    layer = Layer(index, str(entry["name"]), output_shape, float_bias, tuple(edges), spiking, clip)
    integers = IntegerLayer(index, layer.name, output_shape, tuple(integer_edges),
                            reader.array(entry["bias"], np.int64, (neurons,), f"the bias of {where}"),
                            threshold, charge, float(entry["gain"]), int(entry["unit"]))
    return layer, integers


def _load(reader: _Reader) -> GraphParams:
    manifest = reader.manifest
    source = manifest["input"]
    if source["layout"] not in LAYOUTS:
        reader.fail("input", f"layout {source['layout']!r} is not one of {', '.join(LAYOUTS)}")
    spec = InputSpec(str(source["name"]), source["layout"], reader.ints(source["model_shape"], None, "input", 1),
                     reader.ints(source["shape"], 3, "input", 1))
    count = len(manifest["layers"])
    if count < 1:
        reader.fail("layers", "a network needs an output layer")
    pools = tuple(_load_pool(reader, entry, i, count) for i, entry in enumerate(manifest["max_pools"], start=1))
    layers, integers = [], []

    def shape_of(src: Source) -> tuple:
        if src.kind == INPUT:
            return spec.shape
        return layers[src.index - 1].output_shape if src.kind == LAYER else pools[src.index - 1].output_shape

    for index, entry in enumerate(manifest["layers"], start=1):
        layer, integer_layer = _load_layer(reader, entry, index, count, pools, shape_of)
        layers.append(layer)
        integers.append(integer_layer)
    network = GraphNetwork(str(manifest["source_file"]), spec, tuple(layers), pools)
    values = manifest["lambdas"]
    lambdas = GraphLambdas(float(values["input"]), bool(source["signed"]), tuple(map(float, values["layers"])),
                           tuple(map(float, values["max_pools"])))
    if len(lambdas.layers) != count or len(lambdas.max_pools) != len(pools):
        reader.fail("lambdas", f"expected {count} layer and {len(pools)} max-pool lambdas")
    graph = IntegerGraph(network, tuple(integers), lambdas, int(manifest["weight_bits"]), int(source["bits"]),
                         int(source["full_scale"]), float(manifest["kappa"]), float(manifest["eta"]))
    calibration = manifest["bias_calibration"]
    corrections = () if calibration is None else tuple(tuple(map(int, v)) for v in calibration["corrections"])
    return GraphParams(graph, Method(manifest["method"]), TreMode(manifest["tre_mode"]), int(manifest["timesteps"]),
                       None if calibration is None else int(calibration["timesteps"]), corrections,
                       manifest["provenance"])


def load(path: str | os.PathLike) -> GraphParams:
    """Read the graph parameter folder ``path`` written by :func:`save`; a one-line ParamFileError naming the
    file on anything missing, edited, damaged or inconsistent."""
    folder = Path(path)
    manifest = read_manifest(folder)
    if manifest[TOPOLOGY_KEY] != GRAPH:
        raise ParamFileError(f"{folder}: holds a chain network, not a graph network (ecc_hw.params reads it)")
    try:
        return _load(_Reader(folder, manifest))
    except ParamFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ParamFileError(f"{folder / MANIFEST}: damaged manifest ({type(error).__name__}: {error})") from None
