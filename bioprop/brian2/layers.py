"""Layer adapters: the engine's view of each layer's Brian2 groups, in rates.

Every layer is one or two Brian2 groups of B·N neurons, B trials side by side. An
adapter holds (B, N) views of their state arrays (writes go straight to Brian2) and
answers the same questions whatever the layer's kind: what rate it fires now, what
drive it settled on, how it is held at its forward state, and which arrays a
checkpoint needs. A spiking layer speaks in rates too (:class:`SpikingLayer`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["view", "InputLayer", "RateLayer", "SpikingLayer"]


def view(group, var, batch):
    """The (B, N) view of a group's state variable: writes go straight to Brian2.

    Parameters
    ----------
    group : brian2.Group
        A group of B·N neurons, neuron b·N + i being neuron i of trial b.
    var : str
        The state variable.
    batch : int
        B.

    Returns
    -------
    ndarray (B, N)
    """
    return group.variables[var].get_value().reshape(batch, -1)


#: a spiking soma's variables at rest, as Brian2 starts a group (v: the group's reset)
_REST = {"z": 0.0, "r": 0.0, "s": 0.0, "not_refractory": True, "lastspike": -1e4}


#: the golden ratio's fractional part: i · it mod 1 spreads neurons evenly over [0, 1)
_GOLDEN = 0.6180339887498949


def _skip_while(runner, skip):
    """Make Brian2 object `runner` do nothing in the steps where `skip()` is true.

    Brian2's network fixes the objects it runs when a run starts (one run is an epoch),
    but calls each one's ``run`` every step: an instance attribute in front of the
    class's method (looked up at each call, so that a profiler's wrapper still sees it).
    """
    def run():
        if not skip():
            type(runner).run(runner)
    runner.run = run


class InputLayer:
    """The input population: clamped rates, or Poisson spike trains and their trace."""

    def __init__(self, group, batch, poisson=False):
        self.soma, self.apical, self.clamp, self.spiking = None, None, group, poisson
        self.rate = view(group, "r", batch)
        self.data = view(group, "x", batch) if poisson else self.rate

    def read_rate(self):
        return self.rate

    def reset(self, x=None):
        """Set a Poisson input's spike trace to zero, or to its steady state x (a clamped
        input has no state)."""
        if self.spiking:
            for name in ("z", "r"):
                view(self.clamp, name, len(self.rate))[...] = 0.0 if x is None else x

    def state(self):
        if not self.spiking:
            return {"r": self.rate}
        return {"x": self.data, "z": view(self.clamp, "z", len(self.rate)), "r": self.rate}


class RateLayer:
    """The groups of one rate layer and (B, N) views of their state arrays."""

    spiking = False

    def __init__(self, soma, apical, batch, activation, feedback_activation, clock,
                 state_variables=("v", "I_ff", "I_nudge")):
        self.soma, self.apical, self.clamp = soma, apical, None
        #: the soma's variables a checkpoint holds: v, I_ff, I_nudge and its kind's own
        self.state_variables = state_variables
        self.clock, self._stamp = clock, None
        self.held = None  # the forward rate h while the soma is held at v = a, else None
        self.activation, self.feedback_activation = activation, feedback_activation
        self.v, self.I_ff, self.I_nudge = (view(soma, k, batch) for k in ("v", "I_ff", "I_nudge"))
        self.rate, self.phi_v = np.zeros_like(self.v), np.zeros_like(self.v)
        self._view_dendrite(apical, batch)

    def _view_dendrite(self, apical, batch):
        """(B, N) views of the apical dendrite's potential u and input I_fb, if it has one."""
        if apical is not None:
            self.u, self.I_fb = view(apical, "u", batch), view(apical, "I_fb", batch)

    def read_rate(self):
        """r = φ(v) + I_nudge, as it is now (a buffer, valid until the next call)."""
        if self.held is not None:  # v = a exactly, so φ(v) = h: no need to evaluate φ
            return np.add(self.held, self.I_nudge, out=self.rate)
        # Every read within a time step comes after this soma's state update, so
        # φ(v) is computed once per step however many pathways read the rate.
        if self._stamp != self.clock():
            self.phi_v[...] = self.activation.fn(self.v)
            self._stamp = self.clock()
        return np.add(self.phi_v, self.I_nudge, out=self.rate)

    def drive(self):
        """a_l, the settled basal input (v has settled on I_ff)."""
        return self.v.copy()

    def hold(self, a, h):
        """Hold the soma at its forward state: it fires h + I_nudge."""
        self.v[...] = a
        self.I_ff[...] = a
        self.held = h

    def release(self):
        self.held = None

    def reset(self, steady=None):
        """Put the soma at rest (v = 0), or settled on the drive a of `steady` = (a, h); the
        dendrite at rest (u = 0)."""
        self.v[...] = 0.0 if steady is None else steady[0]
        for name in self.state_variables[3:]:  # a kind's own variables start at rest
            view(self.soma, name, len(self.v))[...] = 0.0
        if self.apical is not None:
            self.u[...] = 0.0

    def g(self):
        return self.feedback_activation.fn(self.u)

    def state(self):
        out = {name: getattr(self, name) for name in ("v", "I_ff", "I_nudge")}
        out.update((name, view(self.soma, name, len(self.v))) for name in self.state_variables[3:])
        if self.apical is not None:
            out.update(u=self.u, I_fb=self.I_fb)
        return out


