"""Shipped models and protocols by name: lookup, the usual protocol, ``bioprop list``."""
import tomllib

import pytest

import bioprop
from bioprop import cli
from bioprop.shipped import DESCRIPTION, PROTOCOL, description, find_spec_file, shipped
from bioprop.spec import SpecError, load_model, load_protocol, to_toml


def test_a_shipped_name_is_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_spec_file("lif", "model") == shipped("model")["lif"]
    assert find_spec_file("lif.toml", "model") == shipped("model")["lif"]
    assert find_spec_file("spiking", "protocol") == shipped("protocol")["spiking"]
    assert load_model("tp").rule.target == "tp"


def test_a_path_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lif").write_text('extends = "%s"\n[network]\nname = "mine"\n'
                                  % shipped("model")["default"].as_posix())
    assert find_spec_file("lif", "model").resolve() == (tmp_path / "lif").resolve()
    assert load_model("lif").network.name == "mine"


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as err:
        load_model("lfi")
    message = str(err.value)
    assert message.startswith("no file or shipped model 'lfi'. Shipped: ")
    assert message.endswith("Did you mean 'lif'?")
    assert all(name in message for name in shipped("model"))
    with pytest.raises(SpecError, match="no file or shipped protocol 'spikng'.*'spiking'"):
        load_protocol("spikng")
    # a path in another folder is never a shipped name
    with pytest.raises(SpecError, match="no file or shipped model 'elsewhere/lif'"):
        load_model("elsewhere/lif")


def test_the_model_names_its_usual_protocol_and_an_explicit_one_wins():
    model = load_model("lif")
    assert model.protocol == str(shipped("protocol")["spiking"])
    assert load_model().protocol == ""  # the default model names none
    # neither the usual protocol nor the description reaches the recorded TOML
    text = to_toml(model)
    assert PROTOCOL not in tomllib.loads(text) and DESCRIPTION not in text
    assert model == load_model(shipped("model")["lif"])


def test_bioprop_run_lif_runs_at_the_spiking_time_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    short = ["--set", "engine.name=reference", "--set", "training.epochs=1",
             "--set", "data.n_train=64", "--set", "data.n_test=32"]
    assert cli.main(["run", "lif", "-q", "-o", "a.h5", *short]) == 0
    assert cli.main(["run", "lif", "default", "-q", "-o", "b.h5", *short]) == 0
    dts = []
    for name in ("a.h5", "b.h5"):
        tree = bioprop.open_run(tmp_path / name)
        dts.append(tomllib.loads(tree.attrs["protocol_toml"])["phases"]["dt"])
        tree.close()
    assert dts == [load_protocol("spiking").phases.dt.text, load_protocol("default").phases.dt.text]
    assert dts[0] != dts[1]


def test_a_bad_usual_protocol_is_one_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('protocol = "spikng"\n[network]\nname = "m"\ninput_size = 4\n'
                    '[[layers]]\nname = "out"\nsize = 2\n')
    with pytest.raises(SpecError) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: protocol: expected the name of a shipped protocol")
    assert str(err.value).endswith("got 'spikng'. Did you mean 'spiking'?")


def test_a_description_is_one_line_and_not_inherited(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text('description = "the base"\n[network]\nname = "b"\ninput_size = 4\n'
                    '[[layers]]\nname = "out"\nsize = 2\n')
    top = tmp_path / "top.toml"
    top.write_text('extends = "base.toml"\n')
    assert to_toml(load_model(top)) == to_toml(load_model(base))
    assert description(base) == "the base" and description(top) == ""
    base.write_text('description = """two\nlines"""\n')
    with pytest.raises(SpecError, match="base.toml: description: expected one line of text"):
        load_model(base)


def test_every_shipped_file_says_what_it_is(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    sections = out.split("\n\n")
    assert [s.split()[0] for s in sections] == ["models", "protocols"]
    for kind, section in zip(("model", "protocol"), sections):
        for name, path in shipped(kind).items():
            data = tomllib.loads(path.read_text())
            assert data.get(DESCRIPTION), f"{path} has no description"
            line = next(l for l in section.splitlines() if l.split()[:1] == [name])
            assert data[DESCRIPTION] in line
            if PROTOCOL in data:  # and every usual protocol is shipped
                assert data[PROTOCOL] in shipped("protocol")
                assert f"[protocol: {data[PROTOCOL]}]" in line
    assert cli.main(["models"]) == 0
    assert capsys.readouterr().out == out


@pytest.mark.slow
def test_a_sweep_of_a_shipped_name_runs_its_usual_protocol(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = bioprop.sweep("lif", overrides=["engine.name=reference", "training.epochs=1",
                                             "data.n_train=64", "data.n_test=32"],
                           grid=["rule.target=dtp,bp"], output="out", workers=1, progress=False)
    assert not result.errors and len(result.points) == 2
    for path in sorted((tmp_path / "out").glob("*.h5")):
        tree = bioprop.open_run(path)
        assert tomllib.loads(tree.attrs["protocol_toml"])["phases"]["dt"] == \
            load_protocol("spiking").phases.dt.text
        tree.close()


def test_the_readme_lists_every_shipped_model_with_its_protocol_and_description():
    """The README's "Shipped models" table has one row per shipped model, as `bioprop list`
    would print it: the name, its usual protocol and its description."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Shipped models\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = []
    for name, path in sorted(shipped("model").items()):
        table = tomllib.loads(path.read_text())
        expected.append(f"| `{name}` | `{table.get(PROTOCOL, 'default')}` | {description(path)} |")
    assert rows == expected
