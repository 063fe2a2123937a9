"""Exact baselines, computed on arrays: back-propagation and the Gauss–Newton target.

* :func:`bp_grads` — the exact gradient of the batch-mean loss (the ``bp`` rule).
* :func:`output_jacobian` — J_l = ∂h_L/∂h_l for one sample, by forward-mode products.
* :func:`gauss_newton_target` — the damped GN step Δh_l = J_lᵀ(J_l J_lᵀ + λI)⁻¹ e.
"""
from __future__ import annotations

import numpy as np

from ..pathways import dense_grads

__all__ = ["bp_grads", "backprop_deltas", "output_jacobian", "gauss_newton_target"]


def backprop_deltas(model, a, h, dloss_dh_top):
    """∂ℓ/∂a_l for every layer, by the chain rule from ∂ℓ/∂h_L (index 0 is None)."""
    L = model.n_layers
    deltas = [None] * (L + 1)
    grad_h = dloss_dh_top
    for l in range(L, 0, -1):
        deltas[l] = grad_h * model.activations[l].derivative(a[l])
        grad_h = deltas[l] @ model.forward[l].weight
    return deltas


def bp_grads(model, loss_fn, x, y):
    """Exact gradients [gW_l, gb_l] (l = 1..L) of the batch-mean loss.

    Returns
    -------
    grads, loss, a, h
        The gradients, the per-sample loss and the forward pass they came from.
    """
    a, h = model.forward_pass(x)
    loss, dloss = loss_fn(h[-1], y)
    deltas = backprop_deltas(model, a, h, dloss)
    grads = [None] + [dense_grads(deltas[l], h[l - 1]) for l in range(1, model.n_layers + 1)]
    return grads, loss, a, h


def output_jacobian(model, a, l: int, sample: int) -> np.ndarray:
    """J_l = ∂h_L/∂h_l at one sample, shape (n_L, n_l)."""
    J = np.eye(model.sizes[l])
    for k in range(l + 1, model.n_layers + 1):
        J = model.activations[k].derivative(a[k][sample])[:, None] * (model.forward[k].weight @ J)
    return J


def gauss_newton_target(jacobian: np.ndarray, output_change: np.ndarray, damping: float) -> np.ndarray:
    """The damped Gauss–Newton change of a layer that produces `output_change` at the top.

    Δh_l = J_lᵀ (J_l J_lᵀ + λI)⁻¹ e, with e = ĥ_L − h_L (ALGORITHMS.md, baselines).
    """
    n_out = jacobian.shape[0]
    return jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping * np.eye(n_out), output_change)
