"""Weight constraints as options (bioprop.constraints): Dale's law, connection masks and
bounds hold after training in both engines and under synaptic plasticity, the engines
agree with them on, the run file records what was drawn, and bad values are one error."""
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from bioprop.api import NetworkArrayError, build
from bioprop.brian2 import Brian2Engine
from bioprop.errors import SpecError
from bioprop.reference import ReferenceEngine
from bioprop.spec import load_model, parse_model, to_toml

from conftest import assert_close, model_for, phases

ENGINES = ["reference", "brian2"]
ROOT = Path(__file__).resolve().parent.parent

MODEL = {"network": {"name": "tiny", "input_size": 64},
         "layers": [{"name": "hidden1", "size": 12}, {"name": "hidden2", "size": 10},
                    {"name": "output", "size": 10, "activation": "linear"}],
         "optimizer": {"forward": {"name": "adam", "lr": 0.01},
                       "feedback": {"name": "adam", "lr": 0.01}}}
PROTOCOL = {"data": {"n_train": 64, "n_test": 32}, "training": {"epochs": 1, "batch_size": 8},
            "phases": {"dt": "5 ms", "forward": "35 ms", "feedback": "15 ms",
                       "target": "35 ms"},
            "record": {"probe_size": 8, "weights_every": 1, "first_and_last": False}}
#: every constraint in both pathways, tight enough that each one binds while learning
CONSTRAINTS = {"forward": {"excitatory": 0.75, "p_connect": 0.5, "low": -0.2, "high": 0.2},
               "feedback": {"excitatory": 0.5, "p_connect": 0.3, "low": -0.25, "high": 0.25}}


def constrained(model=MODEL, constraints=CONSTRAINTS):
    return {**model, "constraints": constraints}


def weights(engine, kind):
    return {l: p.weight.copy() for l, p in enumerate(getattr(engine.model, kind))
            if p is not None}


def assert_constraints_hold(engine, constraints):
    """Every W_l and Q_l obeys `constraints`, and each constraint is drawn as asked."""
    fixed = engine.model.fixed
    for kind, mask_key, sign_key in (("forward", "mask", "forward_sign"),
                                     ("feedback", "feedback_mask", "feedback_sign")):
        c = constraints[kind]
        for l, weight in weights(engine, kind).items():
            what = f"{kind} pathway {l}"
            assert weight.min() >= c["low"] and weight.max() <= c["high"], what
            mask = fixed[mask_key][l]
            assert np.all(weight[mask == 0] == 0), f"{what}: an absent connection is not 0"
            assert 0.1 < mask.mean() / c["p_connect"] < 2, what  # a mask of that density
            sign = fixed[sign_key][l]
            assert np.all(weight * sign >= 0), f"{what}: a weight against its neuron's sign"
            assert np.sum(sign > 0) == round(c["excitatory"] * len(sign)), what


@pytest.mark.parametrize("engine", ENGINES)
def test_constraints_hold_after_training_and_the_run_file_records_them(engine, tmp_path):
    net = build(constrained(), PROTOCOL, engine=engine)
    assert_constraints_hold(net.engine, CONSTRAINTS)  # at initialisation
    before = {kind: weights(net.engine, kind) for kind in ("forward", "feedback")}
    net.fit(record=tmp_path / "run.h5")
    for kind in ("forward", "feedback"):  # both pathways learned
        changed = [l for l, w in weights(net.engine, kind).items()
                   if not np.array_equal(w, before[kind][l])]
        assert changed, f"no {kind} weight changed"
    assert_constraints_hold(net.engine, CONSTRAINTS)
    # each bound and each sign binds somewhere: the projection had work to do
    every = np.concatenate([w.ravel() for kind in ("forward", "feedback")
                            for w in weights(net.engine, kind).values()])
    assert np.any(every == 0.2) and np.any(every == -0.25)
    fixed = net.engine.model.fixed
    with h5py.File(tmp_path / "run.h5") as f:
        group = f["constraints"]
        assert sorted(group) == sorted(["input_to_hidden1", "hidden1_to_hidden2",
                                        "hidden2_to_output", "hidden2_to_hidden1",
                                        "output_to_hidden2"])
        np.testing.assert_array_equal(group["hidden1_to_hidden2/connected"][()], fixed["mask"][2])
        np.testing.assert_array_equal(group["hidden1_to_hidden2/sign"][()],
                                      fixed["forward_sign"][2])
        np.testing.assert_array_equal(group["output_to_hidden2/connected"][()],
                                      fixed["feedback_mask"][3])
        np.testing.assert_array_equal(group["output_to_hidden2/sign"][()],
                                      fixed["feedback_sign"][3])
        # the last weight snapshot obeys them too
        snapshot = f["pathways/output_to_hidden2/weight"][-1]
        assert np.all(snapshot[fixed["feedback_mask"][3] == 0] == 0)


