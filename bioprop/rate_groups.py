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

from .activations import ACTIVATIONS, BUILTIN_ACTIVATIONS, CHECK_POINTS, Activation

__all__ = ["rate_soma", "apical_dendrite", "clamped_input", "SOMA_EQUATIONS", "SOMA_DYNAMICS",
           "SOMA_VARIABLES", "APICAL_EQUATIONS", "brian2_form", "check_brian2_form"]

#: τ dv/dt = −v + I_ff: the dynamics of the soma's potential, unless its kind has its own
SOMA_DYNAMICS = "dv/dt = (-v + I_ff) / tau : 1"

#: the soma's dynamics (of v, settling on I_ff) ;  r = φ(v) + I_nudge
SOMA_EQUATIONS = """
{dynamics}
r = {phi} + I_nudge : 1
I_ff : 1
I_nudge : 1
tau : second (shared, constant)
"""

#: the variables the soma's own lines define, which a kind's dynamics must not define again
SOMA_VARIABLES = ("r", "I_ff", "I_nudge", "tau")

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


def brian2_form(activation: Activation, x: str) -> str:
    """φ(`x`) as a Brian2 expression.

    A user's activation (:mod:`bioprop.extensions`) is checked the first time: its Brian2
    form must compute its NumPy function (:func:`check_brian2_form`).

    Raises
    ------
    ValueError
        For an activation without a Brian2 form (a user's, registered without one: it
        runs in the reference engine only), or whose form computes another function.
    """
    if activation.brian2_expr is None:
        raise ValueError(f"activation {activation.name!r} has no Brian2 form, so it runs in "
                         f"the reference engine only; register it with brian2=\"...\" to "
                         f"run it in the Brian2 engine")
    user = ACTIVATIONS.get(activation.name) is activation and (
        activation.name not in BUILTIN_ACTIVATIONS)  # not a built-in, nor a spiking rate twin
    if user and activation not in _checked:
        check_brian2_form(activation)
        _checked.add(activation)
    return activation.brian2_expr.format(x=x)


_checked: set = set()


def check_brian2_form(activation: Activation):
    """Raise a ValueError unless `activation`'s Brian2 form, evaluated with the NumPy
    implementations of Brian2's functions, equals its NumPy function at
    :data:`~bioprop.activations.CHECK_POINTS` (to 1e-9)."""
    from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS

    names = {name: value.value for name, value in DEFAULT_CONSTANTS.items()
             if name.isidentifier()}
    for name, function in DEFAULT_FUNCTIONS.items():
        try:
            names[name] = function.implementations["numpy"].get_code(None)
        except KeyError:  # a function with no NumPy implementation: not usable here either
            pass
    x, expr = CHECK_POINTS, activation.brian2_expr
    try:
        got = np.broadcast_to(eval(expr.format(x="x_"), {"__builtins__": {}}, {**names, "x_": x}),
                              x.shape)
    except Exception as err:  # a name Brian2 does not know, a syntax error, ...
        raise ValueError(f"activation {activation.name!r}: its Brian2 form {expr!r} cannot be "
                         f"evaluated ({type(err).__name__}: {err}); use {{x}} for the input and "
                         f"Brian2's functions ({', '.join(sorted(DEFAULT_FUNCTIONS))})") from None
    want = activation.fn(x)
    wrong = ~np.isclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise ValueError(f"activation {activation.name!r}: its Brian2 form {expr!r} gives "
                         f"{got[i]:.6g} at x = {x[i]:.6g}, its function {want[i]:.6g}: the two "
                         f"engines would compute different networks")


def rate_soma(name: str, n: int, tau, activation: Activation, *, clock, order: int = 0,
              dtype="float64", synaptic_input=False, dynamics: str = SOMA_DYNAMICS):
    """The somatic compartment of a rate layer: B·N neurons, r = φ(v) + I_nudge.

    With `synaptic_input`, ``I_ff`` is the summed variable of a Brian2 ``Synapses``
    projection plus a bias (:func:`bioprop.pathways.synaptic_input`). `dynamics` are the
    equations of v (and of any variable of its own), which settle on v = I_ff.
    """
    from .pathways import synaptic_input as basal_synapses

    equations = SOMA_EQUATIONS.format(dynamics=dynamics, phi=brian2_form(activation, "v"))
    if synaptic_input:
        equations = basal_synapses(equations)
    group = _group(equations, n, name, order, dtype, clock)
    group.tau = tau
    return group


def apical_dendrite(name: str, n: int, tau, activation: Activation, *, clock, order: int = 0,
                    dtype="float64"):
    """The apical compartment of a rate layer, computing the feedback pathway's g = ψ(u)."""
    group = _group(APICAL_EQUATIONS.format(psi=brian2_form(activation, "u")), n, name, order,
                   dtype, clock)
    group.tau = tau
    return group


def clamped_input(name: str, n: int, *, clock, dtype="float64"):
    """The input layer: rates set from the data, no dynamics."""
    from brian2 import NeuronGroup

    return NeuronGroup(n, "r : 1", name=name, clock=clock, dtype=np.dtype(dtype).type)

