"""User extensions: target rules, feedback objectives, activations, population kinds and
plasticity rules registered from user code, as ``bioprop.register``.

Each decorator puts one record into the registry bioprop's own pieces live in, so that a
registered name is valid in a model file, offered by its "did you mean", and run by both
engines the way a built-in one is::

    import bioprop

    @bioprop.register.target_rule("halfway")
    def halfway(h_lower, g_target, g_forward):
        return h_lower + 0.5 * (g_target - g_forward)

    net = bioprop.build(overrides={"rule.target": "halfway"})

=====================================  ==================================================
decorator                              the decorated function
=====================================  ==================================================
:func:`target_rule` (``inverse``)      ĥ_{l-1} = f(h_{l-1}, g_l(ĥ_l), g_l(h_l))
:func:`target_rule` (``difference``)   e_{l-1} = f(ctx, l), from a TargetContext
:func:`feedback_objective`             (loss, {point: ∂loss/∂g}) = f(h_{l-1}, ε, recon, sigma=σ)
:func:`activation`                     r = φ(v), with its derivative, inverse, Brian2 form
:func:`population_kind`                the Brian2 equations of a rate soma, f(layer)
:func:`spiking_kind`                   the Brian2 equations of a spiking soma, f(layer),
                                       with its rate twin and the twin's inverse
:func:`plasticity_rule`                one synapse's change, a Brian2 expression, f(layer)
=====================================  ==================================================

Each is checked when it is registered (its signature, its points, its derivative and
inverse against its function), and where it cannot run in an engine the run stops with
one error that says so: an activation without a Brian2 form runs in the reference engine
only, a plasticity rule in the Brian2 engine's synapses only. A name that is taken is an
error, unless ``replace=True`` replaces a user's; a built-in name cannot be replaced.
:func:`unregister` removes a name and :func:`isolated` puts every registry back as it found
it (tests). Installed packages register theirs through entry points (:mod:`bioprop.plugins`).
:func:`spiking_kind` lives in :mod:`bioprop.spiking_kinds`, the registry of plasticity rules
in :mod:`bioprop.plasticity_rules`.
"""
from __future__ import annotations

import re

import numpy as np

from .activations import CHECK_POINTS, Activation
from .extension_registry import (KINDS, ExtensionError, check_signature, choice, enter, isolated,
                                 origin, unregister)
from .plasticity_rules import PlasticityRule
from .plugins import registries
from .populations import PopulationKind
from .rate_groups import SOMA_VARIABLES
from .rules.feedback import POINTS, objective_at
from .rules.targets import difference_rule, inverse_rule
from .spiking_kinds import spiking_kind

__all__ = ["ExtensionError", "target_rule", "feedback_objective", "activation",
           "population_kind", "spiking_kind", "plasticity_rule", "unregister", "isolated", "KINDS",
           "TARGET_RULE_KINDS"]

#: how a target rule takes its step → the arguments of the function it decorates
TARGET_RULE_KINDS = {"inverse": ("h_lower", "g_target", "g_forward"), "difference": ("ctx", "l")}

