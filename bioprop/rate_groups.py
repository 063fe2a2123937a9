"""Brian2 groups of the rate neuron's two compartments, and of the clamped input.

A layer of N neurons run for B trials side by side is one ``NeuronGroup`` of B·N
neurons, neuron b·N + i being neuron i in trial b, so that ``array.reshape(B, N)``
is the (trial, neuron) view the dense pathways work on.

The rate neuron has two compartments, each its own group of the same size:

* the **soma** (:func:`rate_soma`) integrates its basal, feedforward input,
  ``τ dv/dt = −v + I_ff``, and fires at ``r = φ(v) + I_nudge``;
* the **apical dendrite** (:func:`apical_dendrite`) integrates the feedback
  pathway's input from the layer above, ``τ_a du/dt = −u + I_fb``, and holds that
  pathway's reconstruction ``g = ψ(u)``.

The apical dendrite nudges the soma's rate additively through ``I_nudge``. In
difference target propagation the nudge is the dendrite's change since the forward
phase, g_l(ĥ_l) − g_l(h_l), so the rate settles exactly on the DTP target
ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) − g_l(h_l) without inverting φ (a nudge added to v
would have to be φ⁻¹ of the target, which need not exist for tanh). The two
compartments are separate groups because Brian2 updates a group's variables
together, and the feedforward sweep runs bottom-up while the feedback sweep runs
top-down within one time step. Spiking somas (:mod:`bioprop.spiking`) have the same
rate dendrite.

The input layer (:func:`clamped_input`) has no dynamics: its rates are set.
Which kind of soma a layer has is its population kind's record
(:mod:`bioprop.populations`).
"""
from __future__ import annotations

import numpy as np

from .activations import Activation

__all__ = ["rate_soma", "apical_dendrite", "clamped_input", "SOMA_EQUATIONS", "APICAL_EQUATIONS"]

#: τ dv/dt = −v + I_ff ;  r = φ(v) + I_nudge
SOMA_EQUATIONS = """
dv/dt = (-v + I_ff) / tau : 1
r = {phi} + I_nudge : 1
I_ff : 1
I_nudge : 1
tau : second (shared, constant)
"""

#: τ_a du/dt = −u + I_fb ;  g = ψ(u)
APICAL_EQUATIONS = """
du/dt = (-u + I_fb) / tau : 1
g = {psi} : 1
I_fb : 1
tau : second (shared, constant)
"""


def _group(equations, n, name, order, dtype, clock, method="euler"):
    from brian2 import NeuronGroup

    # Euler with dt = τ moves v onto its input in one step: the one-step-per-phase
    # setting reproduces the algebraic forward pass exactly.
    return NeuronGroup(n, equations, method=method, name=name, order=order, clock=clock,
                       dtype=np.dtype(dtype).type)


def rate_soma(name: str, n: int, tau, activation: Activation, *, clock, order: int = 0,
              dtype="float64", synaptic_input=False):
    """The somatic compartment of a rate layer: B·N neurons, r = φ(v) + I_nudge.

    With `synaptic_input`, ``I_ff`` is the summed variable of a Brian2 ``Synapses``
    projection plus a bias (:func:`bioprop.pathways.synaptic_input`).
    """
    from .pathways import synaptic_input as basal_synapses

    equations = SOMA_EQUATIONS.format(phi=activation.brian2_expr.format(x='v'))
    if synaptic_input:
        equations = basal_synapses(equations)
    group = _group(equations, n, name, order, dtype, clock)
    group.tau = tau
    return group


def apical_dendrite(name: str, n: int, tau, activation: Activation, *, clock, order: int = 0,
                    dtype="float64"):
    """The apical compartment of a rate layer, computing the feedback pathway's g = ψ(u)."""
    group = _group(APICAL_EQUATIONS.format(psi=activation.brian2_expr.format(x='u')), n, name, order, dtype, clock)
    group.tau = tau
    return group


def clamped_input(name: str, n: int, *, clock, dtype="float64"):
    """The input layer: rates set from the data, no dynamics."""
    from brian2 import NeuronGroup

    return NeuronGroup(n, "r : 1", name=name, clock=clock, dtype=np.dtype(dtype).type)

