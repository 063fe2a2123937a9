"""Feedback objectives: the auto-encoder losses that train each feedback pathway g_l.

An objective evaluates g_l at one or more named **points**, each an input to the
feedback pathway (an activity of layer l):

=================  ==========================================================
point              input to g_l
=================  ==========================================================
``noisy``          f_l(h_{l-1} + ε), the layer's response to noise below it
``clean``          h_l, the forward activity
``upper_noisy``    h_l + δ, with δ the noise injected into layer l itself
``drl``            the DTP reconstruction at layer l of f(h_{l-1} + ε) sent up to
                   the top and back down through the feedback layers above
=================  ==========================================================

Its function takes the clean lower activity h_{l-1}, the noise ε (and δ) and the
reconstructions g_l(point), and returns the per-sample loss and the gradient of
the loss with respect to each reconstruction. The chain rule through ψ and Q_l
is the pathway's (:func:`bioprop.rules.updates.feedback_grads`), so every
objective is written once, here. The registry is :data:`FEEDBACK_OBJECTIVES`.

=============  =============================================================  ================
name           loss per sample                                                source
=============  =============================================================  ================
``dtp``        ‖g(f(h+ε)) − (h+ε)‖²  (noise-preserving)                        Lee 2015, eq. 14
``denoising``  ‖g(f(h+ε)) − h‖²                                                 Bengio 2014
``ldrl``       −2⟨ε, g(f(h+ε)) − g(h_l)⟩ + ‖g(h_l+δ) − g(h_l)‖²                  Ernoult 2022
``drl``        ‖h + g(r) − g(h_l) − (h+ε)‖² / σ², r the ``drl`` point          Meulemans 2020
``fixed``      none: g_l keeps its random initial weights (FW-DTP)               Shibuya 2023
=============  =============================================================  ================

``drl`` is not local: its point r needs the forward pathway from layer l−1 to the
top and the feedback pathways of every layer above l. The others need only the
activity of layers l−1 and l. ``fixed`` evaluates g_l at no point and is never
called: the feedback weights are not trained, so a trial needs no noise
(:attr:`FeedbackObjective.trains`); Shibuya et al. 2023 (arXiv 2212.10352) show
that DTP's difference correction still sends useful targets through such fixed
random g_l.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["FeedbackObjective", "FEEDBACK_OBJECTIVES", "DEFAULT_OBJECTIVE", "ROUND_TRIP",
           "POINTS", "objective_at", "sample_noise", "annealed_noise"]

#: the point of the ``drl`` objective, which shares the objective's name: code outside
#: rules/ says ROUND_TRIP, so that it never spells an objective's name
ROUND_TRIP = "drl"

#: every point at which both engines can evaluate g_l (the module's table), in that order;
#: an objective, a user's too (:mod:`bioprop.extensions`), chooses among them
POINTS = ("noisy", "clean", "upper_noisy", ROUND_TRIP)


def _squared(diff):
    return (diff ** 2).sum(axis=1), 2.0 * diff


def dtp_objective(h_lower, noise, recon, **_):
    """Noise-preserving reconstruction: g∘f must return the noisy point itself."""
    loss, grad = _squared(recon["noisy"] - (h_lower + noise))
    return loss, {"noisy": grad}


def denoising_objective(h_lower, noise, recon, **_):
    """Denoising reconstruction: g∘f must return the clean point."""
    loss, grad = _squared(recon["noisy"] - h_lower)
    return loss, {"noisy": grad}


def ldrl_objective(h_lower, noise, recon, **_):
    """Local difference reconstruction (Ernoult et al. 2022, eq. 9).

    The first term aligns the feedback Jacobian with the forward one (its expectation
    over ε is −2σ² tr(J_g J_f)); the second keeps the feedback Jacobian small.
    """
    change = recon["noisy"] - recon["clean"]
    spread = recon["upper_noisy"] - recon["clean"]
    loss = -2.0 * (noise * change).sum(axis=1) + (spread ** 2).sum(axis=1)
    return loss, {"noisy": -2.0 * noise, "clean": 2.0 * noise - 2.0 * spread,
                  "upper_noisy": 2.0 * spread}


def drl_objective(h_lower, noise, recon, *, sigma, **_):
    """Difference reconstruction (Meulemans et al. 2020, DTPDRL): non-local, see module."""
    diff = (recon[ROUND_TRIP] - recon["clean"]) - noise
    loss, grad = _squared(diff)
    scale = 1.0 / sigma ** 2
    return scale * loss, {ROUND_TRIP: scale * grad, "clean": -scale * grad}


def fixed_objective(h_lower, noise, recon, **_):
    """Fixed feedback weights (FW-DTP): nothing to minimise, so no gradient at any point.

    Never called by the engines (the objective has no points, so no feedback iteration
    runs); it exists so that every registry entry has a function.
    """
    return np.zeros(len(h_lower)), {}


@dataclass(frozen=True)
class FeedbackObjective:
    """A feedback objective: its function and the points where it evaluates g_l."""

    name: str
    fn: Callable
    points: tuple
    source: str
    #: does it need noise δ injected into layer l itself (as well as ε in layer l−1)?
    needs_upper_noise: bool = False
    #: does it use only the activity of layers l−1 and l?
    local: bool = True

    @property
    def round_trip(self) -> bool:
        """Does it evaluate g_l at the :data:`ROUND_TRIP` point, which the noisy activity
        reaches by going up to the top layer and back down (the engine's ``drl_up`` and
        ``drl_down`` phases)?"""
        return ROUND_TRIP in self.points

    @property
    def trains(self) -> bool:
        """Does it train g_l at all? An objective without points leaves the feedback
        weights at their initialisation."""
        return bool(self.points)


def objective_at(name: str, fn: Callable, points: tuple, source: str) -> FeedbackObjective:
    """The record of an objective evaluated at `points` (of :data:`POINTS`), which say all
    the rest: noise in layer l itself for ``upper_noisy``, not local with ``drl``."""
    return FeedbackObjective(name, fn, tuple(points), source,
                             needs_upper_noise="upper_noisy" in points,
                             local=ROUND_TRIP not in points)


FEEDBACK_OBJECTIVES = {o.name: o for o in (
    FeedbackObjective("dtp", dtp_objective, ("noisy",), "Lee et al. 2015"),
    FeedbackObjective("denoising", denoising_objective, ("noisy",), "Bengio 2014"),
    FeedbackObjective("ldrl", ldrl_objective, ("noisy", "clean", "upper_noisy"),
                      "Ernoult et al. 2022", needs_upper_noise=True),
    FeedbackObjective("drl", drl_objective, (ROUND_TRIP, "clean"), "Meulemans et al. 2020",
                      local=False),
    FeedbackObjective("fixed", fixed_objective, (), "Shibuya et al. 2023"),
)}


#: the feedback objective of a model file that names none
DEFAULT_OBJECTIVE = "dtp"


def annealed_noise(sigma: float, epoch: int, tau: float) -> float:
    """σ_e = σ / (1 + (e − 1) / τ), the noise of training epoch `epoch` (1-based; 0 and the
    pre-training epochs before it draw σ); τ = 0 keeps σ in every epoch.

    Lee's discrete-network code divides σ by 1 + epoch / 50 with epochs counted from 0, so
    that its first epoch has the whole σ; counting from 1, that is τ = 50 here.
    """
    if not tau or epoch <= 1:
        return sigma
    return sigma / (1.0 + (epoch - 1) / tau)


def sample_noise(rng: np.random.Generator, batch: int, sizes, sigma: float, dtype=np.float64):
    """Draw the injected noise ε ~ N(0, σ²I) for each noisy layer, in layer order.

    Both engines draw their noise through this function from the same generator,
    so that a run is reproducible and the engines can be compared sample by sample.
    """
    return [(sigma * rng.standard_normal((batch, n))).astype(dtype, copy=False) for n in sizes]
