"""Feedforward pathways as Brian2 ``Synapses`` inside the engine.

The oracles: the dense engine and the reference engine on the same batch (one step
per phase: agreement to rounding error), the masked dense product, and the undelayed
pathway shifted by the delay. Synaptic plasticity (``plasticity = "synaptic"``, the
synapses learn their own weights) against the same engines with SGD, whose update it
must reproduce.
"""
from dataclasses import replace

import numpy as np
import pytest

from bioprop.brian2 import Brian2Engine
from bioprop.reference import ReferenceEngine
from bioprop.rules import forward_grads
from bioprop.spec import SpecError, parse_model, parse_protocol

from conftest import assert_close, model_for, phases, small_model_spec
from test_engines import _compare

X, Y = np.random.default_rng(5).random((4, 6)), np.array([0, 1, 2, 1])


def with_pathways(spec, **layers):
    """`spec` with the keys of some layers replaced: layer index → dict of keys."""
    new = list(spec.layers)
    for index, keys in layers.items():
        new[int(index[1:])] = replace(new[int(index[1:])], **keys)
    return replace(spec, layers=tuple(new))


def _engines(spec, batch=4):
    model = model_for(spec)
    return (ReferenceEngine(model.copy(), spec, batch),
            Brian2Engine(model.copy(), spec, phases(), batch), model)


def _train(*engines):
    return [e.train_batch(X, Y, np.random.default_rng(3)) for e in engines]


def _synaptic_weights_are_W(engine):
    for l, (synapses, mask, _) in engine._synaptic.items():
        expected = np.tile(engine.model.forward[l].weight[np.nonzero(mask)], engine.batch_size)
        np.testing.assert_array_equal(np.asarray(synapses.w), expected)


@pytest.mark.parametrize("target,top", [("dtp", "output"), ("bp", "penultimate")])
def test_synapses_pathways_match_dense_engine_and_reference(target, top):
    """Synapses into layers 1 (from the clamped input) and 3 (from a rate soma), p = 1:
    the same rates, targets, gradients and updated weights as both other engines."""
    synapses = {"connection": "synapses"}
    spec = with_pathways(small_model_spec(target=target, top=top), l0=synapses, l2=synapses)
    ref, eng, model = _engines(spec)
    dense = Brian2Engine(model.copy(), small_model_spec(target=target, top=top), phases(), 4)
    tr, te, td = _train(ref, eng, dense)
    assert {"forward_1_synapses", "forward_3_synapses"} <= {obj.name for obj in eng.network.objects}
    _compare(ref, eng, tr, te, rtol=1e-9)
    _compare(dense, eng, td, te, rtol=1e-9)
    _synaptic_weights_are_W(eng)


def test_sparse_pathway_is_the_masked_dense_product_and_stays_masked():
    spec = with_pathways(small_model_spec(), l0={"connection": "synapses", "p_connect": 0.5})
    ref, eng, model = _engines(spec)
    mask = model.fixed["mask"][1]
    assert 0 < mask.sum() < mask.size and np.all(model.forward[1].weight[mask == 0] == 0)
    eng.predict(X)  # the forward phase of the (only) batch: the current is W r of the input
    current = eng._synaptic[1][2].I_ff_syn[:].reshape(4, -1)
    assert_close(current, X @ (model.forward[1].weight * mask).T, 1e-12, "I_ff_syn")
    assert len(eng._synaptic[1][0]) == 4 * mask.sum()

    tr, te = _train(ref, eng)
    _compare(ref, eng, tr, te, rtol=1e-9)
    for engine in (ref, eng):
        weight = engine.model.forward[1].weight
        assert np.all(weight[mask == 0] == 0)
        assert np.all(weight[mask == 1] != model.forward[1].weight[mask == 1])
    # without the mask the update would have grown the absent connections
    unmasked = forward_grads(model, te.a, te.h, te.targets, 4)[1][0]
    assert np.abs(unmasked[mask == 0]).min() > 0
    _synaptic_weights_are_W(eng)


def test_connection_mask_survives_a_checkpoint():
    spec = with_pathways(small_model_spec(), l0={"connection": "synapses", "p_connect": 0.5})
    _, eng, model = _engines(spec)
    _train(eng)
    saved = {key: np.array(value, copy=True) for key, value in eng.state_arrays().items()}
    np.testing.assert_array_equal(saved["mask_1"], model.fixed["mask"][1])
    resumed = Brian2Engine(model.copy(), spec, phases(), 4)
    resumed.load_state_arrays(saved)
    np.testing.assert_array_equal(resumed.model.forward[1].weight, eng.model.forward[1].weight)
    _synaptic_weights_are_W(resumed)
    saved["mask_1"] = 1.0 - saved["mask_1"]
    with pytest.raises(ValueError, match="connection mask of pathway 1"):
        resumed.load_state_arrays(saved)


