"""Target rules: how a target travels down one layer of the network.

Every rule is a :class:`TargetRule` record in :data:`TARGET_RULES`, and every rule
is called the same way: ``rule.step(ctx, l)`` reads a :class:`TargetContext` (the
model, the forward pass, the targets of the layers above) and fills in layer l−1.
What differs between rules, the record says:

* ``uses_inverse`` — an **inverse rule** (:mod:`bioprop.rules.inverse`: ``tp``,
  ``dtp``, ``iterative``) reads the learned feedback pathway g_l, which must then be
  trained; its ``local_target`` is ĥ_{l-1} from h_{l-1}, g_l(ĥ_l) and g_l(h_l), what
  a settled apical dendrite offers. A **difference rule**
  (:mod:`bioprop.rules.differences`: ``bp``, ``fa``, ``dfa``, ``gn``) sends the change
  e_l = ĥ_l − h_l down through a matrix; its ``change`` is e_{l-1}.
* ``iterates`` — the local target is applied K times (``rule.iterations`` of the
  model file), each time from the last iterate; only then does K matter, and the
  iterates' residuals are recorded in the run file.
* ``fixed_shapes`` — the fixed random matrices the rule reads, which the model draws.

:func:`top_target` starts the descent at the top layer t.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from .differences import (bp_change, dfa_change, difference_step, direct_alignment_shapes,
                          fa_change, feedback_alignment_shapes, gn_change)
from .inverse import difference_correction, inverse_step, inverse_target, iterative_step

__all__ = ["TargetRule", "TARGET_RULES", "DEFAULT_TARGET_RULE", "TargetContext",
           "top_target", "inverse_rule", "difference_rule"]


def top_target(h: np.ndarray, dloss_dh: np.ndarray, step: float) -> np.ndarray:
    """ĥ = h − η̂ ∂ℒ/∂h (Lee 2015, eq. 13), with η̂ = `step`."""
    return h - step * dloss_dh


@dataclass
class TargetContext:
    """What a target rule may read as the targets travel down, and where it writes.

    Lists are indexed by layer. ``targets[l]`` is ĥ_l and ``e[l]`` the change
    ĥ_l − h_l as a difference rule sends it (``e[t]`` from the top target); an
    iterating rule writes the residuals of its iterates into ``residuals[l]``.
    """

    model: object
    a: list
    top: int
    e: list
    damping: float = 1e-3
    fixed: dict = field(default_factory=dict)  # the model's fixed matrices, by rule name
    h: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    residuals: list = field(default_factory=list)
    #: the side inputs of the g_l (:func:`bioprop.model.side_inputs`), or None
    side: list | None = None
    #: K, the refinements of an iterating rule
    iterations: int = 1
    #: α, the step of each refinement (1: undamped)
    iteration_step: float = 1.0

    @classmethod
    def descent(cls, model, a, h, top_target_value, t: int, *, damping: float = 1e-3,
                iterations: int = 1, iteration_step: float = 1.0,
                side=None) -> "TargetContext":
        """A context whose top layer t holds the top target, ready for ``step(ctx, t)``."""
        ctx = cls(model, a, t, [None] * (t + 1), damping, model.fixed, h, [None] * (t + 1),
                  [None] * (t + 1), side, iterations, iteration_step)
        ctx.targets[t] = top_target_value
        ctx.e[t] = top_target_value - h[t]
        return ctx

    def f(self, l: int, h_lower):
        """f_l(h_{l-1}), the rate."""
        return self.model.f(l, h_lower)[1]

    def g(self, l: int, h_upper):
        """g_l(h_l), the reconstruction, with this context's side inputs."""
        return self.model.g(l, h_upper, self.side)[1]


@dataclass(frozen=True)
class TargetRule:
    """A target rule: its name, how it takes its step and what it needs (module docstring)."""

    name: str
    source: str
    #: ``step(ctx, l)``: fill layer l−1 of a :class:`TargetContext` from layer l
    step: Callable
    #: does the rule read the learned feedback pathway g_l (which must then learn)?
    uses_inverse: bool
    #: inverse rules: ĥ_{l-1} = local_target(h_{l-1}, g_l(ĥ_l), g_l(h_l))
    local_target: Callable | None = None
    #: difference rules: e_{l-1} = change(ctx, l)
    change: Callable | None = None
    #: is the local target refined K times, from x⁰ = h_{l-1}?
    iterates: bool = False
    #: fixed_shapes(sizes, top) → {l: (rows, cols)} of the fixed matrices the rule reads
    fixed_shapes: Callable | None = None


def inverse_rule(name: str, local_target: Callable, source: str, *,
                 iterates: bool = False) -> TargetRule:
    """The record of a rule that forms ĥ_{l-1} from the inverse g_l (:mod:`.inverse`)."""
    step = partial(iterative_step if iterates else inverse_step, local_target)
    return TargetRule(name, source, step, True, local_target=local_target, iterates=iterates)


def difference_rule(name: str, change: Callable, source: str, *,
                    fixed_shapes: Callable | None = None) -> TargetRule:
    """The record of a rule that sends e_l down through a matrix (:mod:`.differences`)."""
    return TargetRule(name, source, partial(difference_step, change), False, change=change,
                      fixed_shapes=fixed_shapes)


#: every target rule by name. The model draws the fixed matrices in this order, so a new
#: rule with fixed matrices goes last (and even then shifts the draws that follow them:
#: the side weights and the connection masks)
TARGET_RULES = {r.name: r for r in (
    inverse_rule("tp", inverse_target, "Bengio 2014"),
    inverse_rule("dtp", difference_correction, "Lee et al. 2015"),
    inverse_rule("iterative", difference_correction, "Bengio 2020", iterates=True),
    difference_rule("bp", bp_change, "back-propagation"),
    difference_rule("fa", fa_change, "Lillicrap et al. 2016",
                    fixed_shapes=feedback_alignment_shapes),
    difference_rule("dfa", dfa_change, "Nøkland 2016", fixed_shapes=direct_alignment_shapes),
    difference_rule("gn", gn_change, "damped Gauss–Newton"),
)}

#: the rule of a model file that names none
DEFAULT_TARGET_RULE = "dtp"
