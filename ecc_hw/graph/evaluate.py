"""Accuracy, SynOps, MACs and energy of a graph network's CNN and integer SNN at several T (docs/graphs.md).

The report has the keys of the chain's (``ecc_hw.evaluate``), so the same table, JSON and plot serve
both, plus the topology, the max-pool compares and the T the biases were calibrated for.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import UserError
from ..evaluate import ImageResults, StepImages
from ..variants import Method
from . import metrics
from .float_snn import run_float_graph
from .forward import forward
from .golden import run_graph
from .radix import run_radix_graph
from .store import GraphParams

CHUNK = 128  # images per golden-model call (the progress bar advances by these)


def evaluate_graph(params: GraphParams, x: np.ndarray, y: np.ndarray, timesteps: list[int],
                   with_float_snn: bool = False, progress=None, backend=None) -> dict:
    """Run the CNN once and the golden model at each T on ``x`` (the model's own input layout); return the
    report as a JSON-ready dict. ``progress(images)`` is called as images finish. ``backend``
    (``ecc_hw.backends.select_backend``; None: NumPy) runs the golden model and the float SNN."""
    return graph_report_from(params, graph_image_results(params, x, timesteps, with_float_snn, progress, backend), y)


def graph_image_results(params: GraphParams, x: np.ndarray, timesteps: list[int], with_float_snn: bool = False,
                        progress=None, backend=None) -> ImageResults:
    """The CNN and the golden model (and the float SNN) at each T on ``x``, per image (see ``evaluate_graph``)."""
    graph, network = params.graph, params.network
    radix = params.method == Method.RADIX
    if radix and (list(timesteps) != [params.timesteps] or with_float_snn):
        raise UserError(f"radix parameters are built for T={params.timesteps} bits (and have no float SNN); "
                        "convert again for another T", field="timesteps")
    x = np.asarray(x, dtype=np.float64)
    cnn_predictions = np.argmax(forward(network, x).logits, axis=1)
    x_q = graph.quantise_input(x)
    steps_done = []
    for steps in timesteps:
        start = time.perf_counter()
        parts = []
        for begin in range(0, len(x_q), CHUNK):
            rows = x_q[begin:begin + CHUNK]
            parts.append(run_radix_graph(graph, rows, steps, backend=backend) if radix
                         else run_graph(graph, rows, steps, params.tre_mode, backend=backend))
            if progress is not None:
                progress(len(parts[-1].predictions))
        seconds = time.perf_counter() - start
        floats = None
        if with_float_snn:
            floats = run_float_graph(network, graph.lambdas, x, steps, graph.kappa, graph.eta, params.tre_mode,
                                     backend=backend).predictions
        steps_done.append(StepImages(
            int(steps), np.concatenate([part.predictions for part in parts]),
            np.concatenate([part.synops for part in parts]),
            np.concatenate([part.spike_counts.sum(axis=1) + part.pool_spike_counts.sum(axis=1) for part in parts]),
            seconds, floats))
    return ImageResults(cnn_predictions, steps_done)


def graph_report_from(params: GraphParams, results: ImageResults, y: np.ndarray) -> dict:
    """The report of ``evaluate_graph`` from the per-image results on images labelled ``y``."""
    graph, network = params.graph, params.network
    cnn_predictions = results.cnn_predictions
    images = len(cnn_predictions)
    report = {
        "topology": "graph", "images": int(images), "cnn_accuracy": float(np.mean(cnn_predictions == y)),
        "macs_per_image": metrics.macs_per_image(network),
        "first_layer_macs_per_image": metrics.first_layer_macs_per_image(network),
        "weight_bits": graph.weight_bits, "input_bits": graph.input_bits, "method": params.method,
        "lambdas": [graph.lambdas.input, *graph.lambdas.layers], "input_kind": "image",
        "bias_calibrated_for": params.bias_calibrated_for, "snn": [],
    }
    for step in results.steps:
        synops = float(np.mean(step.synops))
        energy = metrics.energy_uj(network, synops)
        entry = {
            "timesteps": step.timesteps, "accuracy": float(np.mean(step.predictions == y)),
            "agreement_with_cnn": float(np.mean(step.predictions == cnn_predictions)),
            "synops_per_image": synops, "macs_per_image": report["macs_per_image"],
            "first_layer_macs_per_image": report["first_layer_macs_per_image"],
            "maxpool_compares_per_image": metrics.maxpool_compares_per_image(network, step.timesteps),
            "spikes_per_image": float(np.mean(step.spikes)),
            "energy_snn_uj": energy["snn_uj"], "energy_cnn_uj": energy["cnn_uj"],
            "images_per_second": images / step.seconds if step.seconds else None,
        }
        if step.float_predictions is not None:
            entry["float_snn_accuracy"] = float(np.mean(step.float_predictions == y))
        report["snn"].append(entry)
    return report
