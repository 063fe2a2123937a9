"""Oracle tests of every target rule (docs/algorithms.md, "Target rules"), against independent
computations."""
import numpy as np
import pytest

from bioprop.activations import get_activation
from bioprop.model import LayeredModel
from bioprop.pathways import DenseProjection
from bioprop.reference import ReferenceEngine
from bioprop.rules import (LOSSES, TARGET_RULES, bp_grads, forward_grads, gauss_newton_target,
                           one_hot, output_jacobian, propagate_targets, teach)

from conftest import assert_close, model_for, small_model_spec


def _angle(u, v):
    cos = np.sum(u * v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _square_tanh_model(n=6, layers=3, seed=0, gain=0.5):
    """A tanh network of square, well-conditioned layers, without feedback weights."""
    rng = np.random.default_rng(seed)
    tanh = get_activation("tanh")
    forward = [None] + [DenseProjection(np.eye(n) * 0.9 + gain * rng.standard_normal((n, n)) / np.sqrt(n),
                                        0.1 * rng.standard_normal(n)) for _ in range(layers)]
    return LayeredModel([f"l{i}" for i in range(layers + 1)], [n] * (layers + 1),
                        [None] + [tanh] * layers, forward, [None, None] + [None] * (layers - 1))


class _ExactInverseModel(LayeredModel):
    """g_l = f_l⁻¹ exactly, for tanh layers: g_l(y) = W_l⁻¹(artanh(y) − b_l)."""

    def g(self, l, h_upper, side=None):
        w, b = self.forward[l].weight, self.forward[l].bias
        u = (np.arctanh(np.clip(h_upper, -1 + 1e-12, 1 - 1e-12)) - b) @ np.linalg.inv(w).T
        return u, u


def _exact_tanh(**kw):
    m = _square_tanh_model(**kw)
    return _ExactInverseModel(m.names, m.sizes, m.activations, m.forward, m.feedback)


def _gn_changes(model, a, h, targets, t, damping=1e-12):
    e = targets[t] - h[t]
    return {l: np.stack([gauss_newton_target(output_jacobian(model, a, l, i)[: model.sizes[t]],
                                              e[i], damping) for i in range(len(e))])
            for l in range(1, t)}


@pytest.mark.parametrize("rule,iterations", [("dtp", 1), ("iterative", 5)])
def test_exact_inverses_match_gauss_newton_to_first_order(rule, iterations):
    """tanh network, g = f⁻¹ exactly: targets − h → GN change, the error shrinking as η̂²."""
    model = _exact_tanh()
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 6))
    a, h = model.forward_pass(x)
    y = np.zeros((4, 6))
    errors = []
    for step in (1e-2, 1e-3):
        teaching = teach(model, LOSSES["squared_error"], y, a, h, "output", step)
        targets, _ = propagate_targets(model, TARGET_RULES[rule], a, h, teaching.target, 3,
                                       iterations=iterations)
        gn = _gn_changes(model, a, h, targets, 3)
        errors.append(max(np.abs(targets[l] - h[l] - gn[l]).max() / np.abs(gn[l]).max()
                          for l in (1, 2)))
    assert errors[0] < 0.05, errors
    assert errors[1] < errors[0] / 5, f"relative error should fall ~10x with η̂: {errors}"


def test_iterative_converges_geometrically_on_a_contraction():
    """g∘f − I is a contraction of known rate ρ: the residual falls at least as ρ^k."""
    n, rho = 5, 0.3
    rng = np.random.default_rng(2)
    lin = get_activation("linear")
    W = np.eye(n) + 0.2 * rng.standard_normal((n, n))
    # Q = (1 − ρ) W⁻¹ gives g∘f − I = −ρ I (up to the bias), a contraction of rate ρ.
    Q = (1 - rho) * np.linalg.inv(W)
    model = LayeredModel(["x", "a", "b"], [n, n, n], [None, lin, lin],
                         [None, DenseProjection(np.eye(n), np.zeros(n)), DenseProjection(W, np.zeros(n))],
                         [None, None, DenseProjection(Q, np.zeros(n))])
    h1 = rng.standard_normal((3, n))
    target = h1 @ W.T + 0.5 * rng.standard_normal((3, n))
    x, residuals = TARGET_RULES["iterative"].fn(
        h1, model.g(2, target)[1], model.g(2, h1 @ W.T)[1], f=lambda v: model.f(2, v)[1],
        g=lambda v: model.g(2, v)[1], target_upper=target, iterations=12)
    ratios = residuals[1:] / residuals[:-1]
    assert np.all(ratios <= rho + 1e-9), ratios
    preimage = target @ np.linalg.inv(W).T
    assert_close(x, preimage, 1e-5, "x^K against f⁻¹(ĥ)")


def test_dtp_is_iterative_with_one_step():
    spec = small_model_spec()
    model = model_for(spec)
    x = np.random.default_rng(3).random((5, 6))
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["softmax_cross_entropy"], one_hot(np.arange(5) % 3, 3), a, h,
                     "output", 0.3)
    dtp, _ = propagate_targets(model, TARGET_RULES["dtp"], a, h, teaching.target, 4)
    it, residuals = propagate_targets(model, TARGET_RULES["iterative"], a, h, teaching.target, 4,
                                      iterations=1)
    for l in range(1, 5):
        np.testing.assert_array_equal(dtp[l], it[l])
    assert residuals[3].shape == (2,)


