"""Target rules: how a target travels down one layer of the network.

Every rule is a :class:`TargetRule` record in :data:`TARGET_RULES`, of one of two kinds.

**Inverse rules** form the lower target from the learned feedback pathway g_l
(``uses_inverse = True``). Their function takes the lower layer's forward rate
h_{l-1}, the reconstruction of the upper target g_l(ĥ_l) and of the upper forward
rate g_l(h_l):

===============  ===================================================  ===============
``tp``           ĥ_{l-1} = g_l(ĥ_l)                                    Bengio 2014
``dtp``          ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) − g_l(h_l)               Lee 2015, eq. 12
``iterative``    x⁰ = h_{l-1}; x^{k+1} = x^k + g_l(ĥ_l) − g_l(f_l(x^k))  Bengio 2020
===============  ===================================================  ===============

``dtp`` is ``iterative`` with K = 1, because f_l(h_{l-1}) = h_l.

**Difference rules** send the upper layer's change e_l = ĥ_l − h_l down through a
matrix (``uses_inverse = False``): the exact baselines of ALGORITHMS.md, written as
targets so that the same local forward update serves every rule. With the top
target ĥ_t = h_t − η̂ ∂ℒ/∂h_t, ``bp`` gives e_l = −η̂ ∂ℒ/∂h_l exactly, so its local
update is η̂ times the loss gradient.

========  =================================================  ==========================
``bp``    e_{l-1} = W_lᵀ (φ_l'(a_l) ⊙ e_l)                    back-propagation
``fa``    e_{l-1} = B_lᵀ (φ_l'(a_l) ⊙ e_l), B_l fixed random   Lillicrap 2016
``dfa``   e_{l-1} = D_{l-1}ᵀ (φ_t'(a_t) ⊙ e_t), D fixed random Nøkland 2016
``gn``    e_{l-1} = J_{l-1}ᵀ (J_{l-1} J_{l-1}ᵀ + λI)⁻¹ e_t     damped Gauss–Newton
========  =================================================  ==========================

J_{l-1} = ∂h_t/∂h_{l-1} is computed per sample from the forward pre-activations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["TargetRule", "TARGET_RULES", "top_target", "tp_target", "dtp_target",
           "iterative_target", "DifferenceContext", "output_jacobians"]


def top_target(h: np.ndarray, dloss_dh: np.ndarray, step: float) -> np.ndarray:
    """ĥ = h − η̂ ∂ℒ/∂h (Lee 2015, eq. 13), with η̂ = `step`."""
    return h - step * dloss_dh


# --------------------------------------------------------------- inverse rules
def tp_target(h_lower, g_target, g_forward, **_):
    """Vanilla target propagation: the lower target is the inverse of the upper target."""
    return g_target, None


def dtp_target(h_lower, g_target, g_forward, **_):
    """Difference target propagation: correct the inverse by its error at h_l.

    With an exact inverse this equals :func:`tp_target`; with an imperfect one,
    ĥ_{l-1} − h_{l-1} vanishes when ĥ_l = h_l, which is what makes the rule stable.
    """
    return h_lower + (g_target - g_forward), None


def iterative_target(h_lower, g_target, g_forward, *, f, g, target_upper, iterations: int, **_):
    """K refinements of the approximate inverse (Bengio 2020, eq. 7).

    Parameters
    ----------
    f, g : callable
        f_l and g_l as functions of a (B, n) array.
    target_upper : ndarray
        ĥ_l, to measure the residuals.
    iterations : int
        K ≥ 1.

    Returns
    -------
    target : ndarray
        x^K.
    residuals : ndarray, shape (K + 1,)
        ‖f_l(x^k) − ĥ_l‖ (Frobenius over the batch) for k = 0..K. When
        Lip(g_l∘f_l − I) < 1 they fall geometrically.
    """
    x = h_lower
    f_x = f(x)
    residuals = [np.linalg.norm(f_x - target_upper)]
    for _ in range(iterations):
        x, _ = dtp_target(x, g_target, g(f_x))  # each step is a DTP step from x^k
        f_x = f(x)
        residuals.append(np.linalg.norm(f_x - target_upper))
    return x, np.array(residuals)


# ------------------------------------------------------------ difference rules
@dataclass
class DifferenceContext:
    """What a difference rule may read: the model, the forward pass and the changes so far.

    ``e[l]`` is ĥ_l − h_l, filled from the top layer t downwards.
    """

    model: object
    a: list
    top: int
    e: list
    damping: float = 1e-3
    fixed: dict = field(default_factory=dict)  # "fa" / "dfa": {l: matrix}


def _through(ctx, l, matrix):
    return (ctx.model.activations[l].derivative(ctx.a[l]) * ctx.e[l]) @ matrix


def bp_difference(ctx, l):
    return _through(ctx, l, ctx.model.forward[l].weight)


def fa_difference(ctx, l):
    return _through(ctx, l, ctx.fixed["fa"][l])


def dfa_difference(ctx, l):
    return _through(ctx, ctx.top, ctx.fixed["dfa"][l - 1])


def output_jacobians(model, a, l: int, top: int) -> np.ndarray:
    """J_l = ∂h_top/∂h_l for every sample: shape (B, n_top, n_l)."""
    batch = a[top].shape[0]
    J = np.broadcast_to(np.eye(model.sizes[l]), (batch, model.sizes[l], model.sizes[l]))
    for k in range(l + 1, top + 1):
        J = model.activations[k].derivative(a[k])[:, :, None] * (model.forward[k].weight @ J)
    return J


def gn_difference(ctx, l):
    J = output_jacobians(ctx.model, ctx.a, l - 1, ctx.top)
    n_top = J.shape[1]
    gram = J @ J.transpose(0, 2, 1) + ctx.damping * np.eye(n_top)
    solved = np.linalg.solve(gram, ctx.e[ctx.top][:, :, None])
    return (J.transpose(0, 2, 1) @ solved)[:, :, 0]


# ------------------------------------------------------------------- registry
@dataclass(frozen=True)
class TargetRule:
    """A target rule: its name, its kind and its function (see the module docstring)."""

    name: str
    uses_inverse: bool
    fn: Callable
    source: str


TARGET_RULES = {r.name: r for r in (
    TargetRule("tp", True, tp_target, "Bengio 2014"),
    TargetRule("dtp", True, dtp_target, "Lee et al. 2015"),
    TargetRule("iterative", True, iterative_target, "Bengio 2020"),
    TargetRule("bp", False, bp_difference, "back-propagation"),
    TargetRule("fa", False, fa_difference, "Lillicrap et al. 2016"),
    TargetRule("dfa", False, dfa_difference, "Nøkland 2016"),
    TargetRule("gn", False, gn_difference, "damped Gauss–Newton"),
)}
