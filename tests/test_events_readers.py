"""Event readers and writers round-trip, and damaged input ends in one UserError line."""
import numpy as np
import pytest

from ecc_hw.errors import UserError
from ecc_hw.events import readers
from ecc_hw.events.readers import make_events, read_events, write_events


def sample(n=500, sensor=(34, 34), seed=0, t_max=300_000):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, sensor[1], n), rng.integers(0, sensor[0], n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))


@pytest.mark.parametrize("suffix", [".bin", ".aedat", ".npy"])
def test_round_trip(tmp_path, suffix):
    events = sample()
    path = tmp_path / f"rec{suffix}"
    write_events(path, events)
    back = read_events(path, (34, 34))
    assert back.dtype == readers.EVENT_DTYPE
    for name in "xytp":
        np.testing.assert_array_equal(back[name], events[name])


def test_nmnist_timestamp_overflow_markers(tmp_path):
    events = sample(t_max=30_000_000)  # past 2^23 us: overflow markers (y = 240) are needed
    path = tmp_path / "long.bin"
    readers.write_nmnist(path, events)
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, 5)
    assert (raw[:, 1] == 240).sum() > 0
    np.testing.assert_array_equal(readers.read_nmnist(path)["t"], events["t"])


def test_aedat31_multiple_packets_and_other_types_skipped(tmp_path):
    events = sample(n=3000, sensor=(128, 128))
    path = tmp_path / "rec.aedat"
    readers.write_aedat31(path, events, packet=1000)
    raw = path.read_bytes()
    # append a non-polarity packet (type 2, 4 events of 12 bytes): skipped
    raw += readers.PACKET_HEADER.pack(2, 1, 12, 8, 0, 4, 4, 4) + bytes(48)
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_events(path, (128, 128))["x"], events["x"])


def test_aedat2_reader(tmp_path):
    x, y, p = np.array([0, 5, 127]), np.array([3, 0, 127]), np.array([1, 0, 1])
    addr = ((127 - y) << 8) | ((127 - x) << 1) | p
    body = np.stack([addr, np.array([10, 20, 30])], 1).astype(">u4").tobytes()
    path = tmp_path / "cifar.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + body)
    events = read_events(path, (128, 128))
    np.testing.assert_array_equal(events["x"], x)
    np.testing.assert_array_equal(events["y"], y)
    np.testing.assert_array_equal(events["p"], p)


@pytest.mark.parametrize("suffix", [".bin", ".aedat"])
def test_truncated_binary(tmp_path, suffix):
    path = tmp_path / f"rec{suffix}"
    write_events(path, sample())
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UserError, match="truncated"):
        read_events(path, (34, 34))


@pytest.mark.parametrize("suffix", [".bin", ".aedat", ".npy"])
def test_outside_sensor(tmp_path, suffix):
    path = tmp_path / f"rec{suffix}"
    write_events(path, sample(sensor=(40, 40)))
    with pytest.raises(UserError, match="outside the 34x34 sensor"):
        read_events(path, (34, 34))


@pytest.mark.parametrize("suffix", [".bin", ".aedat", ".npy"])
def test_timestamps_backwards(tmp_path, suffix):
    events = sample()
    path = tmp_path / f"rec{suffix}"
    write_events(path, events)
    if suffix == ".npy":
        events["t"][100] = 0
        np.save(path, events)
    elif suffix == ".bin":
        raw = bytearray(path.read_bytes())
        raw[5 * 100 + 2:5 * 100 + 5] = bytes(3)  # event 100 at t = 0 (keeps its polarity bit 0)
        path.write_bytes(bytes(raw))
    else:
        readers.write_aedat31(path, events[::-1].copy() if False else events)
        raw = bytearray(path.read_bytes())
        start = path.read_bytes().index(readers.AEDAT31_END) + len(readers.AEDAT31_END) + 28
        raw[start + 8 * 100 + 4:start + 8 * 100 + 8] = bytes(4)
        path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="timestamps go backwards"):
        read_events(path, (34, 34))


def test_not_events(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(UserError, match="not an event array"):
        read_events(path)
    with pytest.raises(UserError, match="unknown event file type"):
        read_events(tmp_path / "x.txt")
