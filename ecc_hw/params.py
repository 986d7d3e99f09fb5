"""The parameter file: every integer the hardware needs, plus provenance.

A chain network's parameter file is a folder (the frame, digest and versions: ``ecc_hw.manifest``)::

    NET/
      manifest.json          # format, version, topology "chain", options, lambdas, layer geometry,
                             # sha256 of every array and manifest_sha256 (the digest of all of that)
      layer1_weight.npy ...  # int64 arrays, one file each (np.save is byte-deterministic)

Loading checks the version and the manifest's own digest (``ecc_hw.manifest.read_manifest``), the
manifest's schema and every array's hash, dtype and shape (the shape the layer's geometry in the
manifest implies, :func:`expected_array_shapes`), and raises ``ParamFileError`` (one line, naming the
file) on anything it cannot trust. Saving refuses (ValueError) arrays that loading would refuse.

Neuron order everywhere (golden model, hardware, trace): a layer's neurons are its output map
flattened channel-major, ``index = (c * H + y) * W + x``; a dense layer's outputs are ``(F, 1, 1)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arithmetic import LayerIntegers, input_full_scale
from .manifest import (CHAIN, MANIFEST, TOPOLOGY_KEY, ParamFileError, load_array, read_manifest,
                       write_folder)
from .variants import InputKind, Method, TreMode

ARRAY_KEYS = {"weight": np.int64, "bias": np.int64, "float_weight": np.float64, "float_bias": np.float64}
LAYER_KINDS = ("conv", "dense", "pool")


@dataclass(frozen=True)
class Pool:
    """A sum-pool applied to a layer's input spike map before its linear map (composed AveragePool).

    The 1/(kh*kw) of the average is already folded into the layer's integer weights, so the hardware
    adds each input spike into the pool cell(s) that contain it. No padding; cells that would cross
    the border are cropped (floor mode): input neurons outside every cell reach nothing.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Pooled map height and width for an input map of ``height`` x ``width``."""
        return ((height - self.kernel[0]) // self.stride[0] + 1,
                (width - self.kernel[1]) // self.stride[1] + 1)


@dataclass
class QuantLayer:
    """One integer layer of the ECC-SNN (docs/arithmetic.md sections 0, 2, 3).

    ``kind`` is ``"conv"`` or ``"dense"`` (``"pool"``: an average pool kept as its own IF layer, whose
    ``weight`` is a single integer shared by every cell). ``input_shape`` is the (C, H, W) spike map
    the layer reads (before ``pool``); ``output_shape`` its (C, H, W) neurons ((F, 1, 1) for dense).
    Conv weights are (C_out, C_in, kh, kw) over the pooled map; dense weights (F_out, F_in) over the
    pooled map flattened channel-major. ``threshold`` and ``tre_charge`` (R_n) are None for the
    non-spiking output layer.
    """

    kind: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    weight: np.ndarray
    bias: np.ndarray
    threshold: int | None
    tre_charge: int | None
    pool: Pool | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    nominal_fan_in: int = 0  # docs/arithmetic.md 4: kernel area x input channels, or the dense layer's inputs
    gain: float = 0.0        # g_n, for provenance only
    name: str = ""
    clip: float | None = None  # the CNN's clipped-ReLU maximum (ReLU6, Clip), if any
    float_weight: np.ndarray | None = None  # the CNN's folded, pool-composed weights (before CN)
    float_bias: np.ndarray | None = None

    @classmethod
    def of(cls, layer, integers: LayerIntegers) -> QuantLayer:
        """The integer layer of a float one (``ecc_hw.passes.FloatLayer``: name, geometry, the folded
        weights kept as ``float_weight``/``float_bias``) with the integers the quantiser gave it."""
        return cls(
            kind=layer.kind, name=layer.name, input_shape=tuple(layer.input_shape),
            output_shape=tuple(layer.output_shape), weight=integers.weight, bias=integers.bias,
            threshold=integers.threshold, tre_charge=integers.tre_charge, pool=layer.pool,
            kernel=tuple(layer.kernel), stride=tuple(layer.stride), padding=tuple(layer.padding),
            dilation=tuple(layer.dilation), nominal_fan_in=layer.nominal_fan_in, gain=integers.gain,
            clip=layer.clip, float_weight=np.asarray(layer.weight, dtype=np.float64),
            float_bias=np.asarray(layer.bias, dtype=np.float64))

    @property
    def spiking(self) -> bool:
        """True for layers 1..N-1 (they fire); False for the output accumulator."""
        return self.threshold is not None

    @property
    def neurons(self) -> int:
        """Number of neurons (outputs) of this layer."""
        return int(np.prod(self.output_shape))

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) map the linear map reads, after the composed pool."""
        c, h, w = self.input_shape
        if self.pool is None:
            return (c, h, w)
        return (c, *self.pool.output_hw(h, w))


