"""Readers and writers of event recordings, each with a one-line ``UserError`` on damaged input.

Formats:

- **N-MNIST / N-Caltech101 binary** (``.bin``, Orchard et al. 2015): 40 bits per event, big-endian:
  byte 0 x, byte 1 y, byte 2 bit 7 polarity, bits 22..0 of bytes 2-4 the timestamp in microseconds.
  An event with y = 240 is a timestamp overflow marker: every later timestamp gains 2^13 (as the
  data set's own ``Read_Ndataset.m`` does); markers are not events.
- **AEDAT 3.1** (``.aedat``, iniVation/jAER): ``#``-prefixed text header ending with
  ``#!END-HEADER``, then packets: a 28-byte little-endian header (type, source, size, ts offset,
  ts overflow, capacity, number, valid) and ``number`` events of ``size`` bytes. Polarity events
  (type 1, 8 bytes): uint32 data (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and int32
  timestamp; the full timestamp is ``overflow << 31 | timestamp``. Other packet types are skipped,
  invalid events dropped.
- **AEDAT 2.0** (jAER DVS128, the original CIFAR10-DVS files): text header lines starting with ``#``,
  then big-endian (uint32 address, int32 timestamp) pairs; x = 127 - ((addr >> 1) & 0x7f),
  y = 127 - ((addr >> 8) & 0x7f), polarity = addr & 1. Read only.
- **NumPy** (``.npy``): a structured array with fields x, y, t, p.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import UserError

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "u1")])
AEDAT31_MAGIC = b"#!AEDAT-3.1"
AEDAT31_END = b"#!END-HEADER\r\n"
PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from four equally long sequences."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def check_events(events: np.ndarray, sensor: tuple[int, int] | None, where: str) -> np.ndarray:
    """Check coordinates inside ``sensor`` (height, width), polarity 0/1, non-decreasing timestamps."""
    events = np.asarray(events)
    if events.dtype.names is None or not {"x", "y", "t", "p"} <= set(events.dtype.names):
        raise UserError(f"{where}: not an event array (needs fields x, y, t, p; got {events.dtype})")
    for name in "xytp":
        if not np.issubdtype(events.dtype[name], np.integer):
            raise UserError(f"{where}: field {name} must be integers, got {events.dtype[name]}")
    if events.ndim != 1:
        raise UserError(f"{where}: events must be one-dimensional, got shape {events.shape}")
    x, y, t, p = (events[name].astype(np.int64) for name in "xytp")
    if len(events):
        if x.min() < 0 or y.min() < 0:
            raise UserError(f"{where}: negative pixel coordinates")
        if sensor is not None:
            height, width = sensor
            bad = np.flatnonzero((x >= width) | (y >= height))
            if bad.size:
                i = int(bad[0])
                raise UserError(f"{where}: event {i} at (x={x[i]}, y={y[i]}) is outside the "
                                f"{width}x{height} sensor")
        if not np.isin(p, (0, 1)).all():
            raise UserError(f"{where}: polarity must be 0 or 1")
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise UserError(f"{where}: timestamps go backwards at event {i} ({t[i - 1]} -> {t[i]} us)")
    return make_events(x, y, t, p)


# ---- N-MNIST / N-Caltech101 ---------------------------------------------------------------------

def read_nmnist(path, sensor=(34, 34)) -> np.ndarray:
    """Events of an N-MNIST / N-Caltech101 ``.bin`` file (``sensor`` is (height, width) to check)."""
    raw = _read_bytes(path)
    if len(raw) % 5:
        raise UserError(f"{path}: truncated N-MNIST binary ({len(raw)} bytes is not a multiple of 5)")
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    overflow = y == 240
    t = t + (np.cumsum(overflow) << 13)
    keep = ~overflow
    return check_events(make_events(x[keep], y[keep], t[keep], p[keep]), sensor, str(path))


def write_nmnist(path, events: np.ndarray) -> None:
    """Write events in the N-MNIST 40-bit format (overflow markers inserted every 2^13 us)."""
    events = check_events(events, (240, 256), str(path))
    t = events["t"].astype(np.int64)
    if len(t) and t[0] < 0:
        raise UserError(f"{path}: N-MNIST timestamps must be >= 0")
    epochs = np.zeros(len(t), dtype=np.int64)
    if len(t) and t[-1] >= (1 << 23):  # markers so that every relative stamp fits 23 bits
        epochs = np.maximum(0, (t - (1 << 23)) // (1 << 13) + 1)
    markers = np.diff(np.concatenate([[0], epochs]))
    rel = t - (epochs << 13)
    rows = np.empty((len(t), 5), dtype=np.uint8)
    rows[:, 0], rows[:, 1] = events["x"], events["y"]
    rows[:, 2] = (events["p"].astype(np.int64) << 7) | (rel >> 16)
    rows[:, 3], rows[:, 4] = (rel >> 8) & 0xFF, rel & 0xFF
    marker = np.array([0, 240, 0, 0, 0], dtype=np.uint8)
    rows = np.concatenate([np.concatenate([np.tile(marker, (int(m), 1)), row[None]])
                           for m, row in zip(markers, rows)]) if markers.any() else rows
    Path(path).write_bytes(rows.reshape(-1).tobytes())


# ---- AEDAT 3.1 ----------------------------------------------------------------------------------

def read_aedat31(path, sensor=(128, 128)) -> np.ndarray:
    """Polarity events of an AEDAT 3.1 file."""
    raw = _read_bytes(path)
    if not raw.startswith(AEDAT31_MAGIC):
        raise UserError(f"{path}: not an AEDAT 3.1 file (no '#!AEDAT-3.1' header)")
    end = raw.find(AEDAT31_END)
    if end < 0:
        raise UserError(f"{path}: truncated AEDAT 3.1 file (no '#!END-HEADER')")
    offset = end + len(AEDAT31_END)
    parts = []
    while offset < len(raw):
        if offset + PACKET_HEADER.size > len(raw):
            raise UserError(f"{path}: truncated AEDAT 3.1 packet header at byte {offset}")
        kind, _, size, _, overflow, _, number, _ = PACKET_HEADER.unpack_from(raw, offset)
        offset += PACKET_HEADER.size
        if size <= 0 or number < 0:
            raise UserError(f"{path}: damaged AEDAT 3.1 packet header at byte {offset - PACKET_HEADER.size}")
        length = size * number
        if offset + length > len(raw):
            raise UserError(f"{path}: truncated AEDAT 3.1 packet ({len(raw) - offset} of {length} bytes)")
        if kind == POLARITY_EVENT:
            if size != 8:
                raise UserError(f"{path}: polarity events of {size} bytes (expected 8)")
            block = np.frombuffer(raw, dtype="<u4", count=2 * number, offset=offset).reshape(-1, 2)
            data = block[:, 0].astype(np.int64)
            stamp = block[:, 1].view("<i4").astype(np.int64) | (np.int64(overflow) << 31)
            valid = (data & 1).astype(bool)
            parts.append(make_events((data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, stamp,
                                     (data >> 1) & 1)[valid])
        offset += length
    events = np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
    return check_events(events, sensor, str(path))


def write_aedat31(path, events: np.ndarray, packet: int = 4096) -> None:
    """Write polarity events as AEDAT 3.1 (packets of at most ``packet`` events)."""
    events = check_events(events, (1 << 15, 1 << 15), str(path))
    out = [AEDAT31_MAGIC + b"\r\n", b"#Format: RAW\r\n", b"#Source 1: ecc-hw synthetic\r\n", AEDAT31_END]
    t = events["t"].astype(np.int64)
    for start in range(0, len(events), packet):
        chunk = events[start:start + packet]
        stamps = t[start:start + packet]
        overflow = int(stamps[0] >> 31)
        if (stamps >> 31).max() != overflow:
            raise UserError(f"{path}: a packet would span a timestamp overflow; use smaller packets")
        data = (chunk["x"].astype(np.uint32) << 17) | (chunk["y"].astype(np.uint32) << 2) \
            | (chunk["p"].astype(np.uint32) << 1) | np.uint32(1)
        body = np.empty((len(chunk), 2), dtype="<u4")
        body[:, 0] = data
        body[:, 1] = (stamps & 0x7FFFFFFF).astype(np.uint32)
        out.append(PACKET_HEADER.pack(POLARITY_EVENT, 1, 8, 4, overflow, len(chunk), len(chunk), len(chunk)))
        out.append(body.tobytes())
    Path(path).write_bytes(b"".join(out))


# ---- AEDAT 2.0 (jAER DVS128), read only ------------------------------------------------------------

def read_aedat2(path, sensor=(128, 128)) -> np.ndarray:
    """Events of a jAER AEDAT 2.0 DVS128 recording (the original CIFAR10-DVS files)."""
    raw = _read_bytes(path)
    offset = 0
    while raw.startswith(b"#", offset):
        line_end = raw.find(b"\n", offset)
        if line_end < 0:
            raise UserError(f"{path}: truncated AEDAT 2.0 header")
        offset = line_end + 1
    body = len(raw) - offset
    if body % 8:
        raise UserError(f"{path}: truncated AEDAT 2.0 file ({body} data bytes is not a multiple of 8)")
    pairs = np.frombuffer(raw, dtype=">u4", offset=offset).reshape(-1, 2).astype(np.int64)
    addr, stamp = pairs[:, 0], pairs[:, 1]
    events = make_events(127 - ((addr >> 1) & 0x7F), 127 - ((addr >> 8) & 0x7F), stamp, addr & 1)
    return check_events(events, sensor, str(path))


# ---- NumPy ---------------------------------------------------------------------------------------

def read_npy(path, sensor=None) -> np.ndarray:
    """A structured ``.npy`` array with fields x, y, t, p."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        events = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: not a readable .npy file ({type(error).__name__})") from None
    return check_events(events, sensor, str(path))


