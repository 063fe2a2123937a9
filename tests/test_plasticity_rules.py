"""Named plasticity rules (bioprop.register.plasticity_rule): a rule registered by name runs
bit for bit as the same rule written as an expression, the built-in names are the rules they
name, a name is checked with "did you mean", and the reference engine refuses a rule it does
not run."""
import re
from pathlib import Path

import numpy as np
import pytest

import bioprop
from bioprop.extensions import isolated
from bioprop.pathways import LOCAL_RULE
from bioprop.plasticity_rules import PLASTICITY_RULES, rule_expression
from bioprop.plugins import load_entry_points
from bioprop.spec import LayerSpec

from conftest import assert_refused, install_package

ROOT = Path(__file__).resolve().parent.parent
DECAY = "(r_target_post - r_forward_post) * phi_prime_post * r_in - 1e-3 * w"
SMALL = {"network": {"input_size": 64},
         "layers": [{"name": "hidden1", "size": 12}, {"name": "output", "size": 10,
                                                       "activation": "linear"}]}
SGD = {"optimizer.forward.name": "sgd", "optimizer.forward.lr": 0.05}


def _block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/extensions.md").read_text(), re.S)
    (block,) = [b for b in blocks if "plasticity_rule(" in b]
    assert len(block.strip().splitlines()) <= 30
    return block


@pytest.fixture(scope="module")
def data():
    digits = bioprop.load_dataset("digits")
    return digits.x_train[:16], digits.y_train[:16]


@pytest.fixture
def decaying(data):
    """The page's rule, registered by its block as the page runs it."""
    x, y = data
    small = {"network": {"input_size": 64},
             "layers": [{"name": "hidden1", "size": 24}, {"name": "output", "size": 10}]}
    ns = {"bioprop": bioprop, "np": np, "x": x, "y": y, "small": small}
    with isolated():
        exec(compile(_block(), "docs/extensions.md", "exec"), ns)
        yield ns


def _trained(rule: str, data, engine="brian2", batches=2):
    model = {**SMALL, "layers": [{**SMALL["layers"][0], "connection": "synapses",
                                  "plasticity": "synaptic", "plasticity_rule": rule},
                                 SMALL["layers"][1]]}
    net = bioprop.build(model, engine=engine, batch_size=8, overrides=SGD)
    x, y = data
    steps = [net.step(x[8 * (b % 2):8 * (b % 2) + 8], y[8 * (b % 2):8 * (b % 2) + 8])
             for b in range(batches)]
    return net, steps


def test_a_registered_rule_is_its_expression_bit_for_bit(decaying, data):
    assert rule_expression(LayerSpec(name="h", size=1, plasticity_rule="decaying")) == DECAY
    named, named_steps = _trained("decaying", data)
    written, written_steps = _trained(DECAY, data)
    local, _ = _trained("", data)
    for a, b in zip(named_steps, written_steps):
        assert a.identical(b)
    assert np.array_equal(named.weights["input_to_hidden1"], written.weights["input_to_hidden1"])
    # and the decay is run: the weights are not the local rule's
    assert not np.allclose(named.weights["input_to_hidden1"], local.weights["input_to_hidden1"],
                           rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", list(PLASTICITY_RULES))
def test_a_built_in_name_is_the_rule_it_names(name, data):
    expression = rule_expression(LayerSpec(name="h", size=1, plasticity_rule=name))
    by_name, _ = _trained(name, data, batches=1)
    written, _ = _trained(expression, data, batches=1)
    assert np.array_equal(by_name.weights["input_to_hidden1"], written.weights["input_to_hidden1"])
    assert rule_expression(LayerSpec(name="h", size=1)) == LOCAL_RULE == \
        rule_expression(LayerSpec(name="h", size=1, plasticity_rule="local"))


def _load(rule):
    return bioprop.load_model(None, ["layers.hidden1.connection=synapses",
                                     "layers.hidden1.plasticity=synaptic",
                                     "optimizer.forward.name=sgd",
                                     f"layers.hidden1.plasticity_rule={rule}"])


def test_a_name_is_checked_with_did_you_mean(decaying):
    assert _load("decaying").layers[0].plasticity_rule == "decaying"
    with pytest.raises(bioprop.SpecError) as caught:
        _load("decayng")
    assert str(caught.value) == (
        "--set layers.hidden1.plasticity_rule=decayng: unknown rule 'decayng'. Expected a rule's "
        "name, one of: local, straight_through, decaying, or an expression. Did you mean "
        "'decaying'?")
    assert _load("w").layers[0].plasticity_rule == "w"  # a synapse's variable: an expression


def test_the_reference_engine_refuses_a_rule_it_does_not_run(decaying, data):
    with pytest.raises(bioprop.SpecError, match=r"layers.hidden1.plasticity_rule: 'decaying' "
                                                r"runs in the synapses of the Brian2 engine "
                                                r"only; the reference engine learns by the local "
                                                r"rule"):
        _trained("decaying", data, engine="reference", batches=1)
    _trained("local", data, engine="reference", batches=1)  # the rule it runs


@pytest.mark.parametrize("register,message", [
    (lambda: bioprop.register.plasticity_rule("local")(lambda layer: DECAY),
     "plasticity rule 'local' is built in and cannot be replaced"),
    (lambda: bioprop.register.plasticity_rule("bad")(lambda layer: "r_in * rate"),
     "plasticity rule 'bad': its expression: unknown name(s) 'rate' in 'r_in * rate'"),
    (lambda: bioprop.register.plasticity_rule("bad")(lambda layer: "r_in *"),
     "plasticity rule 'bad': its expression: 'r_in *' is not an expression"),
    (lambda: bioprop.register.plasticity_rule("bad")(lambda layer: 1.0),
     "plasticity rule 'bad': the function must return a Brian2 expression as a string, not 1.0"),
    (lambda: bioprop.register.plasticity_rule("bad")(lambda: DECAY),
     "plasticity rule 'bad': the function must take (layer)"),
])
def test_what_cannot_be_registered_is_one_error(register, message):
    assert_refused(register, message, PLASTICITY_RULES, "bad")


def test_an_installed_package_registers_a_rule(tmp_path, monkeypatch):
    install_package(tmp_path, monkeypatch, "pkg_plastic",
                    "[bioprop.plasticity]\ndecaying = pkg_plastic:decaying\n",
                    "import bioprop\n" + _block().split("\nlearning")[0])
    from importlib.metadata import entry_points
    with isolated():
        assert load_entry_points(lambda group: entry_points(group=group)) == [
            "bioprop.plasticity:decaying"]
        assert _load("decaying").layers[0].plasticity_rule == "decaying"
    assert "decaying" not in PLASTICITY_RULES
