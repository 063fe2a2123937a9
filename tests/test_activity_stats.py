"""Activity statistics against values known in closed form."""
import numpy as np
import pytest
import xarray as xr

from bioprop.analysis.activity import (population_rate, raster, rate_statistics,
                                       representational_similarity, spike_rates)


def test_poisson_spike_train_of_known_rate():
    """A Poisson train of 20 Hz over 50 s: the estimate is within 3 binomial-ish sigmas."""
    rng = np.random.default_rng(0)
    rate, duration, n_trials, n_neurons = 20.0, 50.0, 3, 40
    trials, times, neurons = [], [], []
    for t in range(n_trials):
        for n in range(n_neurons):
            k = rng.poisson(rate * duration)
            trials += [t] * k
            times += list(rng.uniform(0, duration, k))
            neurons += [n] * k
    rates = spike_rates(trials, times, neurons, n_trials=n_trials, n_neurons=n_neurons,
                        duration=duration)
    assert rates.dims == ("trial", "neuron")
    sigma = np.sqrt(rate / duration)  # std of a Poisson count / duration
    assert np.all(np.abs(rates.values - rate) < 4 * sigma)
    assert abs(rates.values.mean() - rate) < 4 * sigma / np.sqrt(n_trials * n_neurons)
    times_0, neurons_0 = raster(trials, times, neurons, trial=0)
    assert np.all(np.diff(times_0) >= 0) and len(times_0) == sum(t == 0 for t in trials)


def test_rate_statistics_of_constructed_populations():
    # 4 neurons: two at rate 1, one at 3, one silent, over 2 epochs and 5 trials
    per_neuron = np.array([1.0, 1.0, 3.0, 0.0])
    rate = xr.DataArray(np.broadcast_to(per_neuron, (2, 5, 4)), dims=("epoch", "trial", "neuron"))
    stats = rate_statistics(rate)
    assert stats["mean"].dims == ("epoch",)
    np.testing.assert_allclose(stats["mean"], 5 / 4)
    np.testing.assert_allclose(stats["sparseness"], (5 / 4) ** 2 / (11 / 4))
    np.testing.assert_allclose(stats["silent_fraction"], 0.25)
    np.testing.assert_allclose(stats["cv"], np.std(per_neuron) / per_neuron.mean())
    one_active = xr.DataArray(np.eye(1, 10).reshape(1, 10), dims=("trial", "neuron"))
    assert float(rate_statistics(one_active)["sparseness"]) == pytest.approx(1 / 10)
    assert population_rate(rate).dims == ("epoch", "trial")


def test_representational_similarity_is_rotation_invariant_and_can_be_low():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 12))
    rotation, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    da = xr.DataArray(a, dims=("trial", "neuron"))
    rotated = xr.DataArray(a @ rotation + 3.0, dims=("trial", "neuron"))
    unrelated = xr.DataArray(rng.standard_normal((30, 12)), dims=("trial", "neuron"))
    assert representational_similarity(da, rotated) == pytest.approx(1.0)
    assert abs(representational_similarity(da, unrelated)) < 0.3
    with pytest.raises(ValueError, match="needs dims"):
        representational_similarity(da.expand_dims(epoch=[0]), da)
