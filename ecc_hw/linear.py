"""Exact linear maps of the network's layers: composed sum-pool, then convolution or dense.

One ``LinearMap`` serves the CNN (float64), the float ECC-SNN and the integer golden model: it
applies a layer's map to a batch of input maps and reports the layer's connectivity (fan-out of every
input neuron, docs/arithmetic.md section 4). Integer inputs and weights are computed in a floating dtype chosen so
that every partial sum is exactly representable (float32 below 2^24, else float64 below 2^53), which
lets BLAS do the work without rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_FLOAT32 = 2 ** 24
EXACT_FLOAT64 = 2 ** 53


@dataclass
class LinearMap:
    """A layer's linear map over its (C, H, W) input map; see ``ecc_hw.params.QuantLayer``."""

    kind: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    weight: np.ndarray
    bias: np.ndarray
    pool: object = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)

    @classmethod
    def of(cls, layer) -> "LinearMap":
        """The map of any layer object with the geometry attributes of ``QuantLayer``."""
        return cls(layer.kind, tuple(layer.input_shape), tuple(layer.output_shape), layer.weight,
                   layer.bias, layer.pool, tuple(layer.kernel), tuple(layer.stride),
                   tuple(layer.padding), tuple(layer.dilation))

    @property
    def input_size(self) -> int:
        """Number of input neurons (the previous layer's neurons, or input pixels)."""
        return int(np.prod(self.input_shape))

    @property
    def neurons(self) -> int:
        """Number of outputs."""
        return int(np.prod(self.output_shape))

    def pooled(self, maps: np.ndarray) -> np.ndarray:
        """Sum-pool a channels-last (B, H, W, C) batch with the composed pool (identity without one)."""
        if self.pool is None:
            return maps
        (kh, kw), (sh, sw) = self.pool.kernel, self.pool.stride
        ph, pw = self.pool.output_hw(*maps.shape[1:3])
        # Adding kh*kw strided views beats a reduction over non-contiguous axes several times.
        out = None
        for i in range(kh):
            for j in range(kw):
                window = maps[:, i:i + sh * (ph - 1) + 1:sh, j:j + sw * (pw - 1) + 1:sw, :]
                out = window.copy() if out is None else np.add(out, window, out=out)
        return out

    def apply(self, x: np.ndarray, dtype=np.float64, with_bias: bool = True,
              channels_last: bool = False) -> np.ndarray:
        """Outputs (B, neurons) for inputs (B, ...) holding ``input_size`` values each.

        Neurons are in channel-major order, or, with ``channels_last``, in (y, x, c) order for both
        the input and the output: the IF engine works that way to avoid transposing every step.
        """
        batch = x.shape[0]
        x = np.asarray(x)
        if x.dtype == bool:  # spikes: pool in small integers, convert the (smaller) pooled map
            area = 1 if self.pool is None else self.pool.kernel[0] * self.pool.kernel[1]
            x = x.view(np.uint8) if area < 256 else x.astype(np.int32)
        channels, height, width = self.input_shape
        if channels_last:
            maps = x.reshape(batch, height, width, channels)
        else:
            maps = x.reshape(batch, channels, height, width).transpose(0, 2, 3, 1)
        maps = self.pooled(maps)
        weight = np.asarray(self.weight, dtype=dtype)
        if self.kind == "dense":
            out = maps.reshape(batch, -1).astype(dtype) @ self._dense_weight_channels_last(weight).T
        elif self.kind == "pool":
            out = maps.reshape(batch, -1).astype(dtype) * weight.reshape(())
        else:
            out = self._conv(maps, weight)
        if with_bias:
            out += self.bias_per_neuron(dtype, channels_last=True)
        if channels_last or self.kind == "dense":
            return out
        out_c, out_h, out_w = self.output_shape
        return out.reshape(batch, out_h, out_w, out_c).transpose(0, 3, 1, 2).reshape(batch, -1)

    def _dense_weight_channels_last(self, weight: np.ndarray) -> np.ndarray:
        """Dense weights with their columns in (y, x, c) order of the pooled input."""
        channels, height, width = self.pooled_shape
        return weight.reshape(-1, channels, height, width).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)

    def bias_per_neuron(self, dtype, channels_last: bool = False) -> np.ndarray:
        """The bias of every output neuron (a conv channel's bias repeated over its map)."""
        bias = np.asarray(self.bias, dtype=dtype)
        if self.kind == "conv":
            positions = self.output_shape[1] * self.output_shape[2]
            return np.tile(bias, positions) if channels_last else np.repeat(bias, positions)
        if self.kind == "pool":
            return np.zeros(self.neurons, dtype=dtype)
        return bias

    def _conv(self, maps: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Convolution of channels-last maps; output (B, Ho*Wo*C_out) in (y, x, c) order."""
        top, left, bottom, right = self.padding
        batch, height, width, channels = maps.shape
        # One copy: the (integer) pooled map is cast straight into a zeroed, padded buffer.
        padded = np.zeros((batch, height + top + bottom, width + left + right, channels), dtype=weight.dtype)
        padded[:, top:top + height, left:left + width, :] = maps
        _, out_h, out_w = self.output_shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        # im2col: (B, Ho, Wo, kh, kw, C) patches, then one (B*Ho*Wo, kh*kw*C) x (kh*kw*C, C_out) product.
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        windows = np.lib.stride_tricks.sliding_window_view(padded, (span_h, span_w), axis=(1, 2))
        windows = windows[:, :sh * (out_h - 1) + 1:sh, :sw * (out_w - 1) + 1:sw, :, ::dh, ::dw]
        # (kh, kw, C) patch order keeps each copied run C values long (channels-last input).
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(maps.shape[0] * out_h * out_w, -1)
        out = patches @ weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1).T
        return out.reshape(maps.shape[0], -1)

    @staticmethod
    def channels_last_order(shape: tuple) -> np.ndarray:
        """Channel-major index of each neuron listed in (y, x, c) order: ``x_cl = x_cm[:, order]``."""
        channels, height, width = shape
        return np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)

    def fan_out(self) -> np.ndarray:
        """Synapses from each input neuron to this layer that exist in the geometry (docs/arithmetic.md 4).

        Border taps and composed pooling are counted exactly; a zero weight still counts.
        Returns one count per input neuron, in the channel-major neuron order.
        """
        return synapse_fan_out(self.kind, self.input_shape, self.pooled_shape, self.output_shape, self.kernel,
                               self.stride, self.padding, self.dilation, self.pool,
                               outputs_per_tap=self.output_shape[0], dense_outputs=self.neurons)

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) map the convolution or dense product reads."""
        channels, height, width = self.input_shape
        if self.pool is None:
            return (channels, height, width)
        return (channels, *self.pool.output_hw(height, width))

    def max_abs_output(self, max_abs_input: float) -> float:
        """The largest |output| any neuron can see for inputs bounded by ``max_abs_input``."""
        weights = np.abs(np.asarray(self.weight, dtype=np.float64))
        pool_area = 1 if self.pool is None else self.pool.kernel[0] * self.pool.kernel[1]
        if self.kind == "pool":
            per_neuron = float(weights.reshape(()))
        else:
            per_neuron = float(weights.reshape(weights.shape[0], -1).sum(axis=1).max())
        return per_neuron * pool_area * max_abs_input + float(np.max(np.abs(self.bias), initial=0))

    def exact_dtype(self, max_abs_input: float):
        """float32 when every partial sum stays below 2^24, else float64 (asserts below 2^53)."""
        bound = self.max_abs_output(max_abs_input)
        if bound < EXACT_FLOAT32:
            return np.float32
        if bound >= EXACT_FLOAT64:
            raise OverflowError(f"layer bound {bound:.3g} exceeds exact float64 integers")
        return np.float64



def synapse_fan_out(kind: str, input_shape: tuple, pooled_shape: tuple, output_shape: tuple, kernel: tuple,
                    stride: tuple, padding: tuple, dilation: tuple, pool, outputs_per_tap: int,
                    dense_outputs: int) -> np.ndarray:
    """Synapses from each input neuron of a linear map that exist in its geometry, channel-major.

    ``kind`` is conv, dense or identity; a conv tap reaches ``outputs_per_tap`` output channels (all of
    them, or its group's), a dense input ``dense_outputs`` neurons, an identity input one. Border taps
    and the composed pool (``pool``, over ``input_shape``; ``pooled_shape`` is what the map reads) are
    counted exactly; a neuron outside every pool cell has 0. Shared by the chain's ``LinearMap`` and the
    graph's edges (docs/arithmetic.md 4, 5.6).
    """
    channels, height, width = pooled_shape
    if kind == "conv":
        top, left, bottom, right = padding
        _, out_h, out_w = output_shape
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        hits = np.zeros((height + top + bottom, width + left + right), dtype=np.int64)
        for i in range(kh):
            for j in range(kw):
                hits[i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw] += 1
        per_pixel = hits[top:top + height, left:left + width] * outputs_per_tap
        pooled_fan_out = np.broadcast_to(per_pixel, (channels, height, width))
    elif kind == "dense":
        pooled_fan_out = np.full((channels, height, width), dense_outputs, dtype=np.int64)
    else:
        pooled_fan_out = np.ones((channels, height, width), dtype=np.int64)
    if pool is None:
        return pooled_fan_out.reshape(-1).copy()
    fan_out = np.zeros(input_shape, dtype=np.int64)
    (kh, kw), (sh, sw) = pool.kernel, pool.stride
    for i in range(kh):
        for j in range(kw):
            fan_out[:, i:i + sh * (height - 1) + 1:sh, j:j + sw * (width - 1) + 1:sw] += pooled_fan_out
    return fan_out.reshape(-1)
