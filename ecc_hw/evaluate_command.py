"""The ``ecc-hw evaluate`` command: a chain or graph parameter folder against labelled data.

Loads the folder (``ecc_hw.networks``) and the data in the model's own layout, checks the data's range,
runs ``ecc_hw.evaluate`` (chains) or ``ecc_hw.graph.evaluate`` (graphs) on the ``--backend`` and
``--device`` asked for (``ecc_hw.backends``) with a progress bar on a terminal (``ecc_hw.progress``), prints the
table and writes the JSON and PNG asked for; ``--layers T`` adds the per-layer diagnosis of a graph
network (``ecc_hw.graph.diagnose``). Bad input is a ``UserError`` naming the option's field.
"""
from __future__ import annotations

import sys

from .errors import UserError
from .variants import InputKind, Method


def run(args) -> None:
    """``ecc-hw evaluate``: the table of CNN and SNN figures per T, the JSON, the plots and the diagnosis."""
    from rich.console import Console
    from rich.table import Table

    from . import data, evaluate
    from .backends import select_backend
    from .progress import image_progress
    from .input_range import check_input_range
    from .graph.evaluate import evaluate_graph
    from .networks import is_graph, load_network

    backend = select_backend(args.backend, args.device)
    net = load_network(args.net)
    graph = is_graph(net)
    if args.layers < 0:
        raise UserError(f"{args.layers} must be a T >= 1", field="layers")
    if args.layers_plot and not args.layers:
        raise UserError("needs --layers T (the T of the diagnosis)", field="layers_plot")
    if args.layers and not graph:
        raise UserError(f"{args.net}: the per-layer diagnosis takes graph parameter folders; convert the model "
                        "with --topology graph", field="layers")
    if not graph and net.input_kind == InputKind.EVENTS:
        from .events.preprocess import load_any
        x = load_any(args.data, tuple(net.events["sensor"]))
        if x.labels is None:
            raise UserError(f"{args.data}: event data without labels (an .npz with y, or DIR/<label>/...)")
        if args.limit:
            x = x.limit(args.limit)
        y = x.labels
        args.timesteps = args.timesteps or [net.timesteps]
    else:
        x, y = data.load_npz(args.data, input_shape=net.network.input.model_shape if graph else net.input_shape)
        for warning in check_input_range(net, x, args.data):
            print(f"ecc-hw evaluate: warning: {warning}", file=sys.stderr)
        if args.limit:
            x, y = x[:args.limit], y[:args.limit]
        radix = net.method == Method.RADIX
        args.timesteps = args.timesteps or ([net.timesteps] if graph and radix else [16, 32, 64, 128])
    calibrated_for = net.bias_calibrated_for if graph else None
    for steps in args.timesteps:
        if calibrated_for is not None and steps != calibrated_for:
            print(f"ecc-hw evaluate: warning: {args.net}: biases calibrated for T={calibrated_for}, evaluated at "
                  f"T={steps} (convert again with --bias-calibration {steps} for that T)", file=sys.stderr)
    x_count = len(y)
    with image_progress() as progress:
        task = progress.add_task(f"golden model, {backend.describe()}", total=x_count * len(args.timesteps))
        run = evaluate_graph if graph else evaluate.evaluate
        report = run(net, x, y, args.timesteps, with_float_snn=args.float_snn,
                     progress=lambda n: progress.advance(task, n), backend=backend)
        diagnoses = _diagnose(net, x, args.layers, progress) if args.layers else None
    if diagnoses is not None:
        from .graph.diagnose import diagnosis_rows
        report["layers"] = {"timesteps": args.layers, "rows": diagnosis_rows(diagnoses)}
    table = Table(title=f"{args.net}: {report['images']} images, CNN accuracy "
                        f"{100 * report['cnn_accuracy']:.2f}%, CNN MACs/image {report['macs_per_image']:,}")
    for column in ("T", "SNN acc. %", *(("float SNN %",) if args.float_snn else ()), "SynOps/image",
                   "1st-layer MACs", "E_snn uJ", "E_cnn uJ", "images/s"):
        table.add_column(column, justify="right")
    for entry in report["snn"]:
        table.add_row(str(entry["timesteps"]), f"{100 * entry['accuracy']:.2f}",
                      *((f"{100 * entry['float_snn_accuracy']:.2f}",) if args.float_snn else ()),
                      f"{entry['synops_per_image']:,.0f}", f"{entry['first_layer_macs_per_image']:,}",
                      f"{entry['energy_snn_uj']:.3f}", f"{entry['energy_cnn_uj']:.3f}",
                      f"{entry['images_per_second']:.0f}")
    Console(width=None if sys.stdout.isatty() else 132).print(table)
    if diagnoses is not None:
        _print_diagnosis(diagnoses, args.layers)
    if args.json:
        evaluate.write_json(report, args.json)
    if args.plot:
        evaluate.write_plot(report, args.plot)
    if args.layers_plot:
        from .graph.diagnose import write_diagnosis_plot
        write_diagnosis_plot(diagnoses, args.layers_plot, f"{args.net}: per-layer diagnosis at T={args.layers}")


def _diagnose(net, x, timesteps: int, progress) -> list:
    """``evaluate --layers T``: the per-layer diagnosis of the graph network at T (docs/graphs.md)."""
    from .graph.diagnose import diagnose_layers

    task = progress.add_task(f"per-layer diagnosis, T={timesteps}", total=None)
    diagnoses = diagnose_layers(net.graph, x, timesteps, net.tre_mode, include_max_pools=True)
    progress.remove_task(task)
    return diagnoses


def _print_diagnosis(diagnoses: list, timesteps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"per spiking layer and max-pool node at T={timesteps}: rate x lambda against "
                        "the CNN activation")
    for column in ("layer", "neurons", "corr.", "mean err / lambda", "mean |err| / lambda", "saturated %",
                   "wrongly silent %", "wrongly firing %"):
        table.add_column(column, justify="right")
    for entry in diagnoses:
        table.add_row(entry.label, f"{entry.neurons:,}", f"{entry.correlation:.3f}", f"{entry.mean_error:+.3f}",
                      f"{entry.mean_abs_error:.3f}", f"{100 * entry.saturated_fraction:.1f}",
                      f"{100 * entry.wrongly_silent_fraction:.1f}", f"{100 * entry.wrongly_firing_fraction:.1f}")
    Console(width=None if sys.stdout.isatty() else 132).print(table)
