"""Pass: evaluate every node whose value does not depend on the input's values.

Contract: a node whose inputs are all constant (Constant, Cast/CastLike/Identity of constants, the
exporters' shape arithmetic: Gather, Concat, Unsqueeze, Reshape ... of constants), a Shape or Size of
a tensor of known shape, and a CastLike of a constant to a data tensor's type, is removed and its
outputs become constants (evaluated with ONNX's reference implementation at the model's opset). The
data path is left as it is; the shapes that ONNX could not infer before are inferred again.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..ir import Graph, Node, with_inferred_shapes

HANDLES = ("Constant", "Shape", "Size", "Cast", "CastLike")


def _constant_node_value(node: Node) -> np.ndarray:
    (name, value), = node.attributes.items()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if name in ("value_float", "value_floats"):
        return np.asarray(value, dtype=np.float32)
    if name in ("value_int", "value_ints"):
        return np.asarray(value, dtype=np.int64)
    return np.asarray(value)


def _evaluate(graph: Graph, node: Node, values: dict) -> list[np.ndarray]:
    """The outputs of ``node`` on constant ``values`` by ONNX's reference evaluator."""
    names = [name for name in dict.fromkeys(node.inputs) if name]
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(values[name].dtype),
                                            values[name].shape) for name in names]
    outputs = [helper.make_empty_tensor_value_info(name) for name in node.outputs if name]
    proto = helper.make_node(node.op, list(node.inputs), list(node.outputs), **node.attributes)
    model = helper.make_model(helper.make_graph([proto], "fold", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        return ReferenceEvaluator(model).run(None, {name: values[name] for name in names})
    except Exception as error:  # the reference ops raise many types
        graph.fail(node, f"cannot evaluate this constant node ({type(error).__name__}: {error})")


def _folded(graph: Graph, node: Node, constants: dict) -> list[np.ndarray] | None:
    """The node's output values when it can be folded, else None."""
    present = [name for name in node.inputs if name]
    if node.op == "Constant":
        return [_constant_node_value(node)]
    if node.op in ("Shape", "Size") and present and present[0] not in constants:
        shape = graph.shapes.get(present[0])
        if shape is None or any(v is None or v <= 0 for v in shape):
            return None
        values = {present[0]: np.zeros(shape, dtype=np.float32)}
        return _evaluate(graph, node, values)
    if node.op == "CastLike" and node.inputs[0] in constants and node.inputs[1] not in constants:
        dtype = graph.dtypes.get(node.inputs[1])
        return None if dtype is None else [np.asarray(constants[node.inputs[0]]).astype(dtype)]
    if present and all(name in constants for name in present):
        return _evaluate(graph, node, constants)
    return None


def fold_constants(graph: Graph) -> Graph:
    """Remove every node computable without the input's values; its outputs become constants."""
    constants = dict(graph.constants)
    shapes, dtypes = dict(graph.shapes), dict(graph.dtypes)
    kept = []
    for node in graph.nodes:
        values = _folded(graph, node, constants)
        if values is None:
            kept.append(node)
            continue
        for name, value in zip((n for n in node.outputs if n), values):
            value = np.asarray(value)
            constants[name], shapes[name], dtypes[name] = value, value.shape, value.dtype
    return with_inferred_shapes(graph.with_nodes(kept, constants=constants, shapes=shapes, dtypes=dtypes))