@dataclass
class NetworkParams:
    """Everything the golden model, the cycle model and the hardware read (docs/arithmetic.md 2-3)."""

    input_shape: tuple[int, int, int]
    input_bits: int
    input_signed: bool
    weight_bits: int
    timesteps: int
    eta: float
    kappa: float
    layers: list[QuantLayer]
    lambdas: list[float]            # lambda_0 .. lambda_N
    tre_mode: TreMode = TreMode.SPREAD
    method: Method = Method.ECC
    provenance: dict = field(default_factory=dict)
    input_kind: InputKind = InputKind.IMAGE  # manifest input.kind, optional (default image)
    events: dict | None = None      # event input: ecc_hw.events.preprocess.EventConfig as JSON

    @property
    def input_full_scale(self) -> int:
        """u: the integer that stands for |x| = lambda_0 (docs/arithmetic.md 2.2)."""
        return input_full_scale(self.input_bits, self.input_signed)

    @property
    def input_lambda(self) -> float:
        """lambda_0."""
        return self.lambdas[0]

    @property
    def spiking_layers(self) -> list[QuantLayer]:
        """Layers 1..N-1."""
        return self.layers[:-1]

    @property
    def num_classes(self) -> int:
        """Neurons of the output layer."""
        return self.layers[-1].neurons


def expected_array_shapes(layer: QuantLayer) -> dict[str, tuple[int, ...]]:
    """The shape of each array of ``layer`` (by ``ARRAY_KEYS`` key) that its geometry implies.

    conv: weight (C_out, C_in, kh, kw) over the pooled map, bias (C_out,); dense: weight (F_out, C * H * W
    of the pooled map), bias (F_out,); pool: one shared weight (1,) and a bias per channel. The float arrays
    have the integer ones' shapes.
    """
    channels, height, width = layer.pooled_shape
    outputs = layer.output_shape[0]
    if layer.kind == "conv":
        weight = (outputs, channels, *layer.kernel)
    elif layer.kind == "dense":
        weight = (outputs, channels * height * width)
    else:
        weight = (1,)
    shapes = {"weight": weight, "bias": (outputs,)}
    return {key: shapes[key.removeprefix("float_")] for key in ARRAY_KEYS}


def _array_mismatch(array: np.ndarray, key: str, expected_shape: tuple) -> str | None:
    """What is wrong with ``array`` as the layer's ``key`` array ("found ..., expected ..."), or None."""
    expected_dtype = np.dtype(ARRAY_KEYS[key])
    if array.dtype == expected_dtype and array.shape == expected_shape:
        return None
    return f"found {array.dtype} {array.shape}, expected {expected_dtype} {expected_shape}"


def _layer_to_json(index: int, layer: QuantLayer) -> dict:
    return {
        "name": layer.name, "kind": layer.kind,
        "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
        "pool": None if layer.pool is None else {"kernel": list(layer.pool.kernel),
                                                  "stride": list(layer.pool.stride)},
        "kernel": list(layer.kernel), "stride": list(layer.stride),
        "padding": list(layer.padding), "dilation": list(layer.dilation),
        "threshold": layer.threshold, "tre_charge": layer.tre_charge,
        "nominal_fan_in": layer.nominal_fan_in, "gain": layer.gain, "clip": layer.clip,
        **{key: f"layer{index + 1}_{key}.npy" for key in ARRAY_KEYS},
    }


def save(params: NetworkParams, path: str | os.PathLike) -> None:
    """Write ``params`` to the folder ``path`` atomically (temp folder, then rename)."""
    arrays = {}
    layers_json = []
    for i, layer in enumerate(params.layers):
        entry = _layer_to_json(i, layer)
        if layer.kind not in LAYER_KINDS:
            raise ValueError(f"layer {i + 1}: kind {layer.kind!r} is not one of {', '.join(LAYER_KINDS)}")
        shapes = expected_array_shapes(layer)
        for key, dtype in ARRAY_KEYS.items():
            array = getattr(layer, key)
            if array is None:
                if not key.startswith("float_"):
                    raise ValueError(f"layer {i + 1}: {key} is missing")
                entry[key] = None
                continue
            array = np.ascontiguousarray(array, dtype=dtype)
            mismatch = _array_mismatch(array, key, shapes[key])
            if mismatch:
                raise ValueError(f"layer {i + 1} ({layer.kind}): {key} {mismatch}")
            arrays[entry[key]] = array
        layers_json.append(entry)
    write_folder(path, arrays, {
        TOPOLOGY_KEY: CHAIN, "method": params.method, "tre_mode": params.tre_mode,
        "input": {"shape": list(params.input_shape), "bits": params.input_bits,
                  "signed": params.input_signed, "full_scale": params.input_full_scale,
                  **({"kind": InputKind.EVENTS, "events": params.events} if params.input_kind == InputKind.EVENTS
                     else {})},
        "weight_bits": params.weight_bits, "timesteps": params.timesteps,
        "eta": params.eta, "kappa": params.kappa, "lambdas": list(params.lambdas),
        "layers": layers_json, "provenance": params.provenance,
    })


