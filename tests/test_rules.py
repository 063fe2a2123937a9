"""Oracle tests of the learning rules, each against an independent computation."""
import math

import numpy as np
import pytest

from bioprop.model import LayeredModel, build_model
from bioprop.projection import DenseProjection
from bioprop.activations import get_activation
from bioprop.rules import (FEEDBACK_OBJECTIVES, LOSSES, TARGET_RULES, bp_grads, feedback_grads,
                           make_optimizer, one_hot,
                           propagate_targets, teach)

from conftest import assert_close
from oracles import gauss_newton_change, output_jacobian


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


@pytest.mark.parametrize("rule", ["dtp", "tp", "iterative"])
def test_exact_inverses_give_gauss_newton_change(rule):
    """Linear invertible net, Q_l = W_l⁻¹: every target equals the (λ→0) GN target."""
    model = _linear_invertible()
    x = np.random.default_rng(1).standard_normal((3, 5))
    a, h = model.forward_pass(x)
    y = one_hot(np.array([0, 2, 4]), 5)
    teaching = teach(model, LOSSES["softmax_cross_entropy"], y, a, h, "output", 0.5)
    targets, _ = propagate_targets(model, TARGET_RULES[rule], a, h, teaching.target,
                                   model.n_layers, iterations=3)
    e = teaching.target - h[-1]
    for l in range(1, model.n_layers):
        for i in range(len(x)):
            gn = gauss_newton_change(output_jacobian(model, a, l, i), e[i], damping=1e-12)
            assert_close(targets[l][i] - h[l][i], gn, 1e-8, f"layer {l} sample {i}")


def test_gauss_newton_oracle_is_not_vacuous():
    """An inverse that is slightly off makes DTP's targets differ from GN's."""
    model = _linear_invertible()
    model.feedback[2].weight += 0.05
    x = np.random.default_rng(1).standard_normal((1, 5))
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["squared_error"], np.zeros((1, 5)), a, h, "output", 0.5)
    targets, _ = propagate_targets(model, TARGET_RULES["dtp"], a, h, teaching.target, 3)
    gn = gauss_newton_change(output_jacobian(model, a, 1, 0), teaching.target[0] - h[-1][0], 1e-12)
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


def _hand_2x2():
    """A 2-neuron layer pair, f(x) = tanh(W x), g(y) = tanh(Q y), worked out element by element."""
    import math

    W = [[0.5, -0.3], [0.2, 0.8]]
    Q = [[1.1, 0.4], [-0.6, 0.9]]
    f = lambda x: [math.tanh(W[0][0] * x[0] + W[0][1] * x[1]), math.tanh(W[1][0] * x[0] + W[1][1] * x[1])]
    g = lambda y: [math.tanh(Q[0][0] * y[0] + Q[0][1] * y[1]), math.tanh(Q[1][0] * y[0] + Q[1][1] * y[1])]
    h, eps, delta = [0.3, -0.1], [0.05, 0.2], [-0.1, 0.15]
    return np.array(W), np.array(Q), h, eps, delta, f, g


def test_objectives_match_hand_computed_2x2_case():
    W, Q, h, eps, delta, f, g = _hand_2x2()
    noisy_in = [h[0] + eps[0], h[1] + eps[1]]
    r_noisy, r_clean = g(f(noisy_in)), g(f(h))
    h_up = f(h)
    r_up = g([h_up[0] + delta[0], h_up[1] + delta[1]])
    sq = lambda v: v[0] ** 2 + v[1] ** 2
    expected = {
        "dtp": sq([r_noisy[i] - noisy_in[i] for i in range(2)]),
        "denoising": sq([r_noisy[i] - h[i] for i in range(2)]),
        "ldrl": -2 * sum(eps[i] * (r_noisy[i] - r_clean[i]) for i in range(2))
                + sq([r_up[i] - r_clean[i] for i in range(2)]),
        # drl at the top layer (no layers above): r = f(h + ε), so the point is the noisy one
        "drl": sq([r_noisy[i] - r_clean[i] - eps[i] for i in range(2)]) / 0.5 ** 2,
    }
    gq = lambda y: np.tanh(np.asarray(y) @ Q.T)
    recon = {"noisy": gq([f(noisy_in)]), "clean": gq([h_up]), "drl": gq([f(noisy_in)]),
             "upper_noisy": gq([[h_up[0] + delta[0], h_up[1] + delta[1]]])}
    for name, value in expected.items():
        loss, grads = FEEDBACK_OBJECTIVES[name].fn(np.array([h]), np.array([eps]), recon, sigma=0.5)
        assert loss.shape == (1,)
        assert abs(loss[0] - value) < 1e-12, (name, loss[0], value)
        assert set(grads) == set(FEEDBACK_OBJECTIVES[name].points)


