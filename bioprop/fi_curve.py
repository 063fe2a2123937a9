"""The f-I curve of a simulated LIF layer under noisy input, and the soft-LIF fit to it.

The LIF twin's analytic curve (:func:`bioprop.rate_twins.lif_rate`) is exact for a
constant input. A layer above the first receives W r, a weighted sum of spike traces,
which fluctuates around its mean; near threshold the neuron then fires below θ and the
curve is smoothed. This module measures that curve in Brian2, with the engine's own
population (:func:`bioprop.spiking.lif_population`) on the engine's time grid, and fits
the smoothing γ of the soft-LIF twin to it.

**The noise model.** The input is I(t) = μ + σ η(t), where η is white noise passed
through the spike trace's two filters (τ_trace each) and scaled to unit variance: the
fluctuation of W r when the presynaptic spikes are irregular. σ is the standard
deviation of the layer's input over time, measured in a run of the real network
(``analysis/lif_fi_curve.py``) or set by hand.

**What is measured.** For each mean current, the spike count of `repeats` neurons over
`duration` after `settle`, as a fraction of the maximal rate 1 / t_ref, the unit of the
twin's rate; and the mean of their spike trace over the same window (its bias against
the count is the trace's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rate_twins import lif_rate

__all__ = ["FICurve", "simulate_fi", "twin_fraction", "fit_smoothing"]


@dataclass(frozen=True)
class FICurve:
    """A measured f-I curve: rates as fractions of 1 / refractory, per mean current."""

    currents: np.ndarray
    #: spike count / (window · ν_max), mean over the repeats
    rate: np.ndarray
    #: the spike trace r, mean over the window and the repeats
    trace: np.ndarray
    #: standard error of `rate` over the repeats
    stderr: np.ndarray
    noise_std: float


def twin_fraction(currents, *, tau, threshold, reset, refractory, dt, smoothing=0.0):
    """The twin's rate as a fraction of 1 / `refractory`, as the engine builds it: the
    refractory period shortened by dt / 2 (:func:`bioprop.rate_twins.lif_twin`). Times in
    seconds."""
    return refractory * lif_rate(currents, tau=tau, threshold=threshold, reset=reset,
                                 refractory=refractory - dt / 2, smoothing=smoothing)


def simulate_fi(currents, *, tau, threshold, reset, refractory, tau_trace, dt, noise_std=0.0,
                repeats=20, duration=2.0, settle=0.2, seed=1, codegen="numpy") -> FICurve:
    """Measure the f-I curve of the engine's LIF population in Brian2 (NumPy target).

    Parameters
    ----------
    currents : array
        The mean input currents μ (units of the threshold, as the layer's keys).
    tau, refractory, tau_trace, dt : float
        In seconds.
    threshold, reset : float
        The layer's threshold and reset.
    noise_std : float
        σ of the input's fluctuation (the noise model above); 0: constant input.
    repeats : int
        Neurons per current, each with its own noise.
    duration, settle : float
        The measuring window, and the time before it (seconds).
    seed : int
        Seeds the noise.
    codegen : str
        Brian2's code generation target.

    Returns
    -------
    FICurve
    """
    import brian2 as b2
    from brian2 import Clock, Network, NetworkOperation, SpikeMonitor, second

    from .brian2.network import simulate
    from .spiking import lif_population

    mu = np.repeat(np.asarray(currents, dtype=float), repeats)
    clock = Clock(dt * second)
    group = lif_population("fi_curve", mu.size, tau=tau * second, threshold=threshold,
                           reset=reset, refractory=refractory * second,
                           tau_trace=tau_trace * second, clock=clock)
    # v spread over [reset, θ): the neurons start out of phase, as a trial from the twin does
    group.v = reset + (threshold - reset) * np.random.default_rng(seed).random(mu.size)
    group.I_ff = mu
    rng = np.random.default_rng(seed)
    decay = np.exp(-dt / tau_trace)
    # two AR(1) filters of white noise; the second's stationary variance is
    # (1 + a²) / (1 + a)², divided out so that σ is the input's standard deviation
    norm = np.sqrt((1 + decay ** 2) / (1 + decay) ** 2)
    first, second_ = rng.standard_normal(mu.size), rng.standard_normal(mu.size)
    state = {"first": first, "second": second_}
    trace_sum = np.zeros(mu.size)
    settle_steps = int(round(settle / dt))
    step = {"n": 0}

    def drive():
        if noise_std > 0:
            state["first"] = decay * state["first"] + np.sqrt(1 - decay ** 2) * rng.standard_normal(
                mu.size)
            state["second"] = decay * state["second"] + (1 - decay) * state["first"]
            group.I_ff[:] = mu + noise_std * state["second"] / norm
        if step["n"] >= settle_steps:
            trace_sum[:] += group.r[:]
        step["n"] += 1

    net = Network(group, NetworkOperation(drive, clock=clock, when="start"))
    simulate(b2, net, codegen, settle * second)
    spikes = SpikeMonitor(group)
    net.add(spikes)
    simulate(b2, net, codegen, duration * second)
    counts = spikes.count[:].reshape(-1, repeats) * refractory / duration
    trace = trace_sum.reshape(-1, repeats) / max(step["n"] - settle_steps, 1)
    return FICurve(np.asarray(currents, dtype=float), counts.mean(axis=1), trace.mean(axis=1),
                   counts.std(axis=1, ddof=1) / np.sqrt(repeats), float(noise_std))


def fit_smoothing(curve: FICurve, *, tau, threshold, reset, refractory, dt,
                  rate_range=(0.0, 1.0)):
    """γ of the soft-LIF twin that fits `curve` best (least squares, in rate fractions).

    Parameters
    ----------
    curve : FICurve
        A measured curve (:func:`simulate_fi`).
    tau, threshold, reset, refractory, dt :
        The layer's, as for :func:`twin_fraction`.
    rate_range : (float, float)
        Fit only the currents whose measured rate lies in this range (the rates a layer
        uses).

    Returns
    -------
    (float, float)
        γ, and the largest absolute error over the fitted points, as a fraction of the
        maximal rate.
    """
    from scipy.optimize import minimize_scalar

    keep = (curve.rate >= rate_range[0]) & (curve.rate <= rate_range[1])
    x, y = curve.currents[keep], curve.rate[keep]

    def twin(gamma):
        return twin_fraction(x, tau=tau, threshold=threshold, reset=reset,
                             refractory=refractory, dt=dt, smoothing=gamma)

    span = threshold - reset
    best = minimize_scalar(lambda lg: np.sum((twin(np.exp(lg)) - y) ** 2),
                           bounds=(np.log(1e-4 * span), np.log(2.0 * span)), method="bounded",
                           options={"xatol": 1e-4})
    gamma = float(np.exp(best.x))
    return gamma, float(np.max(np.abs(twin(gamma) - y)))
