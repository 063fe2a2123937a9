"""Spiking and stochastic populations as Brian2 groups, and their rate twins.

Three kinds of population emit spikes or binary states instead of rates:

* ``lif`` — leaky integrate-and-fire neurons (τ_m, threshold, reset, refractory
  period), :func:`lif_population`;
* ``poisson`` — Poisson spiking units of rate ``max_rate`` · σ(input),
  :func:`poisson_population`;
* ``bernoulli`` — binary units drawn anew every step with P(s = 1) = σ(input),
  :func:`bernoulli_population`.

(Every kind emits spikes or binary states; each is read through a trace, below.)

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

**Rate twins.** Each kind has a steady-state rate as a function of its input
current, an :class:`~bioprop.activations.Activation` used by the reference engine
and by the learning rules (``lif``: the analytic f-I curve :func:`lif_rate` times
the refractory period; ``poisson``, ``bernoulli``: the logistic function). Its
inverse, :meth:`SpikingPopulation.current_for`, is how the Brian2 engine turns a
target rate into an apical current.

**Derivatives.** φ' does not exist for spikes or binary states (ALGORITHMS.md,
"Forward weight update"). Our choice, written down: the rate twins' ``derivative``
is 1 everywhere (a straight-through factor), so the local forward update of a
spiking layer is ΔW_l ∝ (ĥ_l − h_l) h_{l-1}ᵀ: the target trace minus the forward
trace, times the presynaptic trace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .activations import Activation

__all__ = ["SpikingPopulation", "spiking_population", "SPIKING_KINDS", "lif_population",
           "bernoulli_population", "poisson_population", "poisson_input", "check_lif", "lif_rate",
           "lif_current", "lif_activation", "LIF_EQUATIONS", "TRACE_JUMPS", "trace_jump"]

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

#: the jump of the spike trace's first filter z at a spike, in each spiking kind's own
#: parameters (the ``poisson`` input too); a delayed synaptic pathway adds w times it
TRACE_JUMPS = {"lif": "t_ref / tau_trace", "poisson": "1 / (max_rate * tau_trace)"}


def trace_jump(kind: str, suffix: str = "") -> str:
    """The trace's jump at a spike of a `kind` neuron, with `suffix` on every parameter
    (``"_pre"`` reads them from the presynaptic group of a ``Synapses``)."""
    return re.sub(r"[A-Za-z_]\w*", lambda m: m.group(0) + suffix, TRACE_JUMPS[kind])


#: target rates are kept this far inside (0, 1), where the twins are invertible
_RATE_MARGIN = 1e-3


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
    if not threshold > reset:
        raise ValueError(f"{where}: the threshold ({threshold}) must lie above the reset "
                         f"({reset}), or the neuron fires on every step")
    if dt > refractory * 1.000001:
        raise ValueError(f"{where}: dt = {dt} is longer than the refractory period {refractory}; "
                         "the refractoriness would be lost: lower dt or raise refractory")


# ------------------------------------------------------------- LIF rate twin
def lif_rate(current, *, tau, threshold=1.0, reset=0.0, refractory):
    """Firing rate (Hz) of the LIF neuron under constant input.

    0 below threshold, else 1 / (t_ref + τ ln((I − v_reset) / (I − θ))); `tau` and
    `refractory` in seconds (floats or Brian2 quantities).
    """
    current = np.asarray(current, dtype=float)
    tau, refractory = float(tau), float(refractory)
    above = current > threshold
    rate = np.zeros_like(current)
    rate[above] = 1.0 / (refractory + tau * np.log((current[above] - reset)
                                                   / (current[above] - threshold)))
    return rate


def lif_current(rate_fraction, drive, *, tau, threshold=1.0, reset=0.0, refractory, scale=None):
    """The constant current at which the LIF neuron fires `rate_fraction` of 1 / `scale`.

    The inverse of the f-I curve: with c = (scale / r − t_ref) / τ,
    I = (e^c θ − v_reset) / (e^c − 1). A silent target has no unique current; it gets
    min(drive, θ), the current already there if that is subthreshold. Rates are
    kept inside (0, 1 − 1e-3), where the curve is invertible. `scale` defaults to
    the refractory period.
    """
    r = np.asarray(rate_fraction, dtype=float)
    tau, refractory = float(tau), float(refractory)
    scale = refractory if scale is None else float(scale)
    safe = np.clip(r, _RATE_MARGIN, 1.0 - _RATE_MARGIN)
    growth = np.exp(np.maximum(scale / safe - refractory, 1e-9) / tau)
    current = (growth * threshold - reset) / (growth - 1.0)
    return np.where(r <= 0.0, np.minimum(drive, threshold), current)


def lif_activation(*, tau, threshold=1.0, reset=0.0, refractory, scale=None) -> Activation:
    """The LIF population's rate twin: r = scale · ν(I), with a straight-through derivative.

    `scale` (default: the refractory period) turns the rate into a fraction of the
    maximal rate; the engine passes the nominal refractory period as `scale` and
    the effective one, on its time grid, as `refractory` (:func:`spiking_population`).
    """
    tau, refractory = float(tau), float(refractory)
    scale = refractory if scale is None else float(scale)

    def fn(current):
        return (scale * lif_rate(current, tau=tau, threshold=threshold, reset=reset,
                                 refractory=refractory)).astype(np.asarray(current).dtype)

    # The clips keep the logarithm finite below threshold, where the factor
    # (x > θ) sets the rate to 0 anyway.
    expr = (f"int(({{x}}) > {threshold!r}) * {scale!r} / ({refractory!r} + {tau!r} * "
            f"log(clip(({{x}}) - {reset!r}, 1e-12, inf) / clip(({{x}}) - {threshold!r}, 1e-12, inf)))")
    return Activation("lif", fn, np.ones_like, expr)


def _logit_current(rate_fraction, drive):
    """The input at which a logistic unit fires `rate_fraction`; silent or saturated
    targets keep the drive if it already gets there."""
    r = np.asarray(rate_fraction, dtype=float)
    safe = np.clip(r, _RATE_MARGIN, 1.0 - _RATE_MARGIN)
    current = np.log(safe / (1.0 - safe))
    current = np.where(r <= _RATE_MARGIN, np.minimum(drive, current), current)
    return np.where(r >= 1.0 - _RATE_MARGIN, np.maximum(drive, current), current)


def _logistic_twin(name) -> Activation:
    from .activations import ACTIVATIONS

    logistic = ACTIVATIONS["logistic"]
    return Activation(name, logistic.fn, np.ones_like, logistic.brian2_expr)


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
                        reset=f"v = v_reset\nz += {trace_jump('lif')}", refractory="t_ref",
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
                        reset=f"z += {trace_jump('poisson')}", method="exact", name=name,
                        clock=clock, order=order, dtype=np.dtype(dtype).type)
    group.tau_trace, group.max_rate = tau_trace, max_rate
    return group


def poisson_input(name, n, *, max_rate, tau_trace, clock, dtype="float64"):
    """An input layer of Poisson spike trains: neuron i fires at x_i · max_rate.

    The data go into ``x`` (in [0, 1]); the rules see the spike trace ``r``.
    """
    from brian2 import NeuronGroup

    group = NeuronGroup(n, "x : 1\n" + _TRACE_EQUATIONS, threshold="rand() < x * max_rate * dt",
                        reset=f"z += {trace_jump('poisson')}", method="exact", name=name,
                        clock=clock, dtype=np.dtype(dtype).type)
    group.tau_trace, group.max_rate = tau_trace, max_rate
    return group


# ---------------------------------------------------------------- the records
@dataclass(frozen=True)
class SpikingPopulation:
    """One spiking or stochastic layer: its Brian2 group, rate twin and twin inverse.

    Attributes
    ----------
    kind : str
        ``lif``, ``poisson`` or ``bernoulli``.
    activation : Activation
        The rate twin r = φ(I).
    current_for : callable (rate, drive) -> current
        φ⁻¹: the input current at which the population fires `rate`; `drive` is the
        current already there, used where the inverse is not unique.
    build : callable (name, n, clock, order, dtype, **options) -> NeuronGroup
        `options` go to the group's builder (``synaptic_input`` for LIF).
    rate_variable : str
        The group's variable the learning rules read (``r`` or ``s``).
    state_variables : tuple of str
        Everything a checkpoint must hold to continue the group exactly.
    stochastic : bool
        Draws random numbers (Brian2's generator must be seeded).
    """

    kind: str
    activation: Activation
    current_for: Callable
    build: Callable
    rate_variable: str
    state_variables: tuple
    stochastic: bool

    def apical_current(self, rate_change, drive, rest_rate):
        """The apical current that moves a neuron with basal `drive` (firing `rest_rate`,
        the twin's φ(drive)) by `rate_change`: φ⁻¹(φ(drive) + Δ) − drive.

        Zero change gives exactly zero current, and the population then fires at
        whatever rate its own dynamics give.
        """
        return self.current_for(rest_rate + rate_change, drive) - drive


def spiking_population(kind: str, *, tau, threshold=1.0, reset=0.0, refractory, tau_trace,
                       max_rate, dt, where="layer") -> SpikingPopulation:
    """The :class:`SpikingPopulation` of `kind` with these parameters, checked.

    `tau`, `refractory`, `tau_trace` and `dt` are Brian2 times; `max_rate` a frequency
    (Poisson units only). LIF parameters that cannot work raise a ValueError naming
    the layer (`where`) and the parameter.
    """
    from brian2 import second

    if kind == "lif":
        check_lif(tau=tau, threshold=threshold, reset=reset, refractory=refractory,
                  tau_trace=tau_trace, dt=dt, where=where)
        # On the dt grid Brian2 dates a spike to the start of the step in which v
        # crossed the threshold, and counts the refractory period from there: the
        # simulated neuron is refractory for t_ref − dt/2 on average (measured: the
        # f-I curve at dt = 0.5 ms then matches to about 3%, against 8% without).
        seconds = dict(tau=float(tau / second), threshold=threshold, reset=reset,
                       refractory=float((refractory - dt / 2) / second),
                       scale=float(refractory / second))
        return SpikingPopulation(
            "lif", lif_activation(**seconds),
            lambda r, drive: lif_current(r, drive, **seconds),
            lambda name, n, clock, order, dtype, **options: lif_population(
                name, n, tau=tau, threshold=threshold, reset=reset, refractory=refractory,
                tau_trace=tau_trace, clock=clock, order=order, dtype=dtype, **options),
            "r", ("v", "z", "r", "I_ff", "I_apical", "lastspike", "not_refractory"), False)
    if kind == "poisson":
        if not tau_trace > 0 * second:
            raise ValueError(f"{where}: tau_trace must be positive, got {tau_trace}")
        if not float(max_rate * dt) <= 1.0:
            raise ValueError(f"{where}: max_rate · dt = {float(max_rate * dt):.3g} > 1: a "
                             "Poisson unit fires at most once per step; lower dt or max_rate")
        return SpikingPopulation(
            "poisson", _logistic_twin("poisson"), _logit_current,
            lambda name, n, clock, order, dtype: poisson_population(
                name, n, max_rate=max_rate, tau_trace=tau_trace, clock=clock, order=order,
                dtype=dtype),
            "r", ("z", "r", "I_ff", "I_apical"), True)
    if kind == "bernoulli":
        return SpikingPopulation(
            "bernoulli", _logistic_twin("bernoulli"), _logit_current,
            lambda name, n, clock, order, dtype: bernoulli_population(
                name, n, tau_trace=tau_trace, clock=clock, order=order, dtype=dtype),
            "r", ("s", "z", "r", "I_ff", "I_apical"), True)
    raise ValueError(f"Unknown spiking population {kind!r}. Expected one of: "
                     f"{', '.join(SPIKING_KINDS)}")


#: the population kinds of this module
SPIKING_KINDS = ("lif", "poisson", "bernoulli")
