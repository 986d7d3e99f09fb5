"""Lane bench (issue 4): the synapse lanes and the fire sweep alone, on Icarus and Verilator, under
random weights, biases, thresholds and TRE schedules, and at the extremes (negative bias, threshold 1,
widest weights, membrane words at both bounds, back-to-back updates to one neuron)."""
import numpy as np
import pytest

from ecc_hw.sim.check import VerificationFailed
from ecc_hw.sim.lane_bench import run_lane_bench
from ecc_hw.sim.lane_harness import LaneConfig
from ecc_hw.sim.testing import need_simulator


def random_config(seed: int, lanes: int, value_bits: int = 0) -> LaneConfig:
    rng = np.random.default_rng(seed)
    weight_bits = int(rng.integers(3, 9))
    wmax = (1 << (weight_bits - 1)) - 1
    channels = int(rng.integers(1, 2 * lanes + 2))
    height, width = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    words = int(rng.integers(2, 10))
    weights = [[int(w) for w in rng.integers(-wmax, wmax + 1, size=words)] for _ in range(lanes)]
    weights[0][0] = wmax
    timesteps = int(rng.integers(3, 13))
    return LaneConfig(lanes, channels, height, width, weight_bits, value_bits,
                      membrane_width=weight_bits + value_bits + int(rng.integers(3, 8)),
                      weights=weights, bias=[int(b) for b in rng.integers(-3 * wmax, 3 * wmax, size=channels)],
                      threshold=int(rng.choice([1, int(rng.integers(1, 4 * wmax))])),
                      tre_charge=int(rng.integers(0, 3 * timesteps)), timesteps=timesteps, seed=seed)


def long_config() -> LaneConfig:
    """A long run: 36 words per lane, T = 32, thousands of updates."""
    cfg = random_config(11, lanes=2)
    cfg.channels, cfg.height, cfg.width, cfg.timesteps = 6, 3, 4, 32
    rng = np.random.default_rng(11)
    cfg.bias = [int(b) for b in rng.integers(-20, 20, size=6)]
    cfg.membrane_width = cfg.weight_bits + 8
    return cfg


def extremes_config() -> LaneConfig:
    """Threshold 1, the widest weights (+-wmax) in ROM words owned by one lane, negative biases,
    no TRE charge on the two bound words' channels (so they sit at the bounds when swept)."""
    wmax = 127
    weights = [[-wmax, -1, 0, 0, 5, -7], [0, 0, wmax, 1, -3, 2]]
    return LaneConfig(lanes=2, channels=4, height=1, width=2, weight_bits=8, value_bits=0, membrane_width=12,
                      weights=weights, bias=[0, 0, -wmax, -300], threshold=1, tre_charge=0, timesteps=4,
                      seed=99)


ICARUS_CASES = [("random", random_config(seed, lanes=[1, 2, 4][seed % 3])) for seed in range(3)] + [
    ("multiplying", random_config(7, lanes=2, value_bits=5)),
    ("extremes", extremes_config()),
    ("long", long_config()),
]


@pytest.mark.parametrize("name,cfg", ICARUS_CASES, ids=[f"{n}-{c.seed}" for n, c in ICARUS_CASES])
def test_lane_bench_icarus(name, cfg, sim_build_root):
    need_simulator("icarus")
    run_lane_bench(cfg, "icarus", sim_build_root, extremes=name == "extremes")


@pytest.mark.parametrize("name,cfg", [ICARUS_CASES[1], ICARUS_CASES[-1]], ids=["random", "extremes"])
def test_lane_bench_verilator(name, cfg, sim_build_root):
    need_simulator("verilator")
    run_lane_bench(cfg, "verilator", sim_build_root, extremes=name == "extremes")


def test_lane_bench_fails_on_a_wrong_threshold(sim_build_root):
    """Mutation: the same harness checked against a model with threshold + 1 must fail."""
    need_simulator("icarus")
    cfg = random_config(1, lanes=2)
    with pytest.raises(VerificationFailed, match="lane bench failed"):
        run_lane_bench(cfg, "icarus", sim_build_root, model_threshold_offset=1)
