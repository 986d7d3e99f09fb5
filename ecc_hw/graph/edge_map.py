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


class EdgeMap:
    """``geometry`` applied with ``weight`` (of ``geometry.weight_shape()``)."""

    def __init__(self, geometry: Geometry, weight: np.ndarray):
        if tuple(np.shape(weight)) != geometry.weight_shape():
            raise ValueError(f"weight of shape {np.shape(weight)} for a geometry of {geometry.weight_shape()}")
        self.geometry = geometry
        self.weight = np.asarray(weight)

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
        """Outputs (B, output_size) for source rows ``x`` (B, input_size), both channel-major, in ``dtype``."""
        x = np.asarray(x)
        maps = sum_pool(x.reshape(len(x), *self.geometry.input_shape).astype(dtype), self.geometry.pool)
        weight = self.weight.astype(dtype)
        if self.geometry.kind == "dense":
            return maps.reshape(len(x), -1) @ weight.T
        if self.geometry.kind == "identity":
            out = np.zeros((len(x), *self.geometry.output_shape), dtype=dtype)
            offset = self.geometry.channel_offset
            out[:, offset:offset + maps.shape[1]] = maps * weight[None, :, None, None]
            return out.reshape(len(x), -1)
        return self._conv(maps, weight)

    def _conv(self, maps: np.ndarray, weight: np.ndarray) -> np.ndarray:
        geometry = self.geometry
        top, left, bottom, right = geometry.padding
        batch, channels, height, width = maps.shape
        padded = np.zeros((batch, channels, height + top + bottom, width + left + right), dtype=maps.dtype)
        padded[:, :, top:top + height, left:left + width] = maps
        (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
        out_channels, out_h, out_w = geometry.output_shape
        windows = np.lib.stride_tricks.sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        windows = windows[:, :, :sh * (out_h - 1) + 1:sh, :sw * (out_w - 1) + 1:sw, ::dh, ::dw]
        groups = geometry.groups
        patches = windows.reshape(batch, groups, channels // groups, out_h, out_w, kh, kw)
        kernels = weight.reshape(groups, out_channels // groups, channels // groups, kh, kw)
        out = np.einsum("bgchwij,gocij->bgohw", patches, kernels, optimize=True)
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
