"""Inputs that must never give a silently wrong run: each is one error naming what the user
typed (the ``--set`` or the file), the key, the value and what is expected."""
import typing
from dataclasses import fields, is_dataclass

import pytest

from bioprop import cli
from bioprop.overrides import check_key
from bioprop.spec import (SPEC_TABLES, ModelSpec, ProtocolSpec, SpecError, check_compatible,
                          load_model, load_protocol)
from bioprop.ranges import Range

TABLES = "data, engine, layers, network, optimizer, phases, record, rule, training"


@pytest.mark.parametrize("override, message", [
    # misspelt tables and keys: once silently ignored
    ("rul.target=bp", f"--set rul.target: unknown table 'rul'. Expected one of: {TABLES}. "
                      "Did you mean 'rule'?"),
    ("trainig.epochs=1", f"--set trainig.epochs: unknown table 'trainig'. Expected one of: "
                         f"{TABLES}. Did you mean 'training'?"),
    ("nosuchkey=1", f"--set nosuchkey: unknown table 'nosuchkey'. Expected one of: {TABLES}."),
    ("=1", "--set '': '' is not a key: a key is ASCII words without spaces joined by dots, "
           "e.g. --set layers.hidden1.size=64"),
    ("rule..target=tp", "--set 'rule..target': '' is not a key"),
    ("rulé.target=tp", "--set 'rulé.target': 'rulé' is not a key"),
    ("rule.tärget=tp", "--set 'rule.tärget': 'tärget' is not a key"),
    ("rule.target.x=1", "--set rule.target.x=1: rule.target is 'dtp', not a table, so it has no "
                        "key 'x'"),
    ("layers.hiden1.size=3", "--set layers.hiden1.size=3: no layer 'hiden1' in "),
    ("layers.7.size=3", "--set layers.7.size=3: no layer '7' in "),
    ("rule.targte=tp", "--set rule.targte=tp: unknown key 'rule.targte'. Expected one of:"),
    # ranges declared beside the fields, named by the override as typed
    ("layers.hidden1.size=0", "--set layers.hidden1.size=0: must be positive, got 0"),
    ("layers.1.size=-3", "--set layers.1.size=-3: must be positive, got -3"),
    ("network.input_size=0", "--set network.input_size=0: must be positive, got 0"),
    ("optimizer.forward.lr=-0.001", "--set optimizer.forward.lr=-0.001: must be positive, "
                                    "got -0.001"),
    ("optimizer.feedback.lr=0", "--set optimizer.feedback.lr=0: must be positive, got 0.0"),
    ("optimizer.forward.lr=nan", "--set optimizer.forward.lr=nan: must be a finite number, "
                                 "got nan"),
    ("optimizer.forward.lr=inf", "--set optimizer.forward.lr=inf: must be a finite number, "
                                 "got inf"),
    ("rule.target_step=-1", "--set rule.target_step=-1: must be ≥ 0, got -1.0"),
    ("rule.target_step=nan", "--set rule.target_step=nan: must be a finite number, got nan"),
    ("rule.damping=-1", "--set rule.damping=-1: must be positive, got -1.0"),
    ("rule.noise=-0.1", "--set rule.noise=-0.1: must be ≥ 0, got -0.1"),
    ("rule.noise=inf", "--set rule.noise=inf: must be a finite number, got inf"),
    ("layers.hidden1.p_connect=1.5", "--set layers.hidden1.p_connect=1.5: a connection "
                                     "probability must lie in (0, 1], got 1.5"),
    ("layers.hidden1.threshold=nan", "--set layers.hidden1.threshold=nan: must be a finite "
                                     "number, got nan"),
    ("engine.threads=0", "--set engine.threads=0: must be ≥ 1, got 0"),
    ("training.seed=-1", "--set training.seed=-1: must be a whole number in [0, 2**63), got -1"),
    ("training.seed=9223372036854775808", "--set training.seed=9223372036854775808: must be a "
                                          "whole number in [0, 2**63), got 9223372036854775808"),
    ("training.batch_size=0", "--set training.batch_size=0: must be positive, got 0"),
    ("training.epochs=0", "--set training.epochs=0: must be positive, got 0"),
    ("data.n_train=-5", "--set data.n_train=-5: must be ≥ 0, got -5"),
    ("record.activity_dt_factor=0", "--set record.activity_dt_factor=0: must be ≥ 1, got 0"),
    # durations
    ('layers.hidden1.tau="1e999 ms"', "--set layers.hidden1.tau=\"1e999 ms\": a duration must "
                                      "be finite, got '1e999 ms'"),
    ('phases.dt="- ms"', '--set phases.dt="- ms": expected a duration with units such as "10 ms" '
                         '(a number, then one of the units ms, msecond, us, usecond, s, second)'),
    # record.path placeholders
    ('record.path="runs/{nope}.h5"', "--set record.path=\"runs/{nope}.h5\": unknown placeholder "
                                     "{nope} in 'runs/{nope}.h5'. Expected some of: {model}, "
                                     "{seed}."),
    ('record.path="runs/{modle}.h5"', "Did you mean 'model'?"),
    ('record.path="runs/{model.h5"', "--set record.path=\"runs/{model.h5\": 'runs/{model.h5' is "
                                     "not a valid pattern"),
])
def test_a_bad_override_is_one_error_naming_it(override, message):
    with pytest.raises(SpecError) as err:
        load_model(overrides=[override])
        load_protocol(overrides=[override])
    text = str(err.value)
    # every message opens with the override as typed, never with the installed default file
    assert text.startswith(message if message.startswith("--set") else "--set "), text
    assert message in text, text