class SpikingLayer(RateLayer):
    """A spiking or stochastic layer (:mod:`bioprop.spiking`) with a rate dendrite.

    The engine speaks to every layer in rates: ``I_nudge`` is the change of rate the
    feedback asks for. A spiking soma cannot add it to its output, so
    :meth:`apical_current` turns it into the apical current that moves the
    population's firing by that much according to its rate twin,
    I_apical = φ⁻¹(φ(a) + I_nudge) − a, while the soma is held at its forward drive a.
    The rate the rules and the pathways read is the spike trace (or binary state),
    except that a layer built with ``sends_target`` (``rule.spiking_target = "rate"``)
    sends h + I_nudge, the rate asked of it, while it is held (:attr:`sends_rate`).
    Nothing reads its spikes then, so its soma is not simulated at all
    (:attr:`frozen`): its state updater, threshold and reset skip those steps, and so
    does its apical current, unless a monitor watches it (:attr:`observed`) or a
    ``synapses`` pathway, which reads the trace itself, leaves it (``freezable`` False).
    """

    spiking = True
    #: set while monitors record the layer: its soma is then simulated in every phase
    observed = False

    def __init__(self, soma, apical, batch, population, feedback_activation, *,
                 sends_target=False, freezable=True):
        self.soma, self.apical, self.clamp = soma, apical, None
        self.population = population
        self.activation, self.feedback_activation = population.activation, feedback_activation
        self.held = None
        self.I_ff, self.I_apical = view(soma, "I_ff", batch), view(soma, "I_apical", batch)
        self.I_nudge = np.zeros_like(self.I_ff)
        self.rate = view(soma, population.rate_variable, batch)
        self._drive = self._rest = None
        self._asked = None  # (drive, nudge) of the current now in I_apical
        self._batch = batch
        self._view_dendrite(apical, batch)
        self._sent = np.zeros_like(self.I_ff) if sends_target else None
        self._freezable = sends_target and freezable
        for runner in soma.contained_objects:  # the state updater, threshold and reset
            _skip_while(runner, lambda: self.frozen)

    @property
    def sends_rate(self) -> bool:
        """Whether the layer sends the rate asked of it, h + I_nudge, instead of its trace."""
        return self._sent is not None and self.held is not None

    @property
    def frozen(self) -> bool:
        """Whether the soma is left as it is this step: no one reads its spikes."""
        return self._freezable and self.held is not None and not self.observed

    def read_rate(self):
        # A held layer's spikes carry its target only up to the trace's noise and the
        # rates it cannot reach (below 0): the layers below would inherit both, and the
        # part that cannot be reached is one-signed, so it biases every target below.
        if self.sends_rate:
            return np.add(self.held, self.I_nudge, out=self._sent)
        return self.rate

    def drive(self):
        return self.I_ff.copy()

    def hold(self, a, h):
        """Keep the basal input at the forward drive a; the neurons go on firing."""
        self.I_ff[...] = a
        self.held = h
        if self._drive is not a:  # the twin's rate at a, once per latched drive
            self._drive, self._rest = a, self.activation.fn(a)

    def apical_current(self):
        """Set I_apical from I_nudge (a Brian2 operation, before the soma's update).

        The twin's inverse (a logarithm per neuron) is computed again only when the
        nudge or the drive changed: in the noise phases they stay as they are for the
        whole phase, and the current it gave is still in I_apical.
        """
        if self.frozen:  # the soma it would drive is not simulated
            return
        if self.held is None:
            self.I_apical[...] = 0.0
            self._asked = None
        elif not (self._asked is not None and self._asked[0] is self._drive
                  and np.array_equal(self._asked[1], self.I_nudge)):
            self.I_apical[...] = self.population.apical_current(self.I_nudge, self._drive,
                                                                self._rest)
            self._asked = (self._drive, self.I_nudge.copy())

    def reset(self, steady=None):
        """Put the soma at rest (v at its reset, not refractory, empty traces, or with
        `steady` = (a, h) both trace filters at the twin's rate h, their steady state for a
        constant rate) and the dendrite at u = 0."""
        variables = self.soma.variables
        for name, value in {**_REST, **self.population.rest}.items():
            if name in variables:
                variables[name].get_value()[...] = value
        if "v_reset" in variables:
            variables["v"].get_value()[...] = variables["v_reset"].get_value()
        if steady is not None:
            for name in ("z", "r"):
                view(self.soma, name, self._batch)[...] = steady[1]
            if "v_threshold" in variables:  # spread v over [reset, θ): no synchronous volley
                v = variables["v"].get_value()
                low, high = variables["v_reset"].get_value(), variables["v_threshold"].get_value()
                v[...] = low + (high - low) * ((np.arange(v.size) * _GOLDEN) % 1.0)
        if self.apical is not None:
            self.u[...] = 0.0

    def state(self):
        out = {name: view(self.soma, name, self._batch)
               for name in self.population.state_variables}
        out["I_nudge"] = self.I_nudge
        if self.apical is not None:
            out.update(u=self.u, I_fb=self.I_fb)
        return out
