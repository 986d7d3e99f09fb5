"""Affine expressions over sources: what the edge builder knows about a tensor (docs/arithmetic.md 5.1).

A tensor that is not an activation is ``sum of terms + bias``. A ``Term`` is an edge in the making:
one linear map from a source (the input, a spiking layer, a max-pool node) that adds into a channel
range of the tensor; ``bias`` (C, H, W) is every constant that has reached the tensor, per neuron.
Each function applies one canonical op to expressions and composes it into the terms: a conv or
dense map into identity terms (a Concat's channel range cuts the kernel), a per-channel scale into
every term, a pool in front of the map. What 5.1 does not allow raises ``CompositionError``, which
the builder turns into a one-line message naming the file and node.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..params import Pool
from .edge_map import EdgeMap
from .network import Edge, Geometry, Source
from .pooling import sum_pool

BIAS_TOLERANCE = 1e-12  # relative spread under which a bias map is stored per channel


class CompositionError(Exception):
    """A composition that docs/arithmetic.md 5.1 does not allow; the message names the nodes."""


@dataclass(frozen=True)
class Term:
    """One linear map from ``source`` adding into channels [start, stop) = ``channels`` of a tensor.

    ``geometry.output_shape`` is the map's own output ((stop - start, H, W) of the tensor);
    ``linear`` names the Conv/Gemm/MatMul node whose map it holds ("" for an identity map); ``head``
    the pool composed after a map that is not a 1x1 conv (allowed only into the output layer).
    """

    source: Source
    geometry: Geometry
    weight: np.ndarray
    channels: tuple[int, int]
    concat_ranges: tuple[tuple[int, int], ...] = ()
    nodes: tuple[str, ...] = ()
    linear: str = ""
    head: str = ""


@dataclass(frozen=True)
class Expr:
    """``sum of terms + bias`` with ``bias`` (C, H, W) float64."""

    terms: tuple[Term, ...]
    bias: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """The tensor's (C, H, W)."""
        return tuple(self.bias.shape)


def source_expr(source: Source, shape: tuple[int, int, int], name: str = "") -> Expr:
    """A source's activation: one identity term of gain 1, no bias."""
    geometry = Geometry("identity", tuple(shape), tuple(shape))
    term = Term(source, geometry, np.ones(shape[0]), (0, shape[0]), nodes=(name,) if name else ())
    return Expr((term,), np.zeros(shape))


def _unmapped(term: Term, name: str) -> None:
    if term.linear:
        raise CompositionError(f"'{term.linear}' and '{name}' are two linear maps with no activation between them; "
                               "only a pool after a 1x1 conv composes (docs/arithmetic.md 5.1)")


def _ranges(term: Term, channels: int) -> tuple[tuple[int, int], ...]:
    return term.concat_ranges + ((term.channels,) if term.channels != (0, channels) else ())


