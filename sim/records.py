"""The network wrapper's record, decoded: what the bench saw for a run of images (its monitor's output).

``tb_ecc_snn.v`` writes one text line per trace word (``T``), per result word (``R``), per finished
image (``C``: cycles and stall counts) and on a watchdog expiry (``X``); ``parse_record`` turns that
into arrays laid out as the golden model's (``Record``), with everything that breaks the stream
protocol listed in ``protocol_errors``; ``join_records`` puts the records of consecutive runs together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Record:
    """What the wrapper saw for a run of images (arrays indexed by image, in run order)."""

    spikes: list                     # per spiking layer: bool (T, N, neurons)
    output_membrane: np.ndarray      # (N, classes)
    predictions: np.ndarray          # (N,)
    class_values: np.ndarray         # (N,) the class word's value
    cycles: np.ndarray               # (N,) raw cycles, stalls included
    input_stalls: np.ndarray
    output_stalls: np.ndarray
    protocol_errors: list = field(default_factory=list)   # (image, message)
    sim_seconds: float = 0.0

    @property
    def gap_free_cycles(self) -> np.ndarray:
        """Cycles per image with the stall cycles subtracted (what the cycle model predicts)."""
        return self.cycles - self.input_stalls - self.output_stalls


def _field(words: np.ndarray, spec: dict) -> np.ndarray:
    """The field ``spec`` (offset, width, signed) of every word, as int64."""
    value = (words >> np.uint64(spec["offset"])) & np.uint64((1 << spec["width"]) - 1)
    value = value.astype(np.int64)
    if spec.get("signed"):
        value = np.where(value >= 1 << (spec["width"] - 1), value - (1 << spec["width"]), value)
    return value


def parse_record(text: str, manifest: dict, count: int) -> Record:
    """Decode the wrapper's record of ``count`` images (see ``tb_ecc_snn.v``)."""
    # what the trace reports: the spiking layers (graph designs: then the max-pool nodes)
    layers = manifest.get("trace_sources") or [layer for layer in manifest["layers"] if layer["spiking"]]
    T, lanes = manifest["timesteps"], manifest["lanes"]
    classes = manifest["layers"][-1]["neurons"]
    trace_spec = manifest["ports"]["trace"]["payload"]["fields"]
    result_spec = manifest["ports"]["result"]["payload"]["fields"]
    spikes = [np.zeros((T, count, layer["neurons"]), dtype=bool) for layer in layers]
    membranes = np.zeros((count, classes), dtype=np.int64)
    predictions = np.full(count, -1, dtype=np.int64)
    class_values = np.zeros(count, dtype=np.int64)
    cycles, in_stalls, out_stalls = (np.zeros(count, dtype=np.int64) for _ in range(3))
    errors = []
    image, trace_words, result_words = 0, [], []
    hw = [layer["bank_words_used"] // layer["groups"] for layer in layers]   # H * W of each layer

    def flush(i):
        """Decode image ``i``'s collected trace and result words."""
        if trace_words:
            words = np.array(trace_words, dtype=np.uint64)
            lay = _field(words, trace_spec["layer"]) - 1
            t = _field(words, trace_spec["t"]) - 1
            neuron = _field(words, trace_spec["neuron"])
            mask = _field(words, trace_spec["mask"])
            for lane in range(lanes):
                hit = (mask >> lane & 1).astype(bool)
                for n in range(len(layers)):
                    sel = hit & (lay == n)
                    idx = neuron[sel] + lane * hw[n]
                    tt = t[sel]
                    bad = (idx >= layers[n]["neurons"]) | (tt < 0) | (tt >= T)
                    if bad.any():
                        errors.append((i, f"trace word out of range (layer {n + 1}, t {tt[bad][0] + 1}, "
                                          f"neuron {idx[bad][0]})"))
                    spikes[n][tt[~bad], i, idx[~bad]] = True
            bad_layer = (lay < 0) | (lay >= len(layers))
            if bad_layer.any():
                errors.append((i, f"trace word with layer {lay[bad_layer][0] + 1}"))
        words = np.array(result_words, dtype=np.uint64)
        index = _field(words, result_spec["index"])
        value = _field(words, result_spec["value"])
        is_class = _field(words, result_spec["is_class"])
        expect_index = list(range(classes))
        if len(words) != classes + 1 or list(index[:-1]) != expect_index or list(is_class) != [0] * classes + [1]:
            errors.append((i, f"result stream: expected {classes} membranes in order then one class word, "
                              f"got indices {index.tolist()} class flags {is_class.tolist()}"))
        for k, v, c in zip(index, value, is_class):
            if c:
                predictions[i], class_values[i] = k, v
            elif 0 <= k < classes:
                membranes[i, k] = v

    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "T":
            trace_words.append(int(rest, 16))
        elif kind == "R":
            result_words.append(int(rest, 16))
        elif kind == "C":
            if image >= count:
                errors.append((image, "more images in the record than were sent"))
                break
            _img, c, si, so = (int(v, 16) for v in rest.split())
            cycles[image], in_stalls[image], out_stalls[image] = c, si, so
            flush(image)
            image, trace_words, result_words = image + 1, [], []
        elif kind == "X":
            errors.append((image, f"watchdog: no class word after {int(rest.split()[1], 16)} cycles"))
            break
    if image < count and not any(i == image for i, _ in errors):
        errors.append((image, f"the run ended after {image} of {count} images"))
    return Record(spikes, membranes, predictions, class_values, cycles, in_stalls, out_stalls, errors)



def join_records(parts: list) -> Record:
    """One record of consecutive runs' records (their images in order, protocol errors renumbered)."""
    if len(parts) == 1:
        return parts[0]
    offset, errors = 0, []
    for part in parts:
        errors += [(i + offset, m) for i, m in part.protocol_errors]
        offset += len(part.cycles)
    return Record([np.concatenate([p.spikes[n] for p in parts], axis=1) for n in range(len(parts[0].spikes))],
                  *(np.concatenate([getattr(p, name) for p in parts]) for name in
                    ("output_membrane", "predictions", "class_values", "cycles", "input_stalls",
                     "output_stalls")),
                  errors, sum(p.sim_seconds for p in parts))
