"""The CNN itself, in float64 NumPy: the source of calibration activations and of CNN accuracy."""
from __future__ import annotations

import numpy as np

from .linear import LinearMap

CHUNK = 256


def forward(layers, x: np.ndarray, keep_activations: bool = False):
    """Logits (N, classes) of the folded CNN ``layers``; with ``keep_activations`` also a_1..a_N.

    ``layers`` are ``FloatLayer``s (or anything with their attributes); a_n is after the ReLU (or
    clipped ReLU) for n < N, the logits for n = N.
    """
    maps = [LinearMap.of(layer) for layer in layers]
    x = np.asarray(x, dtype=np.float64)
    activations = [[] for _ in layers]
    for start in range(0, len(x), CHUNK):
        value = x[start:start + CHUNK].reshape(min(CHUNK, len(x) - start), -1)
        for index, (layer, linear) in enumerate(zip(layers, maps)):
            value = linear.apply(value)
            if getattr(layer, "relu", index < len(layers) - 1):
                value = np.maximum(value, 0.0)
                if getattr(layer, "clip", None) is not None:
                    value = np.minimum(value, layer.clip)
            if keep_activations or index == len(layers) - 1:
                activations[index].append(value)
    result = [np.concatenate(parts) if parts else np.zeros((0, linear.neurons))
              for parts, linear in zip(activations, maps)]
    return (result[-1], result) if keep_activations else result[-1]
