"""Amaranth hardware generator for ECC-SNN parameter files (issue 3).

``plan`` checks a ``NetworkParams`` and derives every table and width (pure Python); the units
(``walker``, ``lane``, ``fire``, ``spike_buffer``, ``spram``: modules of their own in the Verilog) and
the components flattened into the top (``engine``, ``banks``, ``fire_stage``, ``input_feed``,
``readout``, ``controller``, ``trace``) build the design (``top``) from a plan; each declares the
latencies its registers cause, and ``latency`` sums them into the schedule's constants; ``generate``
writes ``ecc_snn.v`` and ``manifest.json``.
"""
from .errors import HardwareError

__all__ = ["HardwareError"]