def test_a_key_of_neither_file_fails_in_both_loaders():
    for load in (load_model, load_protocol):
        with pytest.raises(SpecError, match="unknown table 'trainig'"):
            load(overrides=["trainig.epochs=1"])


def test_a_file_error_still_names_the_file_when_no_override_set_the_key(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[training]\nseed = -2\n")
    with pytest.raises(SpecError, match=r"p.toml: training.seed: must be a whole number in "
                                        r"\[0, 2\*\*63\), got -2$"):
        load_protocol(path, overrides=["training.epochs=2"])


def test_check_key_is_the_one_checker():
    check_key("layers.hidden1.size", SPEC_TABLES)
    with pytest.raises(SpecError, match="^--grid rul.target: unknown table 'rul'"):
        check_key("rul.target", SPEC_TABLES, "--grid")


def _float_keys(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp = hints.get(f.name)
        if f.name == "layers" and cls is ModelSpec:
            yield from _float_keys(typing.get_args(tp)[0], "layers.0.")
        elif is_dataclass(tp):
            yield from _float_keys(tp, prefix + f.name + ".")
        elif tp is float:
            yield prefix + f.name


FLOAT_KEYS = list(_float_keys(ModelSpec)) + list(_float_keys(ProtocolSpec))


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_every_float_key_rejects_nan_and_inf(key):
    for bad in ("nan", "inf", "-inf"):
        with pytest.raises(SpecError, match=rf"^--set {key}={bad}: must be a finite number"):
            load_model(overrides=[f"{key}={bad}"])
            load_protocol(overrides=[f"{key}={bad}"])


def test_float_keys_are_found():
    assert {"optimizer.forward.lr", "rule.damping", "layers.0.threshold"} <= set(FLOAT_KEYS)


def test_range_texts():
    assert str(Range(gt=0)) == "positive"
    assert str(Range(ge=1)) == "≥ 1"
    assert str(Range(gt=0, le=1)) == "in (0, 1]"
    assert str(Range(ge=0, lt=4)) == "in [0, 4)"
    assert Range(gt=0, le=1).holds(1) and not Range(gt=0, le=1).holds(0)


def test_batch_larger_than_the_training_set_is_an_error_at_check_compatible(tmp_path):
    model = load_model()
    path = tmp_path / "p.toml"
    path.write_text("[training]\nbatch_size = 100000\n")
    protocol = load_protocol(path)
    with pytest.raises(SpecError, match=r"p.toml: training.batch_size: 100000 is larger than the "
                                        r"training set: dataset 'digits' has 1437 training "
                                        r"samples here \(data.n_train = 0, 0: all\)$"):
        check_compatible(model, protocol, 64, 10, 1437)
    check_compatible(model, load_protocol(overrides=["training.batch_size=1437"]), 64, 10, 1437)


def test_check_compatible_names_the_set_that_gave_the_key():
    """A key a --set gave is named by the --set also in the checks of a model against its
    protocol and data, which run after both files are loaded."""
    model = load_model(overrides=["layers.hidden1.tau=\"2 ms\""])
    protocol = load_protocol(overrides=["training.batch_size=100000"])
    with pytest.raises(SpecError, match=r"^--set training.batch_size=100000: 100000 is larger"):
        check_compatible(model, protocol, 64, 10, 1437)
    with pytest.raises(SpecError, match=r"^--set phases.dt=\"5 ms\": dt = 5 ms is longer than "
                                        r"layers.0.tau = 2 ms"):
        check_compatible(model, load_protocol(overrides=['phases.dt="5 ms"']), 64, 10, 1437)
    assert model == load_model(overrides=["layers.0.tau=\"2 ms\""])  # origins never compare


@pytest.mark.parametrize("content, message", [
    ("\ufeff[network]".encode("utf-16"), "not a TOML text file: it is UTF-16; byte 0 (0xff) is "
                                         "not UTF-8, and TOML files must be UTF-8 text"),
    (b"[network]\nname = \"\x84\"\n", "not a TOML text file: byte 18 (0x84) is not UTF-8"),
    (b"a = 1\n\x00\x01\x02", "not a TOML text file: it holds a NUL byte (a binary file?)"),
])
def test_a_file_that_is_not_utf8_text_is_named(tmp_path, content, message):
    path = tmp_path / "m.toml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as err:
        load_model(path)
    assert str(err.value) == f"{path}: {message}" or str(err.value).startswith(f"{path}: {message}")


def test_swapped_files_say_what_they_look_like(tmp_path):
    from bioprop.specfiles import default_model_path, default_protocol_path

    with pytest.raises(SpecError, match=r"default.toml: this looks like a protocol file \(its "
                                        r"tables: data, engine, phases, record, training\), not "
                                        r"a model file: give the model first"):
        load_model(default_protocol_path())
    with pytest.raises(SpecError, match=r"this looks like a model file .*not a protocol file"):
        load_protocol(default_model_path())


def _cli(capsys, *argv):
    rc = cli.main(list(argv))
    return rc, capsys.readouterr().err


def test_cli_set_with_a_space_gets_a_hint(capsys, tmp_path):
    rc, err = _cli(capsys, "run", "-q", "-o", str(tmp_path / "x.h5"), "--set", "training.epochs", "1")
    assert rc == 2
    assert err == ("bioprop run: error: --set training.epochs 1: expected KEY=VALUE with no space; "
                   "did you mean --set training.epochs=1?\n")
    assert not (tmp_path / "x.h5").exists()


def test_a_quoted_set_with_a_space_gets_a_hint():
    from bioprop.overrides import parse_override

    with pytest.raises(SpecError, match=r"^--set 'training.epochs 1': expected key=value, e.g. "
                                        r"--set rule.target=tp. Did you mean training.epochs=1\?$"):
        parse_override("training.epochs 1")


def test_cli_misspelt_table_writes_nothing(capsys, tmp_path):
    out = tmp_path / "x.h5"
    rc, err = _cli(capsys, "run", "-q", "-o", str(out), "--set", "rul.target=bp")
    assert rc == 2 and "--set rul.target: unknown table 'rul'" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_swapped_files_are_one_line(capsys, tmp_path):
    from bioprop.specfiles import default_model_path, default_protocol_path

    out = tmp_path / "x.h5"
    rc, err = _cli(capsys, "run", "-q", "-o", str(out), str(default_protocol_path()),
                   str(default_model_path()))
    assert rc == 2 and err.count("\n") == 1 and "this looks like a protocol file" in err
    assert not out.exists()
