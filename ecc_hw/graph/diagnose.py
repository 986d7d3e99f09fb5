"""Per-layer diagnosis of a converted graph network: how well each spiking layer's rate tells the CNN's activation.

For spiking layer n (n = 1..N-1) of an ``IntegerGraph`` the integer SNN (``ecc_hw.graph.golden``, docs/arithmetic.md
5.5) is run for T steps on images x, and each neuron's spike count c (0..T) gives the SNN's estimate of the CNN's
activation a_n (1.3: ``a_n ~ lambda_n * c / T``)

    r = c / T * lambda_n,        lambda_n = graph.lambdas.layers[n - 1],

compared with a_n from the CNN's float64 forward pass (``ecc_hw.graph.forward``; a clipped ReLU's activation is
clipped there). Every figure is taken over all M = images x neurons pairs (image, neuron) of the layer, pooled;
``LayerDiagnosis`` defines each one. Max-pool nodes (5.4) can be diagnosed the same way, with their count c (the
spikes a node sent: the running maximum of its window's counts), their lambda (their source's) and the CNN's
max-pool output.

Images are processed in chunks of ``CHUNK``: per chunk, the spike counts (``bias_calibration.source_rates``) and the
CNN's activations (``bias_calibration.cnn_sources``) are reduced to sums and moments, so no spike train outlives its
chunk. The moments are merged with Chan et al.'s pairwise update, so the correlation does not suffer from the
cancellation of raw sums of squares.
"""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..atomic import write_bytes
from ..variants import TreMode
from .bias_calibration import cnn_sources, source_rates
from .network import LAYER, Source
from .quantise import IntegerGraph

CHUNK = 32  # images whose spike trains and activations are held at once
FRACTIONS = (("saturated_fraction", "saturated (count = T)"),
             ("wrongly_silent_fraction", "wrongly silent (count = 0, CNN >= lambda / T)"),
             ("wrongly_firing_fraction", "wrongly firing (count > 0, CNN <= 0)"))
LABEL_CHARACTERS = 28  # of a layer's name on the plot's axis


@dataclass(frozen=True)
class LayerDiagnosis:
    """How spiking layer (``kind`` "layer") or max-pool node (``kind`` "max_pool") ``index`` named ``name``, with
    ``neurons`` neurons and ``lambda_n``, did on ``images`` images at T = ``timesteps``. With c a neuron's spike
    count on an image, r = c / T * lambda_n and a its CNN activation, over all M = images x neurons pairs:

    - ``correlation``: the Pearson correlation of r with a. When r or a is constant over the M pairs (the
      correlation is 0 / 0), it is 1.0 if r equals a on every pair (both constant and equal: a layer silent in
      the CNN and the SNN, or saturated in both at a clip of lambda_n) and 0.0 otherwise (one of them carries no
      information about the other);
    - ``mean_error``: mean(r - a) / lambda_n (positive: the SNN fires more than the CNN says);
    - ``mean_abs_error``: mean(|r - a|) / lambda_n;
    - ``saturated_fraction``: the fraction of pairs with c = T (the neuron fired at every step: the SNN's largest
      rate, whatever the CNN says, so that an activation above lambda_n is lost);
    - ``wrongly_silent_fraction``: the fraction of pairs with c = 0 while a >= lambda_n / T (the CNN's activation
      is worth at least one spike);
    - ``wrongly_firing_fraction``: the fraction of pairs with c > 0 while a <= 0 (the CNN's ReLU is off).
    """

    kind: str
    index: int
    name: str
    neurons: int
    images: int
    timesteps: int
    lambda_n: float
    correlation: float
    mean_error: float
    mean_abs_error: float
    saturated_fraction: float
    wrongly_silent_fraction: float
    wrongly_firing_fraction: float

    @property
    def label(self) -> str:
        """"n name" for a layer, "pP name" for a max-pool node, the name cut to ``LABEL_CHARACTERS``."""
        prefix = str(self.index) if self.kind == LAYER else f"p{self.index}"
        name = self.name if len(self.name) <= LABEL_CHARACTERS else "..." + self.name[3 - LABEL_CHARACTERS:]
        return f"{prefix} {name}"