def write_npy(path, events: np.ndarray) -> None:
    """Write events as a structured ``.npy`` array."""
    np.save(path, check_events(events, None, str(path)), allow_pickle=False)


READERS = {".bin": read_nmnist, ".aedat": read_aedat31, ".npy": read_npy}


def read_events(path, sensor=None) -> np.ndarray:
    """Read an event file by its extension (``.bin``, ``.aedat`` (3.1, or 2.0 by its header), ``.npy``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise UserError(f"{path}: unknown event file type '{suffix}' (expected .bin, .aedat or .npy)")
    if suffix == ".aedat" and path.is_file():
        with open(path, "rb") as handle:
            if not handle.read(len(AEDAT31_MAGIC)).startswith(AEDAT31_MAGIC):
                return read_aedat2(path, sensor if sensor is not None else (128, 128))
    if sensor is None:
        return READERS[suffix](path) if suffix != ".npy" else read_npy(path)
    return READERS[suffix](path, sensor)


def write_events(path, events: np.ndarray) -> None:
    """Write events in the format of the extension (``.bin``, ``.aedat`` (3.1) or ``.npy``)."""
    suffix = Path(path).suffix.lower()
    writers = {".bin": write_nmnist, ".aedat": write_aedat31, ".npy": write_npy}
    if suffix not in writers:
        raise UserError(f"{path}: unknown event file type '{suffix}' (expected .bin, .aedat or .npy)")
    writers[suffix](path, events)


def _read_bytes(path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path.read_bytes()
