"""Chain networks on the PyTorch backend: the engine of ``ecc_hw.if_network.simulate`` (integer golden model,
image or event input, and the float SNN) and the radix model of ``ecc_hw.radix``, bit-exact with NumPy on
the integer models.

The layers are the NumPy code's (``IFLayer``: map, threshold, TRE charges, and the map and membrane dtypes
its bounds chose), so both backends run the same integers in the same dtypes; here every layer runs
channel-major on ``conv2d`` / products, a chunk of images of NumPy's size at a time.
"""
from __future__ import annotations

import numpy as np

from ..if_network import IFResult
from .torch_device import device_of, exact_mode, tensor, to_numpy, torch_module
from .torch_fire import compare_and_subtract, fire, horner, largest_current, synops
from .torch_maps import TorchMap
from .torch_threads import map_chunks


def _first_current(first: TorchMap, images, exact: bool, events: bool, timesteps: int):
    """Layer 1's current: (B, n) once per image, or with event input (T, B, n) per frame; rounded to int64
    in the integer model (float64 maps, exact as NumPy's)."""
    torch = torch_module()
    batch = images.shape[0]
    if events:
        flat = images.reshape(batch * timesteps, -1)
        current = first.apply(flat, np.float64, with_bias=True).reshape(batch, timesteps, -1).transpose(0, 1)
    else:
        current = first.apply(images.reshape(batch, -1), np.float64, with_bias=True)
    return torch.round(current).to(torch.int64) if exact else current


def _simulate(first_current, layers, maps, output: TorchMap, fan_outs, timesteps: int, exact: bool,
              record_spikes: bool) -> IFResult:
    """One chunk: ``ecc_hw.if_network.simulate`` in torch (channel-major throughout)."""
    torch = torch_module()
    batch = first_current.shape[-2]
    device = first_current.device
    spike_counts = np.zeros((batch, len(layers)), dtype=np.int64)
    step_counts = np.zeros((batch, timesteps, len(layers)), dtype=np.int64)
    total_synops = torch.zeros(batch, dtype=torch.int64, device=device)
    max_abs = np.zeros(len(layers))
    recorded = [] if record_spikes else None
    spikes = counts = None
    for n, (layer, linear) in enumerate(zip(layers, maps)):
        if n == 0:
            current = first_current
        else:
            flat = spikes.reshape(timesteps * batch, -1)
            current = linear.apply(flat, layer.exact_dtype, with_bias=True).reshape(timesteps, batch, -1)
        max_abs[n] = largest_current(current, layer.step_charge)
        spikes = fire(current, layer.threshold, layer.step_charge, layer.initial_charge, timesteps,
                      layer.membrane_dtype)
        as_bytes = spikes.view(torch.uint8)  # sums over bytes run about twice as fast as over bool
        per_step = to_numpy(as_bytes.sum(dim=2, dtype=torch.int32)).astype(np.int64)  # (T, B)
        step_counts[:, :, n] = per_step.T
        spike_counts[:, n] = per_step.sum(axis=0)
        counts = as_bytes.sum(dim=0, dtype=torch.int32)
        total_synops += synops(counts, fan_outs[n])
        if record_spikes:
            recorded.append(to_numpy(spikes))
    membrane = output.apply(counts, np.float64) + timesteps * output.bias_tensor(np.float64)
    if exact:
        membrane = torch.round(membrane).to(torch.int64)
    return IFResult(to_numpy(membrane), spike_counts, step_counts, to_numpy(total_synops), max_abs, recorded)


def run_rate(x, layers, first, output, fan_outs, timesteps: int, exact: bool, record_spikes: bool, backend,
             chunk: int, on_result=None, events: bool = False, input_fan_out=None,
             workers: int | None = None) -> list[IFResult]:
    """Consecutive chunks of at most ``chunk`` images of ``x`` (quantised integers, event frames (N, T, C, H,
    W), or the float model's normalised inputs) through the engine on the torch ``backend``, on ``workers``
    threads (``torch_threads.map_chunks``); ``layers`` the ``IFLayer`` list, ``first`` / ``output`` the
    ``LinearMap`` of layers 1 and N, ``fan_outs`` per spiking layer. ``on_result(result, images)`` is called
    per chunk, in order; the chunks' ``IFResult`` list is returned."""
    device = device_of(backend)
    with exact_mode(backend):
        first_map = TorchMap.of_linear(first, device)
        maps = [first_map] + [TorchMap.of_linear(layer.linear, device) for layer in layers[1:]]
        output_map = TorchMap.of_linear(output, device)
        fans = [tensor(value, device, np.int64) for value in fan_outs]

        def run_chunk(start: int, stop: int) -> IFResult:
            images = x[start:stop]
            with exact_mode(backend):
                rows = tensor(images, device, np.int64 if exact else np.float64)
                current = _first_current(first_map, rows, exact, events, timesteps)
                result = _simulate(current, layers, maps, output_map, fans, timesteps, exact, record_spikes)
            if events:
                result.synops += images.sum(axis=1).reshape(len(images), -1) @ input_fan_out
            return result

        return map_chunks(run_chunk, len(x), chunk, backend, workers, on_result)


def run_radix(params, x_q: np.ndarray, timesteps: int, record_spikes: bool, backend, bounds: list[int]):
    """``ecc_hw.radix.run`` on the torch ``backend``: int64 membranes, float64 maps rounded to int64 (exact
    as NumPy's). Returns (output (N, classes), spike_counts, step_counts, synops, spikes or None)."""
    from ..linear import LinearMap

    torch = torch_module()
    device = device_of(backend)
    with exact_mode(backend):
        maps = [TorchMap.of_linear(LinearMap.of(layer), device) for layer in params.layers]
        fan_outs = [tensor(LinearMap.of(layer).fan_out(), device, np.int64) for layer in params.layers[1:]]
        rows = tensor(x_q, device, np.int64)
        batch = len(rows)
        layers = len(params.spiking_layers)
        spike_counts = np.zeros((batch, layers), dtype=np.int64)
        step_counts = np.zeros((batch, timesteps, layers), dtype=np.int64)
        total_synops = torch.zeros(batch, dtype=torch.int64, device=device)
        recorded = [] if record_spikes else None
        spikes = output = None
        for n, (layer, linear) in enumerate(zip(params.layers, maps)):
            if n == 0:
                membrane = torch.round(linear.apply(rows.reshape(batch, -1), np.float64, with_bias=True))
                membrane = membrane.to(torch.int64)
            else:
                per_step = linear.apply(spikes.reshape(timesteps * batch, -1), np.float64)
                per_step = torch.round(per_step).to(torch.int64).reshape(timesteps, batch, -1)
                membrane = horner(per_step) + torch.round(linear.bias_tensor(np.float64)).to(torch.int64)
            assert int(membrane.abs().max()) <= bounds[n], f"layer {n + 1}: membrane beyond its bound"
            if not layer.spiking:
                output = membrane
                break
            spikes = compare_and_subtract(membrane, int(layer.threshold), timesteps)
            per_step = to_numpy(spikes.sum(dim=2, dtype=torch.int64))
            step_counts[:, :, n] = per_step.T
            spike_counts[:, n] = per_step.sum(axis=0)
            total_synops += synops(spikes.sum(dim=0, dtype=torch.int64), fan_outs[n])
            if record_spikes:
                recorded.append(to_numpy(spikes))
        return to_numpy(output), spike_counts, step_counts, to_numpy(total_synops), recorded
