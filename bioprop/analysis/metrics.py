"""Metrics of docs/algorithms.md as small functions on arrays.

* :func:`angle` — the angle in degrees between two arrays, flattened.
* :func:`relative_distance` — ‖a − b‖ / ‖b‖.
* :func:`reconstruction_error` — ‖g(f(h)) − h‖ / ‖h‖.
* :func:`lipschitz_estimate` — max over sampled pairs of ‖(G(x) − x) − (G(y) − y)‖ / ‖x − y‖.
"""
from __future__ import annotations

import numpy as np

__all__ = ["angle", "relative_distance", "reconstruction_error", "lipschitz_estimate"]


def angle(a, b) -> float:
    """arccos(⟨a, b⟩ / ‖a‖‖b‖) in degrees, over all elements; NaN if either is zero."""
    a, b = np.ravel(a), np.ravel(b)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0 or not np.isfinite(norm):
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def relative_distance(a, b) -> float:
    """‖a − b‖ / ‖b‖ (Frobenius)."""
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(b))


def reconstruction_error(h, reconstruction) -> float:
    """‖g(f(h)) − h‖ / ‖h‖ over a batch (Frobenius)."""
    return relative_distance(reconstruction, h)


def lipschitz_estimate(G, x, y) -> float:
    """Estimate Lip(G − I) from pairs of points (rows of x and y).

    Parameters
    ----------
    G : callable
        A map of (B, n) arrays, e.g. g_l ∘ f_l.
    x, y : ndarray (B, n)
        Paired points; the estimate is the largest ratio over the pairs, a lower
        bound of the Lipschitz constant that tightens with more pairs.
    """
    residual = (G(x) - x) - (G(y) - y)
    return float(np.max(np.linalg.norm(residual, axis=1) / np.linalg.norm(x - y, axis=1)))
