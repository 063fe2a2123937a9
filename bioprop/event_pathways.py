"""Event-driven transmission: a pathway from a spiking group that follows its spikes.

A dense pathway (:func:`bioprop.pathways.dense_operation`) multiplies the whole
presynaptic trace by its weight matrix every time step, W · r: B·n_pre·n_post
multiply-adds, whether 1% or 50% of the neurons fired. But the spike trace is a
linear filter of the spikes (:mod:`bioprop.spiking`)::

    dz/dt = −z / τ,    z += J at each spike
    dr/dt = (z − r) / τ

so the filtered products Z = W z and R = W r obey the same equations, with the
jump J · W[:, j] when neuron j fires. :class:`EventTransmission` keeps Z and R for
the B trials: each step it adds the weight columns of the neurons that fired in
the last step (whose cost follows the spikes), then advances both by the filter's
exact one-step solution, the same as Brian2's ``exact`` integrator applies to z and r::

    R ← e^(−dt/τ) R + (dt/τ) e^(−dt/τ) Z,    Z ← e^(−dt/τ) Z

The input it writes, R + b, equals the dense W · r + b up to rounding (tested to
1e-9 in float64), not bit for bit: that is why ``engine.transmission = "events"``
is an option and ``dense`` the default.

Z and R are recomputed densely (Z = W z, R = W r) at the first step of every phase
in which the pathway is active: the weights change only at the end of a phase,
the pathway's target ignores it while it is inactive, and the rounding cannot
accumulate for longer than one phase.

A step runs in a compiled kernel (``event_kernel.pyx``, built on first use by
:mod:`bioprop.compiled`) that, trial by trial, sums the fired neurons' rows of a
contiguous Wᵀ, advances both filters and writes R + b in one pass over (B, n_post). It
is used whatever Brian2's codegen target: it runs between Brian2's code objects, not in
them, and changes no number. Where it cannot be compiled, the same step runs in NumPy
and SciPy (:meth:`EventTransmission.advance_numpy`); the two round alike and agree bit
for bit.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .compiled import load_kernel
from .projection import DenseProjection

__all__ = ["EventTransmission", "event_operation", "spike_jump"]


def spike_jump(trace_jump: str, group) -> float:
    """The value of a trace's jump at a spike (e.g. ``"t_ref / tau_trace"``), from the
    shared parameters of `group` in SI units."""
    names = {name: float(group.variables[name].get_value().item())
             for name in re.findall(r"[A-Za-z_]\w*", trace_jump)}
    return float(eval(trace_jump, {"__builtins__": {}}, names))  # the kind's own expression


class EventTransmission:
    """W · r of a spiking group kept up to date from its spikes (the module's docstring).

    Parameters
    ----------
    projection : DenseProjection
        Its weight (n_post, n_pre) and bias.
    group : NeuronGroup
        The presynaptic group of B·n_pre neurons with a spike trace ``z``, ``r``
        (neuron b·n_pre + j is neuron j of trial b).
    batch : int
        B.
    jump : float
        J, the jump of ``z`` at a spike (:func:`spike_jump`).
    tau, dt : float
        The trace's time constant and the time step, in seconds.
    compiled : bool
        Step with the compiled kernel (compiling it if need be); False, or a kernel that
        cannot be compiled: with :meth:`advance_numpy`.

    Attributes
    ----------
    steps, spikes : int
        The steps advanced from spikes and the spikes they carried, for the spike
        fraction spikes / (steps · B · n_pre).
    """

    def __init__(self, projection: DenseProjection, group, batch: int, *, jump: float,
                 tau: float, dt: float, compiled: bool = True):
        self.kernel = load_kernel("event_kernel") if compiled else None
        self.projection, self.batch, self.jump = projection, batch, jump
        self.n_pre = projection.weight.shape[1]
        self.z = group.variables["z"].get_value().reshape(batch, -1)
        self.r = group.variables["r"].get_value().reshape(batch, -1)
        # Brian2's own array, refilled in place every step: the spikes are read without a copy
        self.spikespace = group.variables["_spikespace"].get_value()
        self.decay = math.exp(-dt / tau)
        self.gain = dt / tau * self.decay
        self.Z = self.R = self._weight_t = None
        self.steps = self.spikes = 0
        self._trials = np.arange(batch + 1)

    def sync(self):
        """Z = W z and R = W r from the traces as they are (dense, once per phase)."""
        weight = self.projection.weight
        self.Z, self.R = self.z @ weight.T, self.r @ weight.T
        # the rows a step gathers, refreshed here because the weights change between phases
        self._weight_t = np.ascontiguousarray(weight.T, dtype=self.Z.dtype)
        self._row = np.empty(weight.shape[0], self.Z.dtype)  # the kernel's scratch
        self._bias = np.ascontiguousarray(self.projection.bias, dtype=self.Z.dtype)

    def advance(self, out: np.ndarray) -> np.ndarray:
        """Add the last step's spikes to Z, move Z and R on by one step, and write R + b,
        the input the dense pathway would give, into `out` (:meth:`drive`)."""
        if self.kernel is None or not (out.flags.c_contiguous and out.dtype == self.Z.dtype):
            return self.advance_numpy(out)
        n = int(self.spikespace[-1])
        self.kernel.advance(self.Z, self.R, self._weight_t, self.spikespace, n, self.jump,
                            self.decay, self.gain, self._row, self._bias, out)
        self.steps, self.spikes = self.steps + 1, self.spikes + n
        return out

    def advance_numpy(self, out: np.ndarray) -> np.ndarray:
        """:meth:`advance` without the compiled kernel: a sparse product and five passes."""
        from scipy.sparse import csr_array

        n = int(self.spikespace[-1])
        if n:
            fired = self.spikespace[:n]  # ascending: trial by trial
            trial = fired // self.n_pre
            spikes = csr_array((np.full(n, self.jump, self.Z.dtype), fired - trial * self.n_pre,
                                np.searchsorted(trial, self._trials)),
                               shape=(self.batch, self.n_pre))
            self.Z += spikes @ self._weight_t
        self.steps, self.spikes = self.steps + 1, self.spikes + n
        self.R *= self.decay
        self.R += self.gain * self.Z
        self.Z *= self.decay
        return self.drive(out)

    def drive(self, out: np.ndarray) -> np.ndarray:
        """R + b, the input the dense pathway would give, written into `out`."""
        return np.add(self.R, self.projection.bias, out=out)

    @property
    def spike_fraction(self) -> float:
        """The fraction of presynaptic neurons that fired per step, over the steps advanced."""
        return self.spikes / max(1, self.steps * self.batch * self.n_pre)


def event_operation(transmission: EventTransmission, write_post, active, phase, *, name: str,
                    clock, when: str = "groups", order: int = 0, extra=None, sent=None):
    """A Brian2 operation that writes ``W r + b`` (+ `extra`) into `write_post` while
    `active`, as :func:`bioprop.pathways.dense_operation` does, from `transmission`.

    `phase` returns a token that changes with every phase: the first active step
    after it changed recomputes Z and R densely (:meth:`EventTransmission.sync`).
    `sent`, if given, returns the rates the presynaptic layer sends instead of its
    spikes (held, with ``rule.spiking_target = "rate"``), or None: while it returns
    rates, the input is their dense product W s + b, and the next step that follows
    spikes again starts from a dense sync.
    """
    from brian2 import NetworkOperation

    synced = {"phase": None}

    def apply():
        if not active():
            return
        rates = None if sent is None else sent()
        token = phase()
        if rates is not None:
            transmission.projection.drive(rates, out=write_post)
            synced["phase"] = None
        elif token != synced["phase"]:
            transmission.sync()
            transmission.drive(write_post)
            synced["phase"] = token
        else:
            transmission.advance(write_post)
        if extra is not None:
            np.add(write_post, extra(), out=write_post)

    return NetworkOperation(apply, clock=clock, when=when, order=order, name=name)
