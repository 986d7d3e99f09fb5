"""``ecc-hw compare``: our versions of the paper's comparisons, as JSON tables and PNG plots.

    ecc-hw compare [3a 3d 5 6 radix l1 | all] -o OUT [--model M.onnx] [--calib C.npz] [--data D.npz]
                   [--fixtures DIR] [--timesteps T,T,...] [--limit N]

Figures (file OUT/NAME.json and OUT/NAME.png each):
- ``3a``: accuracy and SynOps/image against T for wn2017, rmp(0.8), rmp(0.9) and ecc (paper Fig. 3A),
  with the smallest T within 0.5 pp of the CNN per method.
- ``3d``: ecc with 7, 8, 9, 10 and 16-bit weights against T (Fig. 3D).
- ``5``:  ablation, accuracy loss of none, CN, CN+CMB, CN+CMB+TRE (Fig. 5).
- ``6``:  the relu, relu6, clip and qcfs16 fixtures, each with ecc and without (wn2017) (Fig. 6).
- ``radix``: the qcfs16 fixture converted by ``radix``: SNN vs quantised ANN vs CNN at T = 2..6.
- ``l1``: qcfs16 against qcfs16_l1 (the L1 term), radix at T = 4 and ecc at T = 32.
Rate-coded methods' integers do not depend on T: each is converted once and run at every T.
"""
from __future__ import annotations

import io
from dataclasses import replace
import json
import time
from pathlib import Path

import numpy as np

from . import cnn, data, evaluate, golden, radix
from .arithmetic import quantize_input
from .atomic import write_bytes, write_text
from .convert import ConvertOptions, convert
from .errors import UserError
from .graph.convert import convert_graph_model
from .graph.evaluate import evaluate_graph
from .methods import ablation
from .networks import chooses_graph
from .variants import Method

FIXTURES = data.PACKAGE_DATA / "methods"
FIGURES = ("3a", "3d", "5", "6", "radix", "l1")
WITHIN_PP = 0.5


class Context:
    """Models and data shared by the figures."""

    def __init__(self, model=None, calib=None, test=None, fixtures=None, timesteps=None, limit=0):
        self.model = Path(model) if model else data.BUNDLED_MODEL
        self.fixtures = Path(fixtures) if fixtures else FIXTURES
        self.calib, _ = data.load_npz(calib or data.BUNDLED_CALIB, need_labels=False)
        self.x, self.y = data.load_npz(test or data.BUNDLED_TEST)
        if limit:
            self.x, self.y = self.x[:limit], self.y[:limit]
        self.timesteps = timesteps

    def fixture(self, name: str) -> Path:
        """The trained fixture ``name``.onnx; a UserError when it is missing."""
        path = self.fixtures / f"{name}.onnx"
        if not path.is_file():
            raise UserError(f"{path}: trained fixture missing (ecc-hw train, see docs/methods.md)")
        return path

    def steps(self, default: list[int]) -> list[int]:
        """The T values of a figure: the user's (--timesteps), else the figure's ``default``."""
        return list(self.timesteps) if self.timesteps else default


def cnn_accuracy(net, x, y) -> float:
    """Accuracy of the folded CNN stored in ``net`` on images ``x`` with labels ``y``."""
    return float(np.mean(np.argmax(cnn.forward(evaluate.cnn_layers(net), x), axis=1) == y))


def sweep(ctx: Context, model, steps: list[int], recipe=None, **options) -> dict:
    """Convert once, run the golden model at each T: accuracy and SynOps/image per T. A graph model (one the
    chain converter does not take) goes through the graph converter; ablation recipes are for chains."""
    conversion = ConvertOptions(timesteps=max(steps), **options)
    if recipe is None and chooses_graph(model, conversion):
        return _graph_sweep(ctx, model, steps, conversion)
    net = convert(model, ctx.calib, conversion, recipe=recipe)
    x_q = quantize_input(net, ctx.x)
    series = []
    for steps_t in steps:
        result = golden.run(net, x_q, steps_t)
        series.append({"timesteps": steps_t, "accuracy": float(np.mean(result.predictions == ctx.y)),
                       "synops_per_image": float(np.mean(result.synops))})
    return _sweep_result(cnn_accuracy(net, ctx.x, ctx.y), series, [layer.threshold for layer in net.spiking_layers],
                         net.lambdas)


