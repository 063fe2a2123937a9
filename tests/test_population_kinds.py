"""The registry of population kinds: complete records, and consumers that only consult it."""
import gc
import re
from types import SimpleNamespace

import numpy as np
import pytest
from brian2 import Clock, ms
from brian2.utils.logger import catch_logs

from bioprop.activations import Activation
from bioprop.analysis.firing import max_rates
from bioprop.populations import (POPULATION_KINDS, PopulationKind, layer_activation,
                                  layer_feedback_activation, layer_population, population_kind)
from bioprop.rate_groups import rate_soma
from bioprop.spec import LayerSpec, SpecError, check_compatible, parse_model, parse_protocol, to_toml

DT = 0.5 * ms


def _layer(kind, **keys):
    return LayerSpec(name="h", size=3, population=kind, **keys)


def _model(*hidden, encoding="rate"):
    layers = [{"name": f"h{i}", "size": 4, **keys} for i, keys in enumerate(hidden)]
    return parse_model({"network": {"input_size": 6, "input_encoding": encoding},
                        "layers": layers + [{"name": "out", "size": 3}]}, "m.toml")


def _soma_variables(kind, layer) -> set:
    """The variables of the soma group the engine builds for a layer of `kind`."""
    clock = Clock(DT)
    population = kind.population(layer, DT)
    with catch_logs():  # Brian2 warns of a group deleted unused: this one is meant to be
        if population is None:
            soma = rate_soma("soma", 4, 10 * ms, kind.transfer(layer), clock=clock)
        else:
            soma = population.build("soma", 4, clock, 0, "float64")
        variables = set(soma.variables)
        del soma
        gc.collect()
    return variables


@pytest.mark.parametrize("name", list(POPULATION_KINDS))
def test_every_kind_has_a_complete_record(name):
    kind = POPULATION_KINDS[name]
    layer = _layer(name)
    assert kind.name == name and population_kind(layer) is kind
    for activation in (kind.transfer(layer, DT), kind.dendrite(layer, DT)):
        assert isinstance(activation, Activation)
        assert np.all(np.isfinite(activation.fn(np.linspace(-3, 3, 7))))
    variables = _soma_variables(kind, layer)
    assert {*kind.state_variables, kind.rate_variable} <= variables
    assert isinstance(kind.stochastic, bool) and isinstance(kind.synaptic_input, bool)
    if kind.spikes:  # the jump is written in the group's own parameters
        assert set(re.findall(r"[A-Za-z_]\w*", kind.jump())) <= variables
        assert all(n.endswith("_pre") for n in re.findall(r"[A-Za-z_]\w*", kind.jump("_pre")))
    population = layer_population(layer, DT)
    if kind.spiking:
        assert population.kind == name and population.record is kind
        assert population.rate_variable == kind.rate_variable
        assert population.state_variables == kind.state_variables
        assert population.stochastic == kind.stochastic
        assert kind.max_rate(layer, DT) > 0
    else:
        assert population is None and kind.max_rate is None and not kind.spikes


@pytest.mark.parametrize("hidden,below,message", [
    ({"population": "lif", "activation": "relu"}, None,
     "m.toml: layers.h0.activation: a 'lif' population fixes its own transfer function; leave "
     "'activation' out (got 'relu')"),
    ({"population": "sign", "activation": "relu"}, None,
     "m.toml: layers.h0.activation: a 'sign' population fixes its own transfer function; leave "
     "'activation' out (got 'relu')"),
    ({"population": "lif", "threshold": 0.0, "reset": 0.5}, None,
     "m.toml: layers.h0.threshold: the threshold (0.0) must lie above the reset (0.5), or the "
     "neuron fires on every step"),
    ({"population": "poisson", "max_rate": -3.0}, None,
     "m.toml: layers.h0.max_rate: must be positive (Hz), got -3.0"),
    ({"connection": "synapses", "delay": "1 ms"}, None,
     "m.toml: layers.h0.delay: only spikes can be delayed: the layer below is 'rate input'; a "
     "delay needs a lif or poisson layer below (or network.input_encoding = \"poisson\" for the "
     "first layer), or delay = \"0 ms\""),
    ({"population": "bernoulli"}, {"connection": "synapses", "delay": "1 ms"},
     "m.toml: layers.h1.delay: only spikes can be delayed: the layer below is 'bernoulli'; a "
     "delay needs a lif or poisson layer below (or network.input_encoding = \"poisson\" for the "
     "first layer), or delay = \"0 ms\""),
    ({"population": "spiky"}, None,
     "m.toml: layers.h0.population: unknown value 'spiky'. Expected one of: bernoulli, lif, "
     "poisson, rate, sign."),
])
def test_bad_layer_keys_keep_their_messages(hidden, below, message):
    with pytest.raises(SpecError) as err:
        _model(hidden, *([below] if below else []))
    assert str(err.value) == message


def test_a_kind_fixing_sign_accepts_its_own_activation_and_the_default():
    assert _model({"population": "sign", "activation": "sign"}).layers[0].activation == "sign"
    assert layer_activation(_model({"population": "sign"}).layers[0]).name == "sign"


def _tiny_checks(layer):
    if layer.size > 8:
        yield "size", "a tiny population has at most 8 neurons"


def test_a_kind_registered_in_the_registry_alone_is_a_valid_population(monkeypatch):
    """A made-up kind: a rate soma with φ = relu, a logistic dendrite and one check of its own."""
    tiny = PopulationKind("tiny", activation="relu", dendrite_activation="logistic",
                          checks=(_tiny_checks,))
    monkeypatch.setitem(POPULATION_KINDS, "tiny", tiny)
    model = _model({"population": "tiny"})
    protocol = parse_protocol({"phases": {"dt": "1 ms"}})
    check_compatible(model, protocol, 6, 3)
    layer = model.layers[0]
    assert population_kind(layer) is tiny and layer_population(layer, DT) is None
    assert layer_activation(layer).name == "relu"
    assert layer_feedback_activation(layer).name == "logistic"
    with pytest.raises(SpecError, match=r"^m.toml: layers.h0.size: a tiny population has at most 8"):
        _model({"population": "tiny", "size": 9})
    with pytest.raises(SpecError, match="layers.h0.activation: a 'tiny' population fixes its own"):
        _model({"population": "tiny", "activation": "linear"})


def test_analysis_reads_the_maximal_rates_of_the_records():
    model = _model({"population": "lif", "refractory": "4 ms"}, {"population": "poisson",
                   "max_rate": 250.0}, {"population": "bernoulli"}, {"population": "sign"}, {})
    protocol = parse_protocol({"phases": {"dt": "2 ms"}})
    run = SimpleNamespace(attrs={"model_toml": to_toml(model), "protocol_toml": to_toml(protocol)})
    rates = max_rates(run)
    expected = {layer.name: population_kind(layer).max_rate(layer, 2 * ms)
                for layer in model.layers if population_kind(layer).max_rate is not None}
    assert rates == expected
    assert rates == pytest.approx({"h0": 250.0, "h1": 250.0, "h2": 500.0})
