"""The typed graph the converter's passes rewrite (docs/arithmetic.md 5): ONNX nodes with batch-1 shapes.

``load_graph`` reads an ONNX file (external data from the model's folder), runs ``onnx.checker`` and
``onnx.shape_inference`` with the batch set to 1 (the intermediate shapes and the outputs' batch the
exporter declared are dropped first: they hold its own batch, often stale), and returns a ``Graph``:
its nodes in ONNX (topological) order, the constant tensors by name, and the shape and dtype of every
tensor. The passes (``ecc_hw.graph.passes``) replace ONNX ops by the canonical ops of
``CANONICAL_OPS``; the edge builder (``ecc_hw.graph.edges``) turns the canonical graph into a
``GraphNetwork``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UserError
from .network import InputSpec

# The ops the edge builder reads; the passes produce them (attributes in their docstrings).
CANONICAL_OPS = ("ConvMap", "DenseMap", "ChannelAffine", "AvgPool2d", "MaxPool2d", "Activation", "Add", "Concat")


@dataclass(frozen=True, eq=False)
class Node:
    """One node: ``op`` (an ONNX op type, or a canonical op), positional ``inputs`` and ``outputs``
    (tensor names, "" for an absent optional input) and ``attributes`` (ONNX attributes as Python
    values; canonical ops keep their float64 parameters here too). ``origin`` is the ONNX op a
    canonical node was made from, for messages."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict = field(default_factory=dict)
    origin: str = ""

    @property
    def output(self) -> str:
        """The first (for canonical ops, the only) output."""
        return self.outputs[0]

    def describe(self) -> str:
        """``node 'NAME' (OP)``, the way every message names a node (OP: the ONNX op it came from)."""
        return f"node '{self.name}' ({self.origin or self.op})"

    def canonical(self, op: str, attributes: dict, inputs: tuple[str, ...] | None = None) -> Node:
        """The canonical node ``op`` standing for this one: same name and first output, ONNX origin kept."""
        return Node(self.name, op, self.inputs[:1] if inputs is None else inputs, self.outputs[:1], attributes,
                    self.origin or self.op)


@dataclass(frozen=True, eq=False)
class Graph:
    """A DAG from one data input to one output. ``nodes`` are topologically sorted; ``constants`` hold
    every constant tensor by name; ``shapes`` and ``dtypes`` every tensor's (batch-1) shape and
    element type. ``input_spec`` is set by the layout pass (docs/arithmetic.md 5.7); from then on
    every data tensor's shape is (1, C, H, W)."""

    path: str
    nodes: tuple[Node, ...]
    input: str
    output: str
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype]
    opset: int
    input_spec: InputSpec | None = None

    def fail(self, node: Node | None, message: str):
        """Raise the one-line ``UserError`` naming this file and ``node``."""
        where = f"{self.path}: {node.describe()}: " if node is not None else f"{self.path}: "
        raise UserError(where + message)

    def is_constant(self, name: str) -> bool:
        """True for a constant tensor (an initializer or a folded value)."""
        return name in self.constants

    def data_inputs(self, node: Node) -> list[str]:
        """The inputs of ``node`` that carry data (present and not constant)."""
        return [name for name in node.inputs if name and name not in self.constants]

    def constant_inputs(self, node: Node) -> dict[int, np.ndarray]:
        """The constant inputs of ``node`` by position."""
        return {i: self.constants[name] for i, name in enumerate(node.inputs) if name in self.constants}

    def shape(self, name: str, node: Node | None = None) -> tuple[int, ...]:
        """The static shape of tensor ``name``; a ``UserError`` naming ``node`` when it is not known."""
        shape = self.shapes.get(name)
        if shape is None or any(v is None or v < 0 for v in shape):
            self.fail(node, f"the shape of tensor '{name}' cannot be inferred; pass the input shape")
        return shape

    @cached_property
    def producers(self) -> dict[str, Node]:
        """The node producing each tensor."""
        return {name: node for node in self.nodes for name in node.outputs if name}

    @cached_property
    def consumers(self) -> dict[str, list[Node]]:
        """The nodes reading each tensor, in node order."""
        readers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.inputs):
                if name:
                    readers.setdefault(name, []).append(node)
        return readers

    def with_nodes(self, nodes, **changes) -> Graph:
        """A copy with ``nodes`` (and any other field in ``changes``) replaced."""
        return replace(self, nodes=tuple(nodes), **changes)


def rename_tensor(graph: Graph, nodes, old: str, new: str) -> tuple[list[Node], str]:
    """``nodes`` with every input ``old`` read as ``new``, and the graph output renamed likewise."""
    renamed = [replace(n, inputs=tuple(new if i == old else i for i in n.inputs)) if old in n.inputs else n
               for n in nodes]
    return renamed, (new if graph.output == old else graph.output)


