"""EdgeMap (conv with groups, dense, identity, composed pool) and max-pool nodes against plain loops."""
import itertools

import numpy as np
import pytest

from ecc_hw.graph.edge_map import EdgeMap
from ecc_hw.graph.network import LAYER, Geometry, MaxPoolNode, Source
from ecc_hw.graph.pooling import max_pool, window_cells
from ecc_hw.params import Pool


def loop_pool(maps, pool):
    """Sum-pool (C, H, W) with plain loops."""
    if pool is None:
        return maps
    (kh, kw), (sh, sw) = pool.kernel, pool.stride
    ph, pw = pool.output_hw(*maps.shape[1:])
    out = np.zeros((maps.shape[0], ph, pw))
    for c, y, x in itertools.product(range(maps.shape[0]), range(ph), range(pw)):
        out[c, y, x] = maps[c, y * sh:y * sh + kh, x * sw:x * sw + kw].sum()
    return out


def loop_conv(maps, weight, geometry):
    """A grouped, padded, strided, dilated convolution of one (C, H, W) map with plain loops."""
    top, left, _, _ = geometry.padding
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    out_c, out_h, out_w = geometry.output_shape
    per_group_in, per_group_out = maps.shape[0] // geometry.groups, out_c // geometry.groups
    out = np.zeros(geometry.output_shape)
    for co, y, x in itertools.product(range(out_c), range(out_h), range(out_w)):
        group = co // per_group_out
        for ci, i, j in itertools.product(range(per_group_in), range(kh), range(kw)):
            yy, xx = y * sh + i * dh - top, x * sw + j * dw - left
            if 0 <= yy < maps.shape[1] and 0 <= xx < maps.shape[2]:
                out[co, y, x] += weight[co, ci, i, j] * maps[group * per_group_in + ci, yy, xx]
    return out


def reference(geometry, weight, row):
    maps = loop_pool(row.reshape(geometry.input_shape), geometry.pool)
    if geometry.kind == "conv":
        return loop_conv(maps, weight, geometry).reshape(-1)
    if geometry.kind == "dense":
        return weight @ maps.reshape(-1)
    out = np.zeros(geometry.output_shape)
    out[geometry.channel_offset:geometry.channel_offset + len(maps)] = maps * weight[:, None, None]
    return out.reshape(-1)


GEOMETRIES = [
    Geometry("conv", (4, 7, 6), (6, 4, 3), None, (3, 3), (2, 2), (1, 1, 2, 1), (1, 1), 2),
    Geometry("conv", (4, 6, 6), (4, 2, 2), None, (3, 2), (1, 2), (0, 1, 0, 0), (2, 1), 4),
    Geometry("conv", (3, 8, 8), (5, 4, 4), Pool((2, 2), (2, 2)), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    Geometry("conv", (2, 1, 9), (3, 1, 5), None, (1, 3), (1, 2), (0, 1, 0, 1), (1, 1), 1),
    Geometry("dense", (3, 5, 5), (7, 1, 1), Pool((2, 2), (2, 2))),
    Geometry("dense", (2, 3, 3), (2, 2, 2)),
    Geometry("identity", (3, 7, 7), (3, 2, 2), Pool((3, 3), (3, 3))),
    Geometry("identity", (3, 4, 4), (3, 4, 4)),
    Geometry("identity", (2, 4, 4), (5, 2, 2), Pool((2, 2), (2, 2)), channel_offset=3),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_apply_equals_plain_loops(geometry):
    rng = np.random.default_rng(1)
    weight = rng.normal(size=geometry.weight_shape())
    rows = rng.normal(size=(3, int(np.prod(geometry.input_shape))))
    expected = np.stack([reference(geometry, weight, row) for row in rows])
    np.testing.assert_allclose(EdgeMap(geometry, weight).apply(rows), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_integer_weights_and_spikes_are_exact(geometry):
    rng = np.random.default_rng(2)
    weight = rng.integers(-127, 128, size=geometry.weight_shape())
    spikes = rng.random((2, int(np.prod(geometry.input_shape)))) < 0.5
    expected = np.stack([reference(geometry, weight.astype(np.float64), row.astype(np.float64)) for row in spikes])
    out = EdgeMap(geometry, weight).apply(spikes, dtype=np.float32)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_fan_out_counts_the_synapses_that_exist(geometry):
    """With all weights 1, a neuron reaches exactly its fan-out of outputs (each neuron lies in at most one
    pool cell, since pools have stride = kernel); a neuron outside every cell reaches none."""
    edge_map = EdgeMap(geometry, np.ones(geometry.weight_shape()))
    basis = np.eye(edge_map.input_size)
    reached = [np.count_nonzero(edge_map.apply(basis[i:i + 1])) for i in range(edge_map.input_size)]
    np.testing.assert_array_equal(edge_map.fan_out(), reached)


def test_weights_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="weight of shape"):
        EdgeMap(GEOMETRIES[0], np.zeros((6, 4, 3, 3)))


POOLS = [
    MaxPoolNode(1, "p", Source(LAYER, 1), (2, 5, 5), (2, 2, 2), (2, 2), (2, 2)),
    MaxPoolNode(1, "p", Source(LAYER, 1), (2, 7, 7), (2, 4, 4), (3, 3), (2, 2), (1, 1, 1, 1)),
    MaxPoolNode(1, "p", Source(LAYER, 1), (1, 4, 4), (1, 2, 2), (3, 3), (3, 3), ceil_mode=True),
    MaxPoolNode(1, "p", Source(LAYER, 1), (1, 6, 6), (1, 2, 2), (2, 2), (2, 2), (0, 0, 0, 0), (2, 2)),
]


def loop_max_pool(node, maps):
    top, left, _, _ = node.padding
    out = np.zeros(node.output_shape)
    cells = np.zeros(node.output_shape, dtype=int)
    for c, y, x in itertools.product(*map(range, node.output_shape)):
        values = [maps[c, yy, xx] for i, j in itertools.product(range(node.kernel[0]), range(node.kernel[1]))
                  for yy, xx in [(y * node.stride[0] + i * node.dilation[0] - top,
                                  x * node.stride[1] + j * node.dilation[1] - left)]
                  if 0 <= yy < maps.shape[1] and 0 <= xx < maps.shape[2]]
        out[c, y, x], cells[c, y, x] = max(values), len(values)
    return out.reshape(-1), cells.reshape(-1)


@pytest.mark.parametrize("node", POOLS)
def test_max_pool_takes_the_largest_non_padding_cell(node):
    rows = np.random.default_rng(3).normal(size=(2, int(np.prod(node.input_shape))))
    for row, out in zip(rows, max_pool(node, rows)):
        expected, cells = loop_max_pool(node, row.reshape(node.input_shape))
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(window_cells(node), cells)


def test_max_pool_of_integer_counts():
    node = POOLS[1]
    counts = np.random.default_rng(4).integers(0, 9, size=(2, int(np.prod(node.input_shape))))
    for row, out in zip(counts, max_pool(node, counts)):
        np.testing.assert_array_equal(out, loop_max_pool(node, row.reshape(node.input_shape))[0])
