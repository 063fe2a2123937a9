"""Projections between layers as NumPy arrays: one weight matrix and one bias.

A :class:`DenseProjection` holds one weight matrix and one bias, shared by the B
trial copies of its populations. Applied to the (B, N) view of the presynaptic
rates it gives the (B, M) input currents with one matrix product, which is what
makes batched trials cheap in Brian2 (docs/design.md, "One model, two executions").

Feedforward projection l (W_l, b_l) carries h_{l-1} to layer l's basal input:
a_l = W_l h_{l-1} + b_l. Feedback projection l (Q_l, c_l) carries layer l back to
the apical compartment of layer l-1: the feedback pathway's reconstruction is
g_l(h_l) = ψ_{l-1}(Q_l h_l + c_l). Q_l has the shape of W_lᵀ but is its own weight.

:func:`dense_grads` is the chain rule through a projection, shared by the forward
update and every feedback objective; :func:`init_dense` draws a new projection and
:func:`connection_mask` the connections of a sparse one. Nothing here knows Brian2:
the model and the rules compute with these arrays, and :mod:`bioprop.pathways` runs
them inside a Brian2 network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DenseProjection", "dense_grads", "INITIALISATIONS", "init_dense", "connection_mask"]


@dataclass
class DenseProjection:
    """A dense batched projection ``pre (B, n_pre) -> pre @ weight.T + bias (B, n_post)``."""

    weight: np.ndarray  # (n_post, n_pre)
    bias: np.ndarray  # (n_post,)

    @property
    def shape(self):
        return self.weight.shape

    def drive(self, pre: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The input current this projection gives to its postsynaptic population."""
        out = np.matmul(pre, self.weight.T, out=out)
        out += self.bias
        return out

    @property
    def params(self):
        return [self.weight, self.bias]


def dense_grads(delta: np.ndarray, pre: np.ndarray):
    """Gradients of a batch-mean loss with respect to a projection's weight and bias.

    Parameters
    ----------
    delta : ndarray, shape (B, n_post)
        ∂ℓ_i/∂(drive) for each sample i.
    pre : ndarray, shape (B, n_pre)
        The presynaptic rates the projection was applied to.

    Returns
    -------
    [grad_weight (n_post, n_pre), grad_bias (n_post,)]
    """
    batch = delta.shape[0]
    return [delta.T @ pre / batch, delta.mean(axis=0)]


def _orthogonal(rng, n_post, n_pre):
    a = rng.standard_normal((max(n_post, n_pre), min(n_post, n_pre)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the draw uniform over orthogonal matrices
    return q if n_post >= n_pre else q.T


def _glorot_uniform(rng, n_post, n_pre):
    bound = np.sqrt(6.0 / (n_pre + n_post))
    return rng.uniform(-bound, bound, (n_post, n_pre))


def _glorot_normal(rng, n_post, n_pre):
    return rng.standard_normal((n_post, n_pre)) * np.sqrt(2.0 / (n_pre + n_post))


#: network.init → draw(rng, n_post, n_pre), the weights before the gain: ``orthogonal``
#: (Saxe et al. 2014), ``glorot`` (Glorot & Bengio 2010's uniform U(±√(6/(n_pre+n_post)))),
#: ``glorot_normal`` (their normal N(0, 2/(n_pre+n_post)), PyTorch's xavier_normal_); the
#: two Glorot draws have the same variance
INITIALISATIONS = {"orthogonal": _orthogonal, "glorot": _glorot_uniform,
                   "glorot_normal": _glorot_normal}


def init_dense(rng: np.random.Generator, n_post: int, n_pre: int, dtype=np.float64,
               scheme: str = "orthogonal", gain: float = 1.0) -> DenseProjection:
    """A new projection with zero bias and weights from `scheme`, times `gain`.

    ``orthogonal`` keeps deep tanh networks near isometry, which both BP and DTP need;
    the Glorot draws keep each layer's variance of activity (:data:`INITIALISATIONS`).
    `gain` multiplies the draw, as PyTorch's ``gain`` argument does.
    """
    if scheme not in INITIALISATIONS:
        raise ValueError(f"Unknown weight initialisation {scheme!r}. Expected one of: "
                         f"{', '.join(sorted(INITIALISATIONS))}")
    weight = INITIALISATIONS[scheme](rng, n_post, n_pre)
    return DenseProjection((gain * weight).astype(dtype), np.zeros(n_post, dtype=dtype))


def connection_mask(rng: np.random.Generator, n_post: int, n_pre: int, p_connect: float,
                    dtype=np.float64) -> np.ndarray:
    """Which connections of an (n_post, n_pre) pathway exist: 1 with probability
    `p_connect`, else 0, as an array of `dtype` that multiplies weights and gradients."""
    return (rng.random((n_post, n_pre)) < p_connect).astype(dtype)
