"""Spiking and stochastic populations as Brian2 groups (issue 4, before engine wiring).

* :func:`lif_population` — leaky integrate-and-fire neurons with a filtered spike trace.
* :func:`bernoulli_population` — stochastic binary units, P(s = 1) = σ(input) each step.
* :func:`poisson_population` — Poisson spiking units of rate ``max_rate`` · σ(input).
* :func:`check_lif` — the parameter checks, each with its own message.
* :func:`lif_rate` — the analytic f-I curve of the LIF neuron, the tests' oracle.

The activity a learning rule sees is a rate-like number in [0, 1]: for LIF units the
spike trace scaled by the maximal rate (1 / refractory period), for Poisson units
their trace scaled by ``max_rate``, for Bernoulli units the binary state itself.
Like the rate populations, inputs arrive as I_ff (basal) and I_nudge (apical).
"""
from __future__ import annotations

import numpy as np

__all__ = ["lif_population", "bernoulli_population", "poisson_population", "check_lif",
           "lif_rate"]

LIF_EQUATIONS = """
dv/dt = (-v + I_ff + I_nudge) / tau : 1 (unless refractory)
dspike_trace/dt = -spike_trace / tau_trace : 1
r = spike_trace * t_ref / tau_trace : 1
I_ff : 1
I_nudge : 1
tau : second (shared, constant)
tau_trace : second (shared, constant)
t_ref : second (shared, constant)
v_threshold : 1 (shared, constant)
v_reset : 1 (shared, constant)
"""

STOCHASTIC_EQUATIONS = """
p = 0.5 * (1 + tanh(0.5 * (I_ff + I_nudge))) : 1
I_ff : 1
I_nudge : 1
"""


def check_lif(*, tau, threshold: float, reset: float, refractory, tau_trace, dt, where="lif"):
    """Raise a ValueError naming the parameter for a LIF population that cannot work."""
    from brian2 import second

    if not tau > 0 * second:
        raise ValueError(f"{where}: tau must be positive, got {tau}")
    if not tau_trace > 0 * second:
        raise ValueError(f"{where}: tau_trace must be positive, got {tau_trace}")
    if not threshold > reset:
        raise ValueError(f"{where}: the threshold ({threshold}) must lie above the reset "
                         f"({reset}), or the neuron fires on every step")
    if dt > refractory:
        raise ValueError(f"{where}: dt = {dt} is longer than the refractory period {refractory}; "
                         "the refractoriness would be lost: lower dt or raise refractory")


def lif_rate(current, *, tau, threshold=1.0, reset=0.0, refractory):
    """Firing rate (Hz) of the LIF neuron under constant input: 0 below threshold, else
    1 / (t_ref + τ ln((I − v_reset) / (I − θ)))."""
    current = np.asarray(current, dtype=float)
    tau, refractory = float(tau), float(refractory)
    above = current > threshold
    rate = np.zeros_like(current)
    rate[above] = 1.0 / (refractory + tau * np.log((current[above] - reset)
                                                   / (current[above] - threshold)))
    return rate


def lif_population(name, n, *, tau, threshold=1.0, reset=0.0, refractory, tau_trace, clock,
                   order=0):
    """A LIF population of n neurons; `r` is its spike trace as a fraction of 1/refractory."""
    from brian2 import NeuronGroup

    check_lif(tau=tau, threshold=threshold, reset=reset, refractory=refractory,
              tau_trace=tau_trace, dt=clock.dt, where=name)
    group = NeuronGroup(n, LIF_EQUATIONS, threshold="v > v_threshold",
                        reset="v = v_reset\nspike_trace += 1", refractory="t_ref", method="exact",
                        name=name, clock=clock, order=order)
    group.tau, group.tau_trace, group.t_ref = tau, tau_trace, refractory
    group.v_threshold, group.v_reset = threshold, reset
    return group


def bernoulli_population(name, n, *, clock, order=0):
    """Binary units drawn anew every step: s = 1 with probability p = σ(I_ff + I_nudge)."""
    from brian2 import NeuronGroup

    group = NeuronGroup(n, STOCHASTIC_EQUATIONS + "s : 1\n", name=name, clock=clock, order=order)
    group.run_regularly("s = int(rand() < p)", when="groups", order=order)
    return group


def poisson_population(name, n, *, max_rate, tau_trace, clock, order=0):
    """Poisson spiking units of rate max_rate · p; `r` is the trace as a fraction of max_rate."""
    from brian2 import NeuronGroup

    equations = STOCHASTIC_EQUATIONS + """
dspike_trace/dt = -spike_trace / tau_trace : 1
r = spike_trace / (tau_trace * max_rate) : 1
tau_trace : second (shared, constant)
max_rate : Hz (shared, constant)
"""
    group = NeuronGroup(n, equations, threshold="rand() < p * max_rate * dt",
                        reset="spike_trace += 1", method="exact", name=name, clock=clock, order=order)
    group.tau_trace, group.max_rate = tau_trace, max_rate
    return group
