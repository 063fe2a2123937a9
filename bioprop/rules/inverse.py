"""Inverse rules: the lower target formed from the learned feedback pathway g_l.

Each rule is written twice over the same local form, once for each way a target
can be computed:

* its **local target** ĥ_{l-1} = local(h_{l-1}, g_l(ĥ_l), g_l(h_l)), from what layer
  l−1 holds: its forward rate and its apical dendrite's two reconstructions. The
  Brian2 engine calls this with the reconstructions its dendrites settled to;
* its **step** in the calling convention every rule shares, ``step(ctx, l)``, which
  evaluates g_l algebraically from a :class:`~bioprop.rules.targets.TargetContext`.

===============  ===================================================  ===============
``tp``           ĥ_{l-1} = g_l(ĥ_l)                                    Bengio 2014
``dtp``          ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) − g_l(h_l)               Lee 2015, eq. 12
``iterative``    x⁰ = h_{l-1}; x^{k+1} = x^k + g_l(ĥ_l) − g_l(f_l(x^k))  Bengio 2020
===============  ===================================================  ===============

``dtp`` is ``iterative`` with K = 1, because f_l(h_{l-1}) = h_l: both take the step
of :func:`difference_correction`, which is also how the ``drl`` objective sends its
reconstruction point down (docs/algorithms.md, "Target rules").
"""
from __future__ import annotations

import numpy as np

__all__ = ["inverse_target", "difference_correction", "inverse_step", "iterative_step", "damped"]


def inverse_target(h_lower, g_target, g_forward):
    """Vanilla target propagation: the lower target is the inverse of the upper target.

    Parameters
    ----------
    h_lower : ndarray, shape (B, n_{l-1})
        h_{l-1}, unused: the rule forgets where the layer is.
    g_target, g_forward : ndarray, shape (B, n_{l-1})
        g_l(ĥ_l) and g_l(h_l).
    """
    return g_target


def difference_correction(h_lower, g_target, g_forward):
    """ĥ_{l-1} = h_{l-1} + (g_l(ĥ_l) − g_l(h_l)): correct the inverse by its error at h_l.

    With an exact inverse this equals :func:`inverse_target`; with an imperfect one,
    ĥ_{l-1} − h_{l-1} vanishes when ĥ_l = h_l, which is what makes the rule stable.
    The same step refines an iterate x^k (with x^k for h_{l-1} and g_l(f_l(x^k)) for
    g_l(h_l)), and sends the ``drl`` reconstruction point down one layer.

    Parameters
    ----------
    h_lower : ndarray, shape (B, n_{l-1})
        The point being corrected: h_{l-1}, or the iterate x^k.
    g_target, g_forward : ndarray, shape (B, n_{l-1})
        g_l(ĥ_l), and g_l at the image of `h_lower`.
    """
    return h_lower + (g_target - g_forward)


def inverse_step(local, ctx, l: int):
    """Fill ``ctx.targets[l - 1]`` with ``local(h_{l-1}, g_l(ĥ_l), g_l(h_l))``.

    The step of a rule that reads the inverse once; `local` is its local target.
    """
    ctx.targets[l - 1] = local(ctx.h[l - 1], ctx.g(l, ctx.targets[l]), ctx.g(l, ctx.h[l]))


def damped(x, refined, step: float):
    """x + α (refined − x): a refinement taken with step α; α = 1 returns `refined` itself,
    bit for bit, so that undamped runs stay what they were.

    Parameters
    ----------
    x, refined : ndarray
        The iterate x^k and its undamped refinement.
    step : float
        α in (0, 1].
    """
    return refined if step == 1 else x + step * (refined - x)


def iterative_step(refine, ctx, l: int):
    """K = ``ctx.iterations`` refinements of the approximate inverse (Bengio 2020, eq. 7),
    each taken with step α = ``ctx.iteration_step`` (:func:`damped`).

    Fills ``ctx.targets[l - 1]`` with x^K and ``ctx.residuals[l - 1]`` with
    ‖f_l(x^k) − ĥ_l‖ (Frobenius over the batch) for k = 0..K, shape (K + 1,). When
    Lip(g_l∘f_l − I) < 1 (undamped; damped, ‖I − α J_{g∘f}‖ < 1) the residuals fall
    geometrically.

    Parameters
    ----------
    refine : callable
        One refinement x^{k+1} = refine(x^k, g_l(ĥ_l), g_l(f_l(x^k))).
    ctx : TargetContext
    l : int
        The upper layer; its target ĥ_l is known.
    """
    target_upper = ctx.targets[l]
    g_target = ctx.g(l, target_upper)
    x = ctx.h[l - 1]
    f_x = ctx.f(l, x)
    residuals = [np.linalg.norm(f_x - target_upper)]
    for _ in range(ctx.iterations):
        x = damped(x, refine(x, g_target, ctx.g(l, f_x)), ctx.iteration_step)
        f_x = ctx.f(l, x)
        residuals.append(np.linalg.norm(f_x - target_upper))
    ctx.targets[l - 1], ctx.residuals[l - 1] = x, np.array(residuals)