def _graph_sweep(ctx: Context, model, steps: list[int], conversion: ConvertOptions) -> dict:
    """The paper's methods as they are: no bias calibration (an extension of ours, docs/graphs.md)."""
    params = convert_graph_model(model, ctx.calib, replace(conversion, bias_calibration=0))
    report = evaluate_graph(params, ctx.x, ctx.y, steps)
    series = [{key: entry[key] for key in ("timesteps", "accuracy", "synops_per_image")} for entry in report["snn"]]
    return _sweep_result(report["cnn_accuracy"], series, [layer.threshold for layer in params.graph.spiking_layers],
                         report["lambdas"])


def _sweep_result(cnn_acc: float, series: list[dict], thresholds: list, lambdas: list) -> dict:
    within = [e["timesteps"] for e in series if e["accuracy"] >= cnn_acc - WITHIN_PP / 100]
    return {"cnn_accuracy": cnn_acc, "series": series, "thresholds": thresholds, "lambdas": list(lambdas),
            "t_within_half_pp": min(within) if within else None}


def figure_3a(ctx: Context) -> dict:
    """wn2017, rmp(0.8), rmp(0.9) and ecc against T (paper Fig. 3A)."""
    steps = ctx.steps([8, 16, 32, 64, 128])
    runs = {"wn2017": sweep(ctx, ctx.model, steps, method=Method.WN2017),
            "rmp(0.8)": sweep(ctx, ctx.model, steps, method=Method.RMP, alpha=0.8),
            "rmp(0.9)": sweep(ctx, ctx.model, steps, method=Method.RMP, alpha=0.9),
            "ecc": sweep(ctx, ctx.model, steps, method=Method.ECC)}
    ecc_t, wn_t = runs["ecc"]["t_within_half_pp"], runs["wn2017"]["t_within_half_pp"]
    more = [r8["synops_per_image"] > e["synops_per_image"]
            for r8, e in zip(runs["rmp(0.8)"]["series"], runs["ecc"]["series"])]
    claims = {
        "ecc_t_within_half_pp": ecc_t, "wn2017_t_within_half_pp": wn_t,
        "ecc_at_most_half_the_t_of_wn2017": None if ecc_t is None or wn_t is None else ecc_t * 2 <= wn_t,
        "rmp08_over_ecc_synops": [r8["synops_per_image"] / e["synops_per_image"]
                                  for r8, e in zip(runs["rmp(0.8)"]["series"], runs["ecc"]["series"])],
        "rmp08_more_synops_than_ecc_at_every_t": all(more),
    }
    return {"model": ctx.model.name, "timesteps": steps, "methods": runs, "claims": claims}


def figure_3d(ctx: Context) -> dict:
    """ecc with 7, 8, 9, 10 and 16-bit weights against T (paper Fig. 3D)."""
    steps = ctx.steps([16, 32, 64, 128])
    runs = {f"{bits}-bit": sweep(ctx, ctx.model, steps, weight_bits=bits) for bits in (7, 8, 9, 10, 16)}
    return {"model": ctx.model.name, "timesteps": steps, "methods": runs}


def figure_5(ctx: Context) -> dict:
    """The ablation: accuracy loss of none, CN, CN+CMB and CN+CMB+TRE (paper Fig. 5)."""
    steps = ctx.steps([32, 128])
    configs = [(False, False, False), (True, False, False), (True, True, False), (True, True, True)]
    runs = {}
    for cn, cmb, tre in configs:
        recipe = ablation(cn, cmb, tre)
        runs[recipe.name] = sweep(ctx, ctx.model, steps, recipe=recipe)
    for run in runs.values():
        for entry in run["series"]:
            entry["accuracy_loss_pp"] = 100 * (run["cnn_accuracy"] - entry["accuracy"])
    return {"model": ctx.model.name, "timesteps": steps, "methods": runs}


