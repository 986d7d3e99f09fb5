"""ONNX front end: load, check, infer shapes, and read the data path into a chain of typed ops.

The result is a list of ``Op``s from the graph input to the graph output, each with its input and
output shapes (batch dimension dropped) and its constant tensors. Nodes that only compute shapes
(Shape, Gather, Concat, ... feeding a Reshape) are evaluated by shape inference and never reach the
chain. Graph rewrites (BN folding, absorbing reshapes, composing pools) happen later, in ``passes``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import UserError

SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "Clip", "Min", "AveragePool",
    "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Dropout",
    "Identity", "Softmax", "LogSoftmax",
)
PASS_THROUGH = {"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Dropout", "Identity"}


@dataclass
class Op:
    """One data-path node: ``kind`` is the ONNX op type; ``consts`` its constant inputs by position."""

    kind: str
    name: str
    in_shape: tuple
    out_shape: tuple
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)


@dataclass
class LoadedModel:
    """The data-path chain plus what provenance needs."""

    ops: list[Op]
    input_name: str
    input_shape: tuple[int, int, int]
    opset: int
    sha256: str
    producer: str


def _fail(path, message: str, field: str | None = None):
    raise UserError(f"{path}: {message}", field=field)


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        _fail(path, "no such file (expected an ONNX model)")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf raises several unrelated types for garbage input
        detail = str(error).splitlines()[0] if str(error) else "parse error"
        _fail(path, f"not a readable ONNX model ({type(error).__name__}: {detail})")
    if not model.graph.node:
        _fail(path, "not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        _fail(path, f"ONNX checker rejects the model: {str(error).splitlines()[0]}")
    return model


def _graph_input(path, model: onnx.ModelProto, input_shape):
    initializers = {init.name for init in model.graph.initializer}
    inputs = [inp for inp in model.graph.input if inp.name not in initializers]
    if len(inputs) != 1:
        _fail(path, f"expected one data input, found {len(inputs)} ({[i.name for i in inputs]})")
    graph_input = inputs[0]
    dims = graph_input.type.tensor_type.shape.dim
    if input_shape is not None:
        del dims[:]
        for value in (1, *input_shape):
            dims.add().dim_value = int(value)
        return graph_input.name, tuple(int(v) for v in input_shape)
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4 or any(v is None or v <= 0 for v in shape[1:]):
        readable = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        _fail(path, f"cannot infer the (C, H, W) shape of input '{graph_input.name}' from {readable}; "
                    "pass it as C,H,W", field="input_shape")
    if shape[0] is None or shape[0] <= 0:
        dims[0].Clear()
        dims[0].dim_value = 1
    return graph_input.name, tuple(shape[1:])


def _shapes(path, model: onnx.ModelProto) -> dict:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as error:
        _fail(path, f"ONNX shape inference failed: {str(error).splitlines()[0]}; check the input shape",
              field="input_shape")
    shapes = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return shapes


def _constants(model: onnx.ModelProto) -> dict:
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            attr = node.attribute[0]
            if attr.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attr.t)
            elif attr.name in ("value_float", "value_int"):
                values[node.output[0]] = np.array(onnx.helper.get_attribute_value(attr))
            elif attr.name in ("value_floats", "value_ints"):
                values[node.output[0]] = np.array(onnx.helper.get_attribute_value(attr))
    return values


def _data_tensors(model: onnx.ModelProto, input_name: str) -> set:
    """Names of tensors whose value depends on the input's values (not only on its shape)."""
    data = {input_name}
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if node.op_type == "Shape":
            continue
        if any(name in data for name in node.input):
            data.update(node.output)
    return data


def load(path, input_shape=None) -> LoadedModel:
    """Load ``path`` and return its data-path chain; every failure is a one-line ``UserError``."""
    path = Path(path)
    model = _read(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    input_name, shape = _graph_input(path, model, input_shape)
    shapes = _shapes(path, model)
    constants = _constants(model)
    data = _data_tensors(model, input_name)
    consumers: dict = {}
    for node in model.graph.node:
        for name in node.input:
            if name in data:
                consumers.setdefault(name, []).append(node)
    ops = []
    tensor = input_name
    outputs = {out.name for out in model.graph.output}
    while tensor not in outputs:
        users = [node for node in consumers.get(tensor, []) if node.op_type != "Shape"]
        if not users:
            _fail(path, f"tensor '{tensor}' leads nowhere; the graph output is not reached")
        if len(users) > 1:
            names = ", ".join(f"'{n.name}' ({n.op_type})" for n in users)
            _fail(path, f"branching graphs are not supported: '{tensor}' feeds {names}")
        node = users[0]
        if node.op_type not in SUPPORTED_OPS:
            _fail(path, f"node '{node.name or node.output[0]}': op {node.op_type} is not supported "
                        f"(supported: {', '.join(SUPPORTED_OPS)})")
        data_inputs = [name for name in node.input if name in data]
        if len(data_inputs) != 1:
            _fail(path, f"node '{node.name}' ({node.op_type}): combines {len(data_inputs)} data tensors; "
                        "only chains of single-input layers are supported")
        consts = {}
        for position, name in enumerate(node.input):
            if name and name not in data:
                if name not in constants:
                    if node.op_type in PASS_THROUGH:
                        continue  # a computed target shape: shape inference already resolved it
                    _fail(path, f"node '{node.name}' ({node.op_type}): input '{name}' is not a constant")
                consts[position] = constants[name]
        out_name = node.output[0]
        out_shape = shapes.get(out_name)
        if out_shape is None or any(v is None for v in out_shape[1:]):
            _fail(path, f"node '{node.name}' ({node.op_type}): output shape of '{out_name}' cannot be "
                        "inferred; pass the input shape as C,H,W", field="input_shape")
        in_shape = shapes.get(tensor, (None, *shape))
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ops.append(Op(node.op_type, node.name or out_name, tuple(in_shape[1:]), tuple(out_shape[1:]),
                      attrs, consts))
        tensor = out_name
    return LoadedModel(ops, input_name, shape, opset, digest, model.producer_name)