def _model(layer0=None, layer1=None, encoding="rate", optimizer="rmsprop", top="output", lr=1e-3):
    layers = [{"name": "hidden", "size": 5, **(layer0 or {})},
              {"name": "out", "size": 3, "activation": "linear", **(layer1 or {})}]
    return parse_model({"network": {"input_size": 4, "input_encoding": encoding},
                        "layers": layers, "rule": {"top": top},
                        "optimizer": {"forward": {"name": optimizer, "lr": lr}}}, "m.toml")


@pytest.mark.parametrize("keys,message", [
    ({"p_connect": 0.0}, r"m.toml: layers.hidden.p_connect: a connection probability must lie in "
                         r"\(0, 1\], got 0.0"),
    ({"p_connect": 1.5}, r"layers.hidden.p_connect: .* got 1.5"),
    ({"connection": "synapses", "delay": "-1 ms"}, r"layers.hidden.delay: a duration must be ≥ 0"),
    ({"delay": "2 ms"}, r"layers.hidden.delay: a delay needs connection = \"synapses\""),
    ({"connection": "synapses", "delay": "2 ms"},
     r"layers.hidden.delay: only spikes can be delayed: the layer below is 'rate input'"),
    ({"connection": "sparse"}, r"layers.hidden.connection: unknown value 'sparse'"),
    ({"plasticity": "synaptic"}, r"m.toml: layers.hidden.plasticity: \"synaptic\" needs connection = "
                                 r"\"synapses\" \(got 'dense'\)"),
    ({"connection": "synapses", "plasticity": "synaptic"},
     r"m.toml: layers.hidden.plasticity: \"synaptic\" needs optimizer.forward.name = \"sgd\" "
     r"\(got 'rmsprop'\)"),
    ({"plasticity": "hebbian"}, r"layers.hidden.plasticity: unknown value 'hebbian'"),
])
def test_bad_pathway_keys_are_one_clear_error(keys, message):
    with pytest.raises(SpecError, match=message):
        _model(keys)


def test_delay_needs_a_spiking_layer_below():
    with pytest.raises(SpecError, match=r"layers.out.delay: .* the layer below is 'bernoulli'"):
        _model({"population": "bernoulli"}, {"connection": "synapses", "delay": "1 ms"})
    _model({"population": "lif"}, {"connection": "synapses", "delay": "1 ms"})
    _model(None, None, "poisson")
    _model({"connection": "synapses", "delay": "1 ms"}, None, "poisson")


def test_delayed_current_lags_the_undelayed_one_by_the_delay():
    """Poisson input → rate layer through Synapses, delay 0 (summed w · r) and 3 ms
    (event-driven, filtered like the trace): the same current, 6 steps later."""
    from brian2 import StateMonitor

    protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": "40 ms", "feedback": "10 ms",
                                          "target": "10 ms"}})
    currents, drives = [], []
    for delay in ("0 ms", "3 ms"):
        spec = _model({"connection": "synapses", "delay": delay}, None, "poisson")
        engine = Brian2Engine(model_for(spec, protocol=protocol), spec, protocol, 4)
        group = engine._synaptic[1][2]
        monitor = StateMonitor(group, "I_ff_syn", record=True)
        soma = StateMonitor(engine.layers[1].soma, "I_ff", record=True)
        engine.network.add(monitor, soma)
        engine.predict(np.random.default_rng(1).random((4, 4)))
        currents.append(np.asarray(monitor.I_ff_syn))
        drives.append(np.asarray(soma.I_ff) - np.tile(engine.model.forward[1].bias, 4)[:, None])
    undelayed, delayed = currents
    assert np.abs(undelayed).max() > 0.1, "the input must drive the layer"
    np.testing.assert_allclose(delayed[:, 6:], undelayed[:, :-6], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(delayed[:, :6], 0.0)
    assert np.abs(delayed[:, 6:] - undelayed[:, 6:]).max() > 0.01  # a lag, not a coincidence
    for current, drive in zip(currents, drives):  # the live soma's input is the current + b
        np.testing.assert_allclose(drive, current, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_delayed_pathway_from_a_lif_layer_trains_and_records():
    """LIF hidden layer → output through delayed Synapses: a training batch runs, the
    synapses follow W, and recording the probe leaves the filtered current as it was."""
    spec = _model({"population": "lif", "threshold": 0.2},
                  {"connection": "synapses", "delay": "2 ms", "p_connect": 0.5})
    protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": "40 ms", "feedback": "20 ms",
                                          "target": "40 ms"}})
    engine = Brian2Engine(model_for(spec, protocol=protocol), spec, protocol, 4)
    x = np.random.default_rng(2).random((4, 4))
    before = engine.model.forward[2].weight.copy()
    trace = engine.train_batch(x, np.arange(4) % 3, np.random.default_rng(3))
    assert np.abs(trace.h[2]).max() > 0, "the delayed spikes must reach the output"
    changed, mask = engine.model.forward[2].weight != before, engine.model.fixed["mask"][2]
    assert changed.any() and not changed[mask == 0].any()  # (a silent LIF neuron learns nothing)
    _synaptic_weights_are_W(engine)
    state = {k: v.copy() for k, v in engine.dynamic_state().items()}
    assert "brian2/2/z_I_ff_syn" in state
    start = float(engine.network.t_)
    engine.record_activity(x, np.arange(4) % 3)
    elapsed = float(engine.network.t_) - start
    assert elapsed > 0
    for key, value in engine.dynamic_state().items():
        if key.endswith("/lastspike"):  # spike times move on with the clock: their ages stay
            np.testing.assert_allclose(value - elapsed, state[key], rtol=0, atol=1e-9,
                                       err_msg=key)
        else:
            np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_a_delay_shorter_than_dt_is_an_error():
    from bioprop.spec import check_compatible

    spec = _model({"connection": "synapses", "delay": "0.2 ms"}, None, "poisson")
    protocol = parse_protocol({"phases": {"dt": "0.5 ms"}}, "p.toml")
    with pytest.raises(SpecError, match=r"layers.hidden.delay: 0.2 ms is shorter than one time step"):
        check_compatible(spec, protocol, 4, 3)


