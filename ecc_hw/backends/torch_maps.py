"""Linear maps and max pooling in PyTorch over channel-major rows, the twins of ``ecc_hw.linear.LinearMap``
(chains), ``ecc_hw.graph.edge_map.EdgeMap`` (graph edges) and ``ecc_hw.graph.pooling.max_pool``.

A map is its composed sum-pool (strided adds), then a convolution (``conv2d`` on the explicitly padded
map, any groups and dilation), a dense product, or a per-channel gain (a graph identity edge, at its
Concat channel offset; a chain pool layer: one gain for every channel). With integer weights and inputs
every partial sum is an integer, so the result is exact whenever the dtype holds all of them (the
caller's proof, as in NumPy); ``exact_mode`` keeps the algorithms plain sums of products.
"""
from __future__ import annotations

import numpy as np

from .torch_device import tensor, torch_dtype, torch_module


def sum_pool(maps, pool):
    """Sum-pool a (B, C, H, W) tensor over ``pool``'s cells (floor mode, no padding); identity for None.
    The cells are added in the order ``ecc_hw.graph.pooling.sum_pool`` adds them."""
    if pool is None:
        return maps
    (kh, kw), (sh, sw) = pool.kernel, pool.stride
    ph, pw = pool.output_hw(*maps.shape[2:])
    out = None
    for i in range(kh):
        for j in range(kw):
            window = maps[:, :, i:i + sh * (ph - 1) + 1:sh, j:j + sw * (pw - 1) + 1:sw]
            out = window.clone() if out is None else out.add_(window)
    return out


class TorchMap:
    """A linear map on ``device``: ``kind`` conv, dense or identity with ``weight`` over the (C, H, W)
    ``input_shape`` after ``pool``, into the (C, H, W) ``output_shape`` (geometry as
    ``ecc_hw.graph.network.Geometry``); ``bias`` per output neuron, channel-major, or None."""

    def __init__(self, device, kind: str, input_shape, output_shape, weight, pool=None, kernel=(1, 1),
                 stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, channel_offset=0, bias=None):
        self.device, self.kind, self.pool = device, kind, pool
        self.input_shape, self.output_shape = tuple(input_shape), tuple(output_shape)
        self.kernel, self.stride, self.padding, self.dilation = tuple(kernel), tuple(stride), tuple(padding), tuple(
            dilation)
        self.groups, self.channel_offset = int(groups), int(channel_offset)
        self.weight = np.asarray(weight)
        self.bias = None if bias is None else np.asarray(bias)
        self._cache: dict = {}

    @classmethod
    def of_edge(cls, edge_map, device) -> TorchMap:
        """The map of a graph ``EdgeMap`` (its weights as they are: integer or float)."""
        g = edge_map.geometry
        return cls(device, g.kind, g.input_shape, g.output_shape, edge_map.weight, g.pool, g.kernel, g.stride,
                   g.padding, g.dilation, g.groups, g.channel_offset)

    @classmethod
    def of_linear(cls, linear, device) -> TorchMap:
        """The map of a chain ``LinearMap`` with its bias per neuron (a pool layer: one gain per channel)."""
        bias = linear.bias_per_neuron(np.float64)
        if linear.kind == "pool":
            channels = linear.input_shape[0]
            gain = np.full(channels, np.asarray(linear.weight).reshape(()))
            return cls(device, "identity", linear.input_shape, linear.output_shape, gain, linear.pool, bias=bias)
        return cls(device, linear.kind, linear.input_shape, linear.output_shape, linear.weight, linear.pool,
                   linear.kernel, linear.stride, linear.padding, linear.dilation, bias=bias)

    @property
    def output_size(self) -> int:
        """Neurons the map feeds."""
        return int(np.prod(self.output_shape))

    def _tensor(self, key: str, values, dtype, channels_last: bool = False):
        """``values`` on the device in ``dtype`` (NumPy dtype), converted once per dtype (4-D conv weights in
        the channels-last memory format with ``channels_last``: oneDNN runs small-channel convolutions
        about twice as fast that way)."""
        if (key, np.dtype(dtype), channels_last) not in self._cache:
            value = tensor(values, self.device, dtype)
            if channels_last:
                value = value.contiguous(memory_format=torch_module().channels_last)
            self._cache[key, np.dtype(dtype), channels_last] = value
        return self._cache[key, np.dtype(dtype), channels_last]

    def bias_tensor(self, dtype):
        """The bias per output neuron (channel-major) in ``dtype``."""
        return self._tensor("bias", self.bias, dtype)

    def apply(self, x, dtype, with_bias: bool = False):
        """Outputs (B, output_size) in ``dtype`` (a NumPy float dtype) for rows ``x`` (B, input size) of any
        dtype (bool spikes, integer counts, floats); plus the bias with ``with_bias``."""
        torch = torch_module()
        functional = torch.nn.functional
        batch = x.shape[0]
        kind = torch_dtype(dtype)
        maps = x.reshape(batch, *self.input_shape)
        if self.pool is not None or self.kind != "conv" or not any(self.padding):
            maps = sum_pool(maps.to(kind), self.pool)
        weight = self._tensor("weight", self.weight, dtype)
        if self.kind == "dense":
            out = maps.reshape(batch, -1) @ weight.T
        elif self.kind == "identity" and tuple(maps.shape[1:]) == self.output_shape:  # no zeroed buffer
            out = (maps * weight[None, :, None, None]).reshape(batch, -1)
        elif self.kind == "identity":
            out = torch.zeros((batch, *self.output_shape), dtype=maps.dtype, device=maps.device)
            offset = self.channel_offset
            torch.mul(maps, weight[None, :, None, None], out=out[:, offset:offset + maps.shape[1]])
            out = out.reshape(batch, -1)
        else:
            top, left, bottom, right = self.padding
            if any(self.padding):  # one copy: converted straight into a zeroed, padded buffer
                _, channels, height, width = maps.shape
                padded = torch.zeros((batch, height + top + bottom, width + left + right, channels), dtype=kind,
                                     device=maps.device).permute(0, 3, 1, 2)  # NCHW, channels-last in memory
                padded[:, :, top:top + height, left:left + width] = maps
                maps = padded
            else:
                maps = maps.contiguous(memory_format=torch.channels_last)
            weight = self._tensor("weight", self.weight, dtype, channels_last=True)
            out = functional.conv2d(maps, weight, stride=self.stride, dilation=self.dilation,
                                    groups=self.groups).reshape(batch, -1)
        if with_bias:
            out = out + self.bias_tensor(dtype)
        return out


def max_pool(node, rows, fill: int = 0):
    """A graph max-pool node's outputs (B, neurons) for non-negative source rows (B, C * H * W) (spike
    counts or MSB-first prefixes): each window's maximum over its cells that are not padding (the padding
    is ``fill``, at most every value, so it never wins)."""
    functional = torch_module().nn.functional
    top, left, bottom, right = node.padding
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    _, height, width = node.input_shape
    _, out_h, out_w = node.output_shape
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    extra_h = max(0, (out_h - 1) * sh + span_h - (height + top + bottom))
    extra_w = max(0, (out_w - 1) * sw + span_w - (width + left + right))
    maps = rows.reshape(len(rows), *node.input_shape)
    maps = functional.pad(maps, (left, right + extra_w, top, bottom + extra_h), value=fill)
    windows = maps.unfold(2, span_h, sh).unfold(3, span_w, sw)[:, :, :out_h, :out_w, ::dh, ::dw]
    return windows.amax(dim=(4, 5)).reshape(len(rows), -1)
