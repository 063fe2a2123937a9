"""Per-layer diagnostics of a learning rule, computed on a fixed probe batch.

:func:`layer_diagnostics` evaluates the model's current weights with the algebraic
maps (the reference's, which the Brian2 engine reproduces) and returns one value
per layer l = 1..L for each quantity of docs/algorithms.md, "Metrics the field uses".
The value at layer l describes the layer's own change, and the pathway pair
(W_l, Q_l) that ends there; NaN where a quantity does not apply.
"""
from __future__ import annotations

import numpy as np

from ..rules import backprop_deltas, bp_grads, forward_grads, gauss_newton_targets
from ..runlog.vocabulary import METRICS
from .metrics import angle, lipschitz_estimate, reconstruction_error, relative_distance

__all__ = ["layer_diagnostics"]


def layer_diagnostics(learner, x, y, *, pair_noise: float = 0.1, seed: int = 0) -> dict:
    """Every diagnostic for one probe batch, without changing the model.

    Parameters
    ----------
    learner : Learner
        Supplies the model, the rule and its options.
    x, y : arrays
        The probe batch.
    pair_noise : float
        Distance of the paired points for the Lipschitz estimate.

    Returns
    -------
    dict
        name → array of shape (L,), plus ``"residuals"`` (shape (L, K + 1)) for a
        rule that iterates.
    """
    model, rule, t = learner.model, learner.rule, learner.top
    L = model.n_layers
    out = {name: np.full(L, np.nan) for name in METRICS}
    taught = learner.teach_batch(x, y)
    a, h, y_target, teaching, side = (taught.a, taught.h, taught.y_target, taught.teaching,
                                      taught.side)
    targets, residuals = learner.targets_from(a, h, teaching, side)
    gn_targets = gauss_newton_targets(model, a, h, teaching.target, t, rule.damping)
    updates = forward_grads(model, a, h, targets, t)
    if teaching.output_grads is not None:
        updates.append(teaching.output_grads)
    exact, _, _, _ = bp_grads(model, learner.loss_fn, x, y_target)
    _, dloss = learner.loss_fn(h[L], y_target)
    deltas = backprop_deltas(model, a, h, dloss)
    for l in range(1, L + 1):
        out["angle_to_bp"][l - 1] = angle(updates[l][0], exact[l][0])
        if l <= t:
            dloss_dh = deltas[l + 1] @ model.forward[l + 1].weight if l < L else dloss
            out["activity_angle_to_bp"][l - 1] = angle(targets[l] - h[l], -dloss_dh)
        if l < t:
            out["angle_to_gn"][l - 1] = angle(targets[l] - h[l], gn_targets[l] - h[l])
        if 2 <= l <= L:
            W, Q = model.forward[l].weight, model.feedback[l].weight
            out["angle_w_q"][l - 1] = angle(W.T, Q)
            out["distance_w_q"][l - 1] = relative_distance(Q, W.T)
            G = lambda v, l=l: model.g(l, model.f(l, v)[1], side)[1]
            out["reconstruction_error"][l - 1] = reconstruction_error(h[l - 1], G(h[l - 1]))
            rng = np.random.default_rng(seed + l)
            pairs = h[l - 1] + pair_noise * rng.standard_normal(h[l - 1].shape)
            out["lipschitz"][l - 1] = lipschitz_estimate(G, h[l - 1], pairs)
    if learner.target_rule.iterates:
        out["residuals"] = np.full((L, rule.iterations + 1), np.nan)
        for l in range(1, t):
            out["residuals"][l - 1] = residuals[l]
    return out
