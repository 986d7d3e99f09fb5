# amaranth: UnusedElaboratable=no
"""The components' constructors: keyword-only, and each wrong argument refused with its exact message.

The units built in this file are never elaborated (hence the first line); those that the components
build inside rtl_gen are elaborated by ``_elaborate``, so no UnusedElaboratable warning is expected."""
import re

import pytest
from amaranth.hdl import Fragment, Signal, unsigned
from amaranth.lib import data, stream

from ecc_hw.rtl_gen.banks import BankMux, MembraneBanks
from ecc_hw.rtl_gen.controller import Controller, StepCounter
from ecc_hw.rtl_gen.engine import IntegrationEngine
from ecc_hw.rtl_gen.fire import FireSweep
from ecc_hw.rtl_gen.fire_stage import FireStage
from ecc_hw.rtl_gen.input_feed import InputFeed, pixel_shape
from ecc_hw.rtl_gen.lane import SynapseLane
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.rtl_gen.readout import Readout, result_layout
from ecc_hw.rtl_gen.trace import SpikeTrace
from ecc_hw.testing import random_network

LAYOUT = data.StructLayout({"group": 1, "maddr": 3, "waddr": 3, "value": unsigned(1)})
LANE = dict(weights=[1, -2, 3], weight_bits=4, update_layout=LAYOUT, width=8, depth=8, lane=0, lanes=2, channels=3)
SWEEP = dict(channels=3, height=2, width=2, lanes=2, threshold=5, bias=[1, -2, 0], membrane_width=8)


def _elaborate(*units):
    """Elaborate ``units`` (memories and units the components built but these tests never use)."""
    for unit in units:
        Fragment.get(unit, None)


def _refused(kind, message, build, **arguments):
    with pytest.raises(kind, match="^" + re.escape(message) + "$"):
        build(**arguments)


@pytest.mark.parametrize("change,kind,message", [
    ({"weights": "abc"}, TypeError, "SynapseLane: weights must be a list of integers, not 'abc'"),
    ({"weights": [1, 2.5]}, TypeError, "SynapseLane: weights must be a list of integers, not one holding 2.5"),
    ({"weight_bits": True}, TypeError, "SynapseLane: weight_bits must be an integer, not True"),
    ({"weight_bits": 1}, ValueError, "SynapseLane: weight_bits must be at least 2, not 1"),
    ({"weights": [7, -8, 8]}, ValueError, "SynapseLane: weight 8 at address 2 does not fit in 4 bits"),
    ({"update_layout": {"group": 1}}, TypeError,
     "SynapseLane: update_layout must be a StructLayout, not {'group': 1}"),
    ({"update_layout": data.StructLayout({"group": 1, "maddr": 3})}, ValueError,
     "SynapseLane: update_layout must have the fields group, maddr, waddr, value, not group, maddr"),
    ({"width": 1}, ValueError, "SynapseLane: width must be at least 2, not 1"),
    ({"depth": 1}, ValueError, "SynapseLane: depth must be at least 2, not 1"),
    ({"lanes": 0}, ValueError, "SynapseLane: lanes must be at least 1, not 0"),
    ({"lane": 2}, ValueError, "SynapseLane: lane must be below lanes (2), not 2"),
    ({"channels": "3"}, TypeError, "SynapseLane: channels must be an integer, not '3'"),
    ({"max_shift": -1}, ValueError, "SynapseLane: max_shift must be at least 0, not -1"),
    ({"registered_read": 1}, TypeError, "SynapseLane: registered_read must be a bool, not 1"),
])
def test_synapse_lane_checks_its_parameters(change, kind, message):
    _refused(kind, message, SynapseLane, **{**LANE, **change})


@pytest.mark.parametrize("change,kind,message", [
    ({"channels": 0}, ValueError, "FireSweep: channels must be at least 1, not 0"),
    ({"height": 1.5}, TypeError, "FireSweep: height must be an integer, not 1.5"),
    ({"threshold": 0}, ValueError, "FireSweep: threshold must be at least 1, not 0"),
    ({"bias": (1, 2)}, ValueError, "FireSweep: bias must have one entry per channel (3) or per neuron (12), not 2"),
    ({"bias": None}, TypeError, "FireSweep: bias must be a list of integers, not None"),
    ({"membrane_width": 1}, ValueError, "FireSweep: membrane_width must be at least 2, not 1"),
    ({"tre_quotient": -1}, ValueError, "FireSweep: tre_quotient must be at least 0, not -1"),
    ({"current_width": "8"}, TypeError, "FireSweep: current_width must be an integer, not '8'"),
    ({"binary_steps": -2}, ValueError, "FireSweep: binary_steps must be at least 0, not -2"),
    ({"interval": 3}, ValueError, "FireSweep: interval must be 1 or 2, not 3"),
])
def test_fire_sweep_checks_its_parameters(change, kind, message):
    _refused(kind, message, FireSweep, **{**SWEEP, **change})


