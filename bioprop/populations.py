"""Brian2 equations for the populations of a layered network.

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
top-down within one time step.

The input layer (:func:`clamped_input`) has no dynamics: its rates are set.

:data:`POPULATIONS` names the kinds a model file may give a layer: ``rate``,
``sign`` (a rate soma with φ = sign, Lee 2015's discrete units) and the spiking and
stochastic kinds of :mod:`bioprop.spiking` (``lif``, ``poisson``, ``bernoulli``).
:func:`layer_activation` and :func:`layer_population` turn a layer of a model file
into its transfer function and, for the spiking kinds, its
:class:`~bioprop.spiking.SpikingPopulation`.
"""
from __future__ import annotations

import numpy as np

from .activations import Activation

__all__ = ["rate_soma", "apical_dendrite", "clamped_input", "POPULATIONS", "SOMA_EQUATIONS",
           "APICAL_EQUATIONS", "layer_activation", "layer_feedback_activation", "layer_population",
           "is_spiking"]

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


#: population kind → the activation it fixes (None: the layer's own ``activation``)
POPULATIONS = {"rate": None, "sign": "sign", "lif": "lif", "poisson": "poisson",
               "bernoulli": "bernoulli"}


def is_spiking(layer_spec) -> bool:
    """Whether the layer is simulated as spikes or binary states (not as a rate soma)."""
    from .spiking import SPIKING_KINDS
    return layer_spec.population in SPIKING_KINDS


def layer_population(layer_spec, dt, where=None):
    """The :class:`~bioprop.spiking.SpikingPopulation` of a spiking layer, checked; None
    for a rate layer. `dt` is the simulation step (a Brian2 time)."""
    from brian2 import Hz

    from .spiking import spiking_population

    if not is_spiking(layer_spec):
        return None
    return spiking_population(
        layer_spec.population, tau=layer_spec.tau.quantity,
        threshold=layer_spec.threshold, reset=layer_spec.reset,
        refractory=layer_spec.refractory.quantity,
        tau_trace=layer_spec.tau_trace.quantity, max_rate=layer_spec.max_rate * Hz, dt=dt,
        where=where or f"layer {layer_spec.name!r}")


def layer_feedback_activation(layer_spec, dt=None) -> Activation:
    """ψ of a layer's apical dendrite, which reconstructs the layer's rates (g_{l+1}).

    φ itself, except for ``lif``: its f-I curve is flat below threshold, so a dendrite
    computing it would send no change to a neuron whose reconstruction is subthreshold
    (measured: the targets of a 784-500-500-10 LIF network's hidden layers did not move
    at all); a LIF layer's dendrite is linear, g = Q h + c.
    """
    from .activations import get_activation

    if layer_spec.population == "lif":
        return get_activation("linear")
    return layer_activation(layer_spec, dt)


def layer_activation(layer_spec, dt=None) -> Activation:
    """φ of a layer: its ``activation`` for a rate layer, sign for ``sign``, the rate twin
    of a spiking kind (which needs `dt` only for its parameter checks)."""
    from brian2 import ms

    from .activations import get_activation

    population = layer_population(layer_spec, dt if dt is not None else 0.001 * ms)
    if population is not None:
        return population.activation
    return get_activation(POPULATIONS[layer_spec.population] or layer_spec.activation)
