"""The ``ecc-hw`` command: convert, evaluate, generate, build, run.

Bad input (files, options, models) ends with one line on stderr naming what is wrong and exit status 2;
nothing is left half-written. A library error that names an option field (``UserError.field``) is
written with that option's flag.
"""
from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .variants import InputKind, LambdaMode, Memory, Method, PoolMode, Topology, TreMode

# Library option fields (UserError.field) whose flag's dest has another name.
FIELD_DESTS = {"window_us": "window", "with_float_snn": "float_snn"}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}': every T must be >= 1")
    return values


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape such as C,H,W (positive integers)")
    return values


def _convert(args) -> None:
    from . import data
    from .convert import ConvertOptions
    from .input_range import calibration_warnings
    from .networks import convert_model, is_graph, save_network

    options = ConvertOptions(
        lambda_mode=args.lambda_mode, percentile=args.percentile, kappa=args.kappa, eta=args.eta,
        weight_bits=args.weight_bits, input_bits=args.input_bits, timesteps=args.timesteps,
        pool_mode=args.pool_mode, tre_mode=args.tre_mode, input_shape=args.input_shape, method=args.method,
        alpha=args.alpha, input_kind=args.input_kind, topology=args.topology,
        bias_calibration=args.bias_calibration, bias_calibration_images=args.bias_calibration_images,
        channel_lambdas=args.channel_lambdas)
    options.check()
    if options.input_kind == InputKind.EVENTS:
        _convert_events(args, options)
        return
    x, _ = data.load_npz(args.calib, need_labels=False)
    for warning in calibration_warnings(x, args.calib):
        print(f"ecc-hw convert: warning: {warning}", file=sys.stderr)
    net = convert_model(args.model, x, options, calibration_source=str(args.calib).split("/")[-1])
    save_network(net, args.output)
    from rich.console import Console
    if is_graph(net):
        graph = net.graph
        edges = sum(len(layer.edges) for layer in graph.layers)
        calibrated = f", biases calibrated for T={net.bias_calibrated_for}" if net.bias_calibrated_for else ""
        summary = (f"graph network, {len(graph.layers)} layers, {edges} edges, {len(net.network.max_pools)} max-pool "
                   f"nodes, input {net.network.input.layout}{calibrated}, thresholds "
                   + ", ".join(str(layer.threshold) for layer in graph.spiking_layers))
    else:
        summary = (f"{len(net.layers)} layers, lambdas " + ", ".join(f"{v:.4g}" for v in net.lambdas)
                   + ", thresholds " + ", ".join(str(layer.threshold) for layer in net.spiking_layers))
    Console(stderr=True).print(f"wrote [bold]{args.output}[/]: {summary}")


