"""Output losses ℒ(h_L, y) and their gradients with respect to the output activity.

Each loss returns the per-sample loss and ∂ℓ_i/∂h_L for every sample i of the batch
(not divided by the batch size): the top target of sample i is one step on its own
loss, ĥ_L = h_L − η̂ ∂ℓ_i/∂h_L (docs/algorithms.md, "Top target").
"""
from __future__ import annotations

import numpy as np

__all__ = ["softmax_cross_entropy", "squared_error", "LOSSES", "one_hot"]


def one_hot(y: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Encode integer labels `y` (shape (B,)) as a (B, n_classes) one-hot array."""
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1.0
    return out


def softmax(h: np.ndarray) -> np.ndarray:
    z = h - h.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(h: np.ndarray, y_onehot: np.ndarray):
    """Cross-entropy of softmax(h) against one-hot labels.

    Returns
    -------
    loss : ndarray, shape (B,)
    grad : ndarray, shape (B, n)
        ∂ℓ_i/∂h_i = softmax(h_i) − y_i.
    """
    z = h - h.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -(y_onehot * log_p).sum(axis=1)
    return loss, np.exp(log_p) - y_onehot


def squared_error(h: np.ndarray, y: np.ndarray):
    """Half squared error ½‖h − y‖², per sample, and its gradient h − y."""
    diff = h - y
    return 0.5 * (diff ** 2).sum(axis=1), diff


LOSSES = {"softmax_cross_entropy": softmax_cross_entropy, "squared_error": squared_error}
