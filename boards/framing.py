"""The UART framing between the host and the board top (one documented format; host-side codec).

Host -> board, one image per frame (stop-and-wait: send the next frame after the answer)::

    0xA5 | LEN (2 bytes, little endian) | LEN payload bytes | CHK

The payload is the quantised image x_q in channel-major (c, y, x) order, one byte per pixel (two's
complement when the input is signed): LEN must equal C * H * W (at most ``MAX_PIXELS``). A graph
network's input is sent in the channel-major order of its (C, H, W) map whatever the model's own layout
(NHWC, (N, C, L) and (N, F) inputs): the rows of ``IntegerGraph.quantise_input``. CHK is the sum of the LEN bytes and
the payload bytes, modulo 256.

Board -> host::

    0x5A | TYPE | LEN (2 bytes, LE) | LEN payload bytes | CHK      (CHK: sum of TYPE .. payload mod 256)

- TYPE 0x01, result: ``classes`` (1 byte), ``mb`` (1 byte, bytes per membrane), the final output
  membranes V_N (``classes`` x ``mb`` bytes, little endian two's complement), the predicted class
  (1 byte), the accelerator's cycles for this image (4 bytes LE; the same count as
  ``ecc_hw.cycle_model.cycles_per_image``: from the clear phase to the class word, UART stalls excluded).
- TYPE 0xEE, error (no result is given for that frame): one byte, the error code:
  1 bad length (the board then ignores bytes until the line is idle for the timeout),
  2 bad checksum, 3 timeout inside a frame (a lost byte).

Bytes before a sync byte are ignored. The board's timeout between two bytes of a frame is
``TIMEOUT_BIT_TIMES`` bit times by default.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYNC_IN = 0xA5
SYNC_OUT = 0x5A
TYPE_RESULT = 0x01
TYPE_ERROR = 0xEE
ERR_LENGTH = 1
ERR_CHECKSUM = 2
ERR_TIMEOUT = 3
ERROR_NAMES = {ERR_LENGTH: "bad length", ERR_CHECKSUM: "bad checksum", ERR_TIMEOUT: "timeout (lost byte)"}
TIMEOUT_BIT_TIMES = 2000
MAX_PIXELS = 0xFFFF          # LEN is two bytes


class FrameError(Exception):
    """A board answer that is not a valid frame, or an error frame (``code`` set)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


def membrane_bytes(width: int) -> int:
    return -(-int(width) // 8)


def encode_image(x_q: np.ndarray) -> bytes:
    """One host -> board frame for one quantised image (any shape, flattened channel-major)."""
    pixels = np.asarray(x_q, dtype=np.int64).reshape(-1)
    if pixels.min(initial=0) < -128 or pixels.max(initial=0) > 255:
        raise ValueError("pixels must fit one byte")
    if len(pixels) > MAX_PIXELS:
        raise ValueError(f"a frame carries at most {MAX_PIXELS} pixels, this image has {len(pixels)}")
    payload = bytes(int(v) & 0xFF for v in pixels)
    length = len(payload).to_bytes(2, "little")
    check = (sum(length) + sum(payload)) & 0xFF
    return bytes([SYNC_IN]) + length + payload + bytes([check])


@dataclass
class Result:
    prediction: int
    membranes: np.ndarray
    cycles: int


def encode_answer(kind: int, payload: bytes) -> bytes:
    """A board -> host frame (the board top builds the same bytes; used by tests)."""
    body = bytes([kind]) + len(payload).to_bytes(2, "little") + payload
    return bytes([SYNC_OUT]) + body + bytes([sum(body) & 0xFF])


def decode_answer(read) -> Result:
    """Read one board -> host frame with ``read(n) -> bytes`` (may return fewer bytes on timeout).

    Returns a :class:`Result`; raises :class:`FrameError` for an error frame or a broken answer.
    """
    def need(n):
        data = read(n)
        if len(data) != n:
            raise FrameError(f"timeout: got {len(data)} of {n} bytes")
        return data

    while True:
        first = need(1)
        if first[0] == SYNC_OUT:
            break
    head = need(3)
    kind, length = head[0], int.from_bytes(head[1:3], "little")
    payload = need(length)
    check = need(1)[0]
    if (sum(head) + sum(payload)) & 0xFF != check:
        raise FrameError("answer with a bad checksum")
    if kind == TYPE_ERROR:
        code = payload[0] if payload else 0
        raise FrameError(f"board error {code}: {ERROR_NAMES.get(code, 'unknown')}", code)
    if kind != TYPE_RESULT or length < 2:
        raise FrameError(f"unknown answer type {kind:#x}")
    classes, mb = payload[0], payload[1]
    if length != 2 + classes * mb + 5:
        raise FrameError(f"result length {length} does not match {classes} classes x {mb} bytes")
    values = [int.from_bytes(payload[2 + i * mb:2 + (i + 1) * mb], "little", signed=True)
              for i in range(classes)]
    tail = payload[2 + classes * mb:]
    return Result(tail[0], np.array(values, dtype=np.int64), int.from_bytes(tail[1:5], "little"))
