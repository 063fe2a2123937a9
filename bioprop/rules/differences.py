"""Difference rules: the upper layer's change e_l = ĥ_l − h_l sent down through a matrix.

These are the exact baselines of docs/algorithms.md written as targets, so that the
same local forward update serves every rule. With the top target
ĥ_t = h_t − η̂ ∂ℒ/∂h_t, ``bp`` gives e_l = −η̂ ∂ℒ/∂h_l exactly, so its local update is
η̂ times the loss gradient. Each rule is a **change** e_{l-1} = change(ctx, l), read
from a :class:`~bioprop.rules.targets.TargetContext` whose ``e`` holds the changes
above; :func:`difference_step` turns it into the shared calling convention.

========  =================================================  ==========================
``bp``    e_{l-1} = W_lᵀ (φ_l'(a_l) ⊙ e_l)                    back-propagation
``fa``    e_{l-1} = B_lᵀ (φ_l'(a_l) ⊙ e_l), B_l fixed random   Lillicrap 2016
``dfa``   e_{l-1} = D_{l-1}ᵀ (φ_t'(a_t) ⊙ e_t), D fixed random Nøkland 2016
``gn``    e_{l-1} = J_{l-1}ᵀ (J_{l-1} J_{l-1}ᵀ + λI)⁻¹ e_t     damped Gauss–Newton
========  =================================================  ==========================

J_{l-1} = ∂h_t/∂h_{l-1} is computed per sample from the forward pre-activations. The
fixed matrices B_l and D_l belong to the model (``model.fixed[rule name]``); each rule
that reads some says their shapes (:func:`feedback_alignment_shapes`,
:func:`direct_alignment_shapes`), so that the model can draw them.
"""
from __future__ import annotations

from .baselines import gauss_newton_changes, output_jacobians

__all__ = ["difference_step", "bp_change", "fa_change", "dfa_change", "gn_change",
           "feedback_alignment_shapes", "direct_alignment_shapes"]


def difference_step(change, ctx, l: int):
    """Fill ``ctx.e[l - 1]`` with ``change(ctx, l)`` and ``ctx.targets[l - 1]`` with h_{l-1} + e_{l-1}."""
    ctx.e[l - 1] = change(ctx, l)
    ctx.targets[l - 1] = ctx.h[l - 1] + ctx.e[l - 1]


def _through(ctx, l, matrix):
    return (ctx.model.activations[l].derivative(ctx.a[l]) * ctx.e[l]) @ matrix


def bp_change(ctx, l: int):
    """e_{l-1} through the forward weight W_l: back-propagation."""
    return _through(ctx, l, ctx.model.forward[l].weight)


def fa_change(ctx, l: int):
    """e_{l-1} through the fixed random B_l: feedback alignment."""
    return _through(ctx, l, ctx.fixed["fa"][l])


def dfa_change(ctx, l: int):
    """e_{l-1} straight from the top layer's change through the fixed random D_{l-1}."""
    return _through(ctx, ctx.top, ctx.fixed["dfa"][l - 1])


def gn_change(ctx, l: int):
    """e_{l-1}: the damped Gauss–Newton change that produces e_t at the top."""
    return gauss_newton_changes(output_jacobians(ctx.model, ctx.a, l - 1, ctx.top),
                                ctx.e[ctx.top], ctx.damping)


def feedback_alignment_shapes(sizes, top: int) -> dict:
    """B_l for l = 2..L, each of W_l's shape (n_l, n_{l-1})."""
    return {l: (sizes[l], sizes[l - 1]) for l in range(2, len(sizes))}


def direct_alignment_shapes(sizes, top: int) -> dict:
    """D_l for l = 1..t−1, each (n_t, n_l): from the top layer t to layer l."""
    return {l: (sizes[top], sizes[l]) for l in range(1, top)}
