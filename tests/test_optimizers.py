"""The optimizers' keys of a model file: learning-rate schedules and each optimizer's constants."""
import math
from dataclasses import fields

import numpy as np
import pytest

import bioprop
from bioprop.learner import Learner
from bioprop.rules.optimizers import OPTIMIZERS, SCHEDULES, constants, make_optimizer, scheduled_lr
from bioprop.spec import OptimizerSpec, SpecError, load_model, load_protocol, parse_model

from conftest import model_for


def test_schedules_by_hand():
    """Epoch e of E learns at the schedule's rate at the fraction (e - 1) / E of the run."""
    linear = [scheduled_lr("linear", 0.004, 0.001, e, 4) for e in range(1, 5)]
    np.testing.assert_allclose(linear, [0.004, 0.00325, 0.0025, 0.00175], rtol=1e-15)
    cosine = [scheduled_lr("cosine", 0.002, 0.0, e, 4) for e in range(1, 5)]
    # half a cosine: 1, (1 + cos(pi/4)) / 2, 1/2, (1 - cos(pi/4)) / 2 of lr
    half = math.sqrt(2) / 4
    np.testing.assert_allclose(cosine, [0.002, 0.002 * (0.5 + half), 0.001,
                                        0.002 * (0.5 - half)], rtol=1e-15)
    assert scheduled_lr("cosine", 0.002, 0.0005, 1, 20) == 0.002  # epoch 1 learns at lr itself
    # the constant schedule returns lr itself, whatever lr_final, so runs without a
    # schedule keep their rates to the bit
    assert [scheduled_lr("constant", 0.001, 0.0, e, 3) for e in (1, 2, 3)] == [0.001] * 3
    assert set(SCHEDULES) == {"constant", "linear", "cosine"}


def test_set_lr_rescales_every_parameter():
    params = [np.zeros(2), np.zeros(3)]
    opt = make_optimizer("sgd", params, 0.1, [1.0, 0.5])
    opt.set_lr(0.02)
    assert opt.lr == 0.02 and opt.rates == [0.02, 0.01]
    opt.step([np.ones(2), np.ones(3)])
    np.testing.assert_array_equal(params[1], [-0.01] * 3)


def test_constants_are_the_constructors_and_keys_of_the_spec():
    assert constants("adam") == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert constants("rmsprop") == {"decay": 0.9, "eps": 1e-8}
    assert constants("rmsprop_graves") == {"decay": 0.95, "momentum": 0.9, "stabiliser": 1e-3}
    assert constants("sgd") == {"momentum": 0.0}
    keys = {f.name for f in fields(OptimizerSpec)}
    for name in OPTIMIZERS:  # each constant of each optimizer can be set in a model file
        assert set(constants(name)) <= keys, name


def _spec(feedback):
    layers = [{"name": f"l{i}", "size": n, "activation": "tanh"} for i, n in enumerate((5, 4), 1)]
    return parse_model({"network": {"input_size": 6}, "layers": layers,
                        "optimizer": {"feedback": feedback}})


@pytest.mark.parametrize("name, values", [
    ("adam", {"beta1": 0.5, "beta2": 0.99, "eps": 1e-6}),
    ("rmsprop", {"decay": 0.99, "eps": 1e-4}),
    ("rmsprop_graves", {"decay": 0.9, "momentum": 0.5, "stabiliser": 1e-4}),
    ("sgd", {"momentum": 0.8})])
def test_the_model_file_sets_the_constants(name, values):
    spec = _spec({"name": name, **values})
    learner = Learner(model_for(spec), spec, 4)
    for key, value in values.items():
        assert getattr(learner.feedback_optimizer, key) == value, key
    # the forward optimizer, left alone, keeps rmsprop's own defaults
    assert learner.forward_optimizer.decay == 0.9 and learner.forward_optimizer.eps == 1e-8


def test_unset_constants_are_not_written():
    """A key left at its default is not in the run file's model TOML: files that predate the
    keys read the same."""
    import tomllib

    from bioprop.spec import to_toml

    def written(spec):
        return tomllib.loads(to_toml(spec))["optimizer"]["forward"]

    assert written(load_model()) == {"name": "rmsprop", "lr": 0.001}
    assert written(load_model(overrides=["optimizer.forward.schedule=cosine",
                                         "optimizer.forward.decay=0.95"])) == {
        "name": "rmsprop", "lr": 0.001, "schedule": "cosine", "decay": 0.95}


@pytest.mark.parametrize("override, message", [
    ("optimizer.forward.schedule=cosin", r"unknown value 'cosin'\. Expected one of: constant, "
                                         r"cosine, linear\. Did you mean 'cosine'\?"),
    ("optimizer.forward.lr_final=0.0001", r'0\.0001 is set but optimizer\.forward\.schedule is '
                                          r'"constant": set a decaying one \("linear" or '
                                          r'"cosine"\) or leave lr_final out'),
    ("optimizer.feedback.beta1=0.5", r"'rmsprop' has no constant 'beta1'; its constants: decay "
                                     r"\(default 0\.9\), eps \(default 1e-08\)"),
    ("optimizer.forward.decay=1", r"must lie in \[0, 1\), got 1\.0"),
    ("optimizer.forward.eps=0", r"must be positive, got 0\.0"),
    ("optimizer.forward.lr_final=-1", r"must be ≥ 0, got -1\.0"),
    ("optimizer.forward.momentum=true", r"expected float, got bool True"),
    ("training.average_weights=1", r"must lie in \[0, 1\), got 1\.0"),
])
def test_bad_values_name_their_key(override, message):
    with pytest.raises(SpecError, match=rf"^--set {override}: {message}$"):
        load_model(overrides=[override])
        load_protocol(overrides=[override])


