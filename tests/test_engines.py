"""The Brian2 engine against the reference engine (the oracle), on the same batch.

One suite for both schedules and both top-target placements: the forward activity,
the targets, the noisy reconstructions, the gradients and the updated weights must
agree, to machine precision at one step per phase, and within 1e-3 in the
continuous-time regime (dt = τ/20, phases of 20 τ).
"""
import numpy as np
import pytest

from bioprop.brian2 import Brian2Engine
from bioprop.reference import ReferenceEngine

from conftest import assert_close, model_for, phases, small_model_spec

CASES = [("alternating", "output"), ("parallel", "output"), ("alternating", "penultimate"),
         ("parallel", "penultimate")]


def _both(schedule, top, protocol, target="dtp", feedback="dtp", **options):
    spec = small_model_spec(schedule=schedule, top=top, target=target, feedback=feedback,
                            **options)
    model = model_for(spec)
    ref = ReferenceEngine(model.copy(), spec, 4)
    eng = Brian2Engine(model.copy(), spec, protocol, 4)
    data = np.random.default_rng(5)
    x, y = data.random((4, 6)), np.array([0, 1, 2, 1])
    return ref, eng, ref.train_batch(x, y, np.random.default_rng(3)), \
        eng.train_batch(x, y, np.random.default_rng(3))


def _compare(ref, eng, tr, te, rtol):
    for name in ("h", "targets"):
        for l, (p, q) in enumerate(zip(getattr(tr, name), getattr(te, name))):
            if p is not None:
                assert_close(q, p, rtol, f"{name}[{l}]")
    for l, (p, q) in enumerate(zip(tr.points, te.points)):
        if p is not None:
            assert set(p) == set(q), (l, set(p), set(q))
            for point in p:
                for what, a, b in zip(("input", "u", "recon"), p[point], q[point]):
                    assert_close(b, a, rtol, f"point {point!r} of g_{l}: {what}")
    for name in ("forward_grads", "feedback_grads"):
        for l, (p, q) in enumerate(zip(getattr(tr, name), getattr(te, name))):
            if p is not None:
                assert_close(q[0], p[0], rtol, f"{name}[{l}] weight")
                assert_close(q[1], p[1], rtol, f"{name}[{l}] bias")
    for l in range(1, ref.model.n_layers + 1):
        assert_close(eng.model.forward[l].weight, ref.model.forward[l].weight, rtol, f"W_{l}")
    for l in range(2, ref.model.n_layers + 1):
        assert_close(eng.model.feedback[l].weight, ref.model.feedback[l].weight, rtol, f"Q_{l}")


@pytest.mark.parametrize("schedule,top", CASES)
def test_continuous_time_matches_reference(schedule, top):
    """Phases 20 τ long, dt = τ/20: settled dynamics reproduce the algebra within 1e-3."""
    ref, eng, tr, te = _both(schedule, top, phases(dt="0.5 ms", length="200 ms"))
    _compare(ref, eng, tr, te, rtol=1e-3)


@pytest.mark.parametrize("schedule,top", CASES)
@pytest.mark.parametrize("target,feedback", [("dtp", "dtp"), ("tp", "denoising"),
                                             ("dtp", "ldrl"), ("bp", "dtp"), ("fa", "dtp"),
                                             ("dfa", "dtp"), ("gn", "dtp")])
def test_one_step_per_phase_is_exact(schedule, top, target, feedback):
    """dt = τ with Euler settles each phase in one step: agreement to rounding error."""
    ref, eng, tr, te = _both(schedule, top, phases(), target, feedback)
    _compare(ref, eng, tr, te, rtol=1e-10)


@pytest.mark.parametrize("target", ["bp", "fa", "dfa", "gn", "tp"])
def test_continuous_time_matches_reference_for_every_rule(target):
    ref, eng, tr, te = _both("alternating", "output", phases(dt="0.5 ms", length="200 ms"),
                             target)
    _compare(ref, eng, tr, te, rtol=1e-3)


@pytest.mark.parametrize("schedule", ["alternating", "parallel"])
@pytest.mark.parametrize("feedback", ["dtp", "ldrl"])
def test_several_feedback_iterations_match_reference(schedule, feedback):
    spec = small_model_spec(schedule=schedule, feedback_iterations=3, feedback=feedback)
    model = model_for(spec)
    ref, eng = ReferenceEngine(model.copy(), spec, 4), Brian2Engine(model.copy(), spec, phases(), 4)
    x, y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])
    tr, te = (e.train_batch(x, y, np.random.default_rng(3)) for e in (ref, eng))
    _compare(ref, eng, tr, te, rtol=1e-10)


def test_feedback_pretraining_leaves_forward_weights_alone():
    spec = small_model_spec()
    model = model_for(spec)
    ref, eng = ReferenceEngine(model.copy(), spec, 4), Brian2Engine(model.copy(), spec, phases(), 4)
    x, y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])
    for e in (ref, eng):
        e.train_batch(x, y, np.random.default_rng(3), learn_forward=False)
    for l in range(1, 5):
        np.testing.assert_array_equal(eng.model.forward[l].weight, model.forward[l].weight)
    for l in range(2, 5):
        assert not np.allclose(eng.model.feedback[l].weight, model.feedback[l].weight)
        assert_close(eng.model.feedback[l].weight, ref.model.feedback[l].weight, 1e-10, f"Q_{l}")


