"""``ecc-hw verify``: the command's work, called by ``ecc_hw.cli`` (which only parses the options).

Reads the parameter file and the first N inputs (images, or event recordings binned into the file's
T frames as ``ecc-hw evaluate`` does), checks the options, runs ``verify.verify`` and prints one
summary line; the JSON report goes to ``--json``. Exit status 0 when everything agrees, 1 on a
mismatch; bad input raises ``UserError`` (one line, status 2).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ecc_hw.errors import UserError
from ecc_hw.variants import InputKind

from .check import VerificationFailed
from .network_tb import Stimulus
from .simulators import check_simulator
from .verify import verify


def _inputs(net, args) -> np.ndarray:
    """The first ``args.n`` inputs of ``args.data`` as the golden model takes them; image data whose range
    does not match the calibration's is refused, or warned about on stderr (``ecc_hw.input_range``)."""
    from ecc_hw import data, golden
    from ecc_hw.input_range import check_input_range
    from ecc_hw.networks import is_graph

    if is_graph(net):      # the model's own layout in the file; the design takes channel-major rows
        x, _ = data.load_npz(args.data, need_labels=False, input_shape=net.network.input.model_shape)
        for warning in check_input_range(net, x, args.data):
            print(f"ecc-hw verify: warning: {warning}", file=sys.stderr)
        return net.graph.quantise_input(x[:args.n])
    if net.input_kind == InputKind.EVENTS:     # event files or an event .npz, binned as the golden model takes them
        from ecc_hw.events.preprocess import EventConfig, load_any

        recordings = load_any(args.data, tuple(net.events["sensor"])).limit(args.n)
        return recordings.spike_frames(EventConfig.from_json(net.events), net.timesteps).astype(np.int64)
    x, _ = data.load_npz(args.data, need_labels=False, input_shape=net.input_shape)
    for warning in check_input_range(net, x, args.data):
        print(f"ecc-hw verify: warning: {warning}", file=sys.stderr)
    return golden.quantize_input(net, x[:args.n])


def run(args) -> int:
    """``ecc-hw verify``: returns the exit status (0 all agree, 1 a mismatch)."""
    from ecc_hw.atomic import write_text
    from ecc_hw.networks import load_network
    from ecc_hw.rtl_gen.errors import HardwareError

    net = load_network(args.net)
    if args.n < 1:
        raise UserError(f"must be >= 1, got {args.n}", field="n")
    for name in ("idle", "stall"):
        if not 0 <= getattr(args, name) <= 256:
            raise UserError(f"must be in 0..256 (a probability in 1/256), got {getattr(args, name)}", field=name)
    x_q = _inputs(net, args)
    stimulus = Stimulus(args.seed, args.idle, args.stall)
    build_root = Path(args.build_dir) if args.build_dir else None
    check_simulator(args.sim)
    try:
        report = verify(net, x_q, args.sim, args.lanes, args.timesteps, stimulus, build_root,
                        log=lambda line: print(line, flush=True), memory=args.memory)
        status = 0
        print(f"{args.sim}: {report['images']} images, P={report['lanes']}, T={report['timesteps']}: "
              f"0 spike, 0 prediction, 0 membrane, 0 cycle mismatches; "
              f"{report['simulated_cycles']:,} cycles in {report['sim_seconds']:.1f} s "
              f"({report['cycles_per_second']:,} cycles/s)")
    except HardwareError as error:
        raise UserError(str(error)) from None
    except VerificationFailed as failure:
        report, status = failure.report, 1
        print(f"ecc-hw verify: FAILED: {failure}", flush=True)
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return status