def test_lr_final_above_lr_is_refused():
    with pytest.raises(SpecError, match=r"^--set optimizer.forward.lr_final=0.01: 0.01 is "
                                        r"larger than optimizer.forward.lr = 0.001: a schedule "
                                        r"decays from lr to lr_final$"):
        load_model(overrides=["optimizer.forward.schedule=linear",
                              "optimizer.forward.lr_final=0.01"])


def test_the_learner_sets_each_epochs_rates():
    spec = _spec({"name": "sgd", "lr": 0.1, "schedule": "cosine", "lr_final": 0.02})
    learner = Learner(model_for(spec), spec, 4)
    learner.start_epoch(3, 4)  # half-way: the mean of lr and lr_final
    assert learner.feedback_optimizer.rates == [0.06] * len(learner.feedback_optimizer.params)
    assert learner.forward_optimizer.lr == 1e-3  # rmsprop's constant default schedule


@pytest.mark.slow
def test_a_run_learns_at_the_scheduled_rate_of_each_epoch(tmp_path, monkeypatch):
    seen = []
    original = Learner.start_epoch

    def start_epoch(self, epoch, epochs):
        original(self, epoch, epochs)
        seen.append((epoch, self.forward_optimizer.lr, self.feedback_optimizer.lr,
                     self.forward_optimizer.rates[0]))

    monkeypatch.setattr(Learner, "start_epoch", start_epoch)
    bioprop.run(output=tmp_path / "run.h5", progress=False, overrides=[
        "engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=4",
        "record.probe_size=0", "record.first_and_last=false", "optimizer.forward.schedule=linear",
        "optimizer.forward.lr=0.004", "optimizer.forward.lr_final=0.001"])
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    np.testing.assert_allclose([s[1] for s in seen], [0.004, 0.00325, 0.0025, 0.00175],
                               rtol=1e-15)
    assert [s[2] for s in seen] == [0.001] * 4  # the feedback pathway's constant schedule
    assert [s[3] for s in seen] == [s[1] for s in seen]  # the rates the steps use follow


def test_synaptic_plasticity_refuses_a_schedule():
    layers = [{"name": "l1", "size": 4, "connection": "synapses", "plasticity": "synaptic"},
              {"name": "l2", "size": 3, "activation": "linear"}]
    with pytest.raises(SpecError, match=r"^<string>: layers\.l1\.plasticity: \"synaptic\" "
                                        r"learns at one fixed rate without momentum"):
        parse_model({"network": {"input_size": 5}, "layers": layers,
                     "optimizer": {"forward": {"name": "sgd", "schedule": "cosine"}}})


# ---- the forward weights' moving average (training.average_weights)
def test_weight_average_by_hand():
    from bioprop.rules.averaging import WeightAverage

    p = np.array([1.0, 2.0])
    average = WeightAverage([p], 0.5)
    with average.swapped_in():  # nothing averaged yet: the weights themselves
        np.testing.assert_array_equal(p, [1.0, 2.0])
    average.update()
    p[...] = [4.0, 8.0]
    average.update()
    # m = 0.25 p1 + 0.5 p2, over 1 - 0.5**2: (p1 + 2 p2) / 3
    np.testing.assert_allclose(average.averaged()[0], [3.0, 6.0], rtol=1e-15)
    with average.swapped_in():
        np.testing.assert_allclose(p, [3.0, 6.0], rtol=1e-15)
    np.testing.assert_array_equal(p, [4.0, 8.0])


@pytest.mark.parametrize("engine", ["reference", pytest.param("brian2", marks=pytest.mark.slow)])
def test_averaged_weights_change_the_test_figures_and_nothing_else(tmp_path, engine):
    """Same training (losses, weights, optimizer state) with and without averaging; only
    the test figures differ. In the Brian2 engine each trial carries the last one's state,
    which the averaged evaluation must leave as the plain one left it."""
    import xarray as xr

    from bioprop.checkpoint import load_checkpoint

    base = ["data.n_train=64", "data.n_test=32", "training.epochs=2", "record.probe_size=0",
            "record.first_and_last=false", f"engine.name={engine}", "phases.trial_start=carry"]
    paths = {}
    for decay in (0, 0.9):
        paths[decay] = tmp_path / f"run{decay}.h5"
        bioprop.run(output=paths[decay], progress=False,
                    overrides=base + [f"training.average_weights={decay}"])
    plain, averaged = (load_checkpoint(paths[d])[0] for d in (0, 0.9))
    assert sorted(set(averaged) - set(plain)) == ["average/0", "average/1", "average/2",
                                                   "average/3", "average/4", "average/5",
                                                   "average/t"]
    for key in plain:
        np.testing.assert_array_equal(plain[key], averaged[key], err_msg=key)
    trees = [xr.open_datatree(paths[d], engine="h5netcdf") for d in (0, 0.9)]
    np.testing.assert_array_equal(trees[0]["train"]["loss"].values,
                                  trees[1]["train"]["loss"].values)
    assert not np.array_equal(trees[0]["test"]["loss"].values, trees[1]["test"]["loss"].values)
    assert int(averaged["average/t"]) == 2 * 64 // 32  # one update per batch


def test_averaging_refuses_synaptic_plasticity():
    from bioprop.spec import check_compatible, load_protocol

    layers = [{"name": "l1", "size": 4, "connection": "synapses", "plasticity": "synaptic"},
              {"name": "l2", "size": 3, "activation": "linear"}]
    model = parse_model({"network": {"input_size": 5}, "layers": layers,
                         "optimizer": {"forward": {"name": "sgd"}}})
    with pytest.raises(SpecError, match=r"^--set training.average_weights=0.9: layer 'l1' learns "
                                        r"in its synapses"):
        check_compatible(model, load_protocol(overrides=["training.average_weights=0.9"]))