def test_short_phases_do_not_settle():
    """The comparison can fail: with phases of 2 steps of τ/2 the engine is measurably off."""
    ref, eng, tr, te = _both("alternating", "output", phases(dt="5 ms", length="10 ms"))
    with pytest.raises(AssertionError):
        _compare(ref, eng, tr, te, rtol=1e-3)


def test_predict_matches_reference_with_padding():
    """Evaluation pads the last batch; outputs equal the algebraic forward pass."""
    spec = small_model_spec()
    model = model_for(spec)
    eng = Brian2Engine(model.copy(), spec, phases(dt="1 ms", length="300 ms"), 4)
    x = np.random.default_rng(1).random((7, 6))
    assert_close(eng.predict(x), ReferenceEngine(model, spec, 4).predict(x), 1e-6, "h_L")


@pytest.mark.parametrize("schedule", ["alternating", "parallel"])
@pytest.mark.parametrize("target", ["dtp", "tp"])
def test_drl_objective_matches_reference(schedule, target):
    """The non-local DRL point, sent up and down through the populations, one step per phase."""
    ref, eng, tr, te = _both(schedule, "output", phases(), target, "drl")
    _compare(ref, eng, tr, te, rtol=1e-10)


def test_drl_objective_continuous_time():
    ref, eng, tr, te = _both("alternating", "output", phases(dt="0.5 ms", length="200 ms"),
                             "dtp", "drl")
    _compare(ref, eng, tr, te, rtol=1e-3)


RULE_OPTIONS = [{"target": "iterative", "iterations": 1}, {"target": "iterative", "iterations": 3},
                {"target": "dtp", "feedback": "denoising", "side_information": "label"},
                {"target": "dtp", "feedback": "denoising", "side_information": "activity"},
                {"target": "tp", "feedback": "drl", "side_information": "activity"},
                {"target": "dtp", "layer_norm": True}, {"target": "bp", "layer_norm": True},
                {"target": "iterative", "iterations": 2, "layer_norm": True},
                {"target": "iterative", "iterations": 3, "iteration_step": 0.5}]


@pytest.mark.parametrize("options", RULE_OPTIONS)
@pytest.mark.parametrize("schedule", ["alternating", "parallel"])
def test_rule_options_one_step_exact(options, schedule):
    ref, eng, tr, te = _both(schedule, "output", phases(), **options)
    _compare(ref, eng, tr, te, rtol=1e-10)


@pytest.mark.parametrize("options", RULE_OPTIONS[1:5] + RULE_OPTIONS[6:7] + RULE_OPTIONS[8:])
def test_rule_options_continuous_time(options):
    ref, eng, tr, te = _both("alternating", "output", phases(dt="0.5 ms", length="200 ms"),
                             **options)
    _compare(ref, eng, tr, te, rtol=1e-3)


def test_iterative_with_one_step_is_dtp_in_the_engine():
    _, _, _, dtp = _both("alternating", "output", phases(), target="dtp")
    _, _, _, it = _both("alternating", "output", phases(), target="iterative", iterations=1)
    for l in range(1, 5):
        assert_close(it.targets[l], dtp.targets[l], 1e-12, f"targets[{l}]")


@pytest.mark.slow
def test_cython_target_matches_numpy_target():
    """The codegen target changes how Brian2 runs the state updates, not what they compute."""
    from dataclasses import replace

    protocol = phases(dt="5 ms", length="50 ms")
    cython = replace(protocol, engine=replace(protocol.engine, codegen="cython"))
    spec = small_model_spec()
    model = model_for(spec)
    x, y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])
    traces = [Brian2Engine(model.copy(), spec, p, 4).train_batch(x, y, np.random.default_rng(3))
              for p in (protocol, cython)]
    for name in ("h", "targets"):
        for l, (p, q) in enumerate(zip(getattr(traces[0], name), getattr(traces[1], name))):
            if p is not None:
                assert_close(q, p, 1e-12, f"{name}[{l}]")


@pytest.mark.parametrize("target", ["dtp", "iterative"])
def test_sign_units_match_reference(target):
    """Discrete sign units (straight-through derivative) in the first layer, both engines."""
    spec = small_model_spec(activations=["sign", "tanh", "tanh", "linear"], target=target,
                            iterations=2 if target == "iterative" else 1)
    model = model_for(spec)
    ref, eng = ReferenceEngine(model.copy(), spec, 4), Brian2Engine(model.copy(), spec, phases(), 4)
    x, y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])
    tr, te = (e.train_batch(x, y, np.random.default_rng(3)) for e in (ref, eng))
    assert set(np.unique(tr.h[1])) <= {-1.0, 0.0, 1.0}
    _compare(ref, eng, tr, te, rtol=1e-10)
