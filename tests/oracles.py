"""Independent oracles of the rules' tests: one sample at a time, no batched algebra.

The package computes the Gauss–Newton change batched (``rules.baselines``); these
restate it per sample, so that a test compares two computations, not one with itself.
"""
import numpy as np


def output_jacobian(model, a, l: int, sample: int) -> np.ndarray:
    """J_l = ∂h_L/∂h_l at one sample, shape (n_L, n_l)."""
    J = np.eye(model.sizes[l])
    for k in range(l + 1, model.n_layers + 1):
        J = model.activations[k].derivative(a[k][sample])[:, None] * (model.forward[k].weight @ J)
    return J


def gauss_newton_change(jacobian: np.ndarray, output_change: np.ndarray, damping: float) -> np.ndarray:
    """Δh_l = J_lᵀ (J_l J_lᵀ + λI)⁻¹ e of one sample."""
    n_out = jacobian.shape[0]
    return jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping * np.eye(n_out), output_change)