def conv(expr: Expr, name: str, attributes: dict, out_shape: tuple[int, int, int]) -> Expr:
    """A ConvMap (weight, bias, stride, padding, dilation, groups) applied to ``expr``."""
    kernels, groups = attributes["weight"], attributes["groups"]
    shape = dict(kernel=tuple(kernels.shape[2:]), stride=tuple(attributes["stride"]),
                 padding=tuple(attributes["padding"]), dilation=tuple(attributes["dilation"]), groups=groups)
    channels = expr.shape[0]
    terms = []
    for term in expr.terms:
        _unmapped(term, name)
        start, stop = term.channels
        if groups == 1:
            weight = kernels[:, start:stop] * term.weight[None, :, None, None]
        elif (start, stop) != (0, channels):
            raise CompositionError(f"grouped Conv '{name}' ({groups} groups) reads a Concat; only a Conv with "
                                   "group = 1 may read one")
        else:
            gains = np.repeat(term.weight.reshape(groups, -1), len(kernels) // groups, axis=0)
            weight = kernels * gains[:, :, None, None]
        geometry = Geometry("conv", term.geometry.input_shape, tuple(out_shape), term.geometry.pool, **shape)
        terms.append(Term(term.source, geometry, weight, (0, out_shape[0]), _ranges(term, channels),
                          term.nodes + (name,), linear=name))
    bias_map = EdgeMap(Geometry("conv", expr.shape, tuple(out_shape), None, **shape), kernels)
    bias = bias_map.apply(expr.bias.reshape(1, -1)).reshape(out_shape) + attributes["bias"][:, None, None]
    return Expr(tuple(terms), bias)


def dense(expr: Expr, name: str, attributes: dict, out_shape: tuple[int, int, int]) -> Expr:
    """A DenseMap (weight over the channel-major input, bias) applied to ``expr``."""
    matrix = attributes["weight"]
    channels, height, width = expr.shape
    terms = []
    for term in expr.terms:
        _unmapped(term, name)
        start, stop = term.channels
        weight = matrix[:, start * height * width:stop * height * width] * np.repeat(term.weight, height * width)
        geometry = Geometry("dense", term.geometry.input_shape, tuple(out_shape), term.geometry.pool)
        terms.append(Term(term.source, geometry, weight, (0, out_shape[0]), _ranges(term, channels),
                          term.nodes + (name,), linear=name))
    bias = matrix @ expr.bias.reshape(-1) + attributes["bias"]
    return Expr(tuple(terms), bias.reshape(out_shape))


def affine(expr: Expr, name: str, attributes: dict) -> Expr:
    """A ChannelAffine (scale, shift per channel) applied to ``expr``: every term scaled."""
    scale, shift = attributes["scale"], attributes["shift"]
    terms = []
    for term in expr.terms:
        gains = scale[term.channels[0]:term.channels[1]]
        if term.geometry.kind == "identity":
            weight = term.weight * gains
        elif term.geometry.kind == "conv":
            weight = term.weight * gains[:, None, None, None]
        else:
            _, height, width = term.geometry.output_shape
            weight = term.weight * np.repeat(gains, height * width)[:, None]
        terms.append(replace(term, weight=weight, nodes=term.nodes + (name,)))
    return Expr(tuple(terms), expr.bias * scale[:, None, None] + shift[:, None, None])


def add(first: Expr, second: Expr) -> Expr:
    """The sum of two tensors: the union of their terms."""
    return Expr(first.terms + second.terms, first.bias + second.bias)


def concat(parts: list[Expr]) -> Expr:
    """A Concat along channels: each part's terms move to its channel range."""
    terms, offset = [], 0
    for part in parts:
        terms += [replace(t, channels=(t.channels[0] + offset, t.channels[1] + offset)) for t in part.terms]
        offset += part.shape[0]
    return Expr(tuple(terms), np.concatenate([part.bias for part in parts]))


def _pooled_head(term: Term, name: str, pool: Pool) -> Term:
    """A term's map followed by ``pool``, composed into one dense map (only the output layer may use it)."""
    geometry = term.geometry
    inputs = int(np.prod(geometry.pooled_shape))
    inner = EdgeMap(replace(geometry, input_shape=geometry.pooled_shape, pool=None), term.weight)
    response = inner.apply(np.eye(inputs)).reshape(inputs, *geometry.output_shape)
    pooled = sum_pool(response, pool) / (pool.kernel[0] * pool.kernel[1])
    head = Geometry("dense", geometry.input_shape, tuple(pooled.shape[1:]), geometry.pool)
    return replace(term, geometry=head, weight=pooled.reshape(inputs, -1).T, nodes=term.nodes + (name,), head=name)


def _compose_pools(first: Pool | None, second: Pool) -> Pool:
    """One pool for ``second`` after ``first``: exact because every pool has stride = kernel (floor mode)."""
    if first is None:
        return second
    kernel = (first.kernel[0] * second.kernel[0], first.kernel[1] * second.kernel[1])
    return Pool(kernel, kernel)


def avg_pool(expr: Expr, name: str, pool: Pool) -> Expr:
    """An AvgPool2d (kernel = stride) applied to ``expr`` (docs/arithmetic.md 1.2, 5.1): composed into
    an identity or 1x1 conv term (in front of the conv), or, after any other map, into a dense head."""
    area = pool.kernel[0] * pool.kernel[1]
    terms = []
    for term in expr.terms:
        geometry = term.geometry
        pointwise = (geometry.kind == "conv" and geometry.kernel == (1, 1) and geometry.stride == (1, 1)
                     and geometry.padding == (0, 0, 0, 0))
        if geometry.kind == "identity" or pointwise:
            combined = _compose_pools(geometry.pool, pool)
            channels, height, width = geometry.output_shape
            moved = replace(geometry, pool=combined, output_shape=(channels, *pool.output_hw(height, width)))
            terms.append(replace(term, geometry=moved, weight=term.weight / area, nodes=term.nodes + (name,)))
        else:
            terms.append(_pooled_head(term, name, pool))
    bias = sum_pool(expr.bias[None], pool)[0] / area
    return Expr(tuple(terms), bias)


def merged_edges(terms: tuple[Term, ...]) -> tuple[Edge, ...]:
    """The terms as edges, those with the same source and geometry merged by adding their float weights
    (docs/arithmetic.md 5.1); an identity edge and a 1x1 conv edge stay apart."""
    merged: dict = {}
    for term in terms:
        key = (term.source, term.geometry)
        if key in merged:
            edge = merged[key]
            merged[key] = replace(edge, weight=edge.weight + term.weight,
                                  concat_ranges=edge.concat_ranges + term.concat_ranges,
                                  nodes=tuple(dict.fromkeys(edge.nodes + term.nodes)))
        else:
            merged[key] = Edge(term.source, term.geometry, term.weight, term.concat_ranges, term.nodes)
    return tuple(merged.values())


def layer_bias(bias: np.ndarray) -> np.ndarray:
    """``bias`` (C, H, W) as stored in a layer: (C,) when each channel holds one value (within
    ``BIAS_TOLERANCE`` of the largest magnitude), else per neuron."""
    spread = bias.max(axis=(1, 2)) - bias.min(axis=(1, 2))
    if np.all(spread <= BIAS_TOLERANCE * max(1.0, float(np.abs(bias).max(initial=0.0)))):
        return bias.mean(axis=(1, 2))
    return bias.copy()
