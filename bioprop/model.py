"""The parameters of a layered network and its algebraic forward and feedback maps.

:class:`LayeredModel` is what both engines train: the layer sizes and transfer
functions, the feedforward projections W_l, b_l (l = 1..L) and the feedback
projections Q_l, c_l (l = 2..L). It knows the maps f_l and g_l of docs/algorithms.md
as functions on (B, N) arrays; the Brian2 engine evaluates the same maps through
population dynamics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import Activation, get_activation
from .projection import DenseProjection, connection_mask, init_dense
from .rules.targets import TARGET_RULES

__all__ = ["LayeredModel", "build_model", "side_inputs", "side_size"]


@dataclass
class LayeredModel:
    """A network h_0 = x → h_1 → ... → h_L with learned inverses g_l.

    Attributes
    ----------
    names, sizes : list
        Layer names and sizes, index 0 being the input layer.
    activations : list of Activation
        φ_l for l = 1..L (index 0 unused, ``None``).
    forward : list of DenseProjection
        ``forward[l]`` is W_l, b_l; ``forward[0]`` is ``None``.
    feedback : list of DenseProjection
        ``feedback[l]`` is Q_l, c_l for l ≥ 2; ``feedback[0]`` and ``feedback[1]`` are ``None``.
    fixed : dict
        Fixed random matrices, never trained: ``fixed[rule][l]`` for each target rule
        that reads some, of the shapes the rule says (``TargetRule.fixed_shapes``: B_l
        of feedback alignment has W_l's shape, D_l of direct feedback alignment is
        n_top × n_l); and ``fixed["mask"][l]`` (the shape of W_l, 0 or 1) for a pathway
        whose connections exist with probability p < 1: W_l is zero wherever the mask is;
        and the feedback masks and the neurons' signs of the weight constraints
        (:data:`bioprop.constraints.FIXED_MASKS`, :data:`~bioprop.constraints.FIXED_SIGNS`).
    side : dict
        ``side[l]`` is R_l, the learned weight of the side information s into g_l
        (Bengio 2014): g_l(h_l, s) = ψ(Q_l h_l + R_l s + c_l). Empty without side information.
    feedback_activations : list of Activation
        ψ_l, the transfer function of layer l's apical dendrite, which computes g_{l+1}'s
        reconstruction of layer l: φ_l unless the layer's kind needs another
        (:func:`bioprop.populations.layer_feedback_activation`). Defaults to `activations`.
    """

    names: list
    sizes: list
    activations: list
    forward: list
    feedback: list = field(default_factory=list)
    fixed: dict = field(default_factory=dict)
    side: dict = field(default_factory=dict)
    feedback_activations: list = field(default_factory=list)

    def __post_init__(self):
        if not self.feedback_activations:
            self.feedback_activations = list(self.activations)

    @property
    def n_layers(self) -> int:
        """L, the number of layers above the input."""
        return len(self.sizes) - 1

    def f(self, l: int, h_lower: np.ndarray):
        """f_l(h_{l-1}): returns (a_l, h_l)."""
        a = self.forward[l].drive(h_lower)
        return a, self.activations[l].fn(a)

    def g(self, l: int, h_upper: np.ndarray, side=None):
        """g_l(h_l, s) = ψ_{l-1}(Q_l h_l + R_l s + c_l): returns (pre-activation, reconstruction).

        `side` is the list of side inputs by layer (:func:`side_inputs`), or None
        for a model without side information.
        """
        u = self.feedback[l].drive(h_upper)
        if self.side:
            u += side[l] @ self.side[l].T
        return u, self.feedback_activations[l - 1].fn(u)

    def forward_pass(self, x: np.ndarray):
        """All layers' pre-activations and rates: lists indexed by layer (a[0] is None)."""
        a, h = [None], [x]
        for l in range(1, self.n_layers + 1):
            a_l, h_l = self.f(l, h[-1])
            a.append(a_l)
            h.append(h_l)
        return a, h

    def forward_params(self):
        return [p for _, p in self.forward_params_by_layer()]

    def feedback_params(self):
        return [p for _, p in self.feedback_params_by_layer()]

    def forward_params_by_layer(self):
        """(l, parameter) of W_l and b_l, in the optimizer's order."""
        return [(l, p) for l in range(1, self.n_layers + 1) for p in self.forward[l].params]

    def feedback_params_by_layer(self):
        """(l, parameter) of g_l's Q_l and c_l, then of each side weight R_l, in the
        optimizer's order."""
        return ([(l, p) for l in range(2, self.n_layers + 1) for p in self.feedback[l].params]
                + list(self.side.items()))

    def copy(self) -> "LayeredModel":
        clone = lambda p: None if p is None else DenseProjection(p.weight.copy(), p.bias.copy())
        return LayeredModel(list(self.names), list(self.sizes), list(self.activations),
                            [clone(p) for p in self.forward], [clone(p) for p in self.feedback],
                            {k: {l: m.copy() for l, m in v.items()} for k, v in self.fixed.items()},
                            {l: m.copy() for l, m in self.side.items()},
                            list(self.feedback_activations))