class _Tally:
    """The running sums of one layer over image chunks, r and a in units of lambda_n (Pearson's r does not
    depend on the unit): samples, means, co-moments, error sums, the pairs counted by each fraction, and
    the extremes that say whether r or a is constant."""

    def __init__(self):
        self.samples = 0
        self.mean_rate = self.mean_activation = 0.0
        self.rate_moment = self.activation_moment = self.co_moment = 0.0
        self.error_sum = self.abs_error_sum = 0.0
        self.saturated = self.wrongly_silent = self.wrongly_firing = 0
        self.count_range = (math.inf, -math.inf)
        self.activation_range = (math.inf, -math.inf)
        self.rate_equals_activation = True

    def add(self, counts: np.ndarray, activations: np.ndarray, lambda_n: float, timesteps: int) -> None:
        """Fold in one chunk: spike counts (int64) and CNN activations of the same (images, neurons)."""
        rate = counts / timesteps
        activation = activations / lambda_n
        samples = rate.size
        mean_rate, mean_activation = float(rate.mean()), float(activation.mean())
        rate_deviation, activation_deviation = rate - mean_rate, activation - mean_activation
        total = self.samples + samples
        rate_step, activation_step = mean_rate - self.mean_rate, mean_activation - self.mean_activation
        weight = self.samples * samples / total
        self.rate_moment += float(np.sum(rate_deviation ** 2)) + rate_step ** 2 * weight
        self.activation_moment += float(np.sum(activation_deviation ** 2)) + activation_step ** 2 * weight
        self.co_moment += float(np.sum(rate_deviation * activation_deviation)) + rate_step * activation_step * weight
        self.mean_rate += rate_step * samples / total
        self.mean_activation += activation_step * samples / total
        self.samples = total
        error = counts / timesteps * lambda_n - activations
        self.error_sum += float(np.sum(error))
        self.abs_error_sum += float(np.sum(np.abs(error)))
        self.saturated += int(np.count_nonzero(counts == timesteps))
        self.wrongly_silent += int(np.count_nonzero((counts == 0) & (activations >= lambda_n / timesteps)))
        self.wrongly_firing += int(np.count_nonzero((counts > 0) & (activations <= 0)))
        self.count_range = (min(self.count_range[0], int(counts.min())), max(self.count_range[1], int(counts.max())))
        self.activation_range = (min(self.activation_range[0], float(activations.min())),
                                 max(self.activation_range[1], float(activations.max())))
        self.rate_equals_activation &= not np.any(error)

    def correlation(self) -> float:
        """Pearson's r, or 1.0 / 0.0 when r or a is constant (``LayerDiagnosis``)."""
        if self.count_range[0] == self.count_range[1] or self.activation_range[0] == self.activation_range[1]:
            return 1.0 if self.rate_equals_activation else 0.0
        value = self.co_moment / math.sqrt(self.rate_moment * self.activation_moment)
        return min(1.0, max(-1.0, value))

    def diagnosis(self, kind: str, index: int, name: str, neurons: int, images: int, timesteps: int,
                  lambda_n: float) -> LayerDiagnosis:
        """The figures of ``LayerDiagnosis`` from the sums."""
        return LayerDiagnosis(kind, index, name, neurons, images, timesteps, float(lambda_n), self.correlation(),
                              self.error_sum / self.samples / lambda_n, self.abs_error_sum / self.samples / lambda_n,
                              self.saturated / self.samples, self.wrongly_silent / self.samples,
                              self.wrongly_firing / self.samples)


def _diagnosed_sources(graph: IntegerGraph, include_max_pools: bool) -> list[tuple[Source, str, int, float]]:
    """(source, name, neurons, lambda) of every spiking layer and, if asked, max-pool node, in schedule order."""
    network = graph.network
    entries = []
    for source in network.schedule():
        if source.kind == LAYER:
            layer = network.layer(source.index)
            entries.append((source, layer.name, layer.neurons, graph.lambdas.layers[source.index - 1]))
        elif include_max_pools:
            pool = network.max_pools[source.index - 1]
            entries.append((source, pool.name, pool.neurons, graph.lambdas.max_pools[source.index - 1]))
    return entries


