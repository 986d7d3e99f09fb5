"""The max-pool unit's address tables: per source coordinate, the pool coordinates whose windows hold it
and its offset in each window (``rtl_gen.max_pool_unit``)."""
from __future__ import annotations

from .checks import check_ints
from .plan import AxisTable


def check_tuple(owner: str, name: str, values, length: int, minimum: int) -> tuple[int, ...]:
    """``values`` as a tuple of ``length`` ints, each at least ``minimum`` (else ValueError naming it)."""
    values = check_ints(owner, name, values)
    if len(values) != length:
        raise ValueError(f"{owner}: {name} must have {length} entries, not {len(values)}")
    for value in values:
        if value < minimum:
            raise ValueError(f"{owner}: every entry of {name} must be at least {minimum}, not {value}")
    return tuple(values)


def check_pool_output(owner: str, size, output_shape, kernel, stride, padding, dilation) -> None:
    """A ValueError unless ``output_shape`` (C, Ho, Wo) is the floor- or ceil-mode pool of a map of
    ``size`` (H, W) with this window (padding: top, left, bottom, right)."""
    for axis in (0, 1):
        k, s, d = kernel[axis], stride[axis], dilation[axis]
        span = size[axis] + padding[axis] + padding[axis + 2] - d * (k - 1) - 1
        if span < 0:
            raise ValueError(f"{owner}: kernel {kernel} (dilation {dilation}) is larger than the padded map")
        floor_out, ceil_out = span // s + 1, -(-span // s) + 1
        if not floor_out <= output_shape[axis + 1] <= ceil_out:
            raise ValueError(f"{owner}: output_shape {output_shape} does not match the geometry "
                             f"(size {floor_out} or, in ceil mode, {ceil_out} along axis {axis + 1})")


def pool_axis_table(size: int, out_size: int, kernel: int, stride: int, dilation: int, pad_before: int,
                    out_scale: int) -> AxisTable:
    """Reachable pool coordinates along one axis for every source coordinate 0..size-1.

    Pool coordinate p's window covers the source coordinates ``p * stride - pad_before + k * dilation``
    (k = 0..kernel-1); those in 0..size-1 are its non-padding cells (a ceil-mode window running past the
    padded map just has more padding). ``counts[y]`` pool coordinates (ascending) reach source coordinate
    y, stored at ``entries[y * stride + k]`` as (p * out_scale, p), padded with (0, 0) to the longest list.
    """
    reach: list[list[int]] = [[] for _ in range(size)]
    for p in range(out_size):
        for k in range(kernel):
            y = p * stride - pad_before + k * dilation
            if 0 <= y < size:
                reach[y].append(p)
    stride_entries = max(1, max(len(r) for r in reach))
    entries = []
    for r in reach:
        entries.extend([(p * out_scale, p) for p in r] + [(0, 0)] * (stride_entries - len(r)))
    return AxisTable([len(r) for r in reach], entries, stride_entries)


def pool_axis_offsets(table: AxisTable, size: int, kernel: int, stride: int, dilation: int, pad_before: int,
                      scale: int) -> list[int]:
    """The window offset k * scale of every entry of ``table`` (``pool_axis_table``'s): source coordinate y
    is cell k of its reachable pool coordinate p's window, ``y = p * stride - pad_before + k * dilation``;
    padding entries 0."""
    offsets = []
    for y in range(size):
        row = table.entries[y * table.stride:(y + 1) * table.stride]
        for n, (_, p) in enumerate(row):
            k, rest = divmod(y - p * stride + pad_before, dilation)
            assert n >= table.counts[y] or (rest == 0 and 0 <= k < kernel), (y, p)
            offsets.append(k * scale if n < table.counts[y] else 0)
    return offsets
