"""The bench's verdict: the record against the golden model and the cycle model.

``expected_for`` runs the golden model (every spike of every layer at every step, the output
membranes, the predictions) and the cycle model (each image's gap-free cycle count); ``check``
compares a ``records.Record`` with that, counts the mismatches of each kind and finds the first one
(``Mismatch``). ``VerificationFailed`` is what a bench raises when something disagrees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecc_hw.variants import Memory

from .records import Record


class VerificationFailed(Exception):
    """The bench saw a mismatch; ``report`` holds the JSON report."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclass
class Expected:
    """What the golden model and the cycle model say for N images."""

    spikes: list
    output_membrane: np.ndarray
    predictions: np.ndarray
    cycles: np.ndarray


def expected_for(params, x_q: np.ndarray, lanes: int, timesteps: int, memory: Memory = Memory.BRAM) -> Expected:
    """The golden model's spikes, membranes and predictions and the cycle model's counts for ``x_q``
    (a graph network: ``x_q`` its quantised rows, the spikes of its layers then its max-pool nodes)."""
    from ecc_hw.graph.store import GraphParams

    if isinstance(params, GraphParams):
        return _graph_expected(params, x_q, lanes, timesteps, memory)
    from ecc_hw import golden
    from ecc_hw.cycle_model import cycles_per_image

    ref = golden.run(params, x_q, timesteps, record_spikes=True)
    cycles = cycles_per_image(params, ref, lanes, timesteps, x_q=x_q, memory=memory)
    return Expected([s.copy() for s in ref.spikes], ref.output_membrane.copy(), ref.predictions.copy(),
                    np.asarray(cycles, dtype=np.int64))


def _graph_expected(params, x_q: np.ndarray, lanes: int, timesteps: int, memory: Memory) -> Expected:
    """``expected_for`` of a graph network (``ecc_hw.graph.golden``; ``ecc_hw.graph.cycle_model``, or with
    SPRAM banks ``ecc_hw.graph.spram_cycle_model``)."""
    from ecc_hw.graph.cycle_model import cycles_per_image
    from ecc_hw.graph.spram_cycle_model import spram_cycles_per_image
    from ecc_hw.graph.golden import run_graph
    from ecc_hw.graph.network import LAYER, MAX_POOL, Source
    from ecc_hw.graph.radix import run_radix_graph
    from ecc_hw.variants import Coding, Method

    graph = params.graph
    rows = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1)
    binary = Method(params.method).coding is Coding.BINARY
    if binary:
        ref = run_radix_graph(graph, rows, timesteps, record_spikes=True)
    else:
        ref = run_graph(graph, rows, timesteps, params.tre_mode, record_spikes=True)
    sources = ([Source(LAYER, layer.index) for layer in graph.spiking_layers]
               + [Source(MAX_POOL, node.index) for node in graph.network.max_pools])
    model = spram_cycles_per_image if memory == Memory.SPRAM else cycles_per_image
    cycles = model(graph, ref.spikes, rows, lanes, timesteps, binary)
    return Expected([ref.spikes[source].copy() for source in sources], ref.output_membrane.copy(),
                    ref.predictions.copy(), np.asarray(cycles, dtype=np.int64))


@dataclass
class Mismatch:
    """One disagreement: where (image, layer, timestep, neuron), what was expected and what came."""

    image: int
    kind: str                 # spike, membrane, class value, prediction, cycles, protocol
    layer: int | None = None  # 1-based
    timestep: int | None = None
    neuron: int | None = None
    expected: object = None
    got: object = None

    def __str__(self):
        where = [f"image {self.image}"]
        for name in ("layer", "timestep", "neuron"):
            if getattr(self, name) is not None:
                where.append(f"{name} {getattr(self, name)}")
        if self.kind == "protocol":
            return f"{', '.join(where)}: {self.got}"
        return f"{', '.join(where)}: {self.kind} expected {self.expected}, got {self.got}"

    def as_dict(self) -> dict:
        """The mismatch as plain JSON values."""
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.__dict__.items()}


@dataclass
class Comparison:
    """Mismatch counts of each kind and the first mismatch (None: everything agrees)."""

    spike_mismatches: int
    membrane_mismatches: int
    prediction_mismatches: int
    cycle_mismatches: int
    protocol_errors: int
    first: Mismatch | None

    @property
    def ok(self) -> bool:
        """Whether everything agrees."""
        return self.first is None


def check(record: Record, expected: Expected, first_image: int = 0) -> Comparison:
    """Compare everything; ``first`` is the earliest mismatch (lowest image, then the earliest step,
    then layer and neuron; then membranes, prediction, cycles)."""
    count = len(record.cycles)
    per_image = []
    spike_diff = [got != want for got, want in zip(record.spikes, expected.spikes)]
    spike_mismatches = int(sum(d.sum() for d in spike_diff))
    membrane_diff = record.output_membrane != expected.output_membrane
    prediction_diff = record.predictions != expected.predictions
    cycle_diff = record.gap_free_cycles != expected.cycles
    for i in range(count):
        found = None
        protocol = [m for img, m in record.protocol_errors if img == i]
        if protocol:
            found = Mismatch(first_image + i, "protocol", got=protocol[0])
        if found is None:
            best = None
            for n, diff in enumerate(spike_diff):
                hits = np.argwhere(diff[:, i, :])
                if len(hits):
                    t, neuron = (int(v) for v in hits[0])
                    if best is None or (t, n) < (best[0], best[1]):
                        best = (t, n, neuron)
            if best is not None:
                t, n, neuron = best
                found = Mismatch(first_image + i, "spike", n + 1, t + 1, neuron,
                                 int(expected.spikes[n][t, i, neuron]), int(record.spikes[n][t, i, neuron]))
        if found is None and membrane_diff[i].any():
            k = int(np.flatnonzero(membrane_diff[i])[0])
            found = Mismatch(first_image + i, "output membrane", len(record.spikes) + 1, None, k,
                             int(expected.output_membrane[i, k]), int(record.output_membrane[i, k]))
        if found is None and prediction_diff[i]:
            found = Mismatch(first_image + i, "prediction", expected=int(expected.predictions[i]),
                             got=int(record.predictions[i]))
        if found is None and record.class_values[i] != expected.output_membrane[i, expected.predictions[i]]:
            found = Mismatch(first_image + i, "class word value",
                             expected=int(expected.output_membrane[i, expected.predictions[i]]),
                             got=int(record.class_values[i]))
        if found is None and cycle_diff[i]:
            found = Mismatch(first_image + i, "cycles (stalls subtracted)", expected=int(expected.cycles[i]),
                             got=int(record.gap_free_cycles[i]))
        per_image.append(found)
    first = next((m for m in per_image if m is not None), None)
    return Comparison(spike_mismatches, int(membrane_diff.sum()), int(prediction_diff.sum()),
                      int(cycle_diff.sum()), len(record.protocol_errors), first)
