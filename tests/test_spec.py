"""Model and protocol files: loading, overrides, and the wording of every error."""
import pytest

from bioprop.overrides import parse_override
from bioprop.spec import SpecError, check_compatible, load_model, load_protocol, parse_model

GOOD_MODEL = """
[network]
name = "tiny"
input_size = 4

[[layers]]
name = "hidden"
size = 3

[[layers]]
name = "out"
size = 2
activation = "linear"
"""


def _write(tmp_path, text, name="model.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_embedded_defaults_load():
    model, protocol = load_model(), load_protocol()
    assert model.sizes == [64, 128, 128, 10]
    assert model.rule.target == "dtp" and model.rule.feedback == "dtp"
    assert protocol.data.dataset == "digits" and protocol.engine.name == "brian2"
    assert protocol.engine.codegen == "numpy"


def test_typo_key_names_file_key_and_suggestion(tmp_path):
    path = _write(tmp_path, GOOD_MODEL + '\n[rule]\ntargte = "tp"\n')
    with pytest.raises(SpecError) as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message
    assert "unknown key 'rule.targte'" in message
    assert "Did you mean 'target'?" in message


def test_typo_in_layer_key(tmp_path):
    path = _write(tmp_path, GOOD_MODEL.replace('size = 3', 'sise = 3'))
    with pytest.raises(SpecError, match=r"unknown key 'layers\.hidden\.sise'.*Did you mean 'size'"):
        load_model(path)


def test_wrong_type(tmp_path):
    path = _write(tmp_path, GOOD_MODEL.replace('size = 3', 'size = "three"'))
    with pytest.raises(SpecError, match=r"layers\.hidden\.size: expected int, got str 'three'"):
        load_model(path)


def test_unknown_registry_value(tmp_path):
    path = _write(tmp_path, GOOD_MODEL.replace('activation = "linear"', 'activation = "tahn"'))
    with pytest.raises(SpecError, match=r"layers\.out\.activation: unknown value 'tahn'.*tanh"):
        load_model(path)


def test_duration_needs_units(tmp_path):
    path = _write(tmp_path, GOOD_MODEL.replace('size = 3', 'size = 3\ntau = 10'))
    with pytest.raises(SpecError, match=r"layers\.hidden\.tau: expected a duration with units"):
        load_model(path)


def test_mismatched_shapes_name_file_and_key(tmp_path):
    model = load_model(_write(tmp_path, GOOD_MODEL))
    protocol = load_protocol()
    with pytest.raises(SpecError) as err:
        check_compatible(model, protocol, n_features=64, n_outputs=2)
    assert "network.input_size" in str(err.value) and "64 input features" in str(err.value)
    assert str(tmp_path / "model.toml") in str(err.value)
    with pytest.raises(SpecError, match=r"layers\.out\.size: the output layer has 2 neurons"):
        check_compatible(model, protocol, n_features=4, n_outputs=10)


def test_dt_longer_than_tau_is_refused(tmp_path):
    model = load_model(_write(tmp_path, GOOD_MODEL))
    protocol = load_protocol(overrides=["phases.dt=20 ms"])
    with pytest.raises(SpecError, match=r"phases\.dt.*dt = 20 ms is longer than layers\.hidden\.tau"):
        check_compatible(model, protocol, 4, 2)


def test_missing_file():
    with pytest.raises(SpecError, match="nope.toml: no such file"):
        load_model("nope.toml")


def test_overrides_reach_model_and_protocol():
    overrides = ["rule.target=tp", "layers.hidden2.size=64", "layers.0.activation=relu",
                 "engine.codegen=cython", "training.epochs=2", "rule.target_step=0.1"]
    model, protocol = load_model(overrides=overrides), load_protocol(overrides=overrides)
    assert model.rule.target == "tp" and model.rule.target_step == 0.1
    assert model.sizes == [64, 128, 64, 10]
    assert model.layers[0].activation == "relu"
    assert protocol.engine.codegen == "cython" and protocol.training.epochs == 2


def test_override_errors():
    with pytest.raises(SpecError, match="expected key=value"):
        parse_override("rule.target")
    with pytest.raises(SpecError, match="no layer 'hiden1'.*Did you mean 'hidden1'"):
        load_model(overrides=["layers.hiden1.size=3"])
    with pytest.raises(SpecError, match="unknown key 'rule.iteratons'.*Did you mean 'iterations'"):
        load_model(overrides=["rule.iteratons=5"])
    # an error about a key an override set names the override, as typed
    with pytest.raises(SpecError, match=r"^--set rule.iterations=5: only the 'iterative' rule "
                                        "iterates"):
        load_model(overrides=["rule.iterations=5"])
    with pytest.raises(SpecError, match="^--set rule.feedback_iterations=0: must be ≥ 1, got 0$"):
        load_model(overrides=["rule.feedback_iterations=0"])


def test_bad_toml_syntax(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_model(_write(tmp_path, "[network\n"))


def test_parse_model_requires_layers():
    with pytest.raises(SpecError, match="layers"):
        parse_model({"network": {"input_size": 3}, "layers": []})


def test_missing_required_keys(tmp_path):
    with pytest.raises(SpecError, match=r"model.toml: missing required key\(s\): network"):
        load_model(_write(tmp_path, "[[layers]]\nname = 'a'\nsize = 2\n"))
    with pytest.raises(SpecError, match=r"layers\.hidden: missing required key\(s\): size"):
        load_model(_write(tmp_path, GOOD_MODEL.replace("size = 3\n", "")))


# ------------------------------------------------------------------ extends
def test_extends_merges_tables_and_the_extending_file_wins(tmp_path):
    _write(tmp_path, GOOD_MODEL + '\n[rule]\ntarget = "tp"\nnoise = 0.1\n', "base.toml")
    path = _write(tmp_path, 'extends = "base.toml"\n[network]\nname = "child"\n'
                            '[rule]\nnoise = 0.2\n[optimizer.forward]\nlr = 0.5\n')
    model = load_model(path)
    assert model.network.name == "child" and model.network.input_size == 4
    assert model.rule.target == "tp" and model.rule.noise == 0.2
    assert model.optimizer.forward.lr == 0.5 and model.optimizer.forward.name == "rmsprop"
    assert [layer.name for layer in model.layers] == ["hidden", "out"]
    assert model.source == str(path)


def test_extends_replaces_the_layers_whole_and_chains(tmp_path):
    _write(tmp_path, GOOD_MODEL, "base.toml")
    (tmp_path / "sub").mkdir()
    _write(tmp_path, 'extends = "base.toml"\n[rule]\ntarget = "bp"\n', "middle.toml")
    path = _write(tmp_path, 'extends = "../middle.toml"\n[[layers]]\nname = "only"\nsize = 2\n',
                  "sub/child.toml")
    model = load_model(path)
    assert [layer.name for layer in model.layers] == ["only"] and model.rule.target == "bp"


def test_overrides_apply_after_the_base(tmp_path):
    _write(tmp_path, GOOD_MODEL, "base.toml")
    path = _write(tmp_path, 'extends = "base.toml"\n[rule]\ntarget = "bp"\n')
    assert load_model(path, overrides=["rule.target=fa"]).rule.target == "fa"


def test_extends_a_missing_base_names_the_file_and_suggests(tmp_path):
    _write(tmp_path, GOOD_MODEL, "default.toml")
    path = _write(tmp_path, 'extends = "defualt.toml"\n')
    with pytest.raises(SpecError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(f"{path}: extends: no such file") and "defualt.toml" in message
    assert "Did you mean 'default.toml'?" in message


def test_extends_in_a_cycle_is_refused(tmp_path):
    _write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    _write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    with pytest.raises(SpecError, match=r"b.toml: extends: 'a.toml' leads back to a file already "
                                        r"read \(a.toml → b.toml → a.toml\)"):
        load_model(tmp_path / "a.toml")
    path = _write(tmp_path, 'extends = "self.toml"\n', "self.toml")
    with pytest.raises(SpecError, match=r"extends: 'self.toml' leads back"):
        load_model(path)


def test_extends_must_name_a_file(tmp_path):
    with pytest.raises(SpecError, match=r"model.toml: extends: expected the name of a base file"):
        load_model(_write(tmp_path, "extends = 3\n"))


def test_extends_works_for_protocols(tmp_path):
    _write(tmp_path, '[training]\nepochs = 3\nbatch_size = 8\n', "base.toml")
    path = _write(tmp_path, 'extends = "base.toml"\n[training]\nepochs = 5\n', "protocol.toml")
    protocol = load_protocol(path)
    assert protocol.training.epochs == 5 and protocol.training.batch_size == 8


@pytest.mark.parametrize("rule", ["tp", "dtp", "bp", "fa", "dfa", "gn", "iterative"])
def test_each_rule_file_is_the_default_model_with_its_rule(rule):
    from dataclasses import replace

    from bioprop.specfiles import default_model_path

    model = load_model(default_model_path().parent / f"{rule}.toml")
    default = load_model()
    assert model.rule.target == rule and model.layers == default.layers
    assert replace(model, network=default.network, rule=default.rule,
                   source=default.source) == default