def _check_domains(path: Path, model: onnx.ModelProto) -> None:
    """A one-line error naming the first node whose op domain the model does not import (qonnx writes
    its quantisation and channels-last ops so), which the ONNX checker would refuse without naming it."""
    imported = {opset.domain for opset in model.opset_import} | {"", "ai.onnx"}
    for proto in model.graph.node:
        if proto.domain not in imported:
            raise UserError(f"{path}: node '{proto.name or proto.output[0]}' ({proto.domain}.{proto.op_type}): "
                            f"op {proto.domain}.{proto.op_type} is not supported (its domain has no opset import)")


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected an ONNX model)")
    try:
        model = onnx.load(str(path))  # external data is read from the model's folder
    except Exception as error:  # protobuf and onnx raise several unrelated types for bad files
        detail = str(error).splitlines()[0] if str(error) else "parse error"
        raise UserError(f"{path}: not a readable ONNX model ({type(error).__name__}: {detail})") from None
    if not model.graph.node:
        raise UserError(f"{path}: not an ONNX model (no graph nodes)")
    _check_domains(path, model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise UserError(f"{path}: ONNX checker rejects the model: {str(error).splitlines()[0]}") from None
    return model


def _set_input_shape(path: Path, model: onnx.ModelProto, input_shape) -> onnx.ValueInfoProto:
    """The one data input, its batch set to 1 (or its whole shape to (1, *input_shape))."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise UserError(f"{path}: expected one data input, found {len(inputs)} ({[v.name for v in inputs]})")
    if len(model.graph.output) != 1:
        raise UserError(f"{path}: expected one graph output, found {len(model.graph.output)}")
    dims = inputs[0].type.tensor_type.shape.dim
    if input_shape is not None:
        del dims[:]
        for value in (1, *input_shape):
            dims.add().dim_value = int(value)
    known = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(known) < 2 or any(v is None or v <= 0 for v in known[1:]):
        readable = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        raise UserError(f"{path}: cannot infer the shape of input '{inputs[0].name}' from {readable}; "
                        "pass it in the model's layout, without the batch", field="input_shape")
    if known[0] != 1:
        dims[0].Clear()
        dims[0].dim_value = 1
    return inputs[0]


def _drop_declared_shapes(model: onnx.ModelProto) -> None:
    """Forget the shapes the exporter declared for intermediate tensors and the outputs' batch: they
    hold its own batch (a fixed 789444, say) or an input shape the user overrides, and strict shape
    inference refuses any that differ from what it infers for batch 1. Output types stay for the checker."""
    del model.graph.value_info[:]
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape") and tensor_type.shape.dim:
            tensor_type.shape.dim[0].Clear()


def _tensor_types(path: Path, model: onnx.ModelProto, strict: bool = True) -> tuple[dict, dict]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True)
    except Exception as error:  # inference errors come as several types
        raise UserError(f"{path}: ONNX shape inference failed: {str(error).splitlines()[0]}",
                        field="input_shape") from None
    shapes, dtypes = {}, {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
        if tensor_type.elem_type:
            dtypes[value.name] = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
    return shapes, dtypes


def _known(shape) -> bool:
    return shape is not None and all(v is not None and v >= 0 for v in shape)


def with_inferred_shapes(graph: Graph) -> Graph:
    """The graph with the tensor shapes it lacks inferred again by ONNX, now that more tensors are
    constant (a Reshape whose target the exporter computed); its nodes must still be ONNX ops."""
    missing = [name for node in graph.nodes for name in node.outputs if name and not _known(graph.shapes.get(name))]
    if not missing:
        return graph
    nodes = [helper.make_node(n.op, list(n.inputs), list(n.outputs), n.name, **n.attributes) for n in graph.nodes]
    inputs = [helper.make_tensor_value_info(graph.input, helper.np_dtype_to_tensor_dtype(graph.dtypes[graph.input]),
                                            graph.shapes[graph.input])]
    initializers = [numpy_helper.from_array(np.asarray(value), name) for name, value in graph.constants.items()]
    body = helper.make_graph(nodes, "reinfer", inputs, [helper.make_empty_tensor_value_info(graph.output)],
                             initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", graph.opset)])
    shapes, dtypes = _tensor_types(Path(graph.path), model, strict=False)
    found = {name: shapes[name] for name in missing if _known(shapes.get(name))}
    return replace(graph, shapes={**graph.shapes, **found}, dtypes={**dtypes, **graph.dtypes})


def _node(proto: onnx.NodeProto) -> Node:
    attributes = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
    if proto.domain not in ("", "ai.onnx"):
        return Node(proto.name or proto.output[0], f"{proto.domain}.{proto.op_type}", tuple(proto.input),
                    tuple(proto.output), attributes)
    return Node(proto.name or proto.output[0], proto.op_type, tuple(proto.input), tuple(proto.output), attributes)


def load_graph(path, input_shape=None) -> Graph:
    """The checked, shape-inferred graph of the ONNX file ``path``; ``input_shape`` (the model's own
    layout, no batch) overrides the input's declared shape. Every failure is a one-line ``UserError``."""
    path = Path(path)
    model = _read(path)
    graph_input = _set_input_shape(path, model, input_shape)
    _drop_declared_shapes(model)
    shapes, dtypes = _tensor_types(path, model)
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
        dtypes[init.name] = helper.tensor_dtype_to_np_dtype(init.data_type)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return Graph(str(path), tuple(_node(proto) for proto in model.graph.node), graph_input.name,
                 model.graph.output[0].name, constants, shapes, dtypes, opset)
