"""Oracle tests of every target rule (docs/algorithms.md, "Target rules"), against independent
computations."""
import numpy as np
import pytest

from bioprop.activations import get_activation
from bioprop.model import LayeredModel
from bioprop.projection import DenseProjection
from bioprop.reference import ReferenceEngine
from bioprop.rules import (FEEDBACK_OBJECTIVES, LOSSES, ROUND_TRIP, TARGET_RULES, TargetContext,
                           bp_grads, difference_correction, forward_grads, one_hot,
                           propagate_targets, teach)

from conftest import assert_close, model_for, small_model_spec
from oracles import gauss_newton_change, output_jacobian


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
    return {l: np.stack([gauss_newton_change(output_jacobian(model, a, l, i)[: model.sizes[t]],
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
    ctx = TargetContext.descent(model, [None, h1, h1 @ W.T], [None, h1, h1 @ W.T], target, 2,
                                iterations=12)
    TARGET_RULES["iterative"].step(ctx, 2)
    x, residuals = ctx.targets[1], ctx.residuals[1]
    ratios = residuals[1:] / residuals[:-1]
    assert np.all(ratios <= rho + 1e-9), ratios
    preimage = target @ np.linalg.inv(W).T
    assert_close(x, preimage, 1e-5, "x^K against f⁻¹(ĥ)")


def _linear_pair(n, Q_of_W, seed=2):
    """x → W x → Q (W x): a two-layer linear model whose g∘f is Q W, and a batch."""
    rng = np.random.default_rng(seed)
    lin = get_activation("linear")
    W = np.eye(n) + 0.2 * rng.standard_normal((n, n))
    model = LayeredModel(["x", "a", "b"], [n, n, n], [None, lin, lin],
                         [None, DenseProjection(np.eye(n), np.zeros(n)), DenseProjection(W, np.zeros(n))],
                         [None, None, DenseProjection(Q_of_W(W), np.zeros(n))])
    h1 = rng.standard_normal((3, n))
    target = h1 @ W.T + 0.5 * rng.standard_normal((3, n))
    return model, W, h1, target


def _iterate(model, W, h1, target, iterations, step):
    ctx = TargetContext.descent(model, [None, h1, h1 @ W.T], [None, h1, h1 @ W.T], target, 2,
                                iterations=iterations, iteration_step=step)
    TARGET_RULES["iterative"].step(ctx, 2)
    return ctx.targets[1], ctx.residuals[1]


def test_a_damped_refinement_by_hand():
    """One step of α = 0.25 is x + α (Q ĥ − Q W x), written out with the matrices."""
    n = 4
    model, W, h1, target = _linear_pair(n, lambda W: 0.7 * np.linalg.inv(W))
    Q = model.feedback[2].weight
    x, _ = _iterate(model, W, h1, target, 1, 0.25)
    by_hand = h1 + 0.25 * (target @ Q.T - h1 @ W.T @ Q.T)
    assert_close(x, by_hand, 1e-12, "x¹")
    undamped, _ = _iterate(model, W, h1, target, 1, 1.0)
    assert_close(undamped, h1 + target @ Q.T - h1 @ W.T @ Q.T, 1e-12, "x¹, α = 1")


def test_damping_makes_an_overshooting_iteration_contract():
    """Q W = 3 I: undamped, x − f⁻¹(ĥ) is multiplied by 1 − 3 = −2 each step and the residual
    grows; with α = 0.5 the factor is 1 − 1.5 = −0.5 and it falls as 0.5^k to the preimage."""
    n = 5
    model, W, h1, target = _linear_pair(n, lambda W: 3 * np.linalg.inv(W))
    _, undamped = _iterate(model, W, h1, target, 6, 1.0)
    np.testing.assert_allclose(undamped[1:] / undamped[:-1], 2.0, rtol=1e-9)
    x, damped = _iterate(model, W, h1, target, 30, 0.5)
    np.testing.assert_allclose(damped[1:] / damped[:-1], 0.5, rtol=1e-6)
    assert_close(x, target @ np.linalg.inv(W).T, 1e-6, "x^K against f⁻¹(ĥ)")


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
            oracle = gauss_newton_change(output_jacobian(model, a, l, i), e[i], 1e-3)
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


# ---------------------------------------------------------------- the rule records
INVERSE, DIFFERENCE = ("tp", "dtp", "iterative"), ("bp", "fa", "dfa", "gn")


def _targets_as_before(model, name, a, h, top_value, t, iterations):
    """Each rule's targets as its own formula gives them, written out here once more."""
    g = lambda l, v: model.g(l, v)[1]
    targets, e = [None] * (t + 1), [None] * (t + 1)
    targets[t], e[t] = top_value, top_value - h[t]
    slope = lambda l: model.activations[l].derivative(a[l])
    for l in range(t, 1, -1):
        if name == "tp":
            targets[l - 1] = g(l, targets[l])
        elif name == "dtp":
            targets[l - 1] = h[l - 1] + (g(l, targets[l]) - g(l, h[l]))
        elif name == "iterative":
            x = h[l - 1]
            for _ in range(iterations):
                x = x + (g(l, targets[l]) - g(l, model.f(l, x)[1]))
            targets[l - 1] = x
        else:
            if name == "bp":
                e[l - 1] = (slope(l) * e[l]) @ model.forward[l].weight
            elif name == "fa":
                e[l - 1] = (slope(l) * e[l]) @ model.fixed["fa"][l]
            elif name == "dfa":
                e[l - 1] = (slope(t) * e[t]) @ model.fixed["dfa"][l - 1]
            else:
                e[l - 1] = np.stack([gauss_newton_change(output_jacobian(model, a, l - 1, i), e[t][i],
                                                         1e-3) for i in range(len(e[t]))])
            targets[l - 1] = h[l - 1] + e[l - 1]
    return targets


@pytest.mark.parametrize("name", INVERSE + DIFFERENCE)
def test_every_rule_through_the_one_convention_gives_its_targets(name):
    """rule.step(ctx, l), the same call for every rule, gives each rule's own targets: to
    the bit where the formula is restated operation for operation, else (gn, batched
    against per sample) to rounding."""
    spec = small_model_spec(target=name)
    model = model_for(spec)
    rng = np.random.default_rng(11)
    x, y = rng.random((5, 6)), one_hot(rng.integers(0, 3, 5), 3)
    a, h = model.forward_pass(x)
    teaching = teach(model, LOSSES["softmax_cross_entropy"], y, a, h, "output", 0.3)
    ctx = TargetContext.descent(model, a, h, teaching.target, 4, damping=1e-3, iterations=3)
    for l in range(4, 1, -1):
        TARGET_RULES[name].step(ctx, l)
    expected = _targets_as_before(model, name, a, h, teaching.target, 4, iterations=3)
    for l in range(1, 4):
        if name == "gn":
            assert_close(ctx.targets[l], expected[l], 1e-9, f"ĥ_{l}")
        else:
            np.testing.assert_array_equal(ctx.targets[l], expected[l], err_msg=f"ĥ_{l}")
    via_propagate, _ = propagate_targets(model, TARGET_RULES[name], a, h, teaching.target, 4,
                                         iterations=3, damping=1e-3)
    for l in range(1, 4):
        np.testing.assert_array_equal(via_propagate[l], ctx.targets[l])


@pytest.mark.parametrize("name", INVERSE + DIFFERENCE)
def test_what_an_engine_calls_agrees_with_the_step(name):
    """The pieces the Brian2 engine calls (an inverse rule's local target from settled
    reconstructions, a difference rule's change) are the step's own computation."""
    spec = small_model_spec(target=name)
    model = model_for(spec)
    x = np.random.default_rng(12).random((4, 6))
    a, h = model.forward_pass(x)
    top = h[4] + 0.1
    ctx = TargetContext.descent(model, a, h, top, 4, iterations=1)
    rule = TARGET_RULES[name]
    rule.step(ctx, 4)
    if rule.uses_inverse:
        assert rule.change is None
        local = rule.local_target(h[3], model.g(4, top)[1], model.g(4, h[4])[1])
        np.testing.assert_array_equal(local, ctx.targets[3])
    else:
        assert rule.local_target is None
        np.testing.assert_array_equal(rule.change(ctx, 4), ctx.e[3])


def test_records_say_what_each_rule_needs():
    assert {n for n, r in TARGET_RULES.items() if r.uses_inverse} == set(INVERSE)
    assert {n for n, r in TARGET_RULES.items() if r.iterates} == {"iterative"}
    # dtp and the iterative rule take the same step; the engine's drl_down takes it too
    assert TARGET_RULES["dtp"].local_target is difference_correction
    assert TARGET_RULES["iterative"].local_target is difference_correction
    h, g_target, g_forward = np.ones((1, 2)), np.full((1, 2), 3.0), np.full((1, 2), 0.5)
    np.testing.assert_array_equal(TARGET_RULES["tp"].local_target(h, g_target, g_forward), g_target)
    np.testing.assert_array_equal(difference_correction(h, g_target, g_forward), [[3.5, 3.5]])


def test_the_model_draws_the_fixed_matrices_the_rules_ask_for():
    spec = small_model_spec(top="penultimate")
    model = model_for(spec)
    asking = {n: r.fixed_shapes for n, r in TARGET_RULES.items() if r.fixed_shapes is not None}
    assert set(asking) == {"fa", "dfa"}
    assert set(model.fixed) == set(asking)
    for name, shapes in asking.items():
        expected = shapes(model.sizes, 3)
        assert {l: m.shape for l, m in model.fixed[name].items()} == expected
    assert {l: m.shape for l, m in model.fixed["fa"].items()} == {
        l: model.forward[l].weight.shape for l in range(2, 5)}
    assert {l: m.shape for l, m in model.fixed["dfa"].items()} == {1: (4, 5), 2: (4, 4)}


def test_objectives_say_whether_they_need_the_round_trip():
    assert {n for n, o in FEEDBACK_OBJECTIVES.items() if o.round_trip} == {"drl"}
    assert ROUND_TRIP in FEEDBACK_OBJECTIVES["drl"].points


def test_the_defaults_are_registered_and_are_the_spec_defaults():
    from bioprop.rules import DEFAULT_OBJECTIVE, DEFAULT_TARGET_RULE
    from bioprop.spec import RuleSpec

    assert DEFAULT_TARGET_RULE in TARGET_RULES and DEFAULT_OBJECTIVE in FEEDBACK_OBJECTIVES
    assert (RuleSpec().target, RuleSpec().feedback) == (DEFAULT_TARGET_RULE, DEFAULT_OBJECTIVE)