def test_lane_and_sweep_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        SynapseLane(*LANE.values())
    with pytest.raises(TypeError, match="positional"):
        FireSweep(*SWEEP.values())


def test_fire_sweep_members_follow_its_numbers():
    rate = FireSweep(**SWEEP, tre_quotient=4, current_width=6)
    assert rate.charge_shape == unsigned(3) and rate.groups == 2 and rate.depth_used == 8
    assert rate.bias_width == 3 and len(rate.i_data) == 2 and not hasattr(rate, "shift")
    binary = FireSweep(**SWEEP, binary_steps=4, interval=2)
    assert hasattr(binary, "shift") and not hasattr(binary, "charge") and not hasattr(binary, "i_data")
    assert binary.spike_layout == data.StructLayout({"group": 1, "y": 1, "x": 1, "mask": 2})


@pytest.fixture(scope="module")
def parts():
    """The components of a small rate-coded design with image input, built as the top builds them."""
    plan = make_plan(random_network(2, timesteps=3), 2)
    layers = plan.layers
    step = StepCounter(timesteps=3, binary=False)
    engines = [IntegrationEngine(target=layer.target, value_shape=pixel_shape(plan) if layer.index == 0
                                 else unsigned(1), weight_bits=plan.weight_bits,
                                 width=plan.current_width if layer.index == 0 else layer.membrane_width,
                                 lanes=2, interval=1) for layer in layers]
    stages = [FireStage(layer=layer, lanes=2, timesteps=3, binary=False, tre_mode="spread", interval=1,
                        current_width=None, walker=engines[layer.index + 1].walker) for layer in plan.spiking]
    banks = [MembraneBanks(target=layer.target, width=layer.membrane_width, lanes=2) for layer in layers]
    source = stream.Signature(pixel_shape(plan)).create()
    feed = InputFeed(source=source, walkers=[engines[0].walker], input_shape=plan.input_shape, events=False)
    result = stream.Signature(result_layout(layers[-1])).create()
    readout = Readout(layer=layers[-1], lanes=2, bias_scale=3, banks=banks[-1], result=result)
    yield dict(plan=plan, step=step, engines=engines, stages=stages, banks=banks, feed=feed, readout=readout,
               source=source, result=result)
    _elaborate(*[unit for engine in engines for unit in [engine.walker, *engine.lanes]],
               *[unit for stage in stages for unit in (stage.sweep, stage.buffer)],
               *[mem for bank in banks for mem in bank.memories.values()], readout.bias_rom)


def test_membrane_banks_check_their_parameters(parts):
    target = parts["plan"].layers[1].target
    later = MembraneBanks(target=target, width=8, lanes=2, current=True)     # a graph layer's input edge
    assert sorted(later.memories) == ["current2_0", "current2_1"]
    _refused(TypeError, "MembraneBanks: target must be a TargetPlan, not None", MembraneBanks,
             target=None, width=8, lanes=2)
    _refused(TypeError, "MembraneBanks: stack must be a SpramStackUnit or None, not 'x'", MembraneBanks,
             target=target, width=8, lanes=2, stack="x")
    _refused(ValueError, "MembraneBanks: width must be at least 2, not 0", MembraneBanks,
             target=target, width=0, lanes=2)


def test_bank_mux_checks_its_parameters(parts):
    banks, engines, readout = parts["banks"], parts["engines"], parts["readout"]
    clear = dict(clearing=Signal(), clear_addr=Signal(4))
    _refused(TypeError, "BankMux: clear_value must be an integer, not 0.5", BankMux,
             banks=banks[1], clear_value=0.5, engine=engines[1], **clear)
    _refused(ValueError, "BankMux: read_addr and reading go together", BankMux,
             banks=banks[-1], clear_value=0, engine=engines[-1], read_addr=readout.read_addr, **clear)
    _refused(ValueError, "BankMux: the banks need a user (engine or sweep)", BankMux,
             banks=banks[1], clear_value=0, **clear)
    _refused(TypeError, "BankMux: clearing must be a Value, not 1", BankMux,
             banks=banks[1], clear_value=0, engine=engines[1], clearing=1, clear_addr=Signal(4))
    wide = MembraneBanks(target=parts["plan"].layers[-1].target, width=8, lanes=1)
    _refused(ValueError, f"BankMux: {len(engines[-1].lanes)} lanes for 1 banks", BankMux,
             banks=wide, clear_value=0, engine=engines[-1], **clear)
    _elaborate(*wide.memories.values())


