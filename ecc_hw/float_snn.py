"""The float (unquantised) ECC-SNN of docs/arithmetic.md 1.5: the integer network's real-valued reference."""
from __future__ import annotations

import numpy as np

from .if_network import IFLayer, IFResult, batch_chunk, run_chunks, simulate
from .linear import LinearMap
from .params import NetworkParams


def _normalised_maps(params: NetworkParams) -> list[LinearMap]:
    """W'_n = kappa * lambda_{n-1} / lambda_n * W_n and b'_n = kappa * b_n / lambda_n (docs/arithmetic.md 1.4)."""
    maps = []
    for index, layer in enumerate(params.layers):
        if layer.float_weight is None:
            raise ValueError("this parameter file holds no float weights (converted without them)")
        scale = params.kappa / params.lambdas[index + 1]
        linear = LinearMap.of(layer)
        linear.weight = scale * params.lambdas[index] * layer.float_weight
        linear.bias = scale * layer.float_bias
        maps.append(linear)
    return maps


def run(params: NetworkParams, x: np.ndarray, timesteps: int, record_spikes: bool = False) -> IFResult:
    """Float ECC-SNN on raw inputs ``x`` (N, C, H, W): thresholds kappa, TRE eta*kappa/T per step."""
    maps = _normalised_maps(params)
    low = -1.0 if params.input_signed else 0.0
    scaled = np.clip(np.asarray(x, dtype=np.float64) / params.lambdas[0], low, 1.0)
    charge = params.eta * params.kappa
    if params.tre_mode == "initial":
        steps, initial = np.zeros(timesteps), charge
    else:
        steps, initial = np.full(timesteps, charge / timesteps), 0.0
    layers = [IFLayer(linear, params.kappa, steps, initial, np.float64, np.float64) for linear in maps[:-1]]
    fan_outs = [linear.fan_out() for linear in maps[1:]]
    chunk = batch_chunk(timesteps, max(linear.neurons for linear in maps[:-1]))

    def run_chunk(start: int, stop: int) -> IFResult:
        images = scaled[start:stop]
        current = maps[0].apply(images.reshape(len(images), -1))
        return simulate(current, layers, maps[-1], fan_outs, timesteps, record_spikes)

    return run_chunks(run_chunk, len(scaled), chunk)
