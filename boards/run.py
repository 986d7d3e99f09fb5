"""``ecc-hw run``: stream images to a board over UART (pyserial); accuracy, images/s, agreement
with the golden model (predictions, membranes and cycle counts). Chain and graph parameter folders (a
graph's images are sent as the channel-major rows of ``IntegerGraph.quantise_input``)."""
from __future__ import annotations

import time

import numpy as np

from ecc_hw.errors import UserError

from . import framing


def run_images(port, x_q: np.ndarray, on_result=None, retries: int = 2) -> list:
    """Send each image (stop-and-wait) over an open pyserial-like ``port``; return the
    :class:`framing.Result` list. An error frame is retried ``retries`` times."""
    results = []
    for image in x_q:
        frame = framing.encode_image(image)
        for attempt in range(retries + 1):
            port.write(frame)
            port.flush()
            try:
                result = framing.decode_answer(port.read)
                break
            except framing.FrameError:
                if attempt == retries:
                    raise
                time.sleep(0.05)
                port.reset_input_buffer()
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def run_cli(args) -> None:
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed: pip install -e '.[boards]'") from None
    from rich.console import Console
    from rich.progress import Progress

    from ecc_hw import data
    from ecc_hw.networks import is_graph, load_network
    from ecc_hw.variants import InputKind, Memory

    net = load_network(args.net)
    graph = is_graph(net)
    if graph and Memory(args.memory) != Memory.BRAM:
        raise UserError(f"{args.memory}: graph networks are built with dual-port block RAM banks only on a board",
                        field="memory")
    if not graph and net.input_kind == InputKind.EVENTS:
        raise UserError(f"{args.net}: event input runs in simulation only (ecc-hw verify)")
    x, y = data.load_npz(args.data, input_shape=net.network.input.model_shape if graph else net.input_shape)
    x, y = x[:args.count], y[:args.count]
    x_q = net.graph.quantise_input(x) if graph else _chain_inputs(net, x)
    console = Console(stderr=True)
    try:
        port = serial.serial_for_url(args.port, baudrate=args.baud, timeout=args.timeout)
    except (serial.SerialException, ValueError) as error:
        raise UserError(f"{args.port}: cannot open ({error})") from None
    start = time.monotonic()
    with port, Progress(console=console, transient=True) as progress:
        task = progress.add_task("images", total=len(x_q))
        try:
            results = run_images(port, x_q, lambda _r: progress.advance(task))
        except framing.FrameError as error:
            raise UserError(f"{args.port}: {error}") from None
    seconds = time.monotonic() - start
    gold, model = _golden(net, x_q, args.lanes, args.memory)
    predictions = np.array([r.prediction for r in results])
    membranes = np.stack([r.membranes for r in results])
    cycles = np.array([r.cycles for r in results])
    agree = float(np.mean(predictions == gold.predictions))
    same_v = bool(np.array_equal(membranes, gold.output_membrane))
    print(f"{len(results)} images: accuracy {100 * np.mean(predictions == y):.2f}% "
          f"(golden {100 * np.mean(gold.predictions == y):.2f}%), agreement with the golden model "
          f"{100 * agree:.2f}%, membranes {'identical' if same_v else 'DIFFER'}, "
          f"cycles {'= model' if np.array_equal(cycles, model) else '!= model'} "
          f"(mean {cycles.mean():,.0f}), {len(results) / seconds:.1f} images/s over the link")
    if agree < 1 or not same_v:
        raise UserError("the board disagrees with the golden model")


def _chain_inputs(net, x) -> np.ndarray:
    from ecc_hw import golden
    return golden.quantize_input(net, x)


def _golden(net, x_q, lanes: int, memory):
    """(golden result with ``predictions`` and ``output_membrane``, cycles per image of the cycle model)."""
    from ecc_hw.networks import is_graph

    if is_graph(net):
        from ecc_hw.graph.cycle_model import cycles_per_image
        from ecc_hw.graph.golden import run_graph
        ref = run_graph(net.graph, x_q, net.timesteps, net.tre_mode, record_spikes=True)
        return ref, cycles_per_image(net.graph, ref.spikes, x_q, lanes, net.timesteps)
    from ecc_hw import golden
    from ecc_hw.cycle_model import cycles_per_image
    gold = golden.run(net, x_q, record_spikes=True)
    return gold, cycles_per_image(net, gold, lanes, x_q=x_q, memory=memory)
