"""The learning steps of one batch, from settled activity to gradients.

These functions turn the activity an engine measured (forward rates, targets,
noisy reconstructions) into parameter gradients. The reference engine feeds them
algebraic steady states; the Brian2 engine feeds them the states its populations
settled to. Either way the algorithm is written once, here.

* :func:`top_layer` — which layer carries the top target (ALGORITHMS.md, "Top target").
* :func:`teach` — the loss, and the top target ĥ_t = h_t − η̂ ∂ℓ/∂h_t.
* :func:`propagate_targets` — ĥ_{l-1} = rule(h_{l-1}, g_l(ĥ_l), g_l(h_l)), l = t..2.
* :func:`forward_grads` — the local forward update, gradient of ½‖f_l(h_{l-1}) − ĥ_l‖².
* :func:`feedback_grads` — each feedback objective's gradient through Q_l, c_l.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pathways import dense_grads
from .targets import top_target

__all__ = ["top_layer", "Teaching", "teach", "propagate_targets", "forward_grads",
           "feedback_grads"]


def top_layer(n_layers: int, top: str) -> int:
    """Index t of the layer that takes the loss-gradient step: L, or L−1 as in Lee 2015."""
    return n_layers if top == "output" else n_layers - 1


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


def propagate_targets(model, rule, h, top_target_value, t):
    """Send the top target down with `rule`, algebraically. Returns targets[0..t] (0..1 None)."""
    targets = [None] * (t + 1)
    targets[t] = top_target_value
    for l in range(t, 1, -1):
        _, g_target = model.g(l, targets[l])
        _, g_forward = model.g(l, h[l])
        targets[l - 1] = rule(h[l - 1], g_target, g_forward)
    return targets


def forward_grads(model, a, h, targets, t):
    """Local forward gradients [gW_l, gb_l] for l = 1..t (index 0 is None).

    δ_l = (h_l − ĥ_l) ⊙ φ_l'(a_l), the gradient of ½‖f_l(h_{l-1}) − ĥ_l‖² at fixed
    h_{l-1} and ĥ_l (ALGORITHMS.md, "Forward weight update").
    """
    grads = [None]
    for l in range(1, t + 1):
        delta = (h[l] - targets[l]) * model.activations[l].derivative(a[l])
        grads.append(dense_grads(delta, h[l - 1]))
    return grads


def feedback_grads(model, objective, h, noise, upper, u, recon, t):
    """Feedback gradients [gQ_l, gc_l] for l = 2..t, and the per-layer mean losses.

    Parameters
    ----------
    h : list of arrays
        Clean forward rates, h[l-1] the point that was perturbed.
    noise : list of arrays
        noise[l-1] is the ε injected into layer l−1.
    upper : list of arrays
        upper[l] = f_l(h_{l-1} + ε), the input the feedback projection saw.
    u, recon : lists of arrays
        u[l] = Q_l upper[l] + c_l and recon[l] = ψ_{l-1}(u[l]).
    """
    grads, losses = [None, None], [None, None]
    for l in range(2, t + 1):
        loss, grad_recon = objective(h[l - 1], noise[l - 1], recon[l])
        delta = grad_recon * model.activations[l - 1].derivative(u[l])
        grads.append(dense_grads(delta, upper[l]))
        losses.append(float(loss.mean()))
    return grads, losses
