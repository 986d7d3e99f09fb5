"""The float (unquantised) ECC-SNN of docs/arithmetic.md 1.5: the integer network's real-valued reference."""
from __future__ import annotations

import numpy as np

from .arithmetic import current_normalised, float_tre_charges, normalised_input
from .backends import is_torch
from .if_network import IFLayer, IFResult, batch_chunk, concatenate, run_chunks, simulate
from .linear import LinearMap
from .params import NetworkParams


def _normalised_maps(params: NetworkParams) -> list[LinearMap]:
    """The layers' maps with W'_n and b'_n of CN (docs/arithmetic.md 1.4) over the folded float weights."""
    maps = []
    for index, layer in enumerate(params.layers):
        if layer.float_weight is None:
            raise ValueError("this parameter file holds no float weights (converted without them)")
        linear = LinearMap.of(layer)
        linear.weight, linear.bias = current_normalised(layer.float_weight, layer.float_bias, params.kappa,
                                                        params.lambdas[index], params.lambdas[index + 1])
        maps.append(linear)
    return maps


def run(params: NetworkParams, x: np.ndarray, timesteps: int, record_spikes: bool = False,
        backend=None) -> IFResult:
    """Float ECC-SNN on raw inputs ``x`` (N, C, H, W): thresholds kappa, TRE eta*kappa/T per step; float64
    on the NumPy or a torch ``backend`` (whose sums may round in another order)."""
    maps = _normalised_maps(params)
    scaled = normalised_input(x, params.lambdas[0], params.input_signed)
    steps, initial = float_tre_charges(params.tre_mode, params.eta * params.kappa, timesteps)
    layers = [IFLayer(linear, params.kappa, steps, initial, np.float64, np.float64) for linear in maps[:-1]]
    fan_outs = [linear.fan_out() for linear in maps[1:]]
    chunk = batch_chunk(timesteps, max(linear.neurons for linear in maps[:-1]))

    def run_chunk(start: int, stop: int) -> IFResult:
        images = scaled[start:stop]
        current = maps[0].apply(images.reshape(len(images), -1))
        return simulate(current, layers, maps[-1], fan_outs, timesteps, record_spikes)

    if is_torch(backend):
        from .backends import torch_chain
        return concatenate(torch_chain.run_rate(scaled, layers, maps[0], maps[-1], fan_outs, timesteps, False,
                                                record_spikes, backend, chunk))
    return run_chunks(run_chunk, len(scaled), chunk)