@pytest.mark.parametrize("name", ["dtp", "denoising", "ldrl", "drl"])
def test_objective_gradients_match_finite_differences(name):
    """feedback_grads (the objective's gradients chained through ψ and Q) against a numerical
    derivative of the objective's loss with respect to Q and c."""
    from bioprop.reference import ReferenceEngine
    from conftest import small_model_spec, model_for

    spec = small_model_spec(feedback=name)
    engine = ReferenceEngine(model_for(spec), spec, 3)
    rng = np.random.default_rng(0)
    x = rng.random((3, 6))
    _, h = engine.model.forward_pass(x)
    eps = engine.draw_noise(rng, 3)[0]

    def loss_and_grads():
        points = [None, None] + [{} for _ in range(2, engine.top + 1)]
        for l in range(2, engine.top + 1):
            for point in engine.objective.points:
                upper = engine._point(point, l, h, eps)
                points[l][point] = (upper, *engine.model.g(l, upper))
        grads, losses = feedback_grads(engine.model, engine.objective, h, eps, points,
                                       engine.top, 0.36)
        return losses, grads

    # Each layer's loss, differentiated with respect to its own pathway only: for drl the
    # lower layers' points also pass through the g above, which that layer does not train.
    _, grads = loss_and_grads()
    for l in range(2, engine.top + 1):
        for k, param in enumerate(engine.model.feedback[l].params):
            idx = (0, 0)[: param.ndim]
            saved = param[idx]
            param[idx] = saved + 1e-6
            up = loss_and_grads()[0][l]
            param[idx] = saved - 1e-6
            down = loss_and_grads()[0][l]
            param[idx] = saved
            numeric = (up - down) / 2e-6
            assert abs(grads[l][k][idx] - numeric) < 1e-6 * max(1, abs(numeric)), (l, k, numeric)


def _train_feedback(objective, steps=300):
    rng = np.random.default_rng(4)
    model = build_model(["x", "a", "b"], [8, 10, 12], ["tanh", "tanh"], rng)
    opt = make_optimizer("adam", model.feedback_params(), 0.01)
    data = rng.uniform(-1, 1, (256, 8))
    _, h = model.forward_pass(data)
    obj = FEEDBACK_OBJECTIVES[objective]
    before = (np.linalg.norm(model.g(2, h[2])[1] - h[1]) / np.linalg.norm(h[1]),
              _angle(model.feedback[2].weight, model.forward[2].weight.T))
    losses = []
    for step in range(steps):
        batch = rng.integers(0, len(data), 32)
        hb = [None, h[1][batch], h[2][batch]]
        noise = [None, 0.1 * rng.standard_normal((32, 10)), 0.1 * rng.standard_normal((32, 12))]
        inputs = {"noisy": model.f(2, hb[1] + noise[1])[1], "clean": hb[2],
                  "upper_noisy": hb[2] + noise[2], "drl": model.f(2, hb[1] + noise[1])[1]}
        points = [None, None, {p: (inputs[p], *model.g(2, inputs[p])) for p in obj.points}]
        grads, loss = feedback_grads(model, obj, hb, noise, points, 2, 0.1)
        opt.step([g for pair in grads[2:] for g in pair])
        losses.append(loss[2])
    after = (np.linalg.norm(model.g(2, h[2])[1] - h[1]) / np.linalg.norm(h[1]),
             _angle(model.feedback[2].weight, model.forward[2].weight.T))
    return losses, before, after


def _angle(u, v):
    return np.degrees(np.arccos(np.sum(u * v) / (np.linalg.norm(u) * np.linalg.norm(v))))


@pytest.mark.parametrize("objective", ["dtp", "denoising", "drl"])
def test_feedback_training_learns_the_inverse(objective):
    """On a fixed tanh layer, training g_2 lowers its loss and its reconstruction error."""
    losses, before, after = _train_feedback(objective)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert after[0] < 0.5 * before[0], (before, after)


