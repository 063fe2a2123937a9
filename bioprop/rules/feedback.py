"""Feedback objectives: the layer-local auto-encoder losses that train g_l.

Each objective takes the lower layer's clean forward activity h_{l-1}, the noise
ε injected into it, and the reconstruction g_l(f_l(h_{l-1} + ε)) that the
feedback pathway produced; it returns the per-sample loss and the gradient of
that loss with respect to the reconstruction. The chain rule through ψ and Q_l
is the pathway's business (:func:`bioprop.pathways.dense_grads`), so each
objective exists only here.

===============  ==========================================  ============
name             loss per sample                             source
===============  ==========================================  ============
``dtp``          ½‖g_l(f_l(h+ε)) − (h+ε)‖²  (noise-preserving)  Lee 2015, eq. 14
``denoising``    ½‖g_l(f_l(h+ε)) − h‖²                        Bengio 2014
===============  ==========================================  ============
"""
from __future__ import annotations

import numpy as np

__all__ = ["dtp_objective", "denoising_objective", "FEEDBACK_OBJECTIVES", "sample_noise"]


def _half_squared(recon, target):
    diff = recon - target
    return 0.5 * (diff ** 2).sum(axis=1), diff


def dtp_objective(h_lower, noise, recon):
    """Noise-preserving reconstruction: g∘f must return the noisy point itself."""
    return _half_squared(recon, h_lower + noise)


def denoising_objective(h_lower, noise, recon):
    """Denoising reconstruction: g∘f must return the clean point."""
    return _half_squared(recon, h_lower)


FEEDBACK_OBJECTIVES = {"dtp": dtp_objective, "denoising": denoising_objective}


def sample_noise(rng: np.random.Generator, batch: int, sizes, sigma: float, dtype=np.float64):
    """Draw the injected noise ε ~ N(0, σ²I) for each noisy layer, in layer order.

    Both engines draw their noise through this function from the same generator,
    so that a run is reproducible and the engines can be compared sample by sample.
    """
    return [(sigma * rng.standard_normal((batch, n))).astype(dtype, copy=False) for n in sizes]
