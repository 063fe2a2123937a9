"""Two habits of Lee's code as options: annealed noise and whole-epoch alternation.

``rule.noise_anneal_epochs`` (σ / (1 + (e − 1) / τ) in training epoch e) is checked against
hand-computed values and against the noise both engines draw; ``rule.schedule = "epochs"``
against what each of its passes may change, in both engines, and against the order of the
passes a run makes.
"""
import numpy as np
import pytest

import bioprop
from bioprop.brian2 import Brian2Engine
from bioprop.reference import ReferenceEngine
from bioprop.rules.feedback import annealed_noise, sample_noise
from bioprop.spec import SpecError, load_model

from conftest import assert_close, model_for, phases, small_model_spec

ENGINES = {"reference": lambda model, spec: ReferenceEngine(model, spec, 4),
           "brian2": lambda model, spec: Brian2Engine(model, spec, phases(), 4)}
X, Y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])


@pytest.mark.parametrize("epoch, tau, expected", [
    (1, 50, 0.36), (2, 50, 0.36 / 1.02), (51, 50, 0.18), (101, 50, 0.12), (3, 1, 0.12),
    (40, 0, 0.36), (0, 50, 0.36)])
def test_annealed_noise_by_hand(epoch, tau, expected):
    assert annealed_noise(0.36, epoch, tau) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("engine", ENGINES)
def test_both_engines_draw_the_annealed_noise(engine):
    spec = small_model_spec(noise=0.36, noise_anneal_epochs=50)
    eng = ENGINES[engine](model_for(spec), spec)
    for epoch, sigma in ((1, 0.36), (51, 0.18)):
        eng.start_epoch(epoch, 100)
        trace = eng.train_batch(X, Y, np.random.default_rng(3))
        noisy = [l for l, eps in enumerate(trace.noise) if eps is not None]
        expected = sample_noise(np.random.default_rng(3), 4, [spec.sizes[l] for l in noisy],
                                sigma)
        assert noisy
        for l, eps in zip(noisy, expected):
            np.testing.assert_array_equal(trace.noise[l], eps)


def _weights(eng):
    model = eng.model
    return ([model.forward[l].weight.copy() for l in range(1, model.n_layers + 1)],
            [model.feedback[l].weight.copy() for l in range(2, model.n_layers + 1)])


@pytest.mark.parametrize("engine", ENGINES)
def test_each_pass_of_the_epochs_schedule_trains_one_pathway(engine):
    spec = small_model_spec(schedule="epochs")
    eng = ENGINES[engine](model_for(spec), spec)
    assert eng.passes_per_epoch == 2
    W0, Q0 = _weights(eng)
    eng.train_batch(X, Y, np.random.default_rng(3), learn_forward=False)
    W1, Q1 = _weights(eng)
    assert all(np.array_equal(a, b) for a, b in zip(W0, W1))
    assert not any(np.array_equal(a, b) for a, b in zip(Q0, Q1))
    trace = eng.train_batch(X, Y, np.random.default_rng(3), learn_feedback=False)
    W2, Q2 = _weights(eng)
    assert all(np.array_equal(a, b) for a, b in zip(Q1, Q2))
    assert not any(np.array_equal(a, b) for a, b in zip(W1, W2))
    assert not trace.noise  # the forward pass draws no noise


def test_the_forward_pass_is_the_same_in_both_engines():
    """One step per phase is exact (test_engines): so is a forward-only trial."""
    spec = small_model_spec(schedule="epochs")
    model = model_for(spec)
    ref, eng = ENGINES["reference"](model.copy(), spec), ENGINES["brian2"](model.copy(), spec)
    for e in (ref, eng):
        e.train_batch(X, Y, np.random.default_rng(3), learn_feedback=False)
    for l in range(1, model.n_layers + 1):
        assert_close(eng.model.forward[l].weight, ref.model.forward[l].weight, 1e-10, f"W_{l}")


@pytest.mark.parametrize("target, expected", [("dtp", [(False, True), (True, False)] * 2),
                                              ("bp", [(True, True)] * 2)])
def test_a_run_under_the_epochs_schedule_makes_two_passes_an_epoch(tmp_path, monkeypatch,
                                                                    target, expected):
    """A rule that trains its inverses: a feedback pass, then a forward pass; BP, whose
    feedback pathway learns nothing, keeps one pass an epoch."""
    calls = []
    train_epoch = ReferenceEngine.train_epoch

    def logged(self, *args, learn_forward=True, learn_feedback=True, **kwargs):
        calls.append((learn_forward, learn_feedback))
        return train_epoch(self, *args, learn_forward=learn_forward,
                           learn_feedback=learn_feedback, **kwargs)

    monkeypatch.setattr(ReferenceEngine, "train_epoch", logged)
    bioprop.run(output=tmp_path / "run.h5", progress=False, overrides=[
        "engine.name=reference", "training.epochs=2", "data.n_train=64", "data.n_test=32",
        "rule.schedule=epochs", f"rule.target={target}"])
    assert calls == expected
    assert bioprop.open_run(tmp_path / "run.h5").attrs["status"] == "complete"


@pytest.mark.parametrize("override, message", [
    ("rule.noise_anneal_epochs=-1", "rule.noise_anneal_epochs"),
    ("rule.schedule=epoch", "Did you mean 'epochs'?"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(SpecError, match=message):
        load_model(None, [override])
