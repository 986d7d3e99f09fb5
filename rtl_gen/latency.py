"""The schedule's constants as the hardware declares them (the manifest's ``cycle_model`` section).

Each constant is a sum of latencies that the components declare next to the registers causing them;
``ecc_hw.cycle_model`` counts cycles with its own copy of these numbers (pure Python, no RTL import), and
``tests/test_cycle_model.py`` checks that the two agree.
"""
from __future__ import annotations

from .controller import Controller
from .fire import FireSweep
from .lane import SynapseLane
from .graph_plan import GraphPlan
from .plan import HardwarePlan
from .spike_buffer import SpikeBuffer
from .readout import Readout
from .walker import FanOutWalker


def fire_overhead(interval: int) -> int:
    """Cycles of a fire phase beyond its ``interval * D - (interval - 1)`` read cycles: the start
    pulse's cycle, the sweep's stages after the last read, and the cycle in which the controller sees
    the sweep idle and moves on (the integration begins in the next)."""
    drain = FireSweep.DUAL_PORT_DRAIN if interval == 1 else FireSweep.SINGLE_PORT_DRAIN
    return FireSweep.START_LATENCY + drain + Controller.STATE_CHANGE


def lane_drain(interval: int) -> int:
    """Cycles from an integration's last issued update to the next phase's first cycle: the walker's
    output register, then the lane's stages up to and including the write (the controller sees the
    engine idle in the cycle after it, where the next phase begins)."""
    stages = SynapseLane.DUAL_PORT_STAGES if interval == 1 else SynapseLane.SINGLE_PORT_STAGES
    return FanOutWalker.OUTPUT_LATENCY + stages


def cycle_constants(plan: HardwarePlan) -> dict:
    """The schedule's constants of ``plan``'s design, under the cycle model's names."""
    interval = plan.issue_interval
    # The readout and the next frame's LOAD are entered through the state register: they begin the
    # cycle after the one in which the controller sees the last integration's engine idle.
    extra = {"frame_entry": Controller.STATE_CHANGE} if plan.events else {}
    return {**extra, "clear_cycles": plan.clear_depth, "issue_interval": interval,
            "fire_overhead": fire_overhead(interval), "lane_drain": lane_drain(interval),
            "readout_entry": Controller.STATE_CHANGE, "readout_per_neuron": Readout.CYCLES_PER_NEURON,
            "class_words": Readout.CLASS_WORDS,
            "sweep_words": [layer.target.depth_used for layer in plan.spiking]}


def graph_cycle_constants(plan: GraphPlan) -> dict:
    """The schedule's constants of a graph design (``ecc_hw.graph.cycle_model`` keeps its own copy)."""
    interval = plan.issue_interval
    constants = {"clear_cycles": plan.clear_depth, "issue_interval": interval,
                 "fire_overhead": fire_overhead(interval), "lane_drain": lane_drain(interval),
                 "readout_entry": Controller.STATE_CHANGE,
                 "readout_per_neuron": Readout.CYCLES_PER_NEURON, "class_words": Readout.CLASS_WORDS,
                 "buffer_replay_latency": SpikeBuffer.REPLAY_LATENCY, "rewind_latency": SpikeBuffer.REWIND_LATENCY,
                 "sweep_words": [layer.layer.target.depth_used for layer in plan.spiking]}
    if plan.spram is not None:   # the layers' buffers are single-ported (the max-pool nodes' stay dual-ported)
        constants["layer_rewind_latency"] = SpikeBuffer.SINGLE_PORT_REWIND_LATENCY
    if plan.pools:
        from .max_pool_unit import MaxPoolUnit

        constants["pool_spike_latency"] = MaxPoolUnit.SPIKE_LATENCY
        constants["pool_busy_latency"] = MaxPoolUnit.BUSY_LATENCY
    return constants
