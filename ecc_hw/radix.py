"""Golden model of the binary-coded (radix) IF network: ``--method radix`` (docs/methods.md).

A spike of layer n at step t = 1..T weighs 2^(T-t). Per image, layer by layer:
```
V_1 = Wq_1 (*) x_q + bq_1                                   # constant current, integrated once
V_n = bq_n + sum_t 2^(T-t) * (Wq_n (*) s_{n-1}(t))          # n = 2..N (bq_n: initial charge)
for t in 1..T (spiking layers):                             # MSB first, compare-and-subtract
    s_n(t) = V_n >= theta_n * 2^(T-t);  V_n -= theta_n * 2^(T-t) * s_n(t)
prediction = argmax V_N, lowest index on ties
```
Bounds (hardware widths, ``ecc_hw.arithmetic.membrane_bounds``): with S_n the largest sum of |weights| over a neuron's
fan-in (composed pool cells counted k^2 times), |V_1| <= S_1 u + |bq_1| and, since a neuron's weighted
input sum_t 2^(T-t) s(t) is in 0..2^T - 1, |V_n| <= S_n (2^T - 1) + |bq_n| for n >= 2, at all times:
every partial sum of the weighted input is within S_n (2^T - 1), and compare-and-subtract moves a
membrane towards 0 without crossing it.

So q_n = sum_t 2^(T-t) s_n(t) = clip(floor(V_n / theta_n), 0, 2^T - 1): the integer QCFS ANN
(``quantised_ann``) exactly. With hardware in mind, the weighted sum is Horner's rule
``U <- 2 U + Wq_n (*) s_{n-1}(t)`` over the steps (no multiplier); layer n fires once layer n-1 has
delivered all T steps, so the latency is T steps per layer.
"""
from __future__ import annotations

import numpy as np

from .backends import is_torch
from .arithmetic import membrane_bounds, radix_levels, radix_step
from .if_network import GoldenResult
from .linear import LinearMap
from .params import NetworkParams
from .variants import Method


def _check(params: NetworkParams, timesteps: int) -> None:
    if params.method != Method.RADIX:
        raise ValueError(f"parameter file of method '{params.method}', not radix")
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")


def _fire(membrane: np.ndarray, threshold: int, timesteps: int) -> np.ndarray:
    """Compare-and-subtract, MSB first: bool spikes (T, B, neurons); ``membrane`` is consumed."""
    spikes = np.empty((timesteps, *membrane.shape), dtype=bool)
    for t in range(1, timesteps + 1):
        level = threshold << (timesteps - t)
        np.greater_equal(membrane, level, out=spikes[t - 1])
        membrane -= level * spikes[t - 1]
    return spikes


def _weighted_input(linear: LinearMap, spikes: np.ndarray, timesteps: int) -> np.ndarray:
    """sum_t 2^(T-t) (W (*) s(t)), exact int64, for spikes (T, B, inputs)."""
    batch = spikes.shape[1]
    per_step = linear.apply(spikes.reshape(timesteps * batch, -1), dtype=np.float64, with_bias=False)
    per_step = np.rint(per_step).astype(np.int64).reshape(timesteps, batch, -1)
    total = np.zeros(per_step.shape[1:], dtype=np.int64)
    for t in range(timesteps):          # Horner: U <- 2U + input(t)
        total = 2 * total + per_step[t]
    return total


def _bias(linear: LinearMap) -> np.ndarray:
    return np.rint(linear.bias_per_neuron(np.float64)).astype(np.int64)


