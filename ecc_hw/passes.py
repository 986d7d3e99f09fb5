"""Graph rewrites, each a small pure function over the op chain, ending in a float network.

Order: ``absorb_pass_through`` (Flatten/Reshape/Squeeze/Unsqueeze/Identity/Dropout),
``to_linear`` (Conv, Gemm, MatMul + Add, constant Add into the bias), ``fold_batchnorm`` (CMB,
docs/arithmetic.md 1.1, with the model's own epsilon), ``read_activations`` (ReLU / Clip / Relu followed
by Min with a constant), then ``build_layers`` groups the chain into linear layers and composes or keeps
average pools (docs/arithmetic.md 1.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .errors import UserError
from .linear import LinearMap
from .onnx_frontend import PASS_THROUGH, LoadedModel, Op
from .params import Pool
from .variants import PoolMode

TAIL_OPS = {"Softmax", "LogSoftmax"}


@dataclass
class FloatLayer:
    """A linear layer of the CNN after folding: geometry as ``QuantLayer``, float64 weights.

    ``relu`` is True for layers 1..N-1; ``clip`` is the clipped activation's maximum when the graph
    clips (ReLU6, Clip), else None. A ``kind == "pool"`` layer is an average pool kept as its own
    layer: weight is the scalar 1/(kh*kw).
    """

    kind: str
    name: str
    input_shape: tuple
    output_shape: tuple
    weight: np.ndarray
    bias: np.ndarray
    pool: Pool | None = None
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    dilation: tuple = (1, 1)
    nominal_fan_in: int = 0
    relu: bool = False
    clip: float | None = None


def _spatial(shape: tuple) -> tuple[int, int, int]:
    if len(shape) == 3:
        return tuple(int(v) for v in shape)
    return (int(np.prod(shape)), 1, 1)


def absorb_pass_through(ops: list[Op]) -> list[Op]:
    """Drop ops that only rename or reshape: our maps read their input flattened channel-major."""
    return [op for op in ops if op.kind not in PASS_THROUGH]


def _conv(op: Op) -> FloatLayer:
    weight = np.asarray(op.consts[1], dtype=np.float64)
    if op.attrs.get("group", 1) != 1:
        raise UserError(f"node '{op.name}' (Conv): group = {op.attrs['group']} is not supported (only 1)")
    if weight.ndim != 4:
        raise UserError(f"node '{op.name}' (Conv): only 2-D convolutions are supported")
    kh, kw = weight.shape[2:]
    stride = tuple(op.attrs.get("strides", (1, 1)))
    dilation = tuple(op.attrs.get("dilations", (1, 1)))
    in_shape = _spatial(op.in_shape)
    pads = tuple(op.attrs.get("pads", (0, 0, 0, 0)))
    auto_pad = op.attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = [max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
                 for size, k, s, d in zip(in_shape[1:], (kh, kw), stride, dilation)]
        before = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        pads = (before[0], before[1], total[0] - before[0], total[1] - before[1])
    elif auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    bias = np.asarray(op.consts.get(2, np.zeros(weight.shape[0])), dtype=np.float64)
    return FloatLayer("conv", op.name, in_shape, _spatial(op.out_shape), weight, bias,
                      kernel=(int(kh), int(kw)), stride=stride, padding=tuple(int(p) for p in pads),
                      dilation=dilation, nominal_fan_in=int(weight.shape[1] * kh * kw))


def _gemm(op: Op) -> FloatLayer:
    if op.attrs.get("transA", 0):
        raise UserError(f"node '{op.name}' (Gemm): transA = 1 is not supported")
    matrix = np.asarray(op.consts[1], dtype=np.float64)
    weight = op.attrs.get("alpha", 1.0) * (matrix if op.attrs.get("transB", 0) else matrix.T)
    bias = op.attrs.get("beta", 1.0) * np.broadcast_to(
        np.asarray(op.consts.get(2, 0.0), dtype=np.float64), (weight.shape[0],))
    return FloatLayer("dense", op.name, _spatial(op.in_shape), _spatial(op.out_shape), weight,
                      bias.copy(), nominal_fan_in=int(weight.shape[1]))


def to_linear(ops: list[Op]) -> list:
    """Turn Conv, Gemm and MatMul into ``FloatLayer``s; fold a constant Add into the bias before it."""
    chain: list = []
    for op in ops:
        if op.kind == "Conv":
            chain.append(_conv(op))
        elif op.kind == "Gemm":
            chain.append(_gemm(op))
        elif op.kind == "MatMul":
            if 1 not in op.consts or np.asarray(op.consts[1]).ndim != 2:
                raise UserError(f"node '{op.name}' (MatMul): the second input must be a constant matrix")
            weight = np.asarray(op.consts[1], dtype=np.float64).T
            chain.append(FloatLayer("dense", op.name, _spatial(op.in_shape), _spatial(op.out_shape),
                                    weight, np.zeros(weight.shape[0]), nominal_fan_in=int(weight.shape[1])))
        elif op.kind == "Add":
            previous = chain[-1] if chain else None
            if not isinstance(previous, FloatLayer) or previous.kind == "pool":
                raise UserError(f"node '{op.name}' (Add): a constant Add is only supported right after "
                                "Conv, Gemm or MatMul")
            addend = np.asarray(next(iter(op.consts.values())), dtype=np.float64)
            channels = previous.output_shape[0]
            try:
                per_channel = np.broadcast_to(addend.reshape(-1) if addend.size == channels else addend,
                                              (channels,) if addend.size in (1, channels) else ())
            except ValueError:
                per_channel = None
            if per_channel is None or addend.size not in (1, channels):
                raise UserError(f"node '{op.name}' (Add): addend of shape {addend.shape} is not one value "
                                f"per output channel ({channels})")
            previous.bias = previous.bias + per_channel
        else:
            chain.append(op)
    return chain


def fold_batchnorm(chain: list) -> list:
    """CMB (docs/arithmetic.md 1.1): W^ = gamma/sqrt(var+eps) W, b^ = gamma/sqrt(var+eps) (b - mean) + beta."""
    out: list = []
    for item in chain:
        if isinstance(item, Op) and item.kind == "BatchNormalization":
            previous = out[-1] if out else None
            if not isinstance(previous, FloatLayer) or previous.kind == "pool":
                raise UserError(f"node '{item.name}' (BatchNormalization): must follow Conv, Gemm or "
                                "MatMul to be folded")
            gamma, beta, mean, var = (np.asarray(item.consts[i], dtype=np.float64).reshape(-1)
                                      for i in (1, 2, 3, 4))
            scale = gamma / np.sqrt(var + float(item.attrs.get("epsilon", 1e-5)))
            shape = (-1,) + (1,) * (previous.weight.ndim - 1)
            out[-1] = replace(previous, weight=previous.weight * scale.reshape(shape),
                              bias=scale * (previous.bias - mean) + beta)
        else:
            out.append(item)
    return out


def _clip_max(op: Op) -> float | None:
    if op.kind == "Relu":
        return None
    low = op.attrs.get("min", op.consts.get(1, -np.inf))
    high = op.attrs.get("max", op.consts.get(2, np.inf))
    if float(low) != 0.0:
        raise UserError(f"node '{op.name}' (Clip): only a clipped ReLU (min = 0) is supported, got min {float(low)}")
    return None if not np.isfinite(float(high)) else float(high)


def _min_after_relu(op: Op, layers: list, pending_pool) -> float:
    """Relu then Min with a constant c (the new exporter's clamp(relu(x), max=c)): a clip at c."""
    if not layers or not layers[-1].relu or layers[-1].clip is not None or pending_pool is not None \
            or layers[-1].kind == "pool":
        raise UserError(f"node '{op.name}' (Min): only supported right after a Relu (a clipped ReLU)")
    values = [np.asarray(v, dtype=np.float64) for v in op.consts.values()]
    if len(values) != 1 or values[0].size != 1:
        raise UserError(f"node '{op.name}' (Min): needs one scalar constant (a clipped ReLU), "
                        f"got {len(values)} constant input(s)")
    high = float(values[0].reshape(()))
    if not high > 0:
        raise UserError(f"node '{op.name}' (Min): clip maximum {high} must be > 0")
    return high


def _pool(op: Op) -> Pool:
    if op.kind in ("GlobalAveragePool", "ReduceMean"):
        if op.kind == "ReduceMean":
            axes = op.attrs.get("axes", op.consts.get(1))
            rank = len(op.in_shape) + 1
            if axes is None or sorted(int(a) % rank for a in np.ravel(axes)) != [2, 3]:
                raise UserError(f"node '{op.name}' (ReduceMean): only a mean over the two spatial axes "
                                "(global average pool) is supported")
        _, height, width = _spatial(op.in_shape)
        return Pool((height, width), (height, width))
    kernel = tuple(int(v) for v in op.attrs["kernel_shape"])
    stride = tuple(int(v) for v in op.attrs.get("strides", (1, 1)))
    auto_pad = op.attrs.get("auto_pad", b"NOTSET")
    if any(op.attrs.get("pads", (0, 0, 0, 0))) or auto_pad not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise UserError(f"node '{op.name}' (AveragePool): padding is not supported (use pads = 0)")
    pool = Pool(kernel, stride)
    if tuple(op.out_shape[1:]) != pool.output_hw(*_spatial(op.in_shape)[1:]):
        raise UserError(f"node '{op.name}' (AveragePool): ceil_mode output {op.out_shape} is not supported")
    return pool


def build_layers(chain: list, input_shape: tuple, pool_mode: PoolMode = PoolMode.COMPOSE) -> list[FloatLayer]:
    """Group the chain into layers ``[pool] linear activation`` ... ``[pool] linear``.

    ``pool_mode`` "compose" folds each average pool into the next linear layer (weights / area);
    "layer" keeps it as its own spiking layer of kind "pool".
    """
    layers: list[FloatLayer] = []
    pending_pool: Pool | None = None
    pending_name = ""
    for item in chain:
        if isinstance(item, FloatLayer):
            if layers and not layers[-1].relu and layers[-1].kind != "pool":
                raise UserError(f"node '{item.name}': layer '{layers[-1].name}' before it has no ReLU "
                                "(linear layers must alternate with ReLU)")
            if pending_pool is not None:
                area = pending_pool.kernel[0] * pending_pool.kernel[1]
                item = replace(item, pool=pending_pool, weight=item.weight / area,
                               input_shape=layers[-1].output_shape if layers else tuple(input_shape))
                pending_pool = None
            layers.append(item)
        elif item.kind in ("Relu", "Clip"):
            if not layers or layers[-1].relu or pending_pool is not None:
                raise UserError(f"node '{item.name}' ({item.kind}): must follow a Conv, Gemm or MatMul layer")
            layers[-1] = replace(layers[-1], relu=True, clip=_clip_max(item))
        elif item.kind == "Min":
            layers[-1] = replace(layers[-1], clip=_min_after_relu(item, layers, pending_pool))
        elif item.kind in ("AveragePool", "GlobalAveragePool", "ReduceMean"):
            if pending_pool is not None:
                raise UserError(f"node '{item.name}' ({item.kind}): two pools in a row are not supported")
            pool = _pool(item)
            if pool_mode == PoolMode.LAYER and layers and layers[-1].relu:
                layers.append(_pool_layer(item.name, layers[-1].output_shape, pool))
            else:           # composed into the next layer, or, after the last one, a pooling head
                pending_pool, pending_name = pool, item.name
        elif item.kind in TAIL_OPS:
            if item is not chain[-1]:
                raise UserError(f"node '{item.name}' ({item.kind}): only allowed as the last node")
        else:
            raise UserError(f"node '{item.name}' ({item.kind}): not expected here")
    if pending_pool is None and layers and layers[-1].kind == "pool":
        trailing = layers.pop()            # "layer" mode: a pool after the last ReLU is the head
        pending_pool, pending_name = trailing.pool, trailing.name
    if pending_pool is not None and layers:
        _pooling_head(layers, pending_pool, pending_name)
    if len(layers) < 2:
        raise UserError("the model needs at least two linear layers (one spiking layer and the output)")
    last = layers[-1]
    if last.relu or last.kind == "pool":
        raise UserError(f"node '{last.name}': the output layer must be Conv/Gemm/MatMul without ReLU "
                        "(docs/arithmetic.md 0: nothing but Softmax after the logits)")
    _check_shapes(layers, tuple(input_shape))
    return layers


def _pooling_head(layers: list[FloatLayer], pool: Pool, name: str) -> None:
    """An average pool after the last linear layer (a global-average-pool head) becomes part of a
    dense output layer, in place: after a ReLU, a new output layer averaging the last spiking
    layer's pool cells (identity weights / area over the pooled map); after the logits layer, that
    layer and the pool composed into one dense map (both are linear)."""
    last = layers[-1]
    channels, height, width = _spatial(last.output_shape)
    pooled_hw = pool.output_hw(height, width)
    outputs = channels * pooled_hw[0] * pooled_hw[1]
    area = pool.kernel[0] * pool.kernel[1]
    if last.relu:
        layers.append(FloatLayer("dense", name, (channels, height, width), (outputs, 1, 1),
                                 np.eye(outputs) / area, np.zeros(outputs), pool=pool, nominal_fan_in=area))
        return
    own = LinearMap.of(last)
    reads = LinearMap(last.kind, own.pooled_shape, tuple(last.output_shape), last.weight, last.bias, None,
                      tuple(last.kernel), tuple(last.stride), tuple(last.padding), tuple(last.dilation))
    # column k of the map: its response to input k alone (no bias), channels-last for the pool
    basis = reads.apply(np.eye(reads.input_size), with_bias=False)
    maps = basis.reshape(reads.input_size, channels, height, width).transpose(0, 2, 3, 1)
    pooler = LinearMap("pool", (channels, height, width), (channels, *pooled_hw), np.array(1.0), np.zeros(1),
                       pool)
    weight = (pooler.pooled(maps) / area).transpose(0, 3, 1, 2).reshape(reads.input_size, outputs).T
    bias = np.repeat(reads.bias_per_neuron(np.float64).reshape(channels, -1).mean(axis=1),
                     pooled_hw[0] * pooled_hw[1])
    layers[-1] = FloatLayer("dense", last.name, tuple(last.input_shape), (outputs, 1, 1), weight, bias,
                            pool=last.pool, nominal_fan_in=last.nominal_fan_in)


def _pool_layer(name: str, shape: tuple, pool: Pool) -> FloatLayer:
    channels, height, width = shape
    area = pool.kernel[0] * pool.kernel[1]
    return FloatLayer("pool", name, shape, (channels, *pool.output_hw(height, width)),
                      np.array(1.0 / area), np.zeros(channels), pool=pool, relu=True, nominal_fan_in=0)


def _check_shapes(layers: list[FloatLayer], input_shape: tuple) -> None:
    previous = input_shape
    for index, layer in enumerate(layers):
        if index and layer.pool is None and layer.kind != "pool":
            layers[index] = layer = replace(layer, input_shape=previous)
        if index == 0 and layer.pool is None:
            layers[0] = layer = replace(layer, input_shape=tuple(input_shape))
        if int(np.prod(layer.input_shape)) != int(np.prod(previous)):
            raise UserError(f"node '{layer.name}': expects {layer.input_shape} inputs, gets {previous}")
        previous = layer.output_shape


def convert_graph(model: LoadedModel, pool_mode: PoolMode = PoolMode.COMPOSE) -> list[FloatLayer]:
    """All passes in order: the loaded chain becomes a list of float layers."""
    chain = to_linear(absorb_pass_through(model.ops))
    return build_layers(fold_batchnorm(chain), model.input_shape, pool_mode)
