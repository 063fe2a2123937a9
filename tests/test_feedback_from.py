"""Feedback learning without noise phases: ``rule.feedback_from = "twin"`` and fixed feedback.

The oracles: the reference engine's own feedback update for the same forward activity and
noise (the Brian2 engine with ``twin`` must apply exactly it), the initial feedback weights
(``fixed`` must never move them), and the phase lists of the schedule.
"""
from copy import deepcopy
from types import SimpleNamespace

import numpy as np
import pytest

from bioprop.brian2.phases import learner_phases, trial_phases
from bioprop.learner import BatchTrace
from bioprop.reference import ReferenceEngine
from bioprop.rules import FEEDBACK_OBJECTIVES
from bioprop.spec import SpecError, parse_model, to_toml
from bioprop.units import Duration
from conftest import model_for, phases, small_model_spec
from test_spiking_engine import spiking_protocol, spiking_spec

DT = Duration("10 ms").quantity
SPEC = SimpleNamespace(forward=Duration("40 ms"), feedback=Duration("20 ms"),
                       target=Duration("30 ms"))
NOISE = {"noise_a", "noise_b", "settle", "drl_up", "drl_down"}


def _names(phases_):
    return [p.name for p in phases_]


# ------------------------------------------------------------------ phase lists
@pytest.mark.parametrize("schedule, learn, expected, marked", [
    ("alternating", True, ["forward", "target"], 0),
    ("parallel", True, ["forward", "target"], 1),
    ("alternating", False, ["forward"], 0),
    ("parallel", False, ["forward"], 0)])
def test_twin_has_no_noise_phases_and_marks_where_the_feedback_learns(schedule, learn, expected,
                                                                      marked):
    phases_ = trial_phases(SPEC, DT, schedule=schedule, trains_feedback=True, learn_forward=learn,
                           feedback_iterations=3, settle_each_iteration=True, drl=True, top=3,
                           twin=True)
    assert _names(phases_) == expected
    assert [i for i, p in enumerate(phases_) if p.twin_feedback] == [marked]
    assert not any(p.ends_iteration or p.opens_iteration for p in phases_)


def test_twin_marks_the_last_sub_phase_of_the_parallel_targets():
    phases_ = trial_phases(SPEC, DT, schedule="parallel", trains_feedback=True, iterations=2,
                           layer_norm=True, top=3, twin=True)
    assert [p.name for p in phases_ if p.twin_feedback] == ["influence"]
    assert phases_[-1].twin_feedback and phases_[-1].layer == 2


@pytest.mark.parametrize("twin, training, listening", [
    (False, True, {1, 2}), (True, True, set()), (False, False, set())])
def test_forward_dendrites_listen_unless_the_twin_sets_them(twin, training, listening):
    """A forward phase marked twin_feedback ends by setting every dendrite to g(h) itself:
    what they would integrate during it (a product per step) is not computed."""
    from bioprop.brian2.phase_actions import forward_roles
    from bioprop.brian2.phases import Phase

    engine = SimpleNamespace(model=SimpleNamespace(n_layers=3), top=3, training=training)
    assert forward_roles(engine, Phase("forward", 5, twin_feedback=twin)) == ({1, 2, 3},
                                                                             listening)


@pytest.mark.parametrize("rule, expected", [
    ({}, ["forward", "noise_a", "noise_b", "settle", "target"]),
    ({"feedback_from": "twin"}, ["forward", "target"]),
    ({"feedback": "fixed"}, ["forward", "target"]),
    ({"feedback": "fixed", "schedule": "parallel"}, ["forward", "target"]),
    ({"feedback": "ldrl", "feedback_from": "twin"}, ["forward", "target"]),
    ({"feedback": "drl", "feedback_from": "twin"}, ["forward", "target"])])
def test_learner_phases_of_the_new_options(rule, expected):
    spec = small_model_spec(**rule)
    learner = ReferenceEngine(model_for(spec), spec, 4)
    train, pretrain = learner_phases(learner, phases().phases, DT)
    assert _names(train) == expected
    if rule:  # every option here trains the feedback weights without noise phases, or not at all
        assert not NOISE & set(_names(pretrain))
    if rule.get("feedback") == "fixed":
        assert not learner.trains_feedback and not any(p.twin_feedback for p in train)


# ---------------------------------------------------------------- the registry
def test_fixed_is_an_objective_that_trains_nothing():
    fixed = FEEDBACK_OBJECTIVES["fixed"]
    assert fixed.points == () and not fixed.trains and fixed.local
    assert all(o.trains for name, o in FEEDBACK_OBJECTIVES.items() if name != "fixed")
    loss, grads = fixed.fn(np.ones((3, 2)), None, {})
    assert grads == {} and np.array_equal(loss, np.zeros(3))


# ------------------------------------------------------------------------ spec
def test_feedback_from_is_checked_and_suggested():
    with pytest.raises(SpecError, match=r"rule\.feedback_from: unknown value 'twni'.*"
                                        r"spikes, twin.*Did you mean 'twin'"):
        small_model_spec(feedback_from="twni")
    with pytest.raises(SpecError, match=r"unknown key 'rule\.feedback_form'.*"
                                        r"Did you mean 'feedback_from'"):
        small_model_spec(feedback_form="twin")
    with pytest.raises(SpecError, match=r"rule\.feedback: unknown value 'fixd'.*Did you mean 'fixed'"):
        small_model_spec(feedback="fixd")


def test_feedback_from_is_written_only_when_set():
    # so that the recorded TOML of every older run, and the golden fingerprints, stay as they were
    assert "feedback_from" not in to_toml(small_model_spec())
    assert 'feedback_from = "twin"' in to_toml(small_model_spec(feedback_from="twin"))


