"""Shared reading of the spatial attributes of Conv, AveragePool and MaxPool: 1-D as H = 1, auto_pad."""
from __future__ import annotations

import math

from ..ir import Graph, Node


def spatial_rank(graph: Graph, node: Node) -> int:
    """1 or 2: the spatial rank of the node's data input ((1, C, L) or (1, C, H, W)); else an error."""
    rank = len(graph.shape(graph.data_inputs(node)[0], node)) - 2
    if rank not in (1, 2):
        graph.fail(node, f"only 1-D and 2-D inputs are supported, got {rank + 2}-D")
    return rank


def as_2d(values, rank: int, fill: int) -> tuple[int, int]:
    """A per-axis attribute of a 1-D or 2-D op as (H, W); a 1-D op gets ``fill`` for H."""
    values = tuple(int(v) for v in values)
    return values if rank == 2 else (fill, values[0])


def spatial_geometry(graph: Graph, node: Node, kernel: tuple[int, int]) -> dict:
    """``stride``, ``padding`` (top, left, bottom, right) and ``dilation`` of the node, 2-D.

    ONNX ``pads`` [begin..., end...] and ``auto_pad`` (SAME_UPPER, SAME_LOWER, VALID) are resolved
    against the input's spatial size; a 1-D op reads as H = 1 with no padding along H.
    """
    rank = spatial_rank(graph, node)
    stride = as_2d(node.attributes.get("strides", (1,) * rank), rank, 1)
    dilation = as_2d(node.attributes.get("dilations", (1,) * rank), rank, 1)
    pads = tuple(int(p) for p in node.attributes.get("pads", (0,) * (2 * rank)))
    begin, end = as_2d(pads[:rank], rank, 0), as_2d(pads[rank:], rank, 0)
    auto_pad = node.attributes.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        sizes = as_2d(graph.shape(graph.data_inputs(node)[0], node)[2:], rank, 1)
        total = [max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
                 for size, k, s, d in zip(sizes, kernel, stride, dilation)]
        begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total)
        end = tuple(t - b for t, b in zip(total, begin))
    elif auto_pad == "VALID":
        begin, end = (0, 0), (0, 0)
    if min(begin + end) < 0:
        graph.fail(node, f"negative padding {pads} is not supported")
    return {"stride": stride, "padding": (begin[0], begin[1], end[0], end[1]), "dilation": dilation}