def test_engine_and_stage_check_their_parameters(parts):
    plan, engines = parts["plan"], parts["engines"]
    target = plan.layers[1].target
    engine = dict(target=target, value_shape=unsigned(1), weight_bits=4, width=8, lanes=2, interval=1)
    _refused(ValueError, "IntegrationEngine: shift must be given exactly when max_shift > 0",
             IntegrationEngine, **engine, max_shift=2)
    _refused(TypeError, "IntegrationEngine: value_shape must be a Shape, not 1", IntegrationEngine,
             **{**engine, "value_shape": 1})
    _refused(ValueError, "IntegrationEngine: interval must be 1 or 2, not 0", IntegrationEngine,
             **{**engine, "interval": 0})
    stage = dict(layer=plan.layers[0], lanes=2, timesteps=3, binary=False, tre_mode="spread", interval=1,
                 current_width=None, walker=engines[1].walker)
    _refused(ValueError, f"FireStage: layer {len(plan.layers)} does not spike", FireStage,
             **{**stage, "layer": plan.layers[-1]})
    _refused(ValueError, "FireStage: tre_mode must be 'spread' or 'initial', not 'both'", FireStage,
             **{**stage, "tre_mode": "both"})
    _refused(ValueError, "FireStage: shift must be given exactly with binary coding and timesteps > 1",
             FireStage, **{**stage, "binary": True})
    _refused(ValueError, "FireStage: give exactly one of walker and event_layout", FireStage,
             **{**stage, "walker": None})


def test_feed_readout_and_trace_check_their_parameters(parts):
    plan, banks, source, result = parts["plan"], parts["banks"], parts["source"], parts["result"]
    feed = dict(source=source, walkers=[parts["engines"][0].walker], input_shape=plan.input_shape, events=False)
    _refused(TypeError, "InputFeed: source must be a stream interface, not None", InputFeed,
             **{**feed, "source": None})
    _refused(ValueError, "InputFeed: walkers must be a non-empty list", InputFeed, **{**feed, "walkers": []})
    _refused(ValueError, "InputFeed: input_shape must be (C, H, W), not (1, 2)", InputFeed,
             **{**feed, "input_shape": (1, 2)})
    _refused(ValueError, "InputFeed: input_shape size must be at least 1, not 0", InputFeed,
             **{**feed, "input_shape": (1, 0, 2)})
    readout = dict(layer=plan.layers[-1], lanes=2, bias_scale=3, banks=banks[-1], result=result)
    _refused(ValueError, "Readout: layer 1 spikes; the readout reads the output layer", Readout,
             **{**readout, "layer": plan.layers[0]})
    _refused(ValueError, "Readout: banks must be the output layer's", Readout, **{**readout, "banks": banks[0]})
    _refused(ValueError, "Readout: bias_scale must be at least 1, not 0", Readout, **{**readout, "bias_scale": 0})
    sweeps = [stage.sweep for stage in parts["stages"]]
    trace = stream.Signature(data.StructLayout({"layer": 1, "t": 2, "neuron": 8, "mask": 2})).create()
    _refused(TypeError, "SpikeTrace: sweeps must be a list of Component, not ()", SpikeTrace, sweeps=(), t=Signal(2),
             trace=trace)
    _refused(TypeError, "SpikeTrace: t must be a Value, not 3", SpikeTrace, sweeps=sweeps, t=3, trace=trace)


def test_controller_checks_its_parameters(parts):
    _refused(ValueError, "StepCounter: timesteps must be at least 1, not 0", StepCounter, timesteps=0,
             binary=False)
    _refused(TypeError, "StepCounter: binary must be a bool, not 'yes'", StepCounter, timesteps=2, binary="yes")
    control = dict(step=parts["step"], clear_depth=8, tre_mode="spread", binary=False, events=False, interval=1,
                   engines=parts["engines"], stages=parts["stages"], feed=parts["feed"], readout=parts["readout"])
    engines = len(parts["engines"])
    _refused(ValueError, f"Controller: {engines - 1} engines for {engines - 1} spiking layers (one engine per layer)",
             Controller, **{**control, "engines": parts["engines"][1:]})
    _refused(TypeError, "Controller: interval must be an integer, not 2.0", Controller,
             **{**control, "interval": 2.0})
    _refused(TypeError, "Controller: stages must be a list of FireStage, not one holding None", Controller,
             **{**control, "stages": [None]})
    _refused(ValueError, "Controller: clear_depth must be at least 1, not 0", Controller,
             **{**control, "clear_depth": 0})
    assert list(Controller(**control).codes) == ["CLEAR", "LOAD", "LOAD_DRAIN"] + [
        name for stage in parts["stages"] for name in (f"FIRE{stage.number}", f"INTEGRATE{stage.number + 1}")
    ] + list(Readout.STATES)
