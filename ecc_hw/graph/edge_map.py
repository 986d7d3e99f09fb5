"""The linear map of an edge (docs/arithmetic.md 5.1): composed sum-pool, then conv (any groups), dense or
per-channel identity, over channel-major rows.

One ``EdgeMap`` serves the float CNN (float64 weights) and, with integer weights in a float dtype that
holds every partial sum exactly, an integer network (the role ``ecc_hw.linear.LinearMap`` has for
chains). It also reports the geometry's connectivity: the fan-out of every source neuron (5.6).
"""
from __future__ import annotations

import numpy as np

from ..linear import synapse_fan_out
from .network import Edge, Geometry
from .pooling import sum_pool

PATCH_ELEMENTS = 1 << 19  # conv patches built at once (2 MiB in float32): they stay in cache for the product


class EdgeMap:
    """``geometry`` applied with ``weight`` (of ``geometry.weight_shape()``)."""

    def __init__(self, geometry: Geometry, weight: np.ndarray):
        if tuple(np.shape(weight)) != geometry.weight_shape():
            raise ValueError(f"weight of shape {np.shape(weight)} for a geometry of {geometry.weight_shape()}")
        self.geometry = geometry
        self.weight = np.asarray(weight)
        self._weights: dict[np.dtype, np.ndarray] = {}

    @classmethod
    def of(cls, edge: Edge) -> EdgeMap:
        """The map of an edge with its float weights."""
        return cls(edge.geometry, edge.weight)

    @property
    def input_size(self) -> int:
        """Source neurons the map reads."""
        return int(np.prod(self.geometry.input_shape))

    @property
    def output_size(self) -> int:
        """Neurons of the layer the map feeds."""
        return int(np.prod(self.geometry.output_shape))

    def apply(self, x: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Outputs (B, output_size) for source rows ``x`` (B, input_size), both channel-major, in ``dtype``.

        ``x`` may be bool spikes or integer counts: they are converted while being padded (no pool) or
        before the pool is summed. A conv runs as im2col products over blocks of images small enough for
        the patches to stay in cache; with integer weights and inputs every partial sum is an integer, so
        the result is exact whenever ``dtype`` represents all of them (the caller's proof)."""
        x = np.asarray(x)
        maps = x.reshape(len(x), *self.geometry.input_shape)
        if self.geometry.pool is not None or self.geometry.kind == "dense":
            maps = sum_pool(maps.astype(dtype), self.geometry.pool)
        weight = self._weight(dtype)
        if self.geometry.kind == "dense":
            return maps.reshape(len(x), -1) @ weight.T
        if self.geometry.kind == "identity":
            out = np.zeros((len(x), *self.geometry.output_shape), dtype=dtype)
            offset = self.geometry.channel_offset
            np.multiply(maps, weight[None, :, None, None], out=out[:, offset:offset + maps.shape[1]])
            return out.reshape(len(x), -1)
        return self._conv(maps, weight)

    def _weight(self, dtype) -> np.ndarray:
        """The weights in ``dtype``, converted once per dtype."""
        key = np.dtype(dtype)
        if key not in self._weights:
            self._weights[key] = self.weight.astype(dtype)
        return self._weights[key]

    def _conv(self, maps: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The conv of (B, C, H, W) ``maps`` (any dtype) as ``weight.dtype`` outputs (B, C_out * Ho * Wo):
        per block of images, the padded maps, their (B, G, C / G * kh * kw, Ho * Wo) patches and one
        stacked product with the (G, C_out / G, C / G * kh * kw) kernels."""
        geometry = self.geometry
        top, left, bottom, right = geometry.padding
        batch, channels, height, width = maps.shape
        (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
        out_channels, out_h, out_w = geometry.output_shape
        groups = geometry.groups
        kernels = weight.reshape(groups, out_channels // groups, -1)
        out = np.empty((batch, groups, out_channels // groups, out_h * out_w), dtype=weight.dtype)
        block = max(1, PATCH_ELEMENTS // (channels * kh * kw * out_h * out_w))
        for start in range(0, batch, block):
            images = maps[start:start + block]
            padded = np.zeros((len(images), channels, height + top + bottom, width + left + right), weight.dtype)
            padded[:, :, top:top + height, left:left + width] = images
            windows = np.lib.stride_tricks.sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1),
                                                               axis=(2, 3))
            windows = windows[:, :, :sh * (out_h - 1) + 1:sh, :sw * (out_w - 1) + 1:sw, ::dh, ::dw]
            patches = windows.transpose(0, 1, 4, 5, 2, 3).reshape(len(images), groups, -1, out_h * out_w)
            np.matmul(kernels, patches, out=out[start:start + block])
        return out.reshape(batch, -1)

    def fan_out(self) -> np.ndarray:
        """Synapses from each source neuron into the layer that exist in the geometry (docs/arithmetic.md
        5.6): border taps, groups and the composed pool counted exactly, a zero weight counted too.
        One count per source neuron, channel-major; a neuron outside every pool cell has 0."""
        geometry = self.geometry
        return synapse_fan_out(geometry.kind, geometry.input_shape, geometry.pooled_shape, geometry.output_shape,
                               geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, geometry.pool,
                               outputs_per_tap=geometry.output_shape[0] // geometry.groups,
                               dense_outputs=self.output_size)
