"""Spiking and stochastic populations against analytic results and binomial error."""
import numpy as np
import pytest
from brian2 import Clock, Hz, Network, SpikeMonitor, StateMonitor, ms, second, seed

from bioprop.rate_twins import lif_rate
from bioprop.spiking import (bernoulli_population, check_lif, lif_population,
                             poisson_population)


@pytest.mark.slow
def test_lif_f_i_curve_matches_the_analytic_one():
    clock = Clock(0.1 * ms)
    currents = np.array([0.5, 1.2, 1.5, 2.0, 3.0, 5.0])
    group = lif_population("lif_fi", len(currents), tau=10 * ms, refractory=2 * ms,
                           tau_trace=50 * ms, clock=clock)
    group.I_ff = currents
    spikes = SpikeMonitor(group)
    net = Network(group, spikes)
    net.run(1 * second)
    measured = spikes.count[:] / 1.0
    expected = lif_rate(currents, tau=10e-3, refractory=2e-3)
    assert measured[0] == 0 and expected[0] == 0  # below threshold: silent
    np.testing.assert_allclose(measured[1:], expected[1:], rtol=0.05)
    # the trace the rules see settles on rate x refractory period (a fraction of the maximum)
    np.testing.assert_allclose(group.r[1:], expected[1:] * 2e-3, rtol=0.15)


def test_bernoulli_units_fire_with_the_set_probability():
    seed(11)  # the bounds are 4 sigma; a fixed seed keeps the suite deterministic
    clock = Clock(1 * ms)
    inputs = np.repeat([-2.0, 0.0, 1.0], 200)
    group = bernoulli_population("bern", len(inputs), tau_trace=20 * ms, clock=clock)
    group.I_ff = inputs
    monitor = StateMonitor(group, "s", record=True)
    net = Network(group, monitor)
    net.run(500 * ms)
    for value in (-2.0, 0.0, 1.0):
        p = 1 / (1 + np.exp(-value))
        samples = monitor.s[inputs == value]
        n = samples.size
        assert set(np.unique(samples)) <= {0.0, 1.0}
        assert abs(samples.mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (value, samples.mean(), p)


def test_poisson_units_fire_at_the_set_rate():
    seed(12)
    clock = Clock(0.5 * ms)
    group = poisson_population("pois", 400, max_rate=100 * Hz, tau_trace=50 * ms, clock=clock)
    group.I_ff = 0.0  # p = 0.5: 50 Hz
    spikes = SpikeMonitor(group)
    net = Network(group, spikes)
    net.run(2 * second)
    rates = spikes.count[:] / 2.0
    assert abs(rates.mean() - 50) < 4 * np.sqrt(50 / 2.0 / 400)
    assert abs(rates.var() - 50 / 2.0) < 0.35 * 25  # Poisson: variance of counts = mean


@pytest.mark.parametrize("bad,message", [
    (dict(threshold=0.0, reset=0.5), r"threshold \(0.0\) must lie above the reset \(0.5\)"),
    (dict(tau=-5 * ms), "tau must be positive"),
    (dict(dt=3 * ms), "longer than the refractory period"),
])
def test_bad_lif_parameters_are_caught(bad, message):
    params = dict(tau=10 * ms, threshold=1.0, reset=0.0, refractory=2 * ms, tau_trace=20 * ms,
                  dt=0.1 * ms)
    params.update(bad)
    with pytest.raises(ValueError, match=message):
        check_lif(**params)


def test_synapses_pathway_gives_the_dense_projection_currents():
    """All-to-all Synapses (B trial copies, a summed variable) equal W r + b computed densely;
    with p_connect < 1 they equal the dense product with the same connections masked."""
    from brian2 import NeuronGroup

    from bioprop.pathways import synaptic_projection
    from bioprop.projection import init_dense

    rng = np.random.default_rng(3)
    B, n_pre, n_post = 3, 7, 5
    projection = init_dense(rng, n_post, n_pre, scheme="glorot")
    projection.bias[:] = 0.0
    rates = rng.random((B, n_pre))
    clock = Clock(1 * ms)
    for p_connect in (1.0, 0.5):
        pre = NeuronGroup(B * n_pre, "r : 1", clock=clock)
        post = NeuronGroup(B * n_post, "I_ff_syn : 1", clock=clock)
        pre.r = rates.ravel()
        syn = synaptic_projection(projection, pre, post, B, p_connect=p_connect,
                                  rng=np.random.default_rng(9), name=f"syn_{int(p_connect * 10)}",
                                  clock=clock)
        Network(pre, post, syn).run(1 * ms)
        mask = np.random.default_rng(9).random((n_post, n_pre)) < p_connect if p_connect < 1 \
            else np.ones((n_post, n_pre), bool)
        expected = rates @ (projection.weight * mask).T
        np.testing.assert_allclose(np.asarray(post.I_ff_syn).reshape(B, n_post), expected,
                                   rtol=1e-12, atol=1e-14)
        assert len(syn) == B * mask.sum()