# ------------------------------------------------------------ synaptic plasticity
PLASTIC = {"connection": "synapses", "plasticity": "synaptic"}


def _trial_changes(engine, trace, l, phi_prime=True):
    """(B, S): each trial's change of every existing synapse of pathway l, from the trace:
    (ĥ_i − h_i) φ'(a_i) h_j, the rule the synapses must have run (without φ' if not
    `phi_prime`)."""
    post = trace.targets[l] - trace.h[l]
    if phi_prime:
        post = post * engine.model.activations[l].derivative(trace.a[l])
    mask = engine._synaptic[l][1]
    return np.einsum("bi,bj->bij", post, trace.h[l - 1])[:, mask != 0]


@pytest.mark.parametrize("target", ["dtp", "bp"])
def test_synaptic_plasticity_learns_the_weights_of_sgd(target):
    """Synapses into layers 1 (from the clamped input) and 3 (from a rate soma) learn their
    own weights, p = 1: over three batches, the weights, gradients and activity of the
    dense engine and of the reference with SGD; each synapse's dw is its own trial's change."""
    spec = with_pathways(small_model_spec(target=target), l0=PLASTIC, l2=PLASTIC)
    ref, eng, model = _engines(spec)
    dense = Brian2Engine(model.copy(), small_model_spec(target=target), phases(), 4)
    assert set(eng.plastic) == {1, 3}
    rng = np.random.default_rng(8)
    for _ in range(3):
        x, y = rng.random((4, 6)), rng.integers(0, 3, 4)
        tr, te, td = (e.train_batch(x, y, np.random.default_rng(3)) for e in (ref, eng, dense))
        _compare(ref, eng, tr, te, rtol=1e-9)
        _compare(dense, eng, td, te, rtol=1e-9)
        _synaptic_weights_are_W(eng)
        for l in (1, 3):
            dw = np.asarray(eng._synaptic[l][0].dw).reshape(4, -1)
            assert_close(dw, _trial_changes(eng, te, l), 1e-12, f"dw of pathway {l}")
            assert np.abs(dw[0] - dw[1]).max() > 1e-6  # trials differ: the mean is needed
    assert np.abs(eng.model.forward[1].weight - model.forward[1].weight).max() > 1e-3


def test_synaptic_plasticity_of_a_sparse_pathway_keeps_absent_connections_zero():
    spec = with_pathways(small_model_spec(), l0=dict(PLASTIC, p_connect=0.5))
    ref, eng, model = _engines(spec)
    mask = model.fixed["mask"][1]
    for _ in range(2):
        tr, te = _train(ref, eng)
        _compare(ref, eng, tr, te, rtol=1e-9)
    weight = eng.model.forward[1].weight
    assert np.all(weight[mask == 0] == 0) and np.all(weight[mask == 1] != model.forward[1].weight[mask == 1])
    assert len(eng._synaptic[1][0]) == 4 * mask.sum()
    _synaptic_weights_are_W(eng)