def diagnose_layers(graph: IntegerGraph, x: np.ndarray, timesteps: int, tre_mode: TreMode = TreMode.SPREAD,
                    include_max_pools: bool = False) -> list[LayerDiagnosis]:
    """One ``LayerDiagnosis`` per spiking layer 1..N-1 (and, with ``include_max_pools``, per max-pool node, each
    right after its source layer) of ``graph`` run for T = ``timesteps`` with ``tre_mode`` on the images ``x``
    (B >= 1, in the model's own input layout; ``graph.quantise_input`` gives the SNN's input). Deterministic; the
    images are processed ``CHUNK`` at a time and only sums are kept."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        raise ValueError("diagnose_layers needs at least one image")
    entries = _diagnosed_sources(graph, include_max_pools)
    tallies = {source: _Tally() for source, _, _, _ in entries}
    for start in range(0, len(x), CHUNK):
        chunk = x[start:start + CHUNK]
        rates = source_rates(graph, graph.quantise_input(chunk), timesteps, tre_mode)
        activations = cnn_sources(graph.network, chunk)
        for source, _, _, lambda_n in entries:
            counts = np.rint(rates[source] * timesteps).astype(np.int64)
            tallies[source].add(counts, activations[source], lambda_n, timesteps)
    return [tallies[source].diagnosis(source.kind, source.index, name, neurons, len(x), int(timesteps), lambda_n)
            for source, name, neurons, lambda_n in entries]


def diagnosis_rows(diagnoses: list[LayerDiagnosis]) -> list[dict]:
    """The diagnoses as JSON-ready dicts (plain str, int and finite float values), one per entry, in order,
    with the fields of ``LayerDiagnosis``."""
    return [asdict(diagnosis) for diagnosis in diagnoses]


def write_diagnosis_plot(diagnoses: list[LayerDiagnosis], path, title: str) -> None:
    """A PNG at ``path`` (written atomically, byte-deterministic) with three panels over the entries: the
    correlation of r with a; the mean error and mean |error| over lambda (bars); the three fractions in percent
    (grouped bars)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    if not diagnoses:
        raise ValueError("write_diagnosis_plot needs at least one diagnosis")
    positions = np.arange(len(diagnoses))
    figure, (correlation_axis, error_axis, fraction_axis) = pyplot.subplots(
        3, 1, sharex=True, figsize=(max(6.0, 0.5 * len(diagnoses) + 3.0), 9.0))
    correlations = [d.correlation for d in diagnoses]
    correlation_axis.plot(positions, correlations, "o-", color="black")
    correlation_axis.set_ylim(min(0.0, *correlations) - 0.05, 1.05)
    correlation_axis.set_ylabel("correlation of r with a")
    correlation_axis.grid(axis="y", linewidth=0.5)
    correlation_axis.set_title(f"{title}\nr = spike count / T x lambda, a = CNN activation", fontsize="medium")
    error_axis.bar(positions - 0.2, [d.mean_error for d in diagnoses], 0.4, color="tab:orange",
                   label="mean (r - a) / lambda")
    error_axis.bar(positions + 0.2, [d.mean_abs_error for d in diagnoses], 0.4, color="tab:blue",
                   label="mean |r - a| / lambda")
    error_axis.axhline(0.0, color="grey", linewidth=0.8)
    error_axis.set_ylabel("error / lambda")
    error_axis.legend(loc="best", fontsize="small")
    width = 0.8 / len(FRACTIONS)
    for offset, (field, label) in enumerate(FRACTIONS):
        shift = (offset - (len(FRACTIONS) - 1) / 2) * width
        fraction_axis.bar(positions + shift, [100 * getattr(d, field) for d in diagnoses], width, label=label)
    fraction_axis.set_ylabel("image x neuron pairs (%)")
    fraction_axis.legend(loc="best", fontsize="small")
    fraction_axis.set_xticks(positions, [d.label for d in diagnoses], rotation=35, ha="right", fontsize="small")
    fraction_axis.set_xlabel("spiking layer (p: max-pool node)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    pyplot.close(figure)
    write_bytes(path, buffer.getvalue())


__all__ = ["LayerDiagnosis", "diagnose_layers", "diagnosis_rows", "write_diagnosis_plot"]
