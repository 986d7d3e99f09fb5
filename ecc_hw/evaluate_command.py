"""The ``ecc-hw evaluate`` command: a chain or graph parameter folder against labelled data.

Loads the folder (``ecc_hw.networks``) and the data in the model's own layout, checks the data's range,
runs ``ecc_hw.evaluate`` (chains) or ``ecc_hw.graph.evaluate`` (graphs) on the ``--backend`` and
``--device`` asked for (``ecc_hw.backends``) with a progress bar on a terminal (``ecc_hw.progress``), prints the
table and writes the JSON and PNG asked for; ``--layers T`` adds the per-layer diagnosis of a graph
network (``ecc_hw.graph.diagnose``). ``--workers N`` splits the images over N local processes, and under
torchrun every process of its group takes a shard (``ecc_hw.sharded``, ``ecc_hw.sharded_group``); the report
is the one process's. Bad input is a ``UserError`` naming the option's field.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass

from .errors import UserError
from .variants import InputKind, Method


def run(args) -> None:
    """``ecc-hw evaluate``: the table of CNN and SNN figures per T, the JSON, the plots and the diagnosis;
    on this process, on ``--workers N`` local ones, or on torchrun's group."""
    from .sharded_group import torchrun_member

    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise UserError(f"{workers} must be >= 1 (the processes that share the images)", field="workers")
    member = torchrun_member()
    if member is not None and member.world > 1:
        if workers not in (1, member.world):
            raise UserError(f"{workers}: under torchrun the group has WORLD_SIZE={member.world} processes; "
                            f"leave it out or give {member.world}", field="workers")
        _run_in_group(args, member)
        return
    loaded = _load(args, warn=True)
    if workers == 1:
        from .sharded import image_results
        with _progress(loaded, count_of(loaded.x), args.timesteps, "") as advance:
            results = image_results(loaded.net, loaded.x, args.timesteps, args.float_snn, advance, loaded.backend)
    else:
        results = _run_local(args, loaded, workers)
    _finish(args, loaded, results)


@dataclass
class _Loaded:
    """The checked inputs of one evaluation: backend, parameters, images and labels."""

    backend: object
    net: object
    graph: bool
    x: object
    y: object


def count_of(x) -> int:
    """The number of images (or event samples) in ``x``."""
    return len(x.samples) if hasattr(x, "samples") else len(x)


def _load(args, warn: bool) -> _Loaded:
    """Check the options, load the folder and the data (setting ``args.timesteps``'s default); with ``warn``
    print the data-range and calibration warnings."""
    from . import data
    from .backends import select_backend
    from .input_range import check_input_range
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
        for warning in check_input_range(net, x, args.data) if warn else ():
            print(f"ecc-hw evaluate: warning: {warning}", file=sys.stderr)
        if args.limit:
            x, y = x[:args.limit], y[:args.limit]
        radix = net.method == Method.RADIX
        args.timesteps = args.timesteps or ([net.timesteps] if graph and radix else [16, 32, 64, 128])
    calibrated_for = net.bias_calibrated_for if graph else None
    for steps in args.timesteps if warn else ():
        if calibrated_for is not None and steps != calibrated_for:
            print(f"ecc-hw evaluate: warning: {args.net}: biases calibrated for T={calibrated_for}, evaluated at "
                  f"T={steps} (convert again with --bias-calibration {steps} for that T)", file=sys.stderr)
    return _Loaded(backend, net, graph, x, y)


@contextlib.contextmanager
def _progress(loaded: _Loaded, images: int, timesteps: list[int], shard: str):
    """A progress bar (on a terminal) over ``images`` at every T; yields its ``advance(images)``."""
    from .progress import image_progress

    with image_progress() as progress:
        task = progress.add_task(f"golden model, {loaded.backend.describe()}{shard}", total=images * len(timesteps))
        yield lambda n: progress.advance(task, n)


def _use_cuda_device(backend, local_rank: int) -> None:
    """On CUDA, local rank r takes device r modulo the devices there are (``--device cuda``'s "cuda")."""
    if backend.device == "cuda":
        import torch
        torch.cuda.set_device(local_rank % torch.cuda.device_count())