def test_ldrl_learns_the_transpose():
    """L-DRL's optimum is J_g = J_fᵀ (Ernoult 2022): its loss falls and Q turns towards Wᵀ."""
    losses, before, after = _train_feedback("ldrl")
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.01
    assert after[1] < before[1] - 30, (before, after)


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


def test_label_side_information_sharpens_the_denoising_inverse():
    """Activity near one of 4 class prototypes, heavily corrupted: a denoising g that also sees
    the label reconstructs the clean point far better than one that does not."""
    from bioprop.model import side_inputs, side_size

    rng = np.random.default_rng(11)
    prototypes = np.tanh(2 * rng.standard_normal((4, 8)))
    labels = rng.integers(0, 4, 512)
    h1 = np.clip(prototypes[labels] + 0.05 * rng.standard_normal((512, 8)), -0.99, 0.99)
    y = one_hot(labels, 4)
    losses = {}
    for kind in ("none", "label"):
        model = build_model(["x", "a", "b"], [4, 8, 10], ["tanh", "tanh"], np.random.default_rng(0),
                            side_size=side_size(kind, [4, 8, 4]))
        opt = make_optimizer("adam", model.feedback_params(), 0.01)
        obj = FEEDBACK_OBJECTIVES["denoising"]
        history = []
        for step in range(600):
            b = rng.integers(0, 512, 64)
            h = [None, h1[b], model.f(2, h1[b])[1]]
            side = side_inputs(kind, h, y[b])
            noise = [None, 0.6 * rng.standard_normal((64, 8))]
            up = model.f(2, h[1] + noise[1])[1]
            points = [None, None, {"noisy": (up, *model.g(2, up, side))}]
            grads, loss = feedback_grads(model, obj, h, noise, points, 2, 0.6, side)
            opt.step([g for g in grads[2][:2]] + grads[2][2:])
            history.append(loss[2])
        losses[kind] = np.mean(history[-50:])
    assert losses["label"] < 0.5 * losses["none"], losses


def test_graves_rmsprop_matches_hand_computed_steps():
    """Lee 2015's optimizer, two steps on one weight, against Graves 2013 eqs. 38-41 by hand.

    g1 = 0.1: n = 0.05 · 0.01 = 5e-4, ḡ = 0.005, n − ḡ² + s = 5e-4 − 2.5e-5 + 1e-3 = 1.475e-3,
    Δ1 = −0.01 · 0.1 / sqrt(1.475e-3). g2 = −0.2: n = 0.95 · 5e-4 + 0.05 · 0.04 = 2.475e-3,
    ḡ = 0.95 · 0.005 − 0.01 = −0.00525, Δ2 = 0.9 Δ1 + 0.01 · 0.2 / sqrt(2.475e-3 − 0.00525² + 1e-3).
    """
    p = np.array([1.0])
    opt = make_optimizer("rmsprop_graves", [p], 0.01)
    opt.step([np.array([0.1])])
    d1 = -0.01 * 0.1 / math.sqrt(1.475e-3)
    assert p[0] == pytest.approx(1.0 + d1, rel=1e-12)
    opt.step([np.array([-0.2])])
    d2 = 0.9 * d1 + 0.01 * 0.2 / math.sqrt(2.475e-3 - 0.00525 ** 2 + 1e-3)
    assert p[0] == pytest.approx(1.0 + d1 + d2, rel=1e-12)


def test_graves_rmsprop_is_not_scale_invariant_but_rmsprop_is():
    """The stabiliser inside the root makes tiny gradients take tiny steps (Lee's regime),
    where plain RMSprop would normalise them to steps of about lr."""
    def first_step(name, scale):
        p = np.zeros(3)
        make_optimizer(name, [p], 1e-3).step([scale * np.array([1.0, -2.0, 0.5])])
        return -p
    assert_close(first_step("rmsprop", 1e-4), first_step("rmsprop", 1.0), rtol=1e-3)
    small, large = first_step("rmsprop_graves", 1e-4), first_step("rmsprop_graves", 1.0)
    assert np.all(np.abs(small) < 1e-2 * np.abs(large))
    assert_close(small, 1e-3 * 1e-4 * np.array([1.0, -2.0, 0.5]) / math.sqrt(1e-3), rtol=1e-5)