def test_constraints_are_drawn_from_the_seed_and_off_by_default():
    a, b = (build(constrained(), PROTOCOL, engine="reference") for _ in range(2))
    other = build(constrained(), PROTOCOL, engine="reference", seed=2)
    for key in ("mask", "feedback_mask", "forward_sign", "feedback_sign"):
        for l, array in a.engine.model.fixed[key].items():
            np.testing.assert_array_equal(array, b.engine.model.fixed[key][l])
    assert not all(np.array_equal(a.engine.model.fixed["feedback_mask"][l], m)
                   for l, m in other.engine.model.fixed["feedback_mask"].items())
    # a neuron's type is its own in both pathways when the fractions are equal
    same = build(constrained(constraints={"forward": {"excitatory": 0.5},
                                          "feedback": {"excitatory": 0.5}}),
                 PROTOCOL, engine="reference").engine.model.fixed
    np.testing.assert_array_equal(same["forward_sign"][3], same["feedback_sign"][2])
    # off by default: nothing drawn, nothing written, the weights of a model without them
    plain = build(MODEL, PROTOCOL, engine="reference")
    assert not {"mask", "feedback_mask", "forward_sign", "feedback_sign"} & set(
        plain.engine.model.fixed)
    assert "constraints" not in to_toml(load_model())
    only_bounds = build(constrained(constraints={"forward": {"low": -9.0}}), PROTOCOL,
                        engine="reference")
    for kind in ("forward", "feedback"):
        for l, w in weights(plain.engine, kind).items():
            np.testing.assert_array_equal(w, weights(only_bounds.engine, kind)[l])


def _both(spec, protocol):
    model = model_for(spec)
    ref = ReferenceEngine(model.copy(), spec, 4)
    eng = Brian2Engine(model.copy(), spec, protocol, 4)
    data = np.random.default_rng(5)
    x, y = data.random((4, 6)), np.array([0, 1, 2, 1])
    for _ in range(3):
        ref.train_batch(x, y, np.random.default_rng(3))
        eng.train_batch(x, y, np.random.default_rng(3))
    return ref, eng


@pytest.mark.parametrize("kind", ["forward", "feedback"])
@pytest.mark.parametrize("protocol,rtol", [(phases(), 1e-10),
                                           (phases(dt="0.5 ms", length="200 ms"), 1e-3)],
                         ids=["one-step-per-phase", "continuous-time"])
def test_engines_agree_with_constraints_on(kind, protocol, rtol):
    """At one step per phase the engines agree to rounding error, the constraints binding;
    with phases of 20 τ at dt = τ/20, within 1e-3, as without constraints."""
    c = {"excitatory": 0.6, "p_connect": 0.6, "low": -0.3, "high": 0.3}
    spec = parse_model({"network": {"input_size": 6},
                        "layers": [{"name": f"l{i}", "size": n, "activation": a}
                                   for i, (n, a) in enumerate(zip((5, 4, 3),
                                                                  ("tanh", "tanh", "linear")),
                                                              start=1)],
                        "optimizer": {"forward": {"name": "sgd", "lr": 0.5},
                                      "feedback": {"name": "sgd", "lr": 0.5}},
                        "constraints": {kind: c}})
    ref, eng = _both(spec, protocol)
    held = weights(ref, kind)
    assert any(np.any(np.abs(w) == 0.3) for w in held.values())  # a bound binds
    for l, w in held.items():
        assert_close(weights(eng, kind)[l], w, rtol, f"{kind} {l}")
        assert np.all(w * ref.model.fixed[f"{kind}_sign"][l] >= 0)
    other = "feedback" if kind == "forward" else "forward"
    for l, w in weights(ref, other).items():
        assert_close(weights(eng, other)[l], w, rtol, f"{other} {l}")


def test_synaptic_plasticity_respects_the_constraints():
    """Synapses that learn W_1 themselves: the projected weights reach them too."""
    c = {"forward": {"excitatory": 0.75, "p_connect": 0.5, "low": -0.2, "high": 0.2}}
    model = constrained({**MODEL, "optimizer": {"forward": {"name": "sgd", "lr": 0.5}},
                         "layers": [{**MODEL["layers"][0], "connection": "synapses",
                                     "plasticity": "synaptic"}, *MODEL["layers"][1:]]}, c)
    net = build(model, PROTOCOL, engine="brian2")
    before = net.engine.model.forward[1].weight.copy()
    net.fit()
    W, fixed = net.engine.model.forward[1].weight, net.engine.model.fixed
    assert not np.array_equal(W, before)
    assert W.min() >= -0.2 and W.max() <= 0.2 and np.any(np.abs(W) == 0.2)
    assert np.all(W[fixed["mask"][1] == 0] == 0)
    assert np.all(W * fixed["forward_sign"][1] >= 0)
    synapses, mask, _ = net.engine._synaptic[1]
    np.testing.assert_array_equal(
        synapses.variables["w"].get_value().reshape(8, -1), np.tile(W[np.nonzero(mask)], (8, 1)))