def run(params: NetworkParams, x_q: np.ndarray, timesteps: int | None = None,
        record_spikes: bool = False, backend=None) -> GoldenResult:
    """Run the radix network on quantised inputs ``x_q`` (N, C, H, W) with T bits per layer (on the NumPy or,
    bit-exact, a torch ``backend``)."""
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    _check(params, timesteps)
    x_q = np.asarray(x_q, dtype=np.int64)
    if is_torch(backend):
        from .backends import torch_chain
        output, spike_counts, step_counts, synops, recorded = torch_chain.run_radix(
            params, x_q, timesteps, record_spikes, backend, membrane_bounds(params, timesteps))
        return GoldenResult(predictions=np.argmax(output, axis=1), output_membrane=output, spike_counts=spike_counts,
                            step_counts=step_counts, synops=synops, spikes=recorded)
    batch = len(x_q)
    maps = [LinearMap.of(layer) for layer in params.layers]
    fan_outs = [m.fan_out() for m in maps[1:]]
    spike_counts = np.zeros((batch, len(params.spiking_layers)), dtype=np.int64)
    step_counts = np.zeros((batch, timesteps, len(params.spiking_layers)), dtype=np.int64)
    synops = np.zeros(batch, dtype=np.int64)
    recorded = [] if record_spikes else None
    spikes = None
    bounds = membrane_bounds(params, timesteps)
    for n, (layer, linear) in enumerate(zip(params.layers, maps)):
        if n == 0:
            membrane = np.rint(linear.apply(x_q.reshape(batch, -1), dtype=np.float64)).astype(np.int64)
        else:
            membrane = _weighted_input(linear, spikes, timesteps) + _bias(linear)
        assert np.abs(membrane).max(initial=0) <= bounds[n], f"layer {n + 1}: membrane beyond its bound"
        if not layer.spiking:
            output = membrane
            break
        spikes = _fire(membrane, int(layer.threshold), timesteps)
        per_step = np.count_nonzero(spikes, axis=2)
        step_counts[:, :, n] = per_step.T
        spike_counts[:, n] = per_step.sum(axis=0)
        synops += spikes.sum(axis=0, dtype=np.int64) @ fan_outs[n].astype(np.int64)
        if record_spikes:
            recorded.append(spikes)
    return GoldenResult(predictions=np.argmax(output, axis=1), output_membrane=output,
                        spike_counts=spike_counts, step_counts=step_counts, synops=synops,
                        spikes=recorded)


def quantised_ann(params: NetworkParams, x_q: np.ndarray, timesteps: int | None = None):
    """The integer QCFS ANN: q_n = clip(floor((Wq_n (*) q_{n-1} + bq_n) / theta_n), 0, 2^T - 1).

    Returns (output (N, classes) int64, [q_1 .. q_{N-1}] int64 (N, neurons)).
    """
    timesteps = params.timesteps if timesteps is None else int(timesteps)
    _check(params, timesteps)
    value = np.asarray(x_q, dtype=np.int64).reshape(len(x_q), -1)
    levels = []
    for layer in params.layers:
        linear = LinearMap.of(layer)
        current = np.rint(linear.apply(value, dtype=np.float64)).astype(np.int64)
        if not layer.spiking:
            return current, levels
        value = np.clip(np.floor_divide(current, layer.threshold), 0, radix_levels(timesteps) - 1)
        levels.append(value)
    raise ValueError("no output layer")


def qcfs_forward(params: NetworkParams, x: np.ndarray, levels: int | None = None):
    """The float QCFS ANN the model was trained as (float64, the folded CNN weights):

    a_n = D_n * clip(floor(z_n / D_n + 1/2), 0, L - 1), D_n = lambda_n / (L - 1), L = 2^T by default.
    Returns (logits (N, classes), [a_n / D_n as int64 (N, neurons)]).
    """
    levels = radix_levels(params.timesteps) if levels is None else int(levels)
    value = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    out = []
    for index, layer in enumerate(params.layers):
        linear = LinearMap.of(layer)
        linear.weight, linear.bias = layer.float_weight, layer.float_bias
        z = linear.apply(value, dtype=np.float64)
        if not layer.spiking:
            return z, out
        step = radix_step(params.lambdas[index + 1], levels)
        q = np.clip(np.floor(z / step + 0.5), 0, levels - 1)
        out.append(q.astype(np.int64))
        value = q * step
    raise ValueError("no output layer")
