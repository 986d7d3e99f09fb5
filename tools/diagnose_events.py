"""Where an event SNN loses accuracy against its CNN: timing, rates per layer, the prefix network.

Usage (after ``convert --input events``): ``.venv/bin/python tools/diagnose_events.py NET EVENTS.npz [N]``.
Runs the golden model on the first N samples (300 by default) with four versions of the same input
frames, each adding up to the CNN's counts: as recorded, each pixel's count spread evenly over the T
frames, the frames in a seeded random order, and the frames reversed. For each it prints the accuracy,
the agreement with the CNN and, per spiking layer, the spike rate against the CNN's
clip(a_n / lambda_n, 0, 1). Last, the accuracy of the prefix network (tools/train_events.py) in float64:
the CNN's weights on the growing prefixes of the window, each hidden layer keeping the running maximum
of its pre-activation, which is what IF neurons compute on timed input. docs/events.md quotes it.
"""
from __future__ import annotations

import sys

import numpy as np

from ecc_hw import cnn, evaluate, golden, params
from ecc_hw.events import preprocess
from ecc_hw.linear import LinearMap


def even_frames(counts: np.ndarray, timesteps: int) -> np.ndarray:
    """(N, T, ...) frames spreading each count evenly: frame t holds floor(c t/T) - floor(c (t-1)/T)."""
    steps = np.arange(timesteps + 1).reshape(1, -1, *([1] * (counts.ndim - 1)))
    return np.diff(counts[:, None] * steps // timesteps, axis=1)


def prefix_logits(net: params.NetworkParams, frames: np.ndarray, count_scale: int) -> np.ndarray:
    """Logits of the prefix network on frames (N, T, 2, H, W), float64."""
    batch, steps = frames.shape[:2]
    fraction = (np.arange(1, steps + 1) / steps)[None, :, None]
    value = (np.cumsum(frames, axis=1) / count_scale).reshape(batch * steps, -1)
    for layer in evaluate.cnn_layers(net):
        linear = LinearMap.of(layer)
        z = linear.apply(value, with_bias=False).reshape(batch, steps, -1)
        z = z + fraction * linear.bias_per_neuron(np.float64)[None, None, :]
        if not layer.relu:
            return z[:, -1]
        value = np.maximum(np.maximum.accumulate(z, axis=1), 0).reshape(batch * steps, -1)
    raise ValueError("the network has no output layer")


def report(net, frames: np.ndarray, labels, activations: list, cnn_predictions, name: str) -> None:
    """Accuracy, agreement with the CNN and per-layer rate errors of the golden model on ``frames``."""
    result = golden.run(net, frames, record_spikes=True)
    print(f"{name:>10}: SNN {100 * np.mean(result.predictions == labels):.2f}%, agrees with the CNN on "
          f"{100 * np.mean(result.predictions == cnn_predictions):.2f}%, SynOps {result.synops.mean():,.0f}")
    for n, spikes in enumerate(result.spikes):
        rate = spikes.sum(axis=0) / net.timesteps
        target = np.clip(activations[n].reshape(rate.shape) / net.lambdas[n + 1], 0, 1)
        print(f"{'':>12}layer {n + 1}: rate {rate.mean():.4f} vs CNN {target.mean():.4f} "
              f"(excess {rate.mean() - target.mean():+.4f}, mean |error| {np.abs(rate - target).mean():.4f}), "
              f"{100 * np.mean((target == 0) & (rate > 0)):.1f}% of neurons fire with a_n <= 0")


def main(net_path: str, data_path: str, limit: int = 300) -> None:
    """Print the diagnosis of the parameter folder ``net_path`` on the first ``limit`` samples of ``data_path``."""
    net = params.load(net_path)
    config = preprocess.EventConfig.from_json(net.events)
    data = preprocess.load_any(data_path, tuple(config.sensor)).limit(limit)
    frames = data.spike_frames(config, net.timesteps).astype(np.int64)
    logits, activations = cnn.forward(evaluate.cnn_layers(net), data.cnn_inputs(config), keep_activations=True)
    cnn_predictions = logits.argmax(axis=1)
    print(f"{len(frames)} samples, T = {net.timesteps}, CNN {100 * np.mean(cnn_predictions == data.labels):.2f}%, "
          f"lambdas {', '.join(f'{v:.4g}' for v in net.lambdas)}, thresholds "
          f"{', '.join(str(layer.threshold) for layer in net.spiking_layers)}")
    busiest = frames.max(axis=1)[frames.sum(axis=1) > 0] / frames.sum(axis=1)[frames.sum(axis=1) > 0]
    print(f"input: {frames.sum() / len(frames):,.0f} events per sample, {frames.sum(axis=(2, 3, 4)).mean():.1f} "
          f"per frame, a pixel's busiest frame holds {100 * busiest.mean():.1f}% of its events")
    variants = {"recorded": frames, "even": even_frames(frames.sum(axis=1), net.timesteps),
                "shuffled": frames[:, np.random.default_rng(0).permutation(net.timesteps)],
                "reversed": frames[:, ::-1]}
    for name, variant in variants.items():
        report(net, np.ascontiguousarray(variant), data.labels, activations, cnn_predictions, name)
    prefix = prefix_logits(net, frames, config.count_scale).argmax(axis=1)
    print(f"prefix network (float64): {100 * np.mean(prefix == data.labels):.2f}%")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