def test_weights_set_against_the_constraints_are_refused():
    net = build(constrained(), PROTOCOL, engine="reference")
    W = net.weights["hidden1_to_hidden2"].values.copy()
    mask, sign = net.engine.model.fixed["mask"][2], net.engine.model.fixed["forward_sign"][2]
    too_high = W.copy()
    too_high[tuple(np.argwhere((mask > 0) & (sign > 0))[0])] = 0.5  # allowed but for its size
    for value, message in ((W + (mask == 0), "this sparse pathway lacks are not 0"),
                           (np.where(W * sign > 0, -W, W), "sign opposite to their presynaptic"),
                           (too_high, r"1 weights lie outside constraints.forward.high = 0.2")):
        with pytest.raises(NetworkArrayError, match=message):
            net.weights = {"hidden1_to_hidden2": value}
    np.testing.assert_array_equal(net.weights["hidden1_to_hidden2"].values, W)


@pytest.mark.parametrize("override,message", [
    ("constraints.forward.excitatory=1.5",
     "--set constraints.forward.excitatory=1.5: a fraction must lie in [0, 1], got 1.5"),
    ("constraints.feedback.excitatory=-0.1",
     "--set constraints.feedback.excitatory=-0.1: a fraction must lie in [0, 1], got -0.1"),
    ("constraints.feedback.p_connect=0",
     "--set constraints.feedback.p_connect=0: a connection probability must lie in (0, 1], "
     "got 0.0"),
    ("constraints.forward.excitory=0.5",
     "--set constraints.forward.excitory=0.5: unknown key 'constraints.forward.excitory'. "
     "Expected one of: excitatory, p_connect, low, high. Did you mean 'excitatory'?"),
    ("constraints.forward.high=inf",
     "--set constraints.forward.high=inf: must be a finite number, got inf"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(SpecError) as err:
        load_model(None, [override])
    assert str(err.value) == message


@pytest.mark.parametrize("overrides,message", [
    (["constraints.forward.low=0.2", "constraints.forward.high=0.1"],
     "--set constraints.forward.low=0.2: must be at most constraints.forward.high (0.1), "
     "got 0.2"),
    (["constraints.feedback.excitatory=0.8", "constraints.feedback.low=0.1"],
     "--set constraints.feedback.low=0.1: with Dale's law (excitatory) a weight may have to "
     "be 0, so the bounds must include 0; got low = 0.1"),
    (["constraints.forward.p_connect=0.5", "constraints.forward.high=-0.1"],
     "--set constraints.forward.high=-0.1: with a connection mask (p_connect < 1) a weight may "
     "have to be 0, so the bounds must include 0; got high = -0.1"),
    (["constraints.forward.p_connect=0.5", "layers.hidden1.p_connect=0.5"],
     "--set layers.hidden1.p_connect=0.5: set either the layer's p_connect or "
     "constraints.forward.p_connect (the default of every layer), not both"),
])
def test_combinations_that_cannot_hold_name_the_key(overrides, message):
    with pytest.raises(SpecError) as err:
        load_model(None, overrides)
    assert str(err.value) == message


def test_the_documented_example_runs(tmp_path, monkeypatch):
    """Every Python block of docs/constraints.md runs, in order, in one namespace."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "constraints.md").read_text(),
                        flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/constraints.md block {i + 1}", "exec"), namespace)
    assert namespace["net"].model_spec.constraints.feedback.p_connect == 0.1


def test_a_saved_network_keeps_its_constraints_and_steps_bit_for_bit(tmp_path):
    from bioprop.api import Network
    from bioprop.datasets import load_dataset, subset

    data = subset(load_dataset("digits", seed=1), 64, 32)
    net = build(constrained(), PROTOCOL, engine="reference")
    net.step(data.x_train[:8], data.y_train[:8])
    net.save(tmp_path / "net.npz")
    again = Network.load(tmp_path / "net.npz")
    for key in ("mask", "feedback_mask", "forward_sign", "feedback_sign"):
        for l, array in net.engine.model.fixed[key].items():
            np.testing.assert_array_equal(again.engine.model.fixed[key][l], array)
    for n in (net, again):
        n.step(data.x_train[8:16], data.y_train[8:16])
    for kind in ("forward", "feedback"):
        for l, w in weights(net.engine, kind).items():
            np.testing.assert_array_equal(weights(again.engine, kind)[l], w)
