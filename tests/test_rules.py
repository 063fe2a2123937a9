"""Oracle tests of the learning rules, each against an independent computation."""
import math

import numpy as np
import pytest

from bioprop.model import LayeredModel, build_model
from bioprop.pathways import DenseProjection
from bioprop.activations import get_activation
from bioprop.rules import (FEEDBACK_OBJECTIVES, LOSSES, TARGET_RULES, bp_grads, feedback_grads,
                           gauss_newton_target, make_optimizer, one_hot, output_jacobian,
                           propagate_targets, teach)

from conftest import assert_close


def _linear_invertible(n=5, layers=3, seed=0):
    """A linear network of square, well-conditioned layers, feedback = exact inverses."""
    rng = np.random.default_rng(seed)
    lin = get_activation("linear")
    forward, feedback = [None], [None, None]
    for l in range(1, layers + 1):
        w = np.eye(n) + 0.3 * rng.standard_normal((n, n))
        forward.append(DenseProjection(w, 0.1 * rng.standard_normal(n)))
    for l in range(2, layers + 1):
        w_inv = np.linalg.inv(forward[l].weight)
        feedback.append(DenseProjection(w_inv, -w_inv @ forward[l].bias))
    return LayeredModel([f"l{i}" for i in range(layers + 1)], [n] * (layers + 1),
                        [None] + [lin] * layers, forward, feedback)


@pytest.mark.parametrize("rule", ["dtp", "tp"])
def test_exact_inverses_give_gauss_newton_target(rule):
    """Linear invertible net, Q_l = W_l⁻¹: every target equals the (λ→0) GN target."""
    model = _linear_invertible()
    x = np.random.default_rng(1).standard_normal((3, 5))
    a, h = model.forward_pass(x)
    y = one_hot(np.array([0, 2, 4]), 5)
    teaching = teach(model, LOSSES["softmax_cross_entropy"], y, a, h, "output", 0.5)
    targets, _ = propagate_targets(model, TARGET_RULES[rule], a, h, teaching.target,
                                   model.n_layers)
    e = teaching.target - h[-1]
    for l in range(1, model.n_layers):
        for i in range(len(x)):
            gn = gauss_newton_target(output_jacobian(model, a, l, i), e[i], damping=1e-12)
            assert_close(targets[l][i] - h[l][i], gn, 1e-8, f"layer {l} sample {i}")


def test_gauss_newton_oracle_is_not_vacuous():
    """An inverse that is slightly off makes DTP's targets differ from GN's."""
    model = _linear_invertible()
    model.feedback[2].weight += 0.05
    x = np.random.default_rng(1).standard_normal((1, 5))
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["squared_error"], np.zeros((1, 5)), a, h, "output", 0.5)
    targets, _ = propagate_targets(model, TARGET_RULES["dtp"], a, h, teaching.target, 3)
    gn = gauss_newton_target(output_jacobian(model, a, 1, 0), teaching.target[0] - h[-1][0], 1e-12)
    with pytest.raises(AssertionError):
        assert_close(targets[1][0] - h[1][0], gn, 1e-3, "layer 1")


def _mean_loss(model, x, y):
    return LOSSES["softmax_cross_entropy"](model.forward_pass(x)[1][-1], y)[0].mean()


def test_bp_matches_finite_differences():
    model = build_model(["x", "a", "b", "o"], [4, 6, 5, 3], ["tanh", "logistic", "linear"],
                        np.random.default_rng(2), init="glorot")
    rng = np.random.default_rng(3)
    for proj in model.forward[1:]:
        proj.bias += 0.1 * rng.standard_normal(proj.bias.shape)
    x, y = rng.standard_normal((7, 4)), one_hot(rng.integers(0, 3, 7), 3)
    grads, _, _, _ = bp_grads(model, LOSSES["softmax_cross_entropy"], x, y)
    step = 1e-6
    for l in range(1, 4):
        for k, param in enumerate(model.forward[l].params):
            numeric = np.zeros_like(param)
            for idx in np.ndindex(param.shape):
                saved = param[idx]
                param[idx] = saved + step
                up = _mean_loss(model, x, y)
                param[idx] = saved - step
                down = _mean_loss(model, x, y)
                param[idx] = saved
                numeric[idx] = (up - down) / (2 * step)
            assert_close(grads[l][k], numeric, 1e-6, f"layer {l} param {k}")


