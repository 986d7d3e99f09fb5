"""Amaranth hardware generator for ECC-SNN parameter files (issue 3).

``plan`` checks a ``NetworkParams`` and derives every table and width (pure Python); the
components (``walker``, ``lane``, ``fire``, ``spike_buffer``, ``top``) build the design from a plan;
``generate`` writes ``ecc_snn.v`` and ``manifest.json``.
"""
from .errors import HardwareError

__all__ = ["HardwareError"]
