"""Synthetic event recordings of still images, made the way N-MNIST was recorded.

N-MNIST (Orchard et al. 2015) moved a DVS in three saccades (a triangle, 100 ms each) in front of
MNIST digits on a monitor; each pixel emits an event whenever its log intensity has changed by a
contrast threshold since its last event (ON when it rose, OFF when it fell). ``saccade_events``
simulates that: the image (28x28 on a 34x34 sensor by default) is shifted along the triangle with
bilinear interpolation in 1 ms steps, the per-pixel thresholds carry a small mismatch, and a few
background noise events are added. Deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np

from .readers import make_events

SACCADE_MS = 100
# the triangle of the three saccades, in sensor pixels (N-MNIST's is a few pixels wide)
PATH = np.array([(0.0, 0.0), (2.0, 4.0), (4.0, 0.0), (0.0, 0.0)])


def _shift(canvas: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Images (B, H, W) moved by (dy, dx) pixels, bilinear, zero outside."""
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - iy, dx - ix
    out = np.zeros_like(canvas)
    for oy, wy in ((iy, 1 - fy), (iy + 1, fy)):
        for ox, wx in ((ix, 1 - fx), (ix + 1, fx)):
            if wy * wx == 0:
                continue
            h, w = canvas.shape[1:]
            src = canvas[:, max(0, -oy):h - max(0, oy), max(0, -ox):w - max(0, ox)]
            out[:, max(0, oy):max(0, oy) + src.shape[1], max(0, ox):max(0, ox) + src.shape[2]] += wy * wx * src
    return out


def saccade_events(images: np.ndarray, sensor: tuple[int, int] = (34, 34), threshold: float = 0.3,
                   mismatch: float = 0.03, noise_hz: float = 0.2, step_us: int = 1000,
                   seed: int = 0, batch: int = 256) -> list:
    """Event arrays (one per image) for images (N, H, W) or (N, 1, H, W) of 0..255 (or 0..1) values."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0]
    if images.max(initial=0) > 1:
        images = images / 255.0
    rng = np.random.default_rng(seed)
    height, width = sensor
    steps_per_saccade = SACCADE_MS * 1000 // step_us
    positions = np.concatenate([
        PATH[k] + (PATH[k + 1] - PATH[k]) * (np.arange(1, steps_per_saccade + 1) / steps_per_saccade)[:, None]
        for k in range(len(PATH) - 1)])
    out = []
    for start in range(0, len(images), batch):
        part = images[start:start + batch]
        n, h, w = part.shape
        canvas = np.zeros((n, height, width))
        canvas[:, 1:1 + h, 1:1 + w] = part[:, :height - 1, :width - 1]
        log_canvas = lambda c: np.log(0.2 + c)  # noqa: E731 (a monitor's black is not zero light)
        reference = log_canvas(canvas)
        limits = np.maximum(0.05, threshold + mismatch * rng.standard_normal((n, height, width)))
        chunks = []
        for step, (dy, dx) in enumerate(positions):
            level = log_canvas(_shift(canvas, dy, dx))
            change = level - reference
            crossings = np.trunc(change / limits).astype(np.int64)
            reference += crossings * limits
            b, y, x = np.nonzero(crossings)
            counts = np.abs(crossings[b, y, x])
            polarity = (crossings[b, y, x] > 0).astype(np.int64)
            if noise_hz > 0:
                noisy = rng.random((n, height, width)) < noise_hz * step_us * 1e-6
                nb, ny, nx = np.nonzero(noisy)
                b, y, x = np.concatenate([b, nb]), np.concatenate([y, ny]), np.concatenate([x, nx])
                counts = np.concatenate([counts, np.ones(len(nb), dtype=np.int64)])
                polarity = np.concatenate([polarity, rng.integers(0, 2, len(nb))])
            b, y, x, polarity = (np.repeat(a, counts) for a in (b, y, x, polarity))
            t = step * step_us + rng.integers(0, step_us, len(b))
            chunks.append((b, y, x, t, polarity))
        b, y, x, t, polarity = (np.concatenate([c[i] for c in chunks]) for i in range(5))
        order = np.lexsort((t, b))
        b, y, x, t, polarity = b[order], y[order], x[order], t[order], polarity[order]
        bounds = np.searchsorted(b, np.arange(n + 1))
        for i in range(n):
            s = slice(bounds[i], bounds[i + 1])
            out.append(make_events(x[s], y[s], t[s], polarity[s]))
    return out