def test_objectives_match_hand_computed_2x2_case():
    """A 2-neuron layer pair, f(x) = tanh(W x), g(y) = tanh(Q y), worked out element by element."""
    W = np.array([[0.5, -0.3], [0.2, 0.8]])
    Q = np.array([[1.1, 0.4], [-0.6, 0.9]])
    h, eps = np.array([[0.3, -0.1]]), np.array([[0.05, 0.2]])
    x1, x2 = 0.35, 0.1  # h + eps
    y1 = math.tanh(0.5 * x1 - 0.3 * x2)
    y2 = math.tanh(0.2 * x1 + 0.8 * x2)
    r1 = math.tanh(1.1 * y1 + 0.4 * y2)
    r2 = math.tanh(-0.6 * y1 + 0.9 * y2)
    expected = {"dtp": 0.5 * ((r1 - x1) ** 2 + (r2 - x2) ** 2),
                "denoising": 0.5 * ((r1 - 0.3) ** 2 + (r2 + 0.1) ** 2)}
    recon = np.tanh(np.tanh((h + eps) @ W.T) @ Q.T)
    for name, value in expected.items():
        loss, _ = FEEDBACK_OBJECTIVES[name](h, eps, recon)
        assert loss.shape == (1,)
        assert abs(loss[0] - value) < 1e-12, (name, loss[0], value)


@pytest.mark.parametrize("objective", ["dtp", "denoising"])
def test_feedback_training_learns_the_inverse(objective):
    """On a fixed tanh layer, training g_2 lowers its loss and its reconstruction error."""
    rng = np.random.default_rng(4)
    model = build_model(["x", "a", "b"], [8, 10, 12], ["tanh", "tanh"], rng)
    opt = make_optimizer("adam", model.feedback_params(), 0.01)
    data = rng.uniform(-1, 1, (256, 8))
    _, h = model.forward_pass(data)

    def reconstruction_error():
        return np.linalg.norm(model.g(2, h[2])[1] - h[1]) / np.linalg.norm(h[1])

    before_error, losses = reconstruction_error(), []
    for step in range(300):
        batch = rng.integers(0, len(data), 32)
        hb = [None, h[1][batch], h[2][batch]]
        noise = [None, 0.1 * rng.standard_normal((32, 10))]
        _, up = model.f(2, hb[1] + noise[1])
        u, recon = model.g(2, up)
        grads, loss = feedback_grads(model, FEEDBACK_OBJECTIVES[objective], hb, noise,
                                     [None, None, up], [None, None, u], [None, None, recon], 2)
        opt.step([g for pair in grads[2:] for g in pair])
        losses.append(loss[2])
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert reconstruction_error() < 0.5 * before_error


def test_bp_update_descends_the_loss():
    """A small step along the BP gradient lowers the loss (sign check of the whole chain)."""
    rng = np.random.default_rng(6)
    model = build_model(["x", "a", "o"], [4, 6, 3], ["tanh", "linear"], rng)
    x, y = rng.standard_normal((16, 4)), one_hot(rng.integers(0, 3, 16), 3)
    before = _mean_loss(model, x, y)
    grads, _, _, _ = bp_grads(model, LOSSES["softmax_cross_entropy"], x, y)
    for l in range(1, 3):
        for p, g in zip(model.forward[l].params, grads[l]):
            p -= 0.05 * g
    assert _mean_loss(model, x, y) < before
