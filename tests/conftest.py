"""Shared pytest setup: plain-loop references importable from this folder, the simulation fixtures."""
import os
import sys
from pathlib import Path

import pytest

from ecc_hw.sim.testing import BenchCache

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sim_build_root() -> Path:
    """The on-disk build cache of the simulation tests: ``build/sim`` of the checkout or ``$ECC_HW_SIM_BUILD``."""
    root = Path(os.environ.get("ECC_HW_SIM_BUILD", REPO / "build" / "sim"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def bench_cache(sim_build_root) -> BenchCache:
    """The session's ``BenchCache``: one simulator build per design."""
    return BenchCache(sim_build_root)