def _tuple(value, length: int, what: str, where: str) -> tuple:
    if not isinstance(value, list) or len(value) != length or not all(isinstance(v, int) for v in value):
        raise ParamFileError(f"{where}: {what} must be a list of {length} integers, got {value!r}")
    return tuple(value)


def _variant(kind, value, what: str, where: Path):
    """``value`` as a member of the variant enum ``kind``; a ParamFileError naming ``what`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ParamFileError(f"{where}: {what} {value!r} is not one of {', '.join(kind.values())}") from None


def _load_layer(folder: Path, index: int, entry: dict, hashes: dict) -> QuantLayer:
    """Layer ``index`` (from 0) of the manifest, ``entry``, with its arrays, each checked against its sha256
    in ``hashes`` and against the dtype and shape the entry's geometry implies."""
    where = f"{folder / MANIFEST} layer {index + 1}"
    if entry["kind"] not in LAYER_KINDS:
        raise ParamFileError(f"{where}: kind {entry['kind']!r} is not one of {', '.join(LAYER_KINDS)}")
    pool = entry["pool"]
    layer = QuantLayer(
        kind=entry["kind"], name=entry["name"],
        input_shape=_tuple(entry["input_shape"], 3, "input_shape", where),
        output_shape=_tuple(entry["output_shape"], 3, "output_shape", where),
        weight=None, bias=None, threshold=entry["threshold"], tre_charge=entry["tre_charge"],
        pool=None if pool is None else Pool(_tuple(pool["kernel"], 2, "pool kernel", where),
                                            _tuple(pool["stride"], 2, "pool stride", where)),
        kernel=_tuple(entry["kernel"], 2, "kernel", where),
        stride=_tuple(entry["stride"], 2, "stride", where),
        padding=_tuple(entry["padding"], 4, "padding", where),
        dilation=_tuple(entry["dilation"], 2, "dilation", where),
        nominal_fan_in=int(entry["nominal_fan_in"]), gain=float(entry["gain"]),
        clip=None if entry["clip"] is None else float(entry["clip"]),
    )
    shapes = expected_array_shapes(layer)
    for key in ARRAY_KEYS:
        if entry[key] is None and key.startswith("float_"):
            continue
        setattr(layer, key, load_array(folder, entry[key], hashes, ARRAY_KEYS[key], shapes[key],
                                       f"the {key} of {layer.kind} layer {index + 1}"))
    return layer


def load(path: str | os.PathLike) -> NetworkParams:
    """Read a chain parameter folder written by :func:`save`, checking version, digest, schema, hashes,
    dtypes and shapes; a graph network's folder is refused in one line (``ecc_hw.graph.store`` reads it)."""
    folder = Path(path)
    manifest_path = folder / MANIFEST
    manifest = read_manifest(folder)
    if manifest[TOPOLOGY_KEY] != CHAIN:
        raise ParamFileError(f"{folder}: holds a graph network (layers with several edges or max-pool nodes); "
                             "this command takes chain networks only (evaluate, generate and verify take either)")
    try:
        hashes = manifest["sha256"]
        layers = [_load_layer(folder, index, entry, hashes) for index, entry in enumerate(manifest["layers"])]
        source = manifest["input"]
        kind = _variant(InputKind, source.get("kind", InputKind.IMAGE), "input kind", manifest_path)
        if kind == InputKind.EVENTS and not isinstance(source.get("events"), dict):
            raise ParamFileError(f"{manifest_path}: event input without its settings (input.events)")
        return NetworkParams(
            input_shape=_tuple(source["shape"], 3, "input shape", str(manifest_path)),
            input_bits=int(source["bits"]), input_signed=bool(source["signed"]),
            weight_bits=int(manifest["weight_bits"]), timesteps=int(manifest["timesteps"]),
            eta=float(manifest["eta"]), kappa=float(manifest["kappa"]), layers=layers,
            lambdas=[float(v) for v in manifest["lambdas"]],
            tre_mode=_variant(TreMode, manifest["tre_mode"], "tre_mode", manifest_path),
            method=_variant(Method, manifest["method"], "method", manifest_path), provenance=manifest["provenance"],
            input_kind=kind, events=source.get("events") if kind == InputKind.EVENTS else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ParamFileError):
            raise
        raise ParamFileError(f"{manifest_path}: damaged manifest ({type(error).__name__}: {error})") from None
