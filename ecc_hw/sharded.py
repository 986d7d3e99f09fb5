"""Sharded evaluation, the pure part: split a data set into contiguous shards, evaluate a shard, merge.

A shard's result is the per-image ``ecc_hw.evaluate.ImageResults`` (the CNN's classes; per T the golden
model's classes, SynOps, spikes and the float SNN's classes). ``merge`` joins the shards' results in image
order, so the report computed from them (``report_from``) is the report of one process on all images:
every per-image value is computed on its own image alone (the golden model is integer arithmetic, and the
float models' chunks of images are already independent of how they are cut, ``ecc_hw.if_network``), and
the means are taken over the same arrays in the same order. Only the measured ``images_per_second``
differs: a merged T's time is the slowest shard's. The process group is ``ecc_hw.sharded_group``'s.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .evaluate import ImageResults, StepImages


def shard_bounds(total: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (start, stop) slices covering ``range(total)`` in order; their lengths differ by
    at most one (the first ``total % shards`` are the longer). Some are empty when ``total < shards``."""
    if shards < 1 or total < 0:
        raise ValueError(f"shard_bounds({total}, {shards}): needs total >= 0 and shards >= 1")
    size, extra = divmod(total, shards)
    bounds, start = [], 0
    for index in range(shards):
        stop = start + size + (index < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def take(x, start: int, stop: int):
    """Images ``start:stop`` of ``x``: an array, or an event set (``ecc_hw.events.preprocess.EventSet``)."""
    if isinstance(x, np.ndarray):
        return x[start:stop]
    return replace(x, samples=x.samples[start:stop], names=x.names[start:stop],
                   labels=None if x.labels is None else x.labels[start:stop])


def merge(parts: list[ImageResults]) -> ImageResults:
    """The shards' results joined in image order (``parts`` in shard order, each with the same T's)."""
    if not parts:
        raise ValueError("merge: no shards")
    steps = []
    for index, first in enumerate(parts[0].steps):
        shards = [part.steps[index] for part in parts]
        if any(step.timesteps != first.timesteps for step in shards):
            raise ValueError(f"merge: the shards ran other T's ({[step.timesteps for step in shards]})")
        floats = None
        if first.float_predictions is not None:
            floats = np.concatenate([step.float_predictions for step in shards])
        steps.append(StepImages(first.timesteps, np.concatenate([step.predictions for step in shards]),
                                np.concatenate([step.synops for step in shards]),
                                np.concatenate([step.spikes for step in shards]),
                                max(step.seconds for step in shards), floats))
    return ImageResults(np.concatenate([part.cnn_predictions for part in parts]), steps)


def image_results(net, x, timesteps: list[int], with_float_snn: bool = False, progress=None,
                  backend=None) -> ImageResults:
    """The per-image results of a chain (``NetworkParams``) or graph (``GraphParams``) network on ``x``."""
    from .networks import is_graph

    if is_graph(net):
        from .graph.evaluate import graph_image_results
        return graph_image_results(net, x, timesteps, with_float_snn, progress, backend)
    from .evaluate import image_results as chain_image_results
    return chain_image_results(net, x, timesteps, with_float_snn, progress, backend)


def report_from(net, results: ImageResults, y: np.ndarray) -> dict:
    """The ``evaluate`` report of a chain or graph network from (merged) per-image results."""
    from .networks import is_graph

    if is_graph(net):
        from .graph.evaluate import graph_report_from
        return graph_report_from(net, results, y)
    from .evaluate import report_from as chain_report_from
    return chain_report_from(net, results, y)
