"""Pytest support for the simulation tests (tests/test_sim_*.py): simulator checks and shared builds.

A missing simulator skips a test locally and fails it under CI=true (CI must never pass by skipping).
Builds are shared through a session-scoped cache keyed by design, and on disk by the Verilog's hash
(``build/sim`` of the repository, or ``$ECC_HW_SIM_BUILD``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .design import prepare_design
from .network_bench import Bench, build
from .simulators import SimulatorMissing, check_simulator

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="session")
def sim_build_root() -> Path:
    """The on-disk build cache of the simulation tests (created)."""
    root = Path(os.environ.get("ECC_HW_SIM_BUILD", REPO / "build" / "sim"))
    root.mkdir(parents=True, exist_ok=True)
    return root


class BenchCache:
    """One ``network_bench.Bench`` per (params identity, simulator, lanes, T, memory) in a session."""

    def __init__(self, root: Path):
        self.root = root
        self.benches = {}

    def get(self, params, simulator: str, lanes: int, timesteps: int, key: str,
            memory: str = "bram") -> Bench:
        """The session's bench of ``params`` (named ``key``) on ``simulator`` at P, T and ``memory``."""
        need_simulator(simulator)
        index = (key, simulator, lanes, timesteps, memory)
        if index not in self.benches:
            design = prepare_design(params, lanes, timesteps, self.root, memory)
            self.benches[index] = Bench(build(design, simulator, self.root))
        return self.benches[index]


@pytest.fixture(scope="session")
def bench_cache(sim_build_root) -> BenchCache:
    """The session's ``BenchCache``."""
    return BenchCache(sim_build_root)
