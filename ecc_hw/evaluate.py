"""Accuracy, SynOps, MACs and energy of the CNN and of the integer SNN at several T (docs/arithmetic.md 4)."""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass

import numpy as np

from . import cnn, float_snn, golden, metrics
from .arithmetic import quantize_input
from .atomic import write_bytes, write_text
from .errors import UserError
from .params import NetworkParams
from .passes import FloatLayer
from .variants import InputKind


def cnn_layers(params: NetworkParams) -> list[FloatLayer]:
    """The folded CNN stored beside the integers, as layers ``cnn.forward`` takes."""
    return [FloatLayer(layer.kind, layer.name, layer.input_shape, layer.output_shape, layer.float_weight,
                       layer.float_bias, layer.pool, layer.kernel, layer.stride, layer.padding,
                       layer.dilation, layer.nominal_fan_in, relu=layer.spiking, clip=layer.clip)
            for layer in params.layers]


@dataclass
class StepImages:
    """The golden model's outputs per image at one T: what a report's ``snn`` entry is computed from."""

    timesteps: int
    predictions: np.ndarray             # (N,) classes
    synops: np.ndarray                  # (N,) SynOps
    spikes: np.ndarray                  # (N,) spikes of every layer (and max-pool node)
    seconds: float                      # the golden model's wall time on these images
    float_predictions: np.ndarray | None = None  # (N,) classes of the float SNN, when run


@dataclass
class ImageResults:
    """Everything an ``evaluate`` report is computed from, per image: the CNN's classes and one
    ``StepImages`` per T. Shards of a data set give these on their images (``ecc_hw.sharded.merge``)."""

    cnn_predictions: np.ndarray         # (N,) classes
    steps: list[StepImages]


def evaluate(params: NetworkParams, x: np.ndarray, y: np.ndarray, timesteps: list[int],
             with_float_snn: bool = False, progress=None, backend=None) -> dict:
    """Run the CNN once and the golden model at each T; return the report as a JSON-ready dict.

    ``progress(images)`` is called as images finish (for a progress bar). ``backend``
    (``ecc_hw.backends.select_backend``; None: NumPy) runs the golden model and the float SNN.
    """
    return report_from(params, image_results(params, x, timesteps, with_float_snn, progress, backend), y)


def image_results(params: NetworkParams, x, timesteps: list[int], with_float_snn: bool = False,
                  progress=None, backend=None) -> ImageResults:
    """The CNN and the golden model (and the float SNN) at each T on ``x``, per image (see ``evaluate``)."""
    frames = None
    if params.input_kind == InputKind.EVENTS:  # x: an ecc_hw.events.preprocess.EventSet
        from .events.preprocess import EventConfig
        config = EventConfig.from_json(params.events)
        if list(timesteps) != [params.timesteps]:
            raise UserError(f"event-input parameters are built for T={params.timesteps} frames; "
                            "convert again for another T", field="timesteps")
        if with_float_snn:
            raise UserError("not available with event input", field="with_float_snn")
        frames = x.spike_frames(config, params.timesteps)
        x = x.cnn_inputs(config)
    cnn_predictions = np.argmax(cnn.forward(cnn_layers(params), x), axis=1)
    x_q = quantize_input(params, x) if frames is None else frames
    steps_done = []
    for steps in timesteps:
        start = time.perf_counter()
        result = golden.run(params, x_q, steps, progress=progress, backend=backend)
        seconds = time.perf_counter() - start
        floats = None
        if with_float_snn:
            floats = np.argmax(float_snn.run(params, x, steps, backend=backend).output_membrane, axis=1)
        steps_done.append(StepImages(int(steps), result.predictions, result.synops, result.spike_counts.sum(axis=1),
                                     seconds, floats))
    return ImageResults(cnn_predictions, steps_done)


def report_from(params: NetworkParams, results: ImageResults, y: np.ndarray) -> dict:
    """The report of ``evaluate`` from the per-image results on images labelled ``y``."""
    cnn_predictions = results.cnn_predictions
    images = len(cnn_predictions)
    out = {
        "images": int(images), "cnn_accuracy": float(np.mean(cnn_predictions == y)),
        "macs_per_image": metrics.macs_per_image(params),
        "first_layer_macs_per_image": metrics.first_layer_macs_per_image(params),
        "paper_ops_per_image": metrics.paper_ops_per_image(params),
        "weight_bits": params.weight_bits, "input_bits": params.input_bits, "method": params.method,
        "lambdas": params.lambdas, "input_kind": params.input_kind, "snn": [],
    }
    for step in results.steps:
        synops = float(np.mean(step.synops))
        energy = metrics.energy_uj(params, synops)
        entry = {
            "timesteps": step.timesteps, "accuracy": float(np.mean(step.predictions == y)),
            "agreement_with_cnn": float(np.mean(step.predictions == cnn_predictions)),
            "synops_per_image": synops, "macs_per_image": out["macs_per_image"],
            "first_layer_macs_per_image": out["first_layer_macs_per_image"],
            "spikes_per_image": float(np.mean(step.spikes)),
            "energy_snn_uj": energy["snn_uj"], "energy_cnn_uj": energy["cnn_uj"],
            "images_per_second": images / step.seconds if step.seconds else None,
        }
        if step.float_predictions is not None:
            entry["float_snn_accuracy"] = float(np.mean(step.float_predictions == y))
        out["snn"].append(entry)
    return out


def write_json(report: dict, path) -> None:
    """The report as indented JSON, atomically."""
    write_text(path, json.dumps(report, indent=2) + "\n")


def write_plot(report: dict, path) -> None:
    """Accuracy and SynOps per image against T (like the paper's Figure 3), as PNG, atomically."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    steps = [entry["timesteps"] for entry in report["snn"]]
    figure, accuracy_axis = pyplot.subplots(figsize=(6, 4))
    accuracy_axis.plot(steps, [100 * e["accuracy"] for e in report["snn"]], "o-", label="SNN accuracy")
    accuracy_axis.axhline(100 * report["cnn_accuracy"], color="grey", linestyle="--", label="CNN accuracy")
    accuracy_axis.set_xscale("log", base=2)
    accuracy_axis.set_xticks(steps, [str(t) for t in steps])
    accuracy_axis.set_xlabel("timesteps T")
    accuracy_axis.set_ylabel("accuracy (%)")
    synops_axis = accuracy_axis.twinx()
    synops_axis.plot(steps, [e["synops_per_image"] / 1e6 for e in report["snn"]], "s:", color="tab:red",
                     label="SynOps per image")
    synops_axis.set_ylabel("SynOps per image (millions)", color="tab:red")
    lines = accuracy_axis.get_legend_handles_labels()
    more = synops_axis.get_legend_handles_labels()
    accuracy_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    accuracy_axis.set_title(f"ECC-SNN, {report['weight_bits']}-bit weights, {report['images']} images")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    pyplot.close(figure)
    write_bytes(path, buffer.getvalue())
