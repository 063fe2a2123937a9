"""Rate twins of the spiking and stochastic kinds, and a spiking layer's population.

**Rate twins.** Each spiking kind (:mod:`bioprop.spiking`) has a steady-state rate as
a function of its input current, an :class:`~bioprop.activations.Activation` used by
the reference engine and by the learning rules (``lif``: the analytic f-I curve
:func:`lif_rate` times the refractory period, or with the layer's ``twin_smoothing`` γ > 0
the soft LIF, its smoothing for a noisy input, calibrated by :mod:`bioprop.fi_curve`;
``poisson``, ``bernoulli``: the logistic function). Its inverse, :attr:`SpikingPopulation.current_for`, is how the
Brian2 engine turns a target rate into an apical current.

**Derivatives.** φ' does not exist for spikes or binary states (docs/algorithms.md,
"Forward weight update"). By default the rate twins' ``derivative`` is 1 everywhere
(a straight-through factor), so the local forward update of a spiking layer is
ΔW_l ∝ (ĥ_l − h_l) h_{l-1}ᵀ: the target trace minus the forward trace, times the
presynaptic trace. A LIF layer may instead use a surrogate derivative (its key
``surrogate_width`` w > 0): the slope of the soft-LIF curve of width w at the layer's
latched drive, largest just above threshold and falling to 0 below it. Measured on
MNIST (784-500 LIF-500 LIF-10): back-propagation through the twin reached 5.66% test
error with the straight-through factor and 2.26% with the surrogate (docs/spiking.md).

**A layer's population.** :class:`SpikingPopulation` binds one layer's parameters
(:class:`SpikingParameters`) to its kind's twin and Brian2 group builder; the kind's
record (:mod:`bioprop.populations`) makes it with :func:`lif_twin`,
:func:`poisson_twin` or :func:`bernoulli_twin`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .activations import Activation
from .spiking import bernoulli_population, check_lif, lif_population, poisson_population

__all__ = ["SpikingPopulation", "SpikingParameters", "lif_twin", "poisson_twin", "bernoulli_twin",
           "lif_rate", "lif_current", "lif_slope", "lif_activation", "RATE_MARGIN"]

#: target rates are kept this far inside (0, 1), where the twins are invertible
RATE_MARGIN = 1e-3


# ------------------------------------------------------------- LIF rate twin
def _softplus(x, smoothing):
    """γ ln(1 + e^{x/γ}), computed without overflow; → max(x, 0) as γ → 0."""
    return np.maximum(x, 0.0) + smoothing * np.log1p(np.exp(-np.abs(x) / smoothing))


def lif_rate(current, *, tau, threshold=1.0, reset=0.0, refractory, smoothing=0.0):
    """Firing rate (Hz) of the LIF neuron under constant input, or its soft-LIF smoothing.

    0 below threshold, else 1 / (t_ref + τ ln(1 + (θ − v_reset) / (I − θ))); `tau` and
    `refractory` in seconds (floats or Brian2 quantities). With `smoothing` γ > 0 the
    excess I − θ is replaced by the softplus γ ln(1 + e^{(I − θ)/γ}) (the soft LIF of
    Hunsberger & Eliasmith 2015): the curve of a neuron whose input is noisy, positive
    and smooth below threshold; γ → 0 gives the hard curve back.
    """
    current = np.asarray(current, dtype=float)
    tau, refractory = float(tau), float(refractory)
    if smoothing > 0:
        excess = _softplus(current - threshold, smoothing)
        rate = np.zeros_like(current)
        live = excess > 0  # the softplus underflows to 0 far below threshold: silent
        with np.errstate(over="ignore"):  # a tiny excess: ln(1 + ∞) = ∞, rate 0
            rate[live] = 1.0 / (refractory + tau * np.log1p((threshold - reset) / excess[live]))
        return rate
    above = current > threshold
    rate = np.zeros_like(current)
    rate[above] = 1.0 / (refractory + tau * np.log((current[above] - reset)
                                                   / (current[above] - threshold)))
    return rate


def lif_current(rate_fraction, drive, *, tau, threshold=1.0, reset=0.0, refractory, scale=None,
                smoothing=0.0):
    """The constant current at which the LIF neuron fires `rate_fraction` of 1 / `scale`.

    The inverse of the f-I curve: with c = (scale / r − t_ref) / τ,
    I = (e^c θ − v_reset) / (e^c − 1). A silent target has no unique current; it gets
    min(drive, θ), the current already there if that is subthreshold. Rates are
    kept inside (0, 1 − 1e-3), where the curve is invertible. `scale` defaults to
    the refractory period. With `smoothing` γ > 0 (the soft LIF, :func:`lif_rate`) the
    excess j = (θ − v_reset) / (e^c − 1) is put through the softplus's inverse,
    I = θ + j + γ ln(1 − e^{−j/γ}); a silent target gets min(drive, the current of the
    smallest rate kept).
    """
    r = np.asarray(rate_fraction, dtype=float)
    tau, refractory = float(tau), float(refractory)
    scale = refractory if scale is None else float(scale)
    safe = np.clip(r, RATE_MARGIN, 1.0 - RATE_MARGIN)
    if smoothing > 0:
        excess = (threshold - reset) / np.expm1(np.maximum(scale / safe - refractory, 1e-9) / tau)
        excess = np.maximum(excess, 1e-300)  # rates near 0: a current far below θ, not −inf
        current = threshold + excess + smoothing * np.log(-np.expm1(-excess / smoothing))
        return np.where(r <= 0.0, np.minimum(drive, current), current)
    growth = np.exp(np.maximum(scale / safe - refractory, 1e-9) / tau)
    current = (growth * threshold - reset) / (growth - 1.0)
    return np.where(r <= 0.0, np.minimum(drive, threshold), current)


def lif_slope(current, *, tau, threshold=1.0, reset=0.0, refractory, smoothing):
    """dν/dI (Hz per unit of current) of the soft LIF curve (:func:`lif_rate`, γ > 0).

    With j the softplus of I − θ and ν the rate, dν/dI = ν² τ (θ − v_reset) σ((I − θ)/γ)
    / (j (j + θ − v_reset)). With a layer's ``surrogate_width`` > 0 it is the twin's
    ``derivative`` (times the scale, :func:`lif_activation`); it is also there for an
    analysis that wants the curve's own slope.
    """
    current = np.asarray(current, dtype=float)
    span = threshold - reset
    excess = _softplus(current - threshold, smoothing)
    rate = lif_rate(current, tau=tau, threshold=threshold, reset=reset, refractory=refractory,
                    smoothing=smoothing)
    # σ(y/γ) / j tends to 1/γ where both underflow; the rate is 0 there anyway
    gate = 0.5 * (1.0 + np.tanh(0.5 * (current - threshold) / smoothing))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(excess > 0, gate / excess, 1.0 / smoothing)
    return rate ** 2 * float(tau) * span * ratio / (excess + span)


def lif_activation(*, tau, threshold=1.0, reset=0.0, refractory, scale=None,
                   smoothing=0.0, surrogate_width=0.0) -> Activation:
    """The LIF population's rate twin: r = scale · ν(I), and the derivative the rules use.

    `scale` (default: the refractory period) turns the rate into a fraction of the
    maximal rate; the engine passes the nominal refractory period as `scale` and
    the effective one, on its time grid, as `refractory` (:func:`lif_twin`).
    `smoothing` γ > 0 makes it the soft LIF (:func:`lif_rate`). The derivative is the
    straight-through 1, or with `surrogate_width` w > 0 the surrogate
    scale · dν/dI of the soft LIF of width w (:func:`lif_slope`), whatever `smoothing` is.
    """
    tau, refractory = float(tau), float(refractory)
    scale = refractory if scale is None else float(scale)

    def fn(current):
        return (scale * lif_rate(current, tau=tau, threshold=threshold, reset=reset,
                                 refractory=refractory, smoothing=smoothing)
                ).astype(np.asarray(current).dtype)

    derivative = np.ones_like
    if surrogate_width > 0:
        def derivative(current):
            slope = lif_slope(current, tau=tau, threshold=threshold, reset=reset,
                              refractory=refractory, smoothing=surrogate_width)
            return (scale * slope).astype(np.asarray(current).dtype)

    if smoothing > 0:
        # the softplus written to stay finite: max(y, 0) + γ ln(1 + e^{−|y|/γ})
        excess = (f"(clip(({{x}}) - {threshold!r}, 0, inf) + {smoothing!r} * "
                  f"log(1 + exp(-abs(({{x}}) - {threshold!r}) / {smoothing!r})))")
        expr = (f"{scale!r} / ({refractory!r} + {tau!r} * "
                f"log(1 + {threshold - reset!r} / clip({excess}, 1e-300, inf)))")
        return Activation("lif", fn, derivative, expr)
    # The clips keep the logarithm finite below threshold, where the factor
    # (x > θ) sets the rate to 0 anyway.
    expr = (f"int(({{x}}) > {threshold!r}) * {scale!r} / ({refractory!r} + {tau!r} * "
            f"log(clip(({{x}}) - {reset!r}, 1e-12, inf) / clip(({{x}}) - {threshold!r}, 1e-12, inf)))")
    return Activation("lif", fn, derivative, expr)


def _logit_current(rate_fraction, drive):
    """The input at which a logistic unit fires `rate_fraction`; silent or saturated
    targets keep the drive if it already gets there."""
    r = np.asarray(rate_fraction, dtype=float)
    safe = np.clip(r, RATE_MARGIN, 1.0 - RATE_MARGIN)
    current = np.log(safe / (1.0 - safe))
    current = np.where(r <= RATE_MARGIN, np.minimum(drive, current), current)
    return np.where(r >= 1.0 - RATE_MARGIN, np.maximum(drive, current), current)


def _logistic_twin(name: str) -> Activation:
    from .activations import ACTIVATIONS

    logistic = ACTIVATIONS["logistic"]
    return Activation(name, logistic.fn, np.ones_like, logistic.brian2_expr)


# ------------------------------------------------------- a layer's population
@dataclass(frozen=True)
class SpikingParameters:
    """One spiking layer's parameters, as its kind's twin factory takes them.

    `tau`, `refractory`, `tau_trace` and `dt` are Brian2 times, `max_rate` a
    frequency; `where` names the layer in errors. Each kind reads the ones it has.
    """

    tau: object
    threshold: float
    reset: float
    refractory: object
    tau_trace: object
    max_rate: object
    dt: object
    where: str = "layer"
    #: ``lif``: γ of the soft-LIF twin (0: the hard f-I curve)
    smoothing: float = 0.0
    #: ``lif``: width of the soft-LIF curve whose slope is the twin's derivative (0: 1)
    surrogate_width: float = 0.0
    #: the layer's spec, for a user's kind (bioprop.spiking_kinds), whose twin reads its keys
    layer: object = None


@dataclass(frozen=True)
class SpikingPopulation:
    """One spiking or stochastic layer: its kind, rate twin, twin inverse and group builder.

    Attributes
    ----------
    record : PopulationKind
        The kind's record (:data:`bioprop.populations.POPULATION_KINDS`).
    activation : Activation
        The rate twin r = φ(I).
    current_for : callable (rate, drive) -> current
        φ⁻¹: the input current at which the population fires `rate`; `drive` is the
        current already there, used where the inverse is not unique.
    build : callable (name, n, clock, order, dtype, **options) -> NeuronGroup
        `options` go to the group's builder (``synaptic_input`` for LIF).
    rest : dict
        The group's own variables at rest, where a trial starts, beyond the trace's (a
        user's kind, :mod:`bioprop.spiking_kinds`).
    """

    record: object
    activation: Activation
    current_for: Callable
    build: Callable
    rest: dict = field(default_factory=dict)

    # what the engine reads of the kind, from its record
    kind = property(lambda self: self.record.name, doc="The kind's name.")
    rate_variable = property(lambda self: self.record.rate_variable,
                             doc="The group's variable the learning rules read.")
    state_variables = property(lambda self: self.record.state_variables,
                               doc="Everything a checkpoint must hold to continue the group.")
    stochastic = property(lambda self: self.record.stochastic,
                          doc="Draws random numbers (Brian2's generator must be seeded).")

    def apical_current(self, rate_change, drive, rest_rate):
        """The apical current that moves a neuron with basal `drive` (firing `rest_rate`,
        the twin's φ(drive)) by `rate_change`: φ⁻¹(φ(drive) + Δ) − drive.

        Zero change gives exactly zero current, and the population then fires at
        whatever rate its own dynamics give.
        """
        return self.current_for(rest_rate + rate_change, drive) - drive


def lif_twin(record, p: SpikingParameters) -> SpikingPopulation:
    """The LIF population of a layer, its parameters checked (a ValueError names the
    layer and the parameter).

    Parameters
    ----------
    record : PopulationKind
        The ``lif`` kind's record.
    p : SpikingParameters
        The layer's parameters; ``max_rate`` is not used.

    Returns
    -------
    SpikingPopulation
    """
    from brian2 import second

    check_lif(tau=p.tau, threshold=p.threshold, reset=p.reset, refractory=p.refractory,
              tau_trace=p.tau_trace, dt=p.dt, where=p.where)
    # On the dt grid Brian2 dates a spike to the start of the step in which v
    # crossed the threshold, and counts the refractory period from there: the
    # simulated neuron is refractory for t_ref − dt/2 on average (measured: the
    # f-I curve at dt = 0.5 ms then matches to about 3%, against 8% without).
    seconds = dict(tau=float(p.tau / second), threshold=p.threshold, reset=p.reset,
                   refractory=float((p.refractory - p.dt / 2) / second),
                   scale=float(p.refractory / second), smoothing=p.smoothing)
    return SpikingPopulation(
        record, lif_activation(surrogate_width=p.surrogate_width, **seconds),
        lambda r, drive: lif_current(r, drive, **seconds),
        lambda name, n, clock, order, dtype, **options: lif_population(
            name, n, tau=p.tau, threshold=p.threshold, reset=p.reset, refractory=p.refractory,
            tau_trace=p.tau_trace, clock=clock, order=order, dtype=dtype, **options))


def poisson_twin(record, p: SpikingParameters) -> SpikingPopulation:
    """The Poisson population of a layer, its trace and maximal rate checked (a ValueError
    names the layer); it reads ``tau_trace``, ``max_rate`` and ``dt`` of `p`, and is called
    as :func:`lif_twin` is."""
    from brian2 import second

    if not p.tau_trace > 0 * second:
        raise ValueError(f"{p.where}: tau_trace must be positive, got {p.tau_trace}")
    if not float(p.max_rate * p.dt) <= 1.0:
        raise ValueError(f"{p.where}: max_rate · dt = {float(p.max_rate * p.dt):.3g} > 1: a "
                         "Poisson unit fires at most once per step; lower dt or max_rate")
    return SpikingPopulation(
        record, _logistic_twin(record.name), _logit_current,
        lambda name, n, clock, order, dtype: poisson_population(
            name, n, max_rate=p.max_rate, tau_trace=p.tau_trace, clock=clock, order=order,
            dtype=dtype))


def bernoulli_twin(record, p: SpikingParameters) -> SpikingPopulation:
    """The Bernoulli population of a layer; it reads only ``tau_trace`` of `p`, and is
    called as :func:`lif_twin` is."""
    return SpikingPopulation(
        record, _logistic_twin(record.name), _logit_current,
        lambda name, n, clock, order, dtype: bernoulli_population(
            name, n, tau_trace=p.tau_trace, clock=clock, order=order, dtype=dtype))
