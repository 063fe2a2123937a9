"""``--set network.hidden="5x256 tanh"``: the number of hidden layers from the command line."""
import pytest

import bioprop
from bioprop.cli import main
from bioprop.errors import SpecError
from bioprop.overrides import hidden_layers
from bioprop.runlog import open_run
from bioprop.spec import load_model


def test_five_by_256_tanh_expands_to_five_rate_layers():
    model = load_model(None, ['network.hidden="5x256 tanh"'])
    assert model.sizes == [64, 256, 256, 256, 256, 256, 10]
    assert model.names[1:-1] == [f"hidden{i}" for i in range(1, 6)]
    assert {(layer.population, layer.activation) for layer in model.layers[:-1]} == {("rate", "tanh")}
    default = load_model(None)
    assert model.layers[-1] == default.layers[-1]  # the output layer is kept as it was


def test_groups_and_later_overrides_of_the_new_layers():
    model = load_model(None, ["network.hidden=2x50 relu, 30", "layers.hidden3.size=7",
                              "layers.hidden1.lr_scale=0.5"])
    assert model.sizes == [64, 50, 50, 7, 10]
    assert [layer.activation for layer in model.layers] == ["relu", "relu", "tanh", "linear"]
    assert model.layers[0].lr_scale == 0.5
    assert hidden_layers(40) == [{"name": "hidden1", "size": 40, "population": "rate"}]


@pytest.mark.parametrize("value, expected", [
    ("5x", r"'5x' is not a group of layers: expected groups \"\[Nx\]SIZE \[ACTIVATION\]\""),
    ("five layers", "'five layers' is not a group of layers"),
    ("5x256 tanh relu", "'5x256 tanh relu' is not a group of layers"),
    ("0x256 tanh", "'0x256 tanh': a group needs at least one layer of at least one neuron"),
    ("5x0", "'5x0': a group needs at least one layer"),
    ('""', "expected groups .*; got ''"),
    ("true", "expected groups .*; got True"),
    ("5x256 tahn", "unknown value 'tahn'. Expected one of: .*Did you mean 'tanh'"),
])
def test_a_malformed_shorthand_is_one_error_naming_it(value, expected):
    with pytest.raises(SpecError, match=rf"^--set network\.hidden={value}: {expected}"):
        load_model(None, [f"network.hidden={value}"])


def test_a_run_with_three_hidden_layers_records_them(tmp_path):
    overrides = ['network.hidden="3x20 tanh"', "engine.name=reference", "training.epochs=1",
                 "data.n_train=64", "data.n_test=32", "record.probe_size=0"]
    result = bioprop.run(output=tmp_path / "run.h5", progress=False, overrides=overrides)
    assert result.epochs == 1
    with open_run(tmp_path / "run.h5") as tree:
        toml = tree.attrs["model_toml"]
        assert toml.count("[[layers]]") == 4 and 'name = "hidden3"' in toml
        assert "hidden" not in toml.split("[network]")[1].split("[")[0]  # expanded, not a key
        assert "hidden2_to_hidden3" in tree["pathways"].children


def test_brian2_engine_builds_the_layers(tmp_path):
    from bioprop.engines import make_engine
    from bioprop.spec import load_protocol
    from bioprop.training import generators

    overrides = ['network.hidden="2x16 logistic"']
    engine = make_engine(load_model(None, overrides), load_protocol(None, overrides),
                         next(generators(1)))
    assert engine.name == "brian2" and len(engine.layers) == 4
    assert engine.model.sizes == [64, 16, 16, 10]


def test_in_a_file_it_is_an_unknown_key(tmp_path):
    """A shorthand of --set only: a file states its layers, so a run file's TOML has them."""
    from bioprop.spec import default_model_path

    path = tmp_path / "m.toml"
    path.write_text(f'extends = "{default_model_path()}"\n[network]\nhidden = "5x256 tanh"\n')
    with pytest.raises(SpecError, match="unknown key 'network.hidden'"):
        load_model(path)
