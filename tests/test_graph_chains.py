"""The chain fixtures of tests/fixtures/ through the graph converter: each layer has one edge (docs/arithmetic.md
5: sections 1-4 are that case), the float forward equals onnxruntime, and the edges carry the same folded weights
as the chain converter's layers."""
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from ecc_hw import onnx_frontend
from ecc_hw.errors import UserError
from ecc_hw.graph.forward import forward
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.passes import convert_graph as convert_chain

FIXTURES = Path(__file__).parent / "fixtures"
CHAINS = sorted(p.stem for p in FIXTURES.glob("*.onnx") if (FIXTURES / f"{p.stem}.npz").exists()
                and p.stem != "unsupported_op")


def onnxruntime_logits(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])


@pytest.mark.parametrize("name", CHAINS)
def test_a_chain_is_a_graph_with_one_edge_per_layer(name):
    path = FIXTURES / f"{name}.onnx"
    x = np.load(FIXTURES / f"{name}.npz")["x"]
    network = convert_graph(path)
    assert all(len(layer.edges) == 1 for layer in network.layers) and not network.max_pools
    np.testing.assert_allclose(forward(network, x).logits, onnxruntime_logits(path, x), rtol=1e-5, atol=1e-4)
    chain = convert_chain(onnx_frontend.load(path))
    assert len(chain) == len(network.layers)
    for float_layer, layer in zip(chain, network.layers):
        (edge,) = layer.edges
        if float_layer.kind == edge.geometry.kind:
            np.testing.assert_allclose(edge.weight, float_layer.weight, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(layer.bias_per_neuron().reshape(layer.output_shape[0], -1).mean(axis=1),
                                       float_layer.bias, rtol=1e-9, atol=1e-12)


def test_an_unsupported_op_is_named():
    with pytest.raises(UserError, match=r"node 'h' \(Sigmoid\): op Sigmoid is not supported"):
        convert_graph(FIXTURES / "unsupported_op.onnx")