# ------------------------------------------------------------------ target rules
def target_rule(name: str, *, kind: str = "inverse", iterates: bool = False, source: str = "",
                replace: bool = False):
    """Register the decorated function as target rule `name` (``rule.target``).

    Parameters
    ----------
    name : str
        The rule's name in model files.
    kind : {"inverse", "difference"}
        ``inverse``: the function is the local target ĥ_{l-1} = f(h_{l-1}, g_l(ĥ_l),
        g_l(h_l)) from the learned feedback pathway g_l, which the rule's feedback
        objective then trains (as ``dtp``). ``difference``: the function is the change
        e_{l-1} = f(ctx, l) sent down from layer l (as ``bp``), reading the
        :class:`~bioprop.rules.TargetContext` ``ctx``: ``model``, the forward pass ``a``
        and ``h``, the changes above ``e``, ``top``; not ``targets``, which the Brian2
        engine does not fill in.
    iterates : bool
        An inverse rule refined ``rule.iterations`` times from x⁰ = h_{l-1} (as
        ``iterative``).
    source : str
        Where the rule comes from (a paper), for its record.
    replace : bool
        Replace a rule of that name that a user registered.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    choice(kind, list(TARGET_RULE_KINDS), f"target rule {name!r}: kind")
    if iterates and kind != "inverse":
        raise ExtensionError(f"target rule {name!r}: only an inverse rule iterates")

    def register(fn):
        check_signature(fn, f"target rule {name!r} ({kind})", TARGET_RULE_KINDS[kind])
        make = inverse_rule if kind == "inverse" else difference_rule
        options = {"iterates": True} if iterates else {}
        enter("target_rule", name, make(name, fn, source or origin(fn), **options), replace)
        return fn
    return register



# ----------------------------------------------------------- feedback objectives
def feedback_objective(name: str, *, points=("noisy",), source: str = "",
                       replace: bool = False):
    """Register the decorated function as feedback objective `name` (``rule.feedback``).

    The function is called ``fn(h_lower, noise, recon, sigma=σ)`` for each g_l, with the
    clean rates h_{l-1}, the noise ε_{l-1} and ``recon[point]``, g_l's reconstruction at
    each of its points, all (samples, n_{l-1}); it returns the loss per sample and
    ``{point: ∂loss/∂recon[point]}`` (:mod:`bioprop.rules.feedback`). Both engines
    produce every point (:data:`~bioprop.rules.POINTS`); an objective that uses
    ``upper_noisy`` has noise injected in layer l too, and one that uses ``drl`` is not
    local (the Brian2 engine's round-trip phases).

    Parameters
    ----------
    name : str
    points : sequence of str
        Where it evaluates g_l, among ``noisy`` (g_l(f(h_{l-1} + ε))), ``clean``
        (g_l(h_l)), ``upper_noisy`` (g_l(h_l + δ)) and ``drl``.
    source : str
    replace : bool

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    points = tuple(dict.fromkeys(points))  # in the given order, once each
    what = f"feedback objective {name!r}"
    if not points:
        raise ExtensionError(f"{what}: an objective with no points trains nothing; "
                             "rule.feedback = \"fixed\" keeps the feedback weights as drawn")
    for point in points:
        choice(point, POINTS, f"{what}: point")

    def register(fn):
        check_signature(fn, what, ("h_lower", "noise", "recon"), sigma=1.0)
        enter("feedback_objective", name, objective_at(
            name, _checked_objective(name, fn, points), points, source or origin(fn)), replace)
        return fn
    return register


def _checked_objective(name, fn, points):
    """`fn`, with what it returns checked at every call: a silently misshapen gradient
    would train the feedback weights on something else."""
    def objective(h_lower, noise, recon, **keywords):
        loss, grads = fn(h_lower, noise, recon, **keywords)
        loss = np.asarray(loss)
        what = f"feedback objective {name!r} returned"
        if loss.shape != (len(h_lower),):
            raise ExtensionError(f"{what} a loss of shape {loss.shape}; expected one per "
                                 f"sample, ({len(h_lower)},)")
        if not isinstance(grads, dict) or not grads or not set(grads) <= set(points):
            raise ExtensionError(f"{what} gradients for {sorted(grads) if isinstance(grads, dict) else grads!r}; "
                                 f"expected a dict of some of its points {list(points)}")
        for point, grad in grads.items():
            if np.shape(grad) != recon[point].shape:
                raise ExtensionError(f"{what} a gradient of shape {np.shape(grad)} at point "
                                     f"{point!r}; expected its reconstruction's, "
                                     f"{recon[point].shape}")
        return loss, grads
    return objective


# ------------------------------------------------------------------- activations
def activation(name: str, *, derivative, inverse=None, brian2: str | None = None,
               check_derivative: bool = True, replace: bool = False):
    """Register the decorated function r = φ(v) as activation `name` (``layers.N.activation``).

    Parameters
    ----------
    name : str
    derivative : callable
        φ′ on arrays, which the forward updates use.
    inverse : callable, optional
        φ⁻¹ on the range of φ (``Activation.inverse``), for rules that invert a layer.
    brian2 : str, optional
        φ as a Brian2 expression in ``{x}``, e.g. ``"{x} / (1 + abs({x}))"``; without it
        the activation runs in the reference engine only, and the Brian2 engine refuses
        it in one error. It is checked against φ when a Brian2 network is first built.
    check_derivative : bool
        Check `derivative` against φ's finite differences; False for a surrogate
        derivative (as ``sign``'s straight-through one).
    replace : bool

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    what = f"activation {name!r}"
    if brian2 is not None:
        try:
            brian2.format(x="v")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            raise ExtensionError(f"{what}: brian2={brian2!r} is not a template in {{x}} "
                                 f"({type(err).__name__}: {err})") from None
        if "{x}" not in brian2:
            raise ExtensionError(f"{what}: brian2={brian2!r} does not use its input {{x}}")

    def register(fn):
        record = Activation(name, fn, derivative, brian2, inverse)
        _check_activation(record, check_derivative)
        enter("activation", name, record, replace)
        return fn
    return register


def _check_activation(record: Activation, check_derivative: bool):
    """φ, φ′ and φ⁻¹ must agree with one another at CHECK_POINTS."""
    v, what = CHECK_POINTS, f"activation {record.name!r}"

    def values(fn, x, role):
        try:
            with np.errstate(all="ignore"):  # what is not finite is checked below
                out = np.asarray(fn(x), dtype=float)
        except Exception as err:
            raise ExtensionError(f"{what}: its {role} fails on an array: "
                                 f"{type(err).__name__}: {err}") from None
        if out.shape != x.shape:
            raise ExtensionError(f"{what}: its {role} returns shape {out.shape} for an "
                                 f"array of shape {x.shape}; it must work elementwise")
        return out

    r = values(record.fn, v, "function")
    if not np.isfinite(r).all():
        raise ExtensionError(f"{what}: its function is not finite on [-3, 3]")
    if check_derivative:
        step = 1e-6
        slope = (values(record.fn, v + step, "function")
                 - values(record.fn, v - step, "function")) / (2 * step)
        given = values(record.derivative, v, "derivative")
        _agree(given, slope, v, 1e-4, f"{what}: its derivative", "the slope of its function",
               " (check_derivative=False for a surrogate)")
    if record.inverse is not None:
        back = values(record.inverse, r, "inverse")
        ok = np.isfinite(back)  # where φ saturates, φ⁻¹ may be infinite
        _agree(values(record.fn, np.where(ok, back, 0.0), "function")[ok], r[ok], v[ok], 1e-6,
               f"{what}: φ(inverse(φ(v)))", "φ(v)")


def _agree(got, want, v, tol, what, against, hint=""):
    wrong = np.abs(got - want) > tol * (1 + np.abs(want))
    if wrong.any():
        i = int(np.argmax(wrong))
        raise ExtensionError(f"{what} is {got[i]:.6g} at v = {v[i]:.3g}, {against} "
                             f"{want[i]:.6g}{hint}")


# -------------------------------------------------------------- population kinds
def population_kind(name: str, *, activation: str | None = None,
                    dendrite_activation: str | None = None, replace: bool = False):
    """Register a rate population kind (``layers.N.population``) whose soma runs the Brian2
    equations the decorated function writes for a layer.

    The function takes the layer's spec (:class:`bioprop.spec.LayerSpec`, to read its
    keys) and returns the equations of the soma's potential ``v`` and of any variables of
    its own, in ``I_ff`` (its feedforward input), ``tau`` (the layer's ``tau``) and numbers
    with units. bioprop adds the rest, ``r = φ(v) + I_nudge``, the input and ``tau``
    (:data:`bioprop.rate_groups.SOMA_EQUATIONS`), and reads the rate as φ(v). The reference
    engine has no time: it computes the steady state v = I_ff, so the equations must
    settle there for the engines to agree. Noise (``xi``) makes the kind stochastic.

    Parameters
    ----------
    name : str
    activation : str, optional
        φ, an activation's name, fixed for every layer of the kind; None: the layer's own
        ``activation``.
    dendrite_activation : str, optional
        ψ of its apical dendrite; None: φ.
    replace : bool

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    what = f"population kind {name!r}"
    names = registries()["activation"]
    for key, value in (("activation", activation), ("dendrite_activation", dendrite_activation)):
        if value is not None:
            choice(value, list(names), f"{what}: {key}")

    def register(dynamics):
        from .spec import LayerSpec

        equations = dynamics(LayerSpec(name="layer", size=1))
        if not isinstance(equations, str):
            raise ExtensionError(f"{what}: the function must return the equations as a string, "
                                 f"not {type(equations).__name__}")
        defined = [a or b for a, b in re.findall(r"^\s*(?:d(\w+)/dt|(\w+))\s*[=:]",
                                                 equations, flags=re.M)]
        evolving = re.findall(r"^\s*d(\w+)/dt", equations, flags=re.M)
        if "v" not in evolving:
            raise ExtensionError(f"{what}: its equations have no 'dv/dt = ...' line: the soma's "
                                 f"potential v must settle on its input I_ff")
        taken = [n for n in defined if n in SOMA_VARIABLES]
        if taken:
            raise ExtensionError(f"{what}: its equations define {taken[0]!r}, which bioprop "
                                 f"adds itself ({', '.join(SOMA_VARIABLES)})")
        own = tuple(n for n in dict.fromkeys(evolving) if n != "v")  # its state, checkpointed
        enter("population_kind", name, PopulationKind(
            name, activation=activation, dendrite_activation=dendrite_activation,
            stochastic=re.search(r"\bxi(_\w+)?\b", equations) is not None,
            state_variables=("v", "I_ff", "I_nudge") + own, soma_dynamics=dynamics), replace)
        return dynamics
    return register


# -------------------------------------------------------------- plasticity rules
def plasticity_rule(name: str, *, source: str = "", replace: bool = False):
    """Register the decorated function as plasticity rule `name` (``layers.N.plasticity_rule``).

    Parameters
    ----------
    name : str
    source : str
        Where the rule comes from, for its record.
    replace : bool
        Replace a rule of that name that a user registered.

    Returns
    -------
    callable
        The decorator. The function takes the layer's spec and returns one synapse's change
        as a Brian2 expression in :data:`bioprop.pathways.RULE_VARIABLES`; it is checked
        as a model file's expression is, for a layer of default keys, when registered.
    """
    from .errors import SpecError

    what = f"plasticity rule {name!r}"

    def register(fn):
        from .spec import LayerSpec
        from .validation import check_rule_expression

        check_signature(fn, what, ("layer",))
        expression = fn(LayerSpec(name="layer", size=1))
        if not isinstance(expression, str) or not expression.strip():
            raise ExtensionError(f"{what}: the function must return a Brian2 expression as a "
                                 f"string, not {expression!r}")
        try:
            check_rule_expression(expression, what, "its expression")
        except SpecError as err:
            raise ExtensionError(str(err)) from None
        enter("plasticity_rule", name, PlasticityRule(name, fn, source or origin(fn)), replace)
        return fn
    return register
