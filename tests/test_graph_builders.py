"""Tiny ONNX graphs written with onnx.helper, for the graph-network tests (and a check that they are valid).

``OnnxNet`` adds nodes one call at a time and returns each output's name; ``save`` writes a checked
model. Weights come from a seeded generator. Other test modules import it (tests/ is on sys.path).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper


class OnnxNet:
    """A graph under construction with one float input ``x`` of ``input_shape`` (batch first)."""

    def __init__(self, input_shape=(1, 2, 6, 6), seed: int = 0, opset: int = 17):
        self.input_shape = tuple(input_shape)
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, value, stem: str = "c") -> str:
        """An initializer holding ``value`` (float arrays as float32)."""
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        name = self._name(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs, name: str | None = None, outputs: int = 1, **attributes) -> str:
        """Append node ``op`` (named ``name``, else OP + a counter); returns its first output."""
        name = name or self._name(op)
        names = [f"{name}_out"] + [f"{name}_out{i}" for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=name, **attributes))
        return names[0]

    def weights(self, *shape, scale: float = 0.5) -> np.ndarray:
        """Seeded normal weights."""
        return self.rng.normal(0.0, scale, size=shape)

    def conv(self, x, c_in, c_out, k=3, stride=1, pad=None, groups=1, dilation=1, bias=True, name=None, rank=2,
             scale=0.5):
        """A Conv with seeded weights (``pad`` defaults to k // 2 on every side)."""
        pad = k // 2 if pad is None else pad
        inputs = [x, self.const(self.weights(c_out, c_in // groups, *(k,) * rank, scale=scale))]
        if bias:
            inputs.append(self.const(self.weights(c_out, scale=0.1)))
        return self.node("Conv", inputs, name, kernel_shape=[k] * rank, strides=[stride] * rank, pads=[pad] * 2 * rank,
                         group=groups, dilations=[dilation] * rank)

    def bn(self, x, channels, name=None, epsilon=1e-5, positive=False):
        """A BatchNormalization with seeded statistics (``positive``: gamma > 0)."""
        gamma = np.abs(self.weights(channels)) + 0.5 if positive else self.weights(channels) + 1.0
        stats = [gamma, self.weights(channels, scale=0.1), self.weights(channels, scale=0.1),
                 np.abs(self.weights(channels)) + 0.5]
        return self.node("BatchNormalization", [x] + [self.const(s) for s in stats], name, epsilon=epsilon)

    def gemm(self, x, f_in, f_out, name=None):
        """A Gemm with transB = 1."""
        return self.node("Gemm", [x, self.const(self.weights(f_out, f_in)), self.const(self.weights(f_out, scale=0.1))],
                         name, transB=1)

    def save(self, path: Path, output: str) -> Path:
        """Write the checked model to ``path`` with graph output ``output`` (its type inferred)."""
        graph = helper.make_graph(self.nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     self.input_shape)],
                                  [helper.make_empty_tensor_value_info(output)], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        inferred = onnx.shape_inference.infer_shapes(model)
        typed = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
        model.graph.output[0].CopyFrom(typed[output])
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return Path(path)


def graph_of(net: OnnxNet, output: str, tmp_path: Path, name: str = "tiny"):
    """The ``ecc_hw.graph.ir.Graph`` of the saved net (no passes run)."""
    from ecc_hw.graph.ir import load_graph

    return load_graph(net.save(tmp_path / f"{name}.onnx", output))


def ops(graph) -> list[str]:
    """The op of every node, in order."""
    return [node.op for node in graph.nodes]


def onnxruntime_output(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's output for a batch, one image at a time (the tiny graphs have a fixed batch of 1), flattened."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1].astype(np.float32)})[0].reshape(1, -1)
                           for i in range(len(x))])


def test_a_built_graph_is_valid_and_runs(tmp_path):
    net = OnnxNet()
    y = net.node("Relu", [net.conv("x", 2, 3)])
    path = net.save(tmp_path / "tiny.onnx", net.node("Flatten", [y]))
    out = onnxruntime_output(path, np.ones((2, 2, 6, 6)))
    assert out.shape == (2, 3 * 6 * 6) and np.all(out >= 0)
