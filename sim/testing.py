"""Pytest support for the simulation tests (tests/test_sim_*.py): simulator checks and shared builds.

A missing simulator skips a test locally and fails it under CI=true (CI must never pass by skipping).
Builds are shared through a ``BenchCache`` keyed by design, and on disk by the Verilog's hash; the
tests' fixtures (tests/conftest.py) choose its folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecc_hw.variants import Memory

from .design import prepare_design
from .network_bench import Bench, build
from .simulators import SimulatorMissing, check_simulator


def under_ci() -> bool:
    """Whether the tests run under CI (``CI`` set to 1, true or yes)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_simulator(simulator: str) -> None:
    """Skip (locally) or fail (CI=true) when ``simulator`` cannot run."""
    try:
        check_simulator(simulator)
    except SimulatorMissing as missing:
        if under_ci():
            pytest.fail(f"CI=true and {missing}")
        pytest.skip(str(missing))


class BenchCache:
    """One ``network_bench.Bench`` per (params identity, simulator, lanes, T, memory) in a session."""

    def __init__(self, root: Path):
        self.root = root
        self.benches = {}

    def get(self, params, simulator: str, lanes: int, timesteps: int, key: str,
            memory: Memory = Memory.BRAM) -> Bench:
        """The session's bench of ``params`` (named ``key``) on ``simulator`` at P, T and ``memory``."""
        need_simulator(simulator)
        index = (key, simulator, lanes, timesteps, memory)
        if index not in self.benches:
            design = prepare_design(params, lanes, timesteps, self.root, memory)
            self.benches[index] = Bench(build(design, simulator, self.root))
        return self.benches[index]
