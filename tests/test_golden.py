"""The vectorised golden model against plain loops, TRE in the network and the docs/arithmetic.md bounds."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_hw import golden
from ecc_hw.arithmetic import membrane_bounds
from ecc_hw.testing import random_inputs, random_network
from reference import golden_loop


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), timesteps=st.integers(1, 9), signed=st.booleans(),
       tre_mode=st.sampled_from(["spread", "initial"]))
def test_vectorised_golden_equals_plain_loop(seed, timesteps, signed, tre_mode):
    params = random_network(seed, timesteps=timesteps, signed=signed, tre_mode=tre_mode,
                            input_shape=(2, 6, 6), classes=3)
    images = random_inputs(params, 3, seed)
    result = golden.run(params, images, timesteps, record_spikes=True)
    for index, image in enumerate(images):
        prediction, output, spikes = golden_loop(params, image, timesteps)
        assert result.predictions[index] == prediction
        assert result.output_membrane[index].tolist() == output
        for layer, trains in enumerate(spikes):
            assert result.spikes[layer][:, index, :].astype(int).tolist() == trains
            assert result.spike_counts[index, layer] == sum(map(sum, trains))


def test_tre_breaks_the_tie_on_the_last_step():
    # A neuron at V just below theta with R = theta/2 fires only once the charge has arrived.
    params = random_network(3, timesteps=4)
    first = params.layers[0]
    first.weight[:] = 0
    first.bias[:] = 0
    first.threshold, first.tre_charge = 8, 4
    result = golden.run(params, random_inputs(params, 1, 0), 4, record_spikes=True)
    assert result.spike_counts[0, 0] == 0           # 4 of 8 over four steps: no spike
    first.tre_charge = 8
    result = golden.run(params, random_inputs(params, 1, 0), 4, record_spikes=True)
    fired = result.spikes[0][:, 0, :]
    assert fired[:3].sum() == 0 and fired[3].all()  # 2 per step: exactly at t = 4


def test_synops_count_each_spike_times_its_fan_out():
    params = random_network(11, timesteps=6)
    images = random_inputs(params, 4, 1)
    result = golden.run(params, images, 6, record_spikes=True)
    from ecc_hw.linear import LinearMap
    expected = np.zeros(4, dtype=np.int64)
    for layer, nxt in zip(result.spikes, params.layers[1:]):
        expected += layer.sum(axis=0).astype(np.int64) @ LinearMap.of(nxt).fan_out()
    assert result.synops.tolist() == expected.tolist()


def test_membranes_stay_inside_the_spec_bound():
    params = random_network(5, timesteps=16)
    bounds = membrane_bounds(params, 16)
    result = golden.run(params, random_inputs(params, 8, 2), 16)
    assert np.abs(result.output_membrane).max() <= bounds[-1]


def test_zero_timesteps_is_refused():
    params = random_network(1)
    with pytest.raises(ValueError, match="timesteps"):
        golden.run(params, random_inputs(params, 1, 0), 0)


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_threaded_chunks_equal_one_thread(workers):
    params = random_network(21, timesteps=7)
    images = random_inputs(params, 7, 4)
    finished = []
    alone = golden.run(params, images, 7, record_spikes=True, workers=1)
    threaded = golden.run(params, images, 7, record_spikes=True, workers=workers, progress=finished.append)
    assert len(finished) == workers and sum(finished) == 7  # the 7 images were split over every worker
    for field in ("predictions", "output_membrane", "spike_counts", "step_counts", "synops"):
        assert np.array_equal(getattr(alone, field), getattr(threaded, field)), field
    for mine, theirs in zip(alone.spikes, threaded.spikes):
        assert np.array_equal(mine, theirs)
