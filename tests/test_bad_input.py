"""Inputs that must never give a silently wrong run: each is one error naming what the user
typed (the ``--set`` or the file), the key, the value and what is expected."""
import sys
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from bioprop.overrides import check_key
from bioprop.spec import (SPEC_TABLES, ModelSpec, ProtocolSpec, SpecError, check_compatible,
                          load_model, load_protocol)
from bioprop.ranges import Range

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import configs  # noqa: E402


def _set_only(case):
    """The overrides of a hostile case that is ``bioprop run --set ...`` and nothing else."""
    argv = case.argv
    if callable(argv) or not argv or argv[0] != "run" or len(argv) % 2 != 1:
        return None
    pairs = list(zip(argv[1::2], argv[2::2]))
    return [v for k, v in pairs] if all(k == "--set" for k, _ in pairs) else None


SET_CASES = [c for c in configs.CASES if _set_only(c) and c.expect.startswith("--set")]


@pytest.mark.parametrize("case", SET_CASES, ids=[c.what for c in SET_CASES])
def test_the_api_gives_the_command_lines_error(case):
    """``load_model``/``load_protocol(overrides=...)`` and ``check_compatible`` give the very
    line ``bioprop run --set`` gives (tests/hostile/configs.py): one checker everywhere."""
    overrides = _set_only(case)
    with pytest.raises(SpecError) as err:
        model, protocol = load_model(overrides=overrides), load_protocol(overrides=overrides)
        check_compatible(model, protocol, 64, 10, 1437)
    assert str(err.value).startswith("--set "), err.value  # never the installed default file
    assert case.expect in str(err.value)


def test_enough_api_cases():
    assert len(SET_CASES) >= 60


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
        elif tp is float or tp == float | None:  # an optional float: unset is None
            yield prefix + f.name


FLOAT_KEYS = list(_float_keys(ModelSpec)) + list(_float_keys(ProtocolSpec))


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_every_float_key_rejects_nan_and_inf(key):
    for bad in ("nan", "inf", "-inf"):
        with pytest.raises(SpecError, match=rf"^--set {key}={bad}: must be a finite number"):
            load_model(overrides=[f"{key}={bad}"])
            load_protocol(overrides=[f"{key}={bad}"])


def test_float_keys_are_found():
    assert {"optimizer.forward.lr", "rule.damping", "layers.0.threshold",
            "optimizer.feedback.beta1"} <= set(FLOAT_KEYS)


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
                                        r"layers.hidden1.tau = 2 ms"):
        check_compatible(model, load_protocol(overrides=['phases.dt="5 ms"']), 64, 10, 1437)
    assert model == load_model(overrides=["layers.0.tau=\"2 ms\""])  # origins never compare


def test_swapped_files_say_what_they_look_like(tmp_path):
    from bioprop.specfiles import default_model_path, default_protocol_path

    with pytest.raises(SpecError, match=r"default.toml: this looks like a protocol file \(its "
                                        r"tables: data, engine, phases, record, training\), not "
                                        r"a model file: give the model first"):
        load_model(default_protocol_path())
    with pytest.raises(SpecError, match=r"this looks like a model file .*not a protocol file"):
        load_protocol(default_model_path())


def test_a_quoted_set_with_a_space_gets_a_hint():
    from bioprop.overrides import parse_override

    with pytest.raises(SpecError, match=r"^--set 'training.epochs 1': expected key=value, e.g. "
                                        r"--set rule.target=tp. Did you mean training.epochs=1\?$"):
        parse_override("training.epochs 1")


def test_registry_choices_are_computed_once():
    from bioprop.validation import _registry_choices

    assert _registry_choices() is _registry_choices()