# ---------------------------------------------------------------- the engines
def _batch(spec, n=4):
    rng = np.random.default_rng(5)
    return rng.random((n, spec.sizes[0])), np.arange(n) % spec.sizes[-1]


@pytest.mark.parametrize("feedback", ["dtp", "ldrl", "drl"])
def test_twin_is_the_identity_in_the_reference_engine(feedback):
    runs = []
    for source in ("spikes", "twin"):
        spec = small_model_spec(feedback=feedback, feedback_from=source, feedback_iterations=2)
        engine = ReferenceEngine(model_for(spec), spec, 4)
        x, y = _batch(spec)
        for seed in range(3):
            engine.train_batch(x, y, np.random.default_rng(seed))
        runs.append(engine.state_arrays())
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


def _brian2_engine(spec, protocol, batch=4):
    from bioprop.brian2 import Brian2Engine

    return Brian2Engine(model_for(spec, protocol=protocol), spec, protocol, batch)


@pytest.mark.parametrize("schedule", ["alternating", "parallel"])
def test_brian2_twin_feedback_update_is_the_reference_update(schedule):
    """One LIF batch: the feedback weights move exactly as the reference engine's update
    moves them from the traces the forward phase latched and the noise drawn, before the
    forward weights change; the target phase (alternating) starts from g(h) of the new
    weights."""
    spec = spiking_spec("lif", feedback_from="twin", feedback_iterations=2, schedule=schedule)
    protocol = spiking_protocol(length="10 ms", dt="1 ms")
    engine = _brian2_engine(spec, protocol)
    reference = ReferenceEngine(deepcopy(engine.model), spec, 4)
    assert _names(engine.train_phases) == ["forward", "target"]
    x, y = _batch(spec)
    trace = engine.train_batch(x, y, np.random.default_rng(3))
    noises = engine.draw_noise(np.random.default_rng(3), 4)  # the engine drew these
    assert np.array_equal(trace.noise[1], noises[-1][1])
    expected = BatchTrace(a=None, h=None)
    for eps in noises:
        reference.feedback_iteration(trace.h, eps, expected, None)
    for name in ("Q_2", "c_2"):
        np.testing.assert_allclose(engine.state_arrays()[name], reference.state_arrays()[name],
                                   rtol=0, atol=1e-12, err_msg=name)
    assert not np.array_equal(engine.state_arrays()["Q_2"], model_for(spec, protocol=protocol)
                              .feedback[2].weight), "the feedback weights must have learned"
    np.testing.assert_allclose(trace.feedback_losses[2], expected.feedback_losses[2], rtol=1e-12)
    if schedule == "alternating":  # the targets used g(h) at the new feedback weights
        g_new = engine.model.g(2, trace.h[2])[1]
        np.testing.assert_allclose(engine.latched.g_forward[1], g_new, rtol=0, atol=1e-12)
    trained = {k: v.copy() for k, v in engine.state_arrays().items()}
    engine.predict(x)  # its forward phase is the one marked twin_feedback: it must not learn
    for key, value in engine.state_arrays().items():
        if not key.startswith("brian2/"):  # the weights and the optimizers' state
            np.testing.assert_array_equal(value, trained[key], err_msg=key)


@pytest.mark.parametrize("engine_name", ["reference", "brian2"])
def test_fixed_feedback_weights_never_move(engine_name):
    spec = spiking_spec("lif", feedback="fixed") if engine_name == "brian2" else \
        small_model_spec(feedback="fixed")
    protocol = spiking_protocol(length="10 ms", dt="1 ms")
    engine = (_brian2_engine(spec, protocol) if engine_name == "brian2"
              else ReferenceEngine(model_for(spec), spec, 4))
    before = {k: v.copy() for k, v in engine.state_arrays().items()}
    x, y = _batch(spec)
    for seed in range(2):
        trace = engine.train_batch(x, y, np.random.default_rng(seed))
    after = engine.state_arrays()
    for key in before:
        if key.startswith(("Q_", "c_")):
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert not np.array_equal(after["W_1"], before["W_1"]), "the forward weights must learn"
    assert trace.feedback_grads == [] and trace.noise == []
    assert all(t is not None for t in trace.targets[1:]), "targets still go down through g"


# ---------------------------------------------------------------------- resume
@pytest.mark.slow
def test_a_twin_run_resumes_as_it_began(tmp_path, monkeypatch):
    """The option is recorded (it is written when set) and read back by --resume: a Brian2
    run interrupted in epoch 3 and resumed ends bit for bit as the uninterrupted one; with
    the option lost, the resumed epochs would run noise phases and differ."""
    import h5py

    import bioprop
    from test_resume import _assert_same_run, _run_interrupted_in_epoch_3

    overrides = ["data.n_train=64", "data.n_test=32", "training.epochs=4",
                 "record.weights_every=1", "record.probe_size=8", "rule.feedback_from=twin",
                 "phases.dt=10 ms", "phases.forward=20 ms", "phases.target=20 ms"]
    whole, broken = tmp_path / "whole.h5", tmp_path / "broken.h5"
    bioprop.run(output=whole, progress=False, overrides=overrides)
    _run_interrupted_in_epoch_3(broken, overrides, monkeypatch)
    result = bioprop.run(resume=broken, progress=False)
    assert result.epochs == 4 and len(result.history) == 2
    with h5py.File(broken, "r") as f:
        assert 'feedback_from = "twin"' in f.attrs["model_toml"]
    _assert_same_run(whole, broken)
