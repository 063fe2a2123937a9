"""Exact baselines, computed on arrays: back-propagation and the Gauss–Newton change.

* :func:`bp_grads` — the exact gradient of the batch-mean loss (the ``bp`` rule's oracle).
* :func:`backprop_deltas` — ∂ℓ/∂a_l of every layer, by the chain rule.
* :func:`output_jacobians` — J_l = ∂h_t/∂h_l for every sample of a batch.
* :func:`gauss_newton_changes` — the damped GN change Δh_l = J_lᵀ(J_l J_lᵀ + λI)⁻¹ e
  of every sample (the ``gn`` rule).
"""
from __future__ import annotations

import numpy as np

from ..projection import dense_grads

__all__ = ["bp_grads", "backprop_deltas", "output_jacobians", "gauss_newton_changes"]


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


def output_jacobians(model, a, l: int, top: int) -> np.ndarray:
    """J_l = ∂h_top/∂h_l for every sample, by forward-mode products: shape (B, n_top, n_l)."""
    batch = a[top].shape[0]
    J = np.broadcast_to(np.eye(model.sizes[l]), (batch, model.sizes[l], model.sizes[l]))
    for k in range(l + 1, top + 1):
        J = model.activations[k].derivative(a[k])[:, :, None] * (model.forward[k].weight @ J)
    return J


def gauss_newton_changes(jacobians: np.ndarray, output_change: np.ndarray,
                         damping: float) -> np.ndarray:
    """The damped Gauss–Newton change of a layer that produces `output_change` at the top.

    Δh_l = J_lᵀ (J_l J_lᵀ + λI)⁻¹ e per sample, with e = ĥ_t − h_t (docs/algorithms.md,
    "Baselines").

    Parameters
    ----------
    jacobians : ndarray, shape (B, n_t, n_l)
        J_l of each sample (:func:`output_jacobians`).
    output_change : ndarray, shape (B, n_t)
        e of each sample.
    damping : float
        λ.

    Returns
    -------
    ndarray, shape (B, n_l)
    """
    n_top = jacobians.shape[1]
    gram = jacobians @ jacobians.transpose(0, 2, 1) + damping * np.eye(n_top)
    solved = np.linalg.solve(gram, output_change[:, :, None])
    return (jacobians.transpose(0, 2, 1) @ solved)[:, :, 0]
