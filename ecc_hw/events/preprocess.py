"""Preprocessing as the ECC paper does for CIFAR10-DVS (section 4.5), and event data sets.

- ``window``: the first ``window_us`` microseconds of a recording (1.3 s by default), measured from
  its first event. An empty window is an error.
- ``downscale``: pixel (x, y) of a W x H sensor goes to (x * w // W, y * h // H) of an h x w map
  (128x128 -> 42x42 in the paper; any size up to the sensor's).
- ``count_frames``: events per pixel and polarity, channel 0 OFF, 1 ON: (2, h, w) integers. The CNN
  trains on ``min(count, C) / C`` with C = ``count_scale`` (the paper's normalising constant).
- ``spike_frames``: the same window binned into T frames, frame of an event = (t - t0) * T // window;
  only the first C events of each pixel and polarity are kept, so the T frames add up exactly to
  ``min(count, C)``: the SNN sees the CNN's input as spikes (docs/events.md).

Event data sets (``.npz``): ``events`` (structured x, y, t, p, all samples concatenated),
``offsets`` (N + 1,) int64 (sample i is ``events[offsets[i]:offsets[i+1]]``), ``y`` (N,) labels
(optional) and ``sensor`` (height, width).
"""
from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data import read_arrays
from ..errors import UserError
from .readers import EVENT_DTYPE, check_events, read_events

DEFAULT_WINDOW_US = 1_300_000


@dataclass(frozen=True)
class EventConfig:
    """How event recordings become CNN input and SNN input spikes (stored in the parameter file)."""

    sensor: tuple[int, int]            # (height, width) of the recordings
    size: tuple[int, int]              # (height, width) after down-scaling
    window_us: int = DEFAULT_WINDOW_US
    count_scale: int = 16              # C: counts are normalised by C (and capped at C)

    def check(self) -> None:
        """One-line UserError on a value out of range."""
        if min(self.sensor) < 1 or min(self.size) < 1:
            raise UserError(f"event sizes must be positive: sensor {self.sensor}, size {self.size}")
        if self.size[0] > self.sensor[0] or self.size[1] > self.sensor[1]:
            raise UserError(f"{self.size[0]},{self.size[1]} is larger than the sensor "
                            f"{self.sensor[0]},{self.sensor[1]}", field="size")
        if self.window_us < 1:
            raise UserError(f"{self.window_us} us must be >= 1", field="window_us")
        if self.count_scale < 1:
            raise UserError(f"{self.count_scale} must be >= 1", field="count_scale")

    def to_json(self) -> dict:
        """The settings as the parameter file stores them (manifest input.events)."""
        return {key: (list(v) if isinstance(v, tuple) else v) for key, v in asdict(self).items()}

    @classmethod
    def from_json(cls, entry: dict) -> "EventConfig":
        """The settings read back from :meth:`to_json`'s form."""
        return cls(sensor=tuple(int(v) for v in entry["sensor"]), size=tuple(int(v) for v in entry["size"]),
                   window_us=int(entry["window_us"]), count_scale=int(entry["count_scale"]))


def window(events: np.ndarray, window_us: int, where: str = "events") -> np.ndarray:
    """Events in [t0, t0 + window_us), t0 the first event's timestamp; error if none."""
    if len(events) == 0:
        raise UserError(f"{where}: empty window (the recording holds no events)")
    t = events["t"]
    keep = np.searchsorted(t, t[0] + window_us, side="left")
    return events[:keep]


