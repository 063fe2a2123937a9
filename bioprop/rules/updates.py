"""The learning steps of one batch, from settled activity to gradients.

These functions turn the activity an engine measured (forward rates, targets,
noisy reconstructions) into parameter gradients. The reference engine feeds them
algebraic steady states; the Brian2 engine feeds them the states its populations
settled to. Either way the algorithm is written once, here.

* :func:`top_layer` — which layer carries the top target (docs/algorithms.md, "Top target").
* :func:`teach` — the loss, and the top target ĥ_t = h_t − η̂ ∂ℓ/∂h_t.
* :func:`propagate_targets` — ĥ_{l-1} from ĥ_l by the target rule, l = t..2.
* :func:`gauss_newton_targets` — the same with the damped Gauss–Newton rule, the
  reference the diagnostics measure every rule against.
* :func:`normalise_layers` — the optional layer normalisation of the changes.
* :func:`forward_grads` — the local forward update, gradient of ½‖f_l(h_{l-1}) − ĥ_l‖².
* :func:`feedback_grads` — each feedback objective's gradient through Q_l, c_l.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..projection import dense_grads
from .targets import TARGET_RULES, TargetContext, top_target

__all__ = ["top_layer", "TARGET_STEP_LOSSES", "per_sample_step", "Teaching", "teach", "propagate_targets", "gauss_newton_targets",
           "normalise_layers", "normalised_change", "forward_grads", "feedback_grads"]


def top_layer(n_layers: int, top: str) -> int:
    """Index t of the layer that takes the loss-gradient step: L, or L−1 as in Lee 2015."""
    return n_layers if top == "output" else n_layers - 1


#: rule.target_step_loss → the step each sample's own gradient takes, from target_step η̂ and
#: the batch size B: ``sample`` steps on each sample's loss ℓ_i (η̂ itself); ``batch_mean`` on
#: the batch's mean loss (1/B) Σ ℓ_i, as Lee's and Meulemans' code differentiate it (η̂ / B)
TARGET_STEP_LOSSES = {"sample": lambda step, batch: step,
                      "batch_mean": lambda step, batch: step / batch}


def per_sample_step(step: float, loss: str, batch: int) -> float:
    """The step η̂ᵢ that multiplies each sample's own gradient in :func:`teach`.

    Parameters
    ----------
    step : float
        ``rule.target_step``.
    loss : str
        ``rule.target_step_loss``, a key of :data:`TARGET_STEP_LOSSES`.
    batch : int
        The number of samples in the batch (a partial batch's own size).
    """
    return TARGET_STEP_LOSSES[loss](step, batch)


@dataclass
class Teaching:
    """What the loss tells the top of the network about one batch."""

    loss: np.ndarray  # (B,) per-sample loss
    top: int  # t, the layer that carries the top target
    target: np.ndarray  # ĥ_t, (B, n_t)
    output_grads: list | None  # BP gradient of W_L, b_L when t = L−1, else None


def teach(model, loss_fn, y, a, h, top: str, step: float) -> Teaching:
    """Compute the loss and the top target from the forward activity.

    When the target sits on the penultimate layer, the output projection is
    trained directly on the loss (Lee 2015, section 3) and ∂ℓ/∂h_{L-1} needs W_L,
    which is local to the output layer's synapses.
    """
    L = model.n_layers
    loss, dloss_dh = loss_fn(h[L], y)
    t = top_layer(L, top)
    if t == L:
        return Teaching(loss, t, top_target(h[L], dloss_dh, step), None)
    delta = dloss_dh * model.activations[L].derivative(a[L])
    dloss_dh_lower = delta @ model.forward[L].weight
    return Teaching(loss, t, top_target(h[t], dloss_dh_lower, step), dense_grads(delta, h[t]))


def propagate_targets(model, rule, a, h, top_target_value, t, *, iterations: int = 1,
                      iteration_step: float = 1.0, damping: float = 1e-3,
                      layer_norm: bool = False, side=None):
    """Send the top target down with `rule`, algebraically.

    Parameters
    ----------
    model : LayeredModel
    rule : TargetRule
    a, h : lists
        The forward pass.
    top_target_value : ndarray
        ĥ_t.
    t : int
        The layer that carries the top target.
    iterations : int
        K, the refinements of a rule that iterates.
    iteration_step : float
        α, the step of each refinement (:func:`bioprop.rules.inverse.damped`).
    damping : float
        λ of the Gauss–Newton rule.
    layer_norm : bool
        Rescale each layer's change by its influence on the top (:func:`normalise_layers`).
    side : list, optional
        The side inputs of the g_l (:func:`bioprop.model.side_inputs`).

    Returns
    -------
    targets : list
        targets[l] = ĥ_l for l = 1..t (index 0 is None).
    residuals : list
        For a rule that iterates, residuals[l] = ‖f_{l+1}(x^k) − ĥ_{l+1}‖ for k = 0..K;
        else None.
    """
    ctx = TargetContext.descent(model, a, h, top_target_value, t, damping=damping,
                                iterations=iterations, iteration_step=iteration_step,
                                side=side)
    for l in range(t, 1, -1):
        rule.step(ctx, l)
    targets = ctx.targets
    if layer_norm:
        targets = normalise_layers(model, h, targets, t)
    return targets, ctx.residuals


def gauss_newton_targets(model, a, h, top_target_value, t, damping: float):
    """The damped Gauss–Newton targets ĥ_l, l = 1..t (index 0 is None), without side inputs
    or layer normalisation: the reference the diagnostics compare every rule's targets with."""
    return propagate_targets(model, TARGET_RULES["gn"], a, h, top_target_value, t,
                             damping=damping)[0]


def normalise_layers(model, h, targets, t):
    """Scale each layer's change by the square of its influence on the top layer.

    For each sample and layer l < t, with Δ_l = ĥ_l − h_l and F the forward map
    from layer l to layer t, the influence is

        s_l = ‖F(h_l + Δ_l) − h_t‖ / ‖Δ_l‖,

    measured with forward passes only, and the change becomes s_l² Δ_l. Why the
    square: if ∂h_t/∂h_l = s U with U orthogonal, a Gauss–Newton-like change
    U⁻¹e/s becomes the gradient-like change sUᵀe: more influential layers take larger
    steps, as in gradient descent (the aim Bengio 2020 states; the formula is ours).
    """
    out = list(targets)
    for l in range(1, t):
        moved = targets[l]
        for k in range(l + 1, t + 1):
            moved = model.f(k, moved)[1]
        out[l] = h[l] + normalised_change(targets[l] - h[l], moved, h[t])
    return out


def normalised_change(delta, moved_top, h_top):
    """s² Δ per sample, with s = ‖F(h_l + Δ) − h_t‖ / ‖Δ‖ and moved_top = F(h_l + Δ)."""
    norm = np.linalg.norm(delta, axis=1, keepdims=True)
    influence = np.linalg.norm(moved_top - h_top, axis=1, keepdims=True) / np.where(norm > 0, norm, 1)
    return influence ** 2 * delta


def forward_grads(model, a, h, targets, t, bias_only=()):
    """Local forward gradients [gW_l, gb_l] for l = 1..t (index 0 is None).

    δ_l = (h_l − ĥ_l) ⊙ φ_l'(a_l), the gradient of ½‖f_l(h_{l-1}) − ĥ_l‖² at fixed
    h_{l-1} and ĥ_l (docs/algorithms.md, "Forward weight update"). For the layers in
    `bias_only`, whose synapses learn their weights themselves, gW_l is None.
    """
    grads = [None]
    for l in range(1, t + 1):
        delta = (h[l] - targets[l]) * model.activations[l].derivative(a[l])
        grads.append([None, delta.mean(axis=0)] if l in bias_only else dense_grads(delta, h[l - 1]))
    return grads


def feedback_grads(model, objective, h, noise, points, t, sigma: float, side=None):
    """Feedback gradients [gQ_l, gc_l(, gR_l)] for l = 2..t, and the per-layer mean losses.

    Parameters
    ----------
    objective : FeedbackObjective
    h : list of arrays
        Clean forward rates.
    noise : list of arrays
        noise[l] is the noise injected into layer l.
    points : list of dicts
        points[l][name] = (input, u, recon): the input the feedback projection of
        layer l saw at that point, its pre-activation u = Q_l input + c_l and the
        reconstruction ψ_{l-1}(u).
    sigma : float
        The noise's standard deviation (``drl`` divides by σ²).
    side : list, optional
        The side inputs; with them the gradient of R_l is appended to layer l's list.
    """
    grads, losses = [None, None], [None, None]
    for l in range(2, t + 1):
        recon = {name: point[2] for name, point in points[l].items()}
        loss, grad_recon = objective.fn(h[l - 1], noise[l - 1], recon, sigma=sigma)
        total = None
        for name, grad in grad_recon.items():
            upper, u, _ = points[l][name]
            delta = grad * model.feedback_activations[l - 1].derivative(u)
            pair = dense_grads(delta, upper)
            if model.side:
                pair.append(delta.T @ side[l] / len(delta))
            total = pair if total is None else [a + b for a, b in zip(total, pair)]
        grads.append(total)
        losses.append(float(loss.mean()))
    return grads, losses
