"""Weight constraints as options: Dale's law, a connection mask and weight bounds.

A model file's ``[constraints.forward]`` table says what every forward weight W_l must
obey, and ``[constraints.feedback]`` what every feedback weight Q_l must (the side
weights R_l and the biases are free):

* **Dale's law** (``excitatory``): each presynaptic neuron is excitatory or
  inhibitory, that fraction of every layer excitatory, and every weight out of it keeps
  its sign: ≥ 0 for an excitatory neuron, ≤ 0 for an inhibitory one;
* **a connection mask** (``p_connect``): each connection exists with that probability,
  drawn once per model, and an absent one stays exactly 0;
* **bounds** (``low``, ``high``): every weight stays in [low, high].

The random parts are drawn by :func:`draw_constraints` once per model, from the
initialisation generator of the run's seed, after every other initial draw (a model
without constraints draws what it always drew), and kept in ``model.fixed`` beside the
fixed matrices of the rules, so that checkpoints, saved networks and the run file
(``/constraints/<pathway>``, :func:`constraint_arrays`) hold them. One uniform number per
neuron decides its type: the neurons of a layer with the smallest are excitatory, in
every pathway out of them, so that a neuron excitatory forward is excitatory in the
feedback pathway too when both pathways have the same fraction.

:class:`WeightConstraints` applies them: at initialisation and after every optimizer
step (:meth:`bioprop.learner.Learner.apply_forward` and ``apply_feedback``, which both
engines share), and to the weights that synapses learned themselves, which the Brian2
engine reads back before the step and copies out after it. Applying them is the
Euclidean projection onto the allowed weights: clip to the bounds, then every weight of
the wrong sign to 0, then every absent connection to 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import fail
from .projection import connection_mask
from .ranges import ranged

__all__ = ["PathwayConstraintsSpec", "ConstraintsSpec", "WeightConstraints", "PATHWAY_KINDS",
           "FIXED_MASKS", "FIXED_SIGNS", "forward_p_connect", "draw_constraints",
           "check_constraints", "constraint_arrays"]

#: the two kinds of learned pathway a constraint applies to: W_l and Q_l
PATHWAY_KINDS = ("forward", "feedback")
#: the key in ``model.fixed`` of each kind's connection masks ({l: (post, pre) of 0 and 1}).
#: A forward mask is the one a layer's own ``p_connect`` draws, which the synapses use.
FIXED_MASKS = {"forward": "mask", "feedback": "feedback_mask"}
#: the key in ``model.fixed`` of each kind's signs ({l: (pre,) of +1 and −1})
FIXED_SIGNS = {"forward": "forward_sign", "feedback": "feedback_sign"}


@dataclass(frozen=True)
class PathwayConstraintsSpec:
    """What every weight of one kind of pathway must obey, after every update."""

    #: Dale's law: the fraction of each layer's neurons that are excitatory (every weight out
    #: of one stays ≥ 0, out of an inhibitory one ≤ 0), exact to the nearest neuron; unset: off
    excitatory: float | None = ranged(None, ge=0, le=1, what="a fraction",
                                      written="when set")
    #: probability that each connection exists, drawn once per model; absent connections stay
    #: 0 in both engines. ``forward``: the default of every layer's own ``p_connect``
    p_connect: float = ranged(1.0, gt=0, le=1, what="a connection probability",
                              written="when set")
    #: the lowest value a weight may take; unset: no lower bound
    low: float | None = ranged(None, written="when set")
    #: the highest value a weight may take; unset: no upper bound
    high: float | None = ranged(None, written="when set")

    @property
    def active(self) -> bool:
        """Whether any key is set: False for a table left at its defaults."""
        return self != PathwayConstraintsSpec()


@dataclass(frozen=True)
class ConstraintsSpec:
    """The constraints of the forward weights W_l and of the feedback weights Q_l."""

    forward: PathwayConstraintsSpec = PathwayConstraintsSpec()
    feedback: PathwayConstraintsSpec = PathwayConstraintsSpec()


def forward_p_connect(spec) -> list:
    """The connection probability of every W_l of a model spec: the layer's own
    ``p_connect`` if it sets one below 1, else ``constraints.forward.p_connect``."""
    default = spec.constraints.forward.p_connect
    return [layer.p_connect if layer.p_connect < 1 else default for layer in spec.layers]


def check_constraints(spec):
    """The checks of ``[constraints]`` beyond each key's range (:mod:`bioprop.validation`).

    Raises
    ------
    SpecError
        Bounds the wrong way round; bounds that leave out 0 while Dale's law or a mask
        asks for zeros; a layer's ``p_connect`` and ``constraints.forward.p_connect``
        both set.
    """
    src = spec.source
    for kind in PATHWAY_KINDS:
        c, key = getattr(spec.constraints, kind), f"constraints.{kind}"
        if c.low is not None and c.high is not None and c.low > c.high:
            fail(src, f"{key}.low", f"must be at most {key}.high ({c.high!r}), got {c.low!r}")
        zeros = [what for what, on in (("Dale's law (excitatory)", c.excitatory is not None),
                                       ("a connection mask (p_connect < 1)", c.p_connect < 1))
                 if on]
        for bound, bad in (("low", c.low is not None and c.low > 0),
                           ("high", c.high is not None and c.high < 0)):
            if zeros and bad:
                fail(src, f"{key}.{bound}", f"with {zeros[0]} a weight may have to be 0, so "
                     f"the bounds must include 0; got {bound} = {getattr(c, bound)!r}")
    if spec.constraints.forward.p_connect < 1:
        for i, layer in enumerate(spec.layers):
            if layer.p_connect < 1:
                fail(src, f"layers.{i}.p_connect", "set either the layer's p_connect or "
                     "constraints.forward.p_connect (the default of every layer), not both")


def _signs(u: np.ndarray, fraction: float, dtype) -> np.ndarray:
    """+1 for the round(fraction · n) neurons with the smallest `u`, −1 for the others."""
    signs = -np.ones(len(u), dtype)
    signs[np.argsort(u, kind="stable")[:int(round(fraction * len(u)))]] = 1
    return signs


def draw_constraints(model, spec: ConstraintsSpec, rng: np.random.Generator):
    """Draw the feedback masks and the neurons' types into ``model.fixed``, then apply
    every constraint to the initial weights, in place.

    A masked Q_l is scaled by 1/√p, as build_model scales a masked W_l, to keep the
    expected norm of each row. Under Dale's law each initial weight keeps its magnitude
    and takes its neuron's sign: W_ij ← s_j |W_ij|. Nothing is drawn for constraints
    that are off, so a model without them is the model build_model drew.
    """
    fb, fixed = spec.feedback, model.fixed
    dtype = model.forward[1].weight.dtype
    if fb.p_connect < 1:
        masks = fixed.setdefault(FIXED_MASKS["feedback"], {})
        for l in range(2, model.n_layers + 1):
            masks[l] = connection_mask(rng, *model.feedback[l].shape, fb.p_connect, dtype)
            model.feedback[l].weight *= masks[l] / np.sqrt(fb.p_connect)
    if spec.forward.excitatory is not None or fb.excitatory is not None:
        u = [rng.random(n) for n in model.sizes]  # one number a neuron, every layer
        for kind, pre in (("forward", lambda l: l - 1), ("feedback", lambda l: l)):
            fraction = getattr(spec, kind).excitatory
            if fraction is not None:
                fixed[FIXED_SIGNS[kind]] = {l: _signs(u[pre(l)], fraction, dtype)
                                            for l in _layers(model, kind)}
        for kind in PATHWAY_KINDS:
            for l, sign in fixed.get(FIXED_SIGNS[kind], {}).items():
                weight = getattr(model, kind)[l].weight
                np.abs(weight, out=weight)
                weight *= sign
    constraints = WeightConstraints(spec, model)
    for kind in PATHWAY_KINDS:
        constraints.apply(kind)


def _layers(model, kind) -> range:
    return range(1 if kind == "forward" else 2, model.n_layers + 1)


class WeightConstraints:
    """The constraints of one model's pathways, applied in place (the one place both
    engines apply them).

    Parameters
    ----------
    spec : ConstraintsSpec
    model : LayeredModel
        Its ``fixed`` holds the masks and signs :func:`draw_constraints` drew (a forward
        mask may also come from a layer's ``p_connect``).
    """

    def __init__(self, spec: ConstraintsSpec, model):
        self.spec, self.model = spec, model
        #: kind → whether any of its pathways is constrained
        self.active = {kind: getattr(spec, kind).active or bool(
            model.fixed.get(FIXED_MASKS[kind])) for kind in PATHWAY_KINDS}
        for kind in PATHWAY_KINDS:
            c, fixed = getattr(spec, kind), model.fixed
            for what, on, key in (("excitatory", c.excitatory is not None, FIXED_SIGNS[kind]),
                                  ("p_connect", c.p_connect < 1, FIXED_MASKS[kind])):
                if on and set(fixed.get(key, {})) != set(_layers(model, kind)):
                    raise ValueError(f"constraints.{kind}.{what} is set but the model has no "
                                     f"{key!r} for every pathway: build it with make_engine")

    def apply(self, kind: str):
        """Project every weight of `kind` (``forward`` or ``feedback``) onto the allowed set."""
        if not self.active[kind]:
            return
        c, fixed = getattr(self.spec, kind), self.model.fixed
        signs, masks = fixed.get(FIXED_SIGNS[kind], {}), fixed.get(FIXED_MASKS[kind], {})
        for l in _layers(self.model, kind):
            weight = getattr(self.model, kind)[l].weight
            if c.low is not None or c.high is not None:
                np.clip(weight, c.low, c.high, out=weight)
            if l in signs:  # s (s W)⁺: the part of the weight with its neuron's sign
                weight *= signs[l]
                np.maximum(weight, 0, out=weight)
                weight *= signs[l]
            if l in masks:
                weight *= masks[l]

    def mask_grads(self, kind: str, grads):
        """Zero the weight gradients of absent connections, in place (grads[l][0], by
        layer): an optimizer then keeps no state for a synapse that does not exist."""
        for l, mask in self.model.fixed.get(FIXED_MASKS[kind], {}).items():
            if l < len(grads) and grads[l] is not None:  # g_l above the top learns nothing
                grads[l][0] *= mask

    def violation(self, kind: str, l: int, weight: np.ndarray) -> str | None:
        """What `weight`, offered as pathway l of `kind`, breaks (None: nothing)."""
        c, fixed = getattr(self.spec, kind), self.model.fixed
        mask = fixed.get(FIXED_MASKS[kind], {}).get(l)
        if mask is not None and np.any(weight[mask == 0] != 0):
            return (f"{int(np.count_nonzero(weight[mask == 0]))} weights at connections this "
                    "sparse pathway lacks are not 0")
        sign = fixed.get(FIXED_SIGNS[kind], {}).get(l)
        if sign is not None and np.any(weight * sign < 0):
            return (f"{int(np.count_nonzero(weight * sign < 0))} weights have the sign opposite "
                    f"to their presynaptic neuron's (constraints.{kind}.excitatory)")
        for bound, outside in (("low", lambda b: weight < b), ("high", lambda b: weight > b)):
            value = getattr(c, bound)
            if value is not None and np.any(outside(value)):
                return (f"{int(np.count_nonzero(outside(value)))} weights lie outside "
                        f"constraints.{kind}.{bound} = {value!r}")
        return None


def constraint_arrays(model) -> dict:
    """What the run file records of each constrained pathway: {(kind, l): {variable:
    array}}, with ``connected`` (post, pre) 1 where a connection exists and ``sign`` (pre,)
    +1 for an excitatory presynaptic neuron, −1 for an inhibitory one."""
    out = {}
    for kind in PATHWAY_KINDS:
        for key, variable in ((FIXED_MASKS[kind], "connected"), (FIXED_SIGNS[kind], "sign")):
            for l, array in model.fixed.get(key, {}).items():
                out.setdefault((kind, l), {})[variable] = array.astype(np.int8)
    return dict(sorted(out.items(), key=lambda item: (PATHWAY_KINDS.index(item[0][0]),
                                                      item[0][1])))
