"""Random small integer networks for property tests of the golden model, cycle model and hardware."""
from __future__ import annotations

import numpy as np

from .arithmetic import radix_levels, weight_full_scale
from .linear import LinearMap
from .params import NetworkParams, Pool, QuantLayer
from .variants import InputKind, Method, TreMode


def _conv_out(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def random_network(seed: int, weight_bits: int = 6, input_bits: int = 4, timesteps: int = 8,
                   conv_layers: int = 2, input_shape=(2, 7, 7), classes: int = 4, signed: bool = False,
                   with_pool: bool = True, tre_mode: TreMode = TreMode.SPREAD) -> NetworkParams:
    """A random conv (+ optional 2x2 pool) ... + dense network with valid integers of every kind.

    Thresholds, biases and TRE charges are drawn so that neurons fire at varied rates (some never,
    some at every step), including threshold 1 and negative biases.
    """
    rng = np.random.default_rng(seed)
    wmax = weight_full_scale(weight_bits)
    layers = []
    shape = tuple(input_shape)
    pool = None
    for index in range(conv_layers):
        channels_in, height, width = shape
        pooled_h, pooled_w = (height, width) if pool is None else pool.output_hw(height, width)
        kernel = int(rng.integers(1, 4))
        stride = int(rng.integers(1, 3))
        dilation = int(rng.integers(1, 3)) if kernel > 1 else 1
        pad = [int(v) for v in rng.integers(0, kernel, size=4)]
        out_h = _conv_out(pooled_h, kernel, stride, pad[0], pad[2], dilation)
        out_w = _conv_out(pooled_w, kernel, stride, pad[1], pad[3], dilation)
        if out_h < 1 or out_w < 1:
            kernel, stride, dilation, pad = 1, 1, 1, [0, 0, 0, 0]
            out_h, out_w = pooled_h, pooled_w
        channels_out = int(rng.integers(1, 5))
        weight = rng.integers(-wmax, wmax + 1, size=(channels_out, channels_in, kernel, kernel))
        weight.flat[0] = wmax  # the widest weight is always present
        fan_in = channels_in * kernel * kernel * (1 if pool is None else 4)
        scale = (1 << input_bits) if index == 0 else 1
        threshold = int(max(1, rng.integers(1, wmax * fan_in * scale // 2 + 2)))
        if rng.random() < 0.2:
            threshold = 1
        bias = rng.integers(-threshold, threshold + 1, size=channels_out)
        layers.append(QuantLayer(
            kind="conv", input_shape=shape, output_shape=(channels_out, out_h, out_w),
            weight=weight.astype(np.int64), bias=bias.astype(np.int64), threshold=threshold,
            tre_charge=int(rng.integers(0, threshold + 1)), pool=pool, kernel=(kernel, kernel),
            stride=(stride, stride), padding=tuple(pad), dilation=(dilation, dilation),
            nominal_fan_in=channels_in * kernel * kernel, name=f"conv{index + 1}"))
        shape = (channels_out, out_h, out_w)
        pool = Pool((2, 2), (2, 2)) if with_pool and out_h >= 2 and out_w >= 2 and rng.random() < 0.6 else None
    channels, height, width = shape
    pooled = (channels, height, width) if pool is None else (channels, *pool.output_hw(height, width))
    fan_in = int(np.prod(pooled))
    weight = rng.integers(-wmax, wmax + 1, size=(classes, fan_in))
    layers.append(QuantLayer(
        kind="dense", input_shape=shape, output_shape=(classes, 1, 1), weight=weight.astype(np.int64),
        bias=rng.integers(-wmax, wmax + 1, size=classes).astype(np.int64), threshold=None,
        tre_charge=None, pool=pool, nominal_fan_in=fan_in, name="dense"))
    return NetworkParams(input_shape=tuple(input_shape), input_bits=input_bits, input_signed=signed,
                         weight_bits=weight_bits, timesteps=timesteps, eta=0.5, kappa=100.0,
                         layers=layers, lambdas=[1.0] * (len(layers) + 1), tre_mode=tre_mode,
                         provenance={"source": f"random_network(seed={seed})"})


def random_inputs(params: NetworkParams, count: int, seed: int) -> np.ndarray:
    """Random quantised inputs x_q (count, C, H, W) over the parameter file's full input range."""
    rng = np.random.default_rng(seed)
    top = params.input_full_scale
    low = -top if params.input_signed else 0
    return rng.integers(low, top + 1, size=(count, *params.input_shape)).astype(np.int64)


def random_radix_network(seed: int, timesteps: int = 4, **options) -> NetworkParams:
    """``random_network`` as a radix parameter file (no TRE) whose bits vary in every spiking layer:
    theta_n is layer n's median positive membrane over random inputs divided by 2^T, so about half
    the positive neurons saturate (all T bits) and the rest spread over 0..2^T - 1."""
    params = random_network(seed, timesteps=timesteps, **options)
    params.method, params.eta, params.kappa = Method.RADIX, 0.0, 1.0
    value = random_inputs(params, 16, seed).reshape(16, -1)
    for layer in params.spiking_layers:
        layer.tre_charge = 0
        membrane = np.rint(LinearMap.of(layer).apply(value, dtype=np.float64)).astype(np.int64)
        positive = membrane[membrane > 0]
        middle = int(np.median(positive)) if positive.size else 0
        layer.threshold = max(1, middle // radix_levels(timesteps))
        value = np.clip(membrane // layer.threshold, 0, radix_levels(timesteps) - 1)
    return params


def random_event_network(seed: int, count_scale: int = 3, timesteps: int = 6, **options) -> NetworkParams:
    """``random_network`` as an event-input parameter file (docs/events.md): layer 1 integrates up to
    ``count_scale`` input spikes per pixel and frame (its thresholds drawn for that input range)."""
    params = random_network(seed, input_bits=int(count_scale).bit_length(), timesteps=timesteps, **options)
    _, height, width = params.input_shape
    params.input_kind = InputKind.EVENTS
    params.events = {"sensor": [height, width], "size": [height, width], "window_us": 1000 * timesteps,
                     "count_scale": int(count_scale)}
    return params


def random_event_inputs(params: NetworkParams, count: int, seed: int, density: float = 0.3) -> np.ndarray:
    """Random input spike counts (count, T, C, H, W) in 0..count_scale, about ``density`` nonzero."""
    rng = np.random.default_rng(seed)
    shape = (count, params.timesteps, *params.input_shape)
    counts = rng.integers(1, params.events["count_scale"] + 1, size=shape)
    return np.where(rng.random(shape) < density, counts, 0).astype(np.int64)