def test_tp_is_further_from_gauss_newton_than_dtp_with_imperfect_inverses():
    """Lee 2015's motivating claim: with g ≠ f⁻¹, TP's targets miss GN by far more than DTP's."""
    model = _exact_tanh()
    rng = np.random.default_rng(4)
    # Imperfect inverses: W⁻¹ perturbed by 10%, with ψ = tanh (not the exact artanh).
    model_imperfect = LayeredModel(model.names, model.sizes, model.activations, model.forward,
                                   [None, None] + [DenseProjection(
                                       np.linalg.inv(model.forward[l].weight)
                                       + 0.1 * rng.standard_normal((6, 6)), np.zeros(6))
                                       for l in (2, 3)])
    x = rng.uniform(-0.5, 0.5, (8, 6))
    a, h = model_imperfect.forward_pass(x)
    teaching = teach(model_imperfect, LOSSES["squared_error"], np.zeros((8, 6)), a, h, "output", 0.05)
    distance = {}
    for rule in ("tp", "dtp"):
        targets, _ = propagate_targets(model_imperfect, TARGET_RULES[rule], a, h, teaching.target, 3)
        gn = _gn_changes(model_imperfect, a, h, targets, 3, damping=1e-6)
        distance[rule] = np.mean([np.linalg.norm(targets[l] - h[l] - gn[l]) / np.linalg.norm(gn[l])
                                  for l in (1, 2)])
    assert distance["tp"] > 5 * distance["dtp"], distance


def test_bp_rule_update_is_the_gradient():
    """The local update with bp targets has angle 0 to the exact (finite-checked) gradient."""
    spec = small_model_spec(target="bp", top="output")
    model = model_for(spec)
    rng = np.random.default_rng(6)
    x, y = rng.random((8, 6)), one_hot(rng.integers(0, 3, 8), 3)
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["softmax_cross_entropy"], y, a, h, "output", 0.3)
    targets, _ = propagate_targets(model, TARGET_RULES["bp"], a, h, teaching.target, 4)
    local = forward_grads(model, a, h, targets, 4)
    exact, _, _, _ = bp_grads(model, LOSSES["softmax_cross_entropy"], x, y)
    for l in range(1, 5):
        assert _angle(local[l][0], exact[l][0]) < 1e-5
        assert_close(local[l][0], 0.3 * exact[l][0], 1e-10, f"W_{l}: η̂ × gradient")


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_fixed_feedback_never_changes_and_is_used(rule):
    spec = small_model_spec(target=rule)
    engine = ReferenceEngine(model_for(spec), spec, 4)
    before = {l: m.copy() for l, m in engine.model.fixed[rule].items()}
    rng = np.random.default_rng(7)
    x, y = rng.random((40, 6)), rng.integers(0, 3, 40)
    engine.train_epoch(x, y, rng)
    for l, m in engine.model.fixed[rule].items():
        np.testing.assert_array_equal(m, before[l])
    # The targets really go through the fixed matrices: changing them changes the targets.
    a, h = engine.model.forward_pass(x[:4])
    teaching = teach(engine.model, LOSSES["softmax_cross_entropy"], one_hot(y[:4], 3), a, h,
                     "output", 0.3)
    t1, _ = propagate_targets(engine.model, TARGET_RULES[rule], a, h, teaching.target, 4)
    for m in engine.model.fixed[rule].values():
        m *= -1
    t2, _ = propagate_targets(engine.model, TARGET_RULES[rule], a, h, teaching.target, 4)
    assert not np.allclose(t1[1], t2[1])


def test_gn_rule_matches_the_per_sample_oracle():
    spec = small_model_spec(target="gn")
    model = model_for(spec)
    x = np.random.default_rng(8).random((3, 6))
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["squared_error"], np.zeros((3, 3)), a, h, "output", 0.1)
    targets, _ = propagate_targets(model, TARGET_RULES["gn"], a, h, teaching.target, 4,
                                   damping=1e-3)
    e = teaching.target - h[4]
    for l in (1, 2, 3):
        for i in range(3):
            oracle = gauss_newton_target(output_jacobian(model, a, l, i), e[i], 1e-3)
            assert_close(targets[l][i] - h[l][i], oracle, 1e-9, f"layer {l} sample {i}")


def test_layer_norm_scales_by_squared_influence():
    """On a linear network with J = s·U (U orthogonal), the normalised GN change is GD's."""
    n = 4
    rng = np.random.default_rng(9)
    lin = get_activation("linear")
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = 3.0
    model = LayeredModel(["x", "a", "b"], [n] * 3, [None, lin, lin],
                         [None, DenseProjection(np.eye(n), np.zeros(n)), DenseProjection(s * U, np.zeros(n))],
                         [None, None, DenseProjection(U.T / s, np.zeros(n))])
    x = rng.standard_normal((2, n))
    a, h = model.forward_pass(x)
    top = h[2] + 0.1 * rng.standard_normal((2, n))
    plain, _ = propagate_targets(model, TARGET_RULES["dtp"], a, h, top, 2)
    normed, _ = propagate_targets(model, TARGET_RULES["dtp"], a, h, top, 2, layer_norm=True)
    gradient_like = (top - h[2]) @ (s * U)  # Jᵀ e
    assert_close(normed[1] - h[1], gradient_like, 1e-10, "normalised change")
    assert_close(plain[1] - h[1], gradient_like / s ** 2, 1e-10, "GN change")