def _run_local(args, loaded: _Loaded, workers: int):
    """``--workers N``: this process is rank 0 of a local gloo group of N; the merged per-image results."""
    from .sharded import merge, shard_bounds, take
    from .sharded_group import (Member, cpu_share, gather, join_group, payload_of, raise_errors, set_cpus,
                                start_local, stop_local, wait_for)

    start = time.perf_counter()
    shards = [take(loaded.x, first, stop) for first, stop in shard_bounds(count_of(loaded.x), workers)]
    store, processes = start_local(shards, local_worker, (str(args.net), list(args.timesteps), args.float_snn,
                                                          args.backend, args.device))
    member = Member(0, workers, 0, workers)
    try:
        wait_for(store, "joined", processes)
        join_group(member, store)
        previous = set_cpus(cpu_share(0, workers))
        try:
            with _progress(loaded, count_of(shards[0]), args.timesteps, f", shard 1 of {workers}") as advance:
                payload = payload_of(lambda: _shard_results(loaded.net, shards[0], args.timesteps, args.float_snn,
                                                            loaded.backend, advance))
        finally:
            set_cpus(previous)
        wait_for(store, "done", processes)
        payloads = gather(payload, member)
    finally:
        stop_local(processes)
    results = merge([part for part in raise_errors(payloads) if part is not None])
    _report_time(workers, count_of(loaded.x), time.perf_counter() - start)
    return results


def local_worker(rank: int, world: int, port: int, cpus, shard, net_path: str, timesteps: list[int],
                 float_snn: bool, backend_name: str, device: str) -> None:
    """A spawned process of ``--workers N``: join rank 0's group, evaluate ``shard``, send the results."""
    from .sharded_group import Member, client_store, gather, join_group, mark, payload_of, set_cpus

    set_cpus(cpus)
    store = client_store(port, world)
    member = Member(rank, world, rank, world)
    mark(store, "joined", rank)
    join_group(member, store)

    def compute():
        from .backends import select_backend
        from .networks import load_network

        backend = select_backend(backend_name, device)
        _use_cuda_device(backend, rank)
        return _shard_results(load_network(net_path), shard, timesteps, float_snn, backend, None)

    payload = payload_of(compute)
    mark(store, "done", rank)
    gather(payload, member)


def _shard_results(net, shard, timesteps: list[int], float_snn: bool, backend, advance):
    """The per-image results of one shard (None for an empty one)."""
    from .sharded import image_results

    return image_results(net, shard, timesteps, float_snn, advance, backend) if count_of(shard) else None


def _run_in_group(args, member) -> None:
    """Under torchrun: join its group, evaluate this rank's shard; rank 0 merges and reports."""
    from .sharded import merge, shard_bounds, take
    from .sharded_group import cpu_share, gather, join_group, payload_of, raise_errors, set_cpus

    start = time.perf_counter()
    join_group(member)
    loaded = []

    def compute():
        loaded.append(_load(args, warn=member.rank == 0))
        first, stop = shard_bounds(count_of(loaded[0].x), member.world)[member.rank]
        shard = take(loaded[0].x, first, stop)
        _use_cuda_device(loaded[0].backend, member.local_rank)
        previous = set_cpus(cpu_share(member.local_rank, member.local_world))
        try:
            bar = (_progress(loaded[0], stop - first, args.timesteps, f", shard 1 of {member.world}")
                   if member.rank == 0 else contextlib.nullcontext(None))
            with bar as advance:
                return _shard_results(loaded[0].net, shard, args.timesteps, args.float_snn, loaded[0].backend,
                                      advance)
        finally:
            set_cpus(previous)

    payload = payload_of(compute)
    payloads = gather(payload, member)
    if member.rank != 0:
        raise_errors([payload])
        return
    results = merge([part for part in raise_errors(payloads) if part is not None])
    _report_time(member.world, count_of(loaded[0].x), time.perf_counter() - start)
    _finish(args, loaded[0], results)


def _report_time(workers: int, images: int, seconds: float) -> None:
    print(f"ecc-hw evaluate: {workers} workers: {images} images in {seconds:.2f} s wall (start, shards and merge)",
          file=sys.stderr)


def _finish(args, loaded: _Loaded, results) -> None:
    """The report from the per-image results: the table, the diagnosis, the JSON and the plots."""
    from rich.console import Console
    from rich.table import Table

    from . import evaluate
    from .progress import image_progress
    from .sharded import report_from

    report = report_from(loaded.net, results, loaded.y)
    diagnoses = None
    if args.layers:
        with image_progress() as progress:
            diagnoses = _diagnose(loaded.net, loaded.x, args.layers, progress)
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