def _pair(text: str) -> tuple[int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not H,W (two positive integers)")
    return values


def _convert_events(args, options) -> None:
    """``convert --input events``: calibrate on event recordings (docs/events.md)."""
    from dataclasses import replace

    from . import params
    from .convert import convert
    from .events.preprocess import DEFAULT_WINDOW_US, EventConfig, load_any

    if args.sensor is None:
        raise UserError("--input events needs --sensor H,W (the recordings' sensor size)")
    config = EventConfig(sensor=args.sensor, size=args.size or args.sensor,
                         window_us=int(round((args.window or DEFAULT_WINDOW_US / 1e6) * 1e6)),
                         count_scale=args.count_scale)
    config.check()
    calib = load_any(args.calib, config.sensor)
    x = calib.cnn_inputs(config)
    options = replace(options, event_count_scale=config.count_scale)
    net = convert(args.model, x, options, calibration_source=str(args.calib).split("/")[-1])
    net = replace(net, input_kind=InputKind.EVENTS, events=config.to_json())
    params.save(net, args.output)
    print(f"wrote {args.output}: event input {config.size[1]}x{config.size[0]}x2, {net.timesteps} frames "
          f"of {config.window_us / net.timesteps / 1000:.3g} ms, thresholds "
          + ", ".join(str(layer.threshold) for layer in net.spiking_layers), file=sys.stderr)


def _evaluate(args) -> None:
    from .evaluate_command import run

    run(args)


def _train(args) -> None:
    from .train import train

    train(args.act, args.output, levels=args.levels, l1=args.l1, epochs=args.epochs, batch=args.batch,
          lr=args.lr, seed=args.seed, log=lambda line: print(line, file=sys.stderr))


def _compare(args) -> None:
    from .compare import run_cli

    run_cli(args)


def _generate(args) -> None:
    from ecc_hw.rtl_gen.generate import generate

    from .networks import load_network

    manifest = generate(load_network(args.net), args.output, lanes=args.lanes, trace=args.trace,
                        timesteps=args.timesteps, memory=Memory(args.memory))
    print(f"wrote {args.output}/ecc_snn.v and manifest.json ({manifest.get('lanes')} lanes)")


def _verify(args) -> None:
    from ecc_hw.sim.cli_verify import run

    status = run(args)
    if status:
        sys.exit(status)


def _build(args) -> None:
    from ecc_hw.boards.build import build, print_report

    report = build(args.net, args.board, args.output, lanes=args.lanes, clock_mhz=args.clock,
                   data=args.data, limit=args.limit, timesteps=args.timesteps, seed=args.seed,
                   baud=args.baud, memory=args.memory)
    print_report(report)
    if not report["timing_met"]:
        raise UserError(f"timing not met: Fmax {report['fmax_mhz']:.1f} MHz < {report['clock_mhz']:g} MHz "
                        f"(use a lower --clock)")
    if report["memories_in_logic"]:
        raise UserError(f"memories mapped to logic: {', '.join(report['memories_in_logic'])}")


def _run_board(args) -> None:
    from ecc_hw.boards.run import run_cli

    run_cli(args)


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error form: one line naming the option, exit status 2.

    It also records the flag of every option it takes, by dest, for :meth:`flag`.
    """

    def __init__(self, *args, **kwargs):
        self.flags: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Exit with status 2 and one line: the message and where to find the usage."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_argument(self, *args, **kwargs):
        """``ArgumentParser.add_argument``, remembering the option's longest flag under its dest."""
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            self.flags[action.dest] = max(action.option_strings, key=len)
        return action

    def flag(self, field: str) -> str:
        """The flag of the library option ``field`` (e.g. ``weight_bits`` -> ``--weight-bits``); the
        field itself where this command has no such option."""
        return self.flags.get(FIELD_DESTS.get(field, field), field)


def _command(commands, name: str, run, **kwargs) -> OneLineParser:
    """A subcommand whose parse result runs ``run(args)`` and names option fields by its own flags."""
    command = commands.add_parser(name, **kwargs)
    command.set_defaults(run=run, flag=command.flag)
    return command


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(prog="ecc-hw", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    convert = _command(commands, "convert", _convert, help="ONNX CNN + calibration images -> parameter folder")
    convert.add_argument("model", help="ONNX model file")
    convert.add_argument("--calib", required=True, help=".npz with x (N, C, H, W) calibration images")
    convert.add_argument("-o", "--output", required=True, help="parameter folder to write")
    convert.add_argument("--lambda", dest="lambda_mode", default=LambdaMode.MAX.value, choices=LambdaMode.values())
    convert.add_argument("--percentile", type=float, default=99.99)
    convert.add_argument("--kappa", type=float, default=100.0)
    convert.add_argument("--eta", type=float, default=0.5)
    convert.add_argument("--weight-bits", type=int, default=8)
    convert.add_argument("--input-bits", type=int, default=8)
    convert.add_argument("--timesteps", type=int, default=128, help="T the hardware is built for")
    convert.add_argument("--pool", dest="pool_mode", default=PoolMode.COMPOSE.value, choices=PoolMode.values())
    convert.add_argument("--tre", dest="tre_mode", default=TreMode.SPREAD.value, choices=TreMode.values())
    convert.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                         help="the input's shape without the batch, in the model's own layout")
    convert.add_argument("--topology", default=Topology.AUTO.value, choices=Topology.values(),
                         help="chain or graph converter; auto: the chain converter where it takes the model")
    convert.add_argument("--bias-calibration", type=int, default=None, metavar="T",
                         help="graphs: calibrate the biases for T steps (default: graphs with ecc, the "
                              "--timesteps T); 0: off (docs/graphs.md)")
    convert.add_argument("--channel-lambdas", action="store_true",
                         help="graphs: one lambda per channel (docs/graphs.md)")
    convert.add_argument("--bias-calibration-images", type=int, default=200, metavar="N",
                         help="calibration images the bias calibration runs on (default 200)")
    convert.add_argument("--method", default=Method.ECC.value, choices=Method.values(),
                         help="conversion method (docs/methods.md); radix: --timesteps = bits")
    convert.add_argument("--alpha", type=float, default=0.8, help="rmp: threshold scale alpha")
    convert.add_argument("--input", dest="input_kind", default=InputKind.IMAGE.value, choices=InputKind.values(),
                         help="events: --calib is event recordings (docs/events.md)")
    convert.add_argument("--sensor", type=_pair, default=None, metavar="H,W", help="events: sensor size")
    convert.add_argument("--size", type=_pair, default=None, metavar="H,W",
                         help="events: down-scaled size (default: the sensor's)")
    convert.add_argument("--window", type=float, default=None, help="events: window in seconds (1.3)")
    convert.add_argument("--count-scale", type=int, default=16,
                         help="events: C, the count per pixel and polarity that stands for 1.0")

    evaluate = _command(commands, "evaluate", _evaluate, help="accuracy, SynOps and energy of CNN and SNN")
    evaluate.add_argument("net", help="parameter folder")
    evaluate.add_argument("--data", required=True, help=".npz with x (N, C, H, W) and y (N,); event input: an event "
                          ".npz, an event file or DIR/<label>/")
    evaluate.add_argument("--timesteps", type=_int_list, default=None, metavar="T,T,...",
                          help="default 16,32,64,128 (event input: the parameter file's T)")
    evaluate.add_argument("--json", help="write the report here")
    evaluate.add_argument("--plot", help="write accuracy and SynOps against T here (PNG)")
    evaluate.add_argument("--float-snn", action="store_true", help="also run the float ECC-SNN")
    evaluate.add_argument("--limit", type=int, default=0, help="use only the first N images")
    evaluate.add_argument("--layers", type=int, default=0, metavar="T",
                          help="graphs: per-layer diagnosis at T (rate x lambda against the CNN)")
    evaluate.add_argument("--layers-plot", default=None, metavar="PNG", help="write the per-layer diagnosis here")
    evaluate.add_argument("--backend", default="numpy", choices=("numpy", "torch"),
                          help="golden model and float SNN in NumPy (default) or PyTorch (bit-exact; docs/backends.md)")
    evaluate.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch backend: cpu or cuda")
    evaluate.add_argument("--workers", type=int, default=1, metavar="N",
                          help="split the images over N local processes (torch.distributed, gloo); under torchrun: "
                          "its group (docs/backends.md)")

    train = _command(commands, "train", _train, help="train the bundled MNIST architecture (needs torch) -> ONNX")
    train.add_argument("--act", required=True, choices=("relu", "relu6", "clip", "qcfs"))
    train.add_argument("--levels", type=int, default=16, help="QCFS levels L (a power of two, L = 2^T)")
    train.add_argument("--l1", type=float, default=0.0, help="activation L1 coefficient (SynOps-weighted)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch", type=int, default=64)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("-o", "--output", required=True, help="ONNX file to write (and OUTPUT.json)")

    compare = _command(commands, "compare", _compare, help="the paper's comparisons: PNG plots + JSON tables")
    compare.add_argument("figures", nargs="*", default=["all"],
                         help="3a, 3d, 5, 6, radix, l1 or all (default)")
    compare.add_argument("-o", "--output", required=True, help="folder for NAME.json and NAME.png")
    compare.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    compare.add_argument("--calib", default=None, help="calibration .npz (default: bundled)")
    compare.add_argument("--data", default=None, help="test .npz (default: bundled 1,000 digits)")
    compare.add_argument("--fixtures", default=None, help="folder of the trained models (default: bundled)")
    compare.add_argument("--timesteps", type=_int_list, default=None, metavar="T,T,...")
    compare.add_argument("--limit", type=int, default=0, help="use only the first N test images")

    generate = _command(commands, "generate", _generate, help="parameter folder -> Verilog + manifest")
    generate.add_argument("net", help="parameter folder")
    generate.add_argument("-o", "--output", required=True, help="output folder")
    generate.add_argument("--lanes", type=int, default=8)
    generate.add_argument("--timesteps", type=int, default=None, help="default: the parameter file's")
    generate.add_argument("--trace", action="store_true", help="add the spike trace stream")
    generate.add_argument("--memory", default=Memory.BRAM.value, choices=Memory.values(),
                          help="banks in dual-port block RAM (default) or in iCE40 UP5K SPRAM (half rate)")

    verify = _command(commands, "verify", _verify, help="co-simulate the generated design against the golden "
                                                        "and cycle models (Icarus or Verilator)")
    verify.add_argument("net", help="parameter folder")
    verify.add_argument("--data", required=True, help=".npz with x (N, C, H, W)")
    verify.add_argument("-n", type=int, default=5, help="number of images (the first N)")
    verify.add_argument("--sim", default="verilator", choices=("icarus", "verilator"))
    verify.add_argument("--lanes", type=int, default=8)
    verify.add_argument("--timesteps", type=int, default=None, help="default: the parameter file's")
    verify.add_argument("--json", help="write the report here")
    verify.add_argument("--seed", type=int, default=1, help="seed of the idle gaps and back-pressure")
    verify.add_argument("--idle", type=int, default=64, help="input idle gap probability, per 256")
    verify.add_argument("--stall", type=int, default=64, help="output back-pressure probability, per 256")
    verify.add_argument("--build-dir", default=None, help="build cache (default build/sim)")
    verify.add_argument("--memory", default=Memory.BRAM.value, choices=Memory.values(),
                        help="the design's banks: block RAM or iCE40 UP5K SPRAM (as for the iCEBreaker)")

    build = _command(commands, "build", _build, help="parameter folder -> FPGA bitstream + report (YoWASP tools)")
    build.add_argument("net", help="parameter folder")
    build.add_argument("--board", required=True, choices=("icebreaker", "ulx3s-85f"))
    build.add_argument("--lanes", type=int, default=8)
    build.add_argument("-o", "--output", required=True, help="output folder")
    build.add_argument("--clock", type=float, default=None, help="MHz (default: the board's)")
    build.add_argument("--baud", type=int, default=None, help="UART baud rate (default 1000000)")
    build.add_argument("--timesteps", type=int, default=None, help="default: the parameter file's")
    build.add_argument("--data", default=None,
                       help=".npz for the cycle model (default: the bundled calibration file)")
    build.add_argument("--limit", type=int, default=200, help="images for the cycle model")
    build.add_argument("--seed", type=int, default=1, help="nextpnr seed")
    build.add_argument("--memory", choices=Memory.values(), default=None,
                       help="the banks' memory (default: block RAM where the network fits, else the "
                            "board's SPRAM)")

    run = _command(commands, "run", _run_board, help="stream images to a board over UART and check the answers")
    run.add_argument("net", help="parameter folder (the one the board was built from)")
    run.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    run.add_argument("--data", required=True, help=".npz with x (N, C, H, W) and y (N,)")
    run.add_argument("-n", "--count", type=int, default=100, help="images to send")
    run.add_argument("--lanes", type=int, default=8, help="lanes of the build (for the cycle check)")
    run.add_argument("--memory", default=Memory.BRAM.value, choices=Memory.values(),
                     help="banks of the build (for the cycle check): the \"memory\" of its report.json")
    run.add_argument("--baud", type=int, default=1_000_000)
    run.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as error:
        print(f"ecc-hw {args.command}: error: {error.naming(args.flag)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
