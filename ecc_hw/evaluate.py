"""Accuracy, SynOps, MACs and energy of the CNN and of the integer SNN at several T (docs/arithmetic.md 4)."""
from __future__ import annotations

import io
import json
import time

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


def evaluate(params: NetworkParams, x: np.ndarray, y: np.ndarray, timesteps: list[int],
             with_float_snn: bool = False, progress=None, backend=None) -> dict:
    """Run the CNN once and the golden model at each T; return the report as a JSON-ready dict.

    ``progress(images)`` is called as images finish (for a progress bar). ``backend``
    (``ecc_hw.backends.select_backend``; None: NumPy) runs the golden model and the float SNN.
    """
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
    report = {
        "images": int(len(x)), "cnn_accuracy": float(np.mean(cnn_predictions == y)),
        "macs_per_image": metrics.macs_per_image(params),
        "first_layer_macs_per_image": metrics.first_layer_macs_per_image(params),
        "paper_ops_per_image": metrics.paper_ops_per_image(params),
        "weight_bits": params.weight_bits, "input_bits": params.input_bits, "method": params.method,
        "lambdas": params.lambdas, "input_kind": params.input_kind, "snn": [],
    }
    for steps in timesteps:
        start = time.perf_counter()
        result = golden.run(params, x_q, steps, progress=progress, backend=backend)
        seconds = time.perf_counter() - start
        synops = float(np.mean(result.synops))
        energy = metrics.energy_uj(params, synops)
        entry = {
            "timesteps": int(steps), "accuracy": float(np.mean(result.predictions == y)),
            "agreement_with_cnn": float(np.mean(result.predictions == cnn_predictions)),
            "synops_per_image": synops, "macs_per_image": report["macs_per_image"],
            "first_layer_macs_per_image": report["first_layer_macs_per_image"],
            "spikes_per_image": float(np.mean(result.spike_counts.sum(axis=1))),
            "energy_snn_uj": energy["snn_uj"], "energy_cnn_uj": energy["cnn_uj"],
            "images_per_second": len(x) / seconds if seconds else None,
        }
        if with_float_snn:
            floats = float_snn.run(params, x, steps, backend=backend)
            entry["float_snn_accuracy"] = float(np.mean(np.argmax(floats.output_membrane, axis=1) == y))
        report["snn"].append(entry)
    return report


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