def build_model(names, sizes, activation_names, rng: np.random.Generator, *,
                dtype=np.float64, init: str = "orthogonal", gain: float = 1.0,
                feedback_gain: float | None = None, top: int | None = None, side_size=None, p_connect=None,
                feedback_activations=None) -> LayeredModel:
    """A new model with initial weights drawn from `rng`.

    Parameters
    ----------
    names, sizes : sequences of length L+1, the input layer first.
    activation_names : sequence of length L, φ_1..φ_L, by name or as Activation records
        (the rate twins of spiking populations have parameters, so no name).
    top : int, optional
        The layer t that carries the top target (default L); the fixed matrices of
        some rules depend on it.
    side_size : callable l -> int, optional
        The size of g_l's side input; None for no side information.
    feedback_activations : sequence of length L, optional
        ψ_1..ψ_L of the apical dendrites (Activation records); default φ_1..φ_L.
    init, gain : str, float, optional
        The initialisation (projection.INITIALISATIONS) of every weight, and the gain that
        multiplies the learned forward weights W_l.
    feedback_gain : float, optional
        The gain of the feedback pathway: the learned Q_l, the fixed feedback matrices of
        the rules that use them, and the side weights R_l (default: `gain`).
    p_connect : sequence of length L, optional
        The connection probability of each W_l (default 1: all connections). A pathway
        with p < 1 gets a random mask; its weights are masked and scaled by 1/√p, which
        keeps the expected norm of each row of the (orthogonal or Glorot) initial weight.
    """
    acts: list[Activation | None] = [None] + [a if isinstance(a, Activation) else get_activation(a)
                                              for a in activation_names]
    forward = [None] + [init_dense(rng, sizes[l], sizes[l - 1], dtype, init, gain)
                        for l in range(1, len(sizes))]
    back = gain if feedback_gain is None else feedback_gain
    feedback = [None, None] + [init_dense(rng, sizes[l - 1], sizes[l], dtype, init, back)
                               for l in range(2, len(sizes))]
    top = len(sizes) - 1 if top is None else top
    # Drawn after the learned weights, so adding them changed no earlier run's weights;
    # every rule's, whichever rule trains, so that the draws never depend on the rule.
    fixed = {rule.name: {l: init_dense(rng, *shape, dtype, init, back).weight
                         for l, shape in rule.fixed_shapes(sizes, top).items()}
             for rule in TARGET_RULES.values() if rule.fixed_shapes is not None}
    side = {} if side_size is None else {
        l: init_dense(rng, sizes[l - 1], side_size(l), dtype, "glorot", back).weight
        for l in range(2, len(sizes))}
    # Drawn last, and only for sparse pathways, so that no dense model's weights changed.
    for l, p in enumerate(p_connect or [], start=1):
        if p < 1:
            mask = fixed.setdefault("mask", {})[l] = connection_mask(rng, sizes[l], sizes[l - 1],
                                                                     p, dtype)
            forward[l].weight *= mask / np.sqrt(p)
    psis = [None] + list(feedback_activations) if feedback_activations is not None else []
    return LayeredModel(list(names), list(sizes), acts, forward, feedback, fixed, side, psis)


def side_inputs(kind: str, h, y_target):
    """The side input s of every g_l (index l), or None for ``kind = "none"``.

    ``label``: the loss's target array for every l; ``activity``: h_{l-1}.
    """
    if kind == "none":
        return None
    if kind == "label":
        return [None, None] + [y_target] * (len(h) - 2)
    return [None, None] + [h[l - 1] for l in range(2, len(h))]


def side_size(kind: str, sizes):
    """The size of g_l's side input for a model with layer `sizes`, as build_model wants it."""
    if kind == "none":
        return None
    return (lambda l: sizes[-1]) if kind == "label" else (lambda l: sizes[l - 1])