def downscale(events: np.ndarray, sensor: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Down-scaled (y, x) pixel coordinates of every event."""
    y = events["y"].astype(np.int64) * size[0] // sensor[0]
    x = events["x"].astype(np.int64) * size[1] // sensor[1]
    return y, x


def _pixel_index(events, config: EventConfig) -> np.ndarray:
    y, x = downscale(events, config.sensor, config.size)
    return (events["p"].astype(np.int64) * config.size[0] + y) * config.size[1] + x


def count_frames(events: np.ndarray, config: EventConfig, where: str = "events") -> np.ndarray:
    """(2, h, w) int64 event counts per pixel and polarity in the window."""
    events = window(events, config.window_us, where)
    cells = 2 * config.size[0] * config.size[1]
    return np.bincount(_pixel_index(events, config), minlength=cells).reshape(2, *config.size)


def cnn_input(counts: np.ndarray, config: EventConfig) -> np.ndarray:
    """The CNN's input: min(count, C) / C as float32 (values in 0..1)."""
    return (np.minimum(counts, config.count_scale) / config.count_scale).astype(np.float32)


def spike_frames(events: np.ndarray, config: EventConfig, frames: int, where: str = "events") -> np.ndarray:
    """(T, 2, h, w) input spikes per frame: the first C events of each pixel and polarity, binned."""
    events = window(events, config.window_us, where)
    cells = 2 * config.size[0] * config.size[1]
    index = _pixel_index(events, config)
    order = np.argsort(index, kind="stable")                 # by cell, in time order within a cell
    sorted_index = index[order]
    starts = np.searchsorted(sorted_index, sorted_index, side="left")
    rank = np.empty(len(index), dtype=np.int64)
    rank[order] = np.arange(len(index)) - starts              # k-th event of its cell
    keep = rank < config.count_scale
    frame = (events["t"].astype(np.int64) - int(events["t"][0])) * frames // config.window_us
    out = np.bincount(frame[keep] * cells + index[keep], minlength=frames * cells)
    return out.reshape(frames, 2, *config.size).astype(np.int16)


@dataclass
class EventSet:
    """Samples of events (one structured array each), labels (or None) and the sensor size."""

    samples: list
    labels: np.ndarray | None
    sensor: tuple[int, int]
    names: list

    def cnn_inputs(self, config: EventConfig) -> np.ndarray:
        """(N, 2, h, w) float32 CNN inputs."""
        return np.stack([cnn_input(count_frames(ev, config, name), config)
                         for ev, name in zip(self.samples, self.names)])

    def spike_frames(self, config: EventConfig, frames: int) -> np.ndarray:
        """(N, T, 2, h, w) int16 input spikes."""
        return np.stack([spike_frames(ev, config, frames, name) for ev, name in zip(self.samples, self.names)])

    def limit(self, n: int) -> "EventSet":
        """The first ``n`` samples."""
        return EventSet(self.samples[:n], None if self.labels is None else self.labels[:n],
                        self.sensor, self.names[:n])


def save_npz(path, samples: list, labels, sensor: tuple[int, int]) -> None:
    """Write an event data set (.npz; see the module docstring)."""
    samples = [check_events(ev, sensor, f"{path} sample {i}") for i, ev in enumerate(samples)]
    offsets = np.concatenate([[0], np.cumsum([len(ev) for ev in samples])]).astype(np.int64)
    arrays = {"events": np.concatenate(samples) if samples else np.empty(0, EVENT_DTYPE),
              "offsets": offsets, "sensor": np.asarray(sensor, dtype=np.int64)}
    if labels is not None:
        arrays["y"] = np.asarray(labels, dtype=np.int64)
    np.savez_compressed(path, **arrays)


def is_event_npz(path) -> bool:
    """True if ``path`` is an .npz holding an ``events`` array."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "events" in archive.files
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def load_npz(path) -> EventSet:
    """Read an event data set (.npz), checking every sample."""
    path = Path(path)
    contents = read_arrays(path, "an event .npz with events, offsets, sensor")
    for key in ("events", "offsets", "sensor"):
        if key not in contents:
            raise UserError(f"{path}: has no array '{key}' (an event .npz needs events, offsets, sensor)")
    offsets, sensor = contents["offsets"], contents["sensor"]
    if sensor.shape != (2,) or offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 \
            or offsets[-1] != len(contents["events"]) or np.any(np.diff(offsets) < 0):
        raise UserError(f"{path}: offsets and sensor do not describe the events (damaged file)")
    sensor = (int(sensor[0]), int(sensor[1]))
    samples = [check_events(contents["events"][a:b], sensor, f"{path} sample {i}")
               for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:]))]
    labels = contents.get("y")
    if labels is not None and labels.shape != (len(samples),):
        raise UserError(f"{path}: y must have shape ({len(samples)},), got {labels.shape}")
    return EventSet(samples, None if labels is None else labels.astype(np.int64), sensor,
                    [f"{path} sample {i}" for i in range(len(samples))])


def load_any(path, sensor: tuple[int, int]) -> EventSet:
    """An event .npz, one event file, or a folder ``DIR/<label>/*.{bin,aedat,npy}`` (N-MNIST layout)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.glob("*/*") if f.suffix.lower() in (".bin", ".aedat", ".npy"))
        if not files:
            raise UserError(f"{path}: no event files in DIR/<label>/*.bin|.aedat|.npy")
        try:
            labels = np.array([int(f.parent.name) for f in files], dtype=np.int64)
        except ValueError:
            raise UserError(f"{path}: sub-folders must be integer class labels") from None
        return EventSet([read_events(f, sensor) for f in files], labels, sensor, [str(f) for f in files])
    if path.suffix.lower() == ".npz":
        data = load_npz(path)
        if data.sensor != tuple(sensor):
            raise UserError(f"{path}: recorded on a {data.sensor[1]}x{data.sensor[0]} sensor, the network "
                            f"expects {sensor[1]}x{sensor[0]}")
        return data
    return EventSet([read_events(path, sensor)], None, tuple(sensor), [str(path)])
