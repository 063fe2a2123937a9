"""Spiking and stochastic populations as Brian2 groups.

Three population kinds (records in :mod:`bioprop.populations`) emit spikes or binary
states instead of rates; this module holds their equations and groups:

* ``lif`` — leaky integrate-and-fire neurons (τ_m, threshold, reset, refractory
  period), :func:`lif_population`;
* ``poisson`` — Poisson spiking units of rate ``max_rate`` · σ(input),
  :func:`poisson_population`;
* ``bernoulli`` — binary units drawn anew every step with P(s = 1) = σ(input),
  :func:`bernoulli_population`.

**The activity the learning rules see.** For ``lif`` and ``poisson`` it is the
neuron's *spike trace* r, the spike train filtered twice with τ_trace and scaled
so that r is the firing rate as a fraction of the maximal rate (1 / refractory
period for LIF, ``max_rate`` for Poisson)::

    dz/dt = −z / τ_trace,        z += 1 / (ν_max τ_trace) at each spike
    dr/dt = (z − r) / τ_trace

One exponential filter leaves a ripple of one jump per spike; the second one
divides it by about 2π ν τ_trace, so r can be read at any time step. For
``bernoulli`` units the binary states s, filtered the same way (each s = 1 adds
dt / τ_trace to z), so r estimates their probability p.

**Inputs.** Feedforward (basal) input arrives as ``I_ff``; feedback arrives as an
apical current ``I_apical``, added to the membrane input. Currents are in units of
the LIF threshold-to-reset distance (threshold 1, reset 0 by default).

The rate each kind fires as a function of its input, and its inverse, are its rate
twin (:mod:`bioprop.rate_twins`).
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["lif_population", "bernoulli_population", "poisson_population", "poisson_input",
           "check_lif", "threshold_problem", "LIF_EQUATIONS", "LIF_TRACE_JUMP",
           "POISSON_TRACE_JUMP", "with_suffix"]

#: Subthreshold LIF dynamics, the double spike trace, and the two input currents.
LIF_EQUATIONS = """
dv/dt = (-v + I_ff + I_apical) / tau : 1 (unless refractory)
dz/dt = -z / tau_trace : 1
dr/dt = (z - r) / tau_trace : 1
I_ff : 1
I_apical : 1
tau : second (shared, constant)
tau_trace : second (shared, constant)
t_ref : second (shared, constant)
v_threshold : 1 (shared, constant)
v_reset : 1 (shared, constant)
"""

_TRACE_EQUATIONS = """
dz/dt = -z / tau_trace : 1
dr/dt = (z - r) / tau_trace : 1
tau_trace : second (shared, constant)
max_rate : Hz (shared, constant)
"""

_STOCHASTIC_EQUATIONS = """
p = 0.5 * (1 + tanh(0.5 * (I_ff + I_apical))) : 1
I_ff : 1
I_apical : 1
"""

#: the jump of a LIF neuron's trace filter z at a spike: 1 / (ν_max τ_trace), ν_max = 1 / t_ref
LIF_TRACE_JUMP = "t_ref / tau_trace"
#: the same for a Poisson unit (and the Poisson input), ν_max = max_rate
POISSON_TRACE_JUMP = "1 / (max_rate * tau_trace)"


def with_suffix(expression: str, suffix: str) -> str:
    """`expression` with `suffix` on every name (``"_pre"`` reads them from the
    presynaptic group of a ``Synapses``)."""
    return re.sub(r"[A-Za-z_]\w*", lambda m: m.group(0) + suffix, expression)


# ------------------------------------------------------------ parameter checks
def check_lif(*, tau, threshold: float, reset: float, refractory, tau_trace, dt, where="lif"):
    """Raise a ValueError naming the parameter for a LIF population that cannot work."""
    from brian2 import second

    if not tau > 0 * second:
        raise ValueError(f"{where}: tau must be positive, got {tau}")
    if not tau_trace > 0 * second:
        raise ValueError(f"{where}: tau_trace must be positive, got {tau_trace}")
    if not refractory > 0 * second:
        raise ValueError(f"{where}: refractory must be positive (it sets the maximal rate), "
                         f"got {refractory}")
    problem = threshold_problem(threshold, reset)
    if problem:
        raise ValueError(f"{where}: {problem}")
    if dt > refractory * 1.000001:
        raise ValueError(f"{where}: dt = {dt} is longer than the refractory period {refractory}; "
                         "the refractoriness would be lost: lower dt or raise refractory")


def threshold_problem(threshold: float, reset: float) -> str | None:
    """Why a LIF neuron with this threshold and reset cannot work, or None if it can.

    Parameters
    ----------
    threshold, reset : float
        The membrane potentials of firing and after a spike.

    Returns
    -------
    str or None
        The message (also the model file's, :mod:`bioprop.populations`).
    """
    if not threshold > reset:
        return (f"the threshold ({threshold}) must lie above the reset ({reset}), or the "
                "neuron fires on every step")
    return None


# ------------------------------------------------------------------- groups
def lif_population(name, n, *, tau, threshold=1.0, reset=0.0, refractory, tau_trace, clock,
                   order=0, dtype="float64", synaptic_input=False):
    """A LIF population of n neurons; `r` is its spike trace as a fraction of 1/refractory.

    With `synaptic_input`, ``I_ff`` is the summed variable of a Brian2 ``Synapses``
    projection plus a bias (:func:`bioprop.pathways.synaptic_input`) instead of a
    parameter that a dense operation writes.
    """
    from brian2 import NeuronGroup

    from .pathways import synaptic_input as basal_synapses

    check_lif(tau=tau, threshold=threshold, reset=reset, refractory=refractory,
              tau_trace=tau_trace, dt=clock.dt, where=name)
    equations = basal_synapses(LIF_EQUATIONS) if synaptic_input else LIF_EQUATIONS
    group = NeuronGroup(n, equations, threshold="v > v_threshold",
                        reset=f"v = v_reset\nz += {LIF_TRACE_JUMP}", refractory="t_ref",
                        method="exact", name=name, clock=clock, order=order,
                        dtype=np.dtype(dtype).type)
    group.tau, group.tau_trace, group.t_ref = tau, tau_trace, refractory
    group.v_threshold, group.v_reset = threshold, reset
    return group


def bernoulli_population(name, n, *, tau_trace, clock, order=0, dtype="float64"):
    """Binary units drawn anew every step: s = 1 with probability p = σ(I_ff + I_apical).

    Their trace r, filtered like a spike trace (each s = 1 adds dt / τ_trace to z),
    estimates p; it is what the rules and the pathways read.
    """
    from brian2 import NeuronGroup

    group = NeuronGroup(n, _STOCHASTIC_EQUATIONS + "s : 1\ndz/dt = -z / tau_trace : 1\n"
                        "dr/dt = (z - r) / tau_trace : 1\ntau_trace : second (shared, constant)\n",
                        method="exact", name=name, clock=clock, order=order,
                        dtype=np.dtype(dtype).type)
    group.run_regularly("s = int(rand() < p)\nz += s * dt / tau_trace", when="groups",
                        order=order, name=f"{name}_draw")
    group.tau_trace = tau_trace
    return group


def poisson_population(name, n, *, max_rate, tau_trace, clock, order=0, dtype="float64"):
    """Poisson spiking units of rate max_rate · σ(input); `r` is the trace as a fraction of
    max_rate."""
    from brian2 import NeuronGroup

    group = NeuronGroup(n, _STOCHASTIC_EQUATIONS + _TRACE_EQUATIONS,
                        threshold="rand() < p * max_rate * dt",
                        reset=f"z += {POISSON_TRACE_JUMP}", method="exact", name=name,
                        clock=clock, order=order, dtype=np.dtype(dtype).type)
    group.tau_trace, group.max_rate = tau_trace, max_rate
    return group


def poisson_input(name, n, *, max_rate, tau_trace, clock, dtype="float64"):
    """An input layer of Poisson spike trains: neuron i fires at x_i · max_rate.

    The data go into ``x`` (in [0, 1]); the rules see the spike trace ``r``.
    """
    from brian2 import NeuronGroup

    group = NeuronGroup(n, "x : 1\n" + _TRACE_EQUATIONS, threshold="rand() < x * max_rate * dt",
                        reset=f"z += {POISSON_TRACE_JUMP}", method="exact", name=name,
                        clock=clock, dtype=np.dtype(dtype).type)
    group.tau_trace, group.max_rate = tau_trace, max_rate
    return group
