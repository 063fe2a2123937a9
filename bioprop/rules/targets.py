"""Target rules: how a target travels down one layer of the feedback pathway.

A target rule maps the lower layer's forward activity h_{l-1}, the feedback
pathway's reconstruction of the upper layer's target g_l(ĥ_l), and its
reconstruction of the upper layer's forward activity g_l(h_l), to the lower
layer's target ĥ_{l-1}. The registry :data:`TARGET_RULES` maps the names of
ALGORITHMS.md to the functions; both engines look rules up there.

=========  ======================================  ============
name       ĥ_{l-1}                                  source
=========  ======================================  ============
``tp``     g_l(ĥ_l)                                 Bengio 2014
``dtp``    h_{l-1} + g_l(ĥ_l) − g_l(h_l)            Lee 2015, eq. 12
=========  ======================================  ============

The top target (:func:`top_target`) is one gradient step of the loss on the
layer that carries it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["tp_target", "dtp_target", "top_target", "TARGET_RULES"]


def top_target(h: np.ndarray, dloss_dh: np.ndarray, step: float) -> np.ndarray:
    """ĥ = h − η̂ ∂ℒ/∂h (Lee 2015, eq. 13), with η̂ = `step`."""
    return h - step * dloss_dh


def tp_target(h_lower: np.ndarray, g_target: np.ndarray, g_forward: np.ndarray) -> np.ndarray:
    """Vanilla target propagation: the lower target is the inverse of the upper target."""
    return g_target


def dtp_target(h_lower: np.ndarray, g_target: np.ndarray, g_forward: np.ndarray) -> np.ndarray:
    """Difference target propagation: correct the inverse by its error at h_l.

    With an exact inverse this equals :func:`tp_target`; with an imperfect one,
    ĥ_{l-1} − h_{l-1} vanishes when ĥ_l = h_l, which is what makes the rule stable.
    """
    return h_lower + (g_target - g_forward)


TARGET_RULES = {"tp": tp_target, "dtp": dtp_target}