def figure_6(ctx: Context) -> dict:
    """The relu, relu6, clip and qcfs16 fixtures, each with ecc and with wn2017 (paper Fig. 6)."""
    steps = ctx.steps([8, 16, 32, 64])
    runs = {}
    for name in ("relu", "relu6", "clip", "qcfs16"):
        model = ctx.fixture(name)
        runs[f"{name} ecc"] = sweep(ctx, model, steps, method=Method.ECC)
        runs[f"{name} no-ecc"] = sweep(ctx, model, steps, method=Method.WN2017)
    return {"timesteps": steps, "methods": runs}


def radix_run(ctx: Context, model, steps: int, weight_bits: int = 8) -> dict:
    """radix at T = ``steps``: SNN, integer QCFS ANN, float QCFS ANN (L = 2^T) and CNN."""
    net = convert(model, ctx.calib, ConvertOptions(method=Method.RADIX, timesteps=steps, weight_bits=weight_bits))
    x_q = quantize_input(net, ctx.x)
    start = time.perf_counter()
    result = radix.run(net, x_q)
    seconds = time.perf_counter() - start
    ann_int, _ = radix.quantised_ann(net, x_q)
    ann_float, _ = radix.qcfs_forward(net, ctx.x)
    float_predictions = np.argmax(ann_float, axis=1)
    return {
        "timesteps": steps, "levels": 1 << steps, "weight_bits": weight_bits,
        "snn_accuracy": float(np.mean(result.predictions == ctx.y)),
        "quantised_ann_accuracy": float(np.mean(float_predictions == ctx.y)),
        "cnn_accuracy": cnn_accuracy(net, ctx.x, ctx.y),
        "predictions_equal_quantised_ann": int(np.sum(result.predictions == float_predictions)),
        "images": int(len(ctx.x)),
        "output_equals_integer_ann": bool(np.array_equal(result.output_membrane, ann_int)),
        "synops_per_image": float(np.mean(result.synops)),
        "spikes_per_image": float(np.mean(result.spike_counts.sum(axis=1))),
        "thresholds": [layer.threshold for layer in net.spiking_layers], "images_per_second": len(ctx.x) / seconds,
    }


def figure_radix(ctx: Context) -> dict:
    """qcfs16 converted by radix: SNN, quantised ANN and CNN at T = 2..6."""
    steps = ctx.steps([2, 3, 4, 5, 6])
    model = ctx.fixture("qcfs16")
    return {"model": model.name, "trained_levels": 16, "runs": [radix_run(ctx, model, t) for t in steps]}


def figure_l1(ctx: Context) -> dict:
    """qcfs16 against qcfs16_l1: radix at T = 4 and ecc at T = 32, with the SynOps saved by the L1 term."""
    out = {}
    for name in ("qcfs16", "qcfs16_l1"):
        model = ctx.fixture(name)
        out[name] = {"radix_t4": radix_run(ctx, model, 4), "ecc": sweep(ctx, model, [32], method=Method.ECC)}
    base, l1 = out["qcfs16"]["radix_t4"], out["qcfs16_l1"]["radix_t4"]
    out["claims"] = {
        "radix_synops_reduction": 1 - l1["synops_per_image"] / base["synops_per_image"],
        "radix_accuracy_cost_pp": 100 * (base["snn_accuracy"] - l1["snn_accuracy"]),
        "ecc_t32_synops_reduction": 1 - out["qcfs16_l1"]["ecc"]["series"][0]["synops_per_image"]
        / out["qcfs16"]["ecc"]["series"][0]["synops_per_image"],
    }
    meta = ctx.fixtures / "qcfs16_l1.onnx.json"
    if meta.is_file():
        out["l1_coefficient"] = json.loads(meta.read_text()).get("l1")
    return out


BUILDERS = {"3a": figure_3a, "3d": figure_3d, "5": figure_5, "6": figure_6, "radix": figure_radix,
            "l1": figure_l1}