def test_with_one_trial_the_synaptic_statement_is_the_whole_update():
    """B = 1: no copies to average; w += eta · dw inside the statement gives SGD's weights."""
    spec = with_pathways(small_model_spec(), l0=PLASTIC, l2=PLASTIC)
    ref, eng, _ = _engines(spec, batch=1)
    assert "w += eta * dw" in eng.plastic[1]._learn.abstract_code
    for i in range(3):
        tr, te = (e.train_batch(X[i:i + 1], Y[i:i + 1], np.random.default_rng(3)) for e in (ref, eng))
        _compare(ref, eng, tr, te, rtol=1e-9)
        _synaptic_weights_are_W(eng)


def test_synaptic_weights_survive_a_checkpoint():
    """The synapses' weights are W_l, which the checkpoint holds: a resumed engine goes on
    learning exactly as the one that was not stopped."""
    spec = with_pathways(small_model_spec(), l0=dict(PLASTIC, p_connect=0.5))
    _, eng, model = _engines(spec)
    _train(eng)
    saved = {key: np.array(value, copy=True) for key, value in eng.state_arrays().items()}
    resumed = Brian2Engine(model.copy(), spec, phases(), 4)
    resumed.load_state_arrays(saved)
    _synaptic_weights_are_W(resumed)
    _train(eng, resumed)
    np.testing.assert_array_equal(resumed.model.forward[1].weight, eng.model.forward[1].weight)


@pytest.mark.slow
def test_synaptic_plasticity_of_spiking_layers_matches_copied_weights():
    """LIF hidden layer, both pathways synapses (the upper one delayed, event-driven): the
    straight-through rule in the synapses gives the weights the dense update gives."""
    protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": "20 ms",
                                          "feedback": "10 ms", "target": "20 ms"}})
    x = np.random.default_rng(2).random((4, 4))
    weights = []
    for plasticity in ("dense", "synaptic"):
        keys = {"connection": "synapses", "plasticity": plasticity}
        spec = _model({"population": "lif", "threshold": 0.2, **keys},
                      dict(keys, delay="2 ms"), optimizer="sgd", lr=0.5)
        engine = Brian2Engine(model_for(spec, protocol=protocol), spec, protocol, 4)
        before = [engine.model.forward[l].weight.copy() for l in (1, 2)]
        engine.train_batch(x, np.arange(4) % 3, np.random.default_rng(3))
        weights.append([engine.model.forward[l].weight for l in (1, 2)])
        _synaptic_weights_are_W(engine)
    for l, (dense, synaptic, old) in enumerate(zip(*weights, before), start=1):
        assert np.abs(dense - old).max() > 1e-3, f"W_{l} must learn"
        assert_close(synaptic - old, dense - old, 1e-9, f"the change of W_{l}")


def test_synaptic_plasticity_is_not_for_the_output_of_a_penultimate_top():
    with pytest.raises(SpecError, match=r"layers.out.plasticity: the output layer learns from the "
                                        r"loss gradient with rule.top = \"penultimate\""):
        _model(None, PLASTIC, optimizer="sgd", top="penultimate")
    _model(PLASTIC, None, optimizer="sgd", top="penultimate")


def test_a_rule_of_the_model_file_runs_in_the_synapses():
    """plasticity_rule replaces the local rule: here without φ', so dw is (ĥ − h) h_pre and
    W_1 moves by lr · its mean over the trials."""
    rule = {"plasticity_rule": "(r_target_post - r_forward_post) * r_in"}
    spec = with_pathways(small_model_spec(), l0=dict(PLASTIC, **rule))
    _, eng, model = _engines(spec)
    (trace,) = _train(eng)
    dw = np.asarray(eng._synaptic[1][0].dw).reshape(4, -1)
    changes = _trial_changes(eng, trace, 1, phi_prime=False)
    assert_close(dw, changes, 1e-12, "dw")
    assert np.abs(changes - _trial_changes(eng, trace, 1)).max() > 1e-3  # φ' mattered
    assert_close(eng.model.forward[1].weight - model.forward[1].weight,
                 0.1 * changes.mean(axis=0).reshape(model.forward[1].weight.shape), 1e-9,
                 "the change of W_1")


@pytest.mark.parametrize("keys,message", [
    ({"plasticity_rule": "r_in"}, r"m.toml: layers.hidden.plasticity_rule: a rule needs plasticity = "
                                  r"\"synaptic\" \(got 'dense'\)"),
    (dict(PLASTIC, plasticity_rule="(r_target_post - rate) * r_in"),
     r"layers.hidden.plasticity_rule: unknown name\(s\) 'rate' in .* A synapse's rule may use: "
     r"r_target_post, r_forward_post, phi_prime_post, r_in, w"),
    (dict(PLASTIC, plasticity_rule="r_in *"), r"layers.hidden.plasticity_rule: 'r_in \*' is not an "
                                              r"expression"),
])
def test_a_bad_synaptic_rule_is_one_clear_error(keys, message):
    with pytest.raises(SpecError, match=message):
        _model(keys, optimizer="sgd")