def _plot(name: str, report: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    if name in ("3a", "3d", "6"):
        figure, (acc, ops) = pyplot.subplots(1, 2, figsize=(11, 4))
        for label, run in report["methods"].items():
            steps = [e["timesteps"] for e in run["series"]]
            acc.plot(steps, [100 * e["accuracy"] for e in run["series"]], "o-", label=label)
            ops.plot(steps, [e["synops_per_image"] / 1e6 for e in run["series"]], "s-", label=label)
        first = next(iter(report["methods"].values()))
        if name != "6":
            acc.axhline(100 * first["cnn_accuracy"], color="grey", linestyle="--", label="CNN")
        for axis in (acc, ops):
            axis.set_xscale("log", base=2)
            axis.set_xticks(report["timesteps"], [str(t) for t in report["timesteps"]])
            axis.set_xlabel("timesteps T")
            axis.legend(fontsize=7)
        acc.set_ylabel("accuracy (%)")
        ops.set_ylabel("SynOps per image (millions)")
        figure.suptitle({"3a": "Figure 3A: methods", "3d": "Figure 3D: weight bits",
                         "6": "Figure 6: clipped training, with and without ECC"}[name])
    elif name == "5":
        figure, axis = pyplot.subplots(figsize=(7, 4))
        labels = list(report["methods"])
        width = 0.8 / len(report["timesteps"])
        for k, steps in enumerate(report["timesteps"]):
            losses = [run["series"][k]["accuracy_loss_pp"] for run in report["methods"].values()]
            axis.bar(np.arange(len(labels)) + k * width, losses, width, label=f"T={steps}")
        axis.set_xticks(np.arange(len(labels)) + width * (len(report["timesteps"]) - 1) / 2, labels)
        axis.set_ylabel("accuracy loss vs CNN (pp)")
        axis.set_yscale("symlog", linthresh=1)
        axis.legend()
        axis.set_title("Figure 5: ablation (ingredients added one at a time)")
    elif name == "radix":
        figure, (acc, ops) = pyplot.subplots(1, 2, figsize=(11, 4))
        steps = [r["timesteps"] for r in report["runs"]]
        acc.plot(steps, [100 * r["snn_accuracy"] for r in report["runs"]], "o-", label="radix SNN")
        acc.plot(steps, [100 * r["quantised_ann_accuracy"] for r in report["runs"]], "x--",
                 label="QCFS ANN, L = 2^T")
        acc.axhline(100 * report["runs"][0]["cnn_accuracy"], color="grey", linestyle="--", label="CNN")
        ops.plot(steps, [r["synops_per_image"] / 1e6 for r in report["runs"]], "s-")
        acc.set_ylabel("accuracy (%)")
        ops.set_ylabel("SynOps per image (millions)")
        for axis in (acc, ops):
            axis.set_xlabel("timesteps T (bits)")
        acc.legend()
        figure.suptitle(f"radix on {report['model']} (trained with L = 16)")
    else:
        figure, axis = pyplot.subplots(figsize=(6, 4))
        names = ["qcfs16", "qcfs16_l1"]
        axis.bar(names, [report[n]["radix_t4"]["synops_per_image"] / 1e6 for n in names])
        for k, n in enumerate(names):
            axis.text(k, 0, f"{100 * report[n]['radix_t4']['snn_accuracy']:.1f}%", ha="center", va="bottom")
        axis.set_ylabel("SynOps per image (millions), radix T=4")
        axis.set_title("L1 activation penalty")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    pyplot.close(figure)
    return buffer.getvalue()


def run(figures: list[str], output, ctx: Context, log=None) -> dict:
    """Build each figure; write OUT/NAME.json and OUT/NAME.png; return {name: report}."""
    names = list(FIGURES) if "all" in figures else figures
    for name in names:
        if name not in BUILDERS:
            raise UserError(f"figure '{name}' is not one of {', '.join(FIGURES)}, all")
    out = Path(output)
    reports = {}
    for name in names:
        start = time.perf_counter()
        report = BUILDERS[name](ctx)
        report["images"] = int(len(ctx.x))
        report["seconds"] = round(time.perf_counter() - start, 1)
        write_text(out / f"{name}.json", json.dumps(report, indent=2) + "\n")
        write_bytes(out / f"{name}.png", _plot(name, report))
        reports[name] = report
        if log:
            log(f"wrote {out / name}.json and .png ({report['seconds']} s)")
    return reports


def run_cli(args) -> None:
    """``ecc-hw compare``: build the figures ``args.figures`` into ``args.output``."""
    import sys

    ctx = Context(args.model, args.calib, args.data, args.fixtures, args.timesteps, args.limit)
    run([f.lower() for f in args.figures], args.output, ctx, log=lambda line: print(line, file=sys.stderr))
