"""The run-file vocabulary: declarations outside it fail with a clear message, and every
variable the engines record is in it."""
from pathlib import Path

import numpy as np
import pytest

from bioprop.runlog import (ACTIVITY, ACTIVITY_VARIABLES, DIMS, RECORD_COORDS, SECTIONS,
                            SPIKE_EVENTS, STEADY, TIMED, RunRecorder, VocabularyError)

ROOT = Path(__file__).resolve().parent.parent
ATTRS = {"bioprop_format_version": 1}
SHORT = ["phases.forward=10 ms", "phases.feedback=10 ms", "phases.target=10 ms"]


@pytest.fixture
def recorder(tmp_path):
    with RunRecorder(tmp_path / "run.h5", ATTRS) as rec:
        yield rec


def test_an_unknown_dim_is_refused_naming_the_known_ones(recorder):
    with pytest.raises(VocabularyError, match=r"Dimension\(s\) 'q' do not exist\. Expected one "
                                              r"of 'epoch', 'batch', 'trial'"):
        recorder.declare("train", {"loss": {}}, dims=("epoch", "q"), coords={"q": [0, 1]})
    with pytest.raises(VocabularyError, match=r"Dimension\(s\) 'event' do not exist"):
        recorder.declare_events("layers/a", {"spike_epoch": ("i8", {})}, dim="event")


def test_an_unknown_variable_or_section_is_refused(recorder):
    with pytest.raises(VocabularyError, match=r"Variable\(s\) 'los' do not exist in /train\. "
                                              r"Expected one of 'loss', 'wall_time'"):
        recorder.declare("train", {"los": {}}, dims=("epoch",))
    with pytest.raises(VocabularyError, match=r"Section\(s\) 'scratch' do not exist"):
        recorder.declare("scratch/a", {"loss": {}}, dims=("epoch",))
    with pytest.raises(VocabularyError, match=r"Event variable\(s\) 'spike_colour' do not exist "
                                              r"in /layers"):
        recorder.declare_events("layers/a", {"spike_epoch": ("i8", {}),
                                             "spike_colour": ("i8", {})})


def test_a_variable_is_declared_only_with_its_own_dims(recorder):
    # targets are steady states: no time axis
    with pytest.raises(VocabularyError, match=r"Variable 'target' of /layers has no dims "
                                              r"\('trial', 'time', 'neuron'\)"):
        recorder.declare("layers/a", {"target": {}}, dims=("epoch", *TIMED),
                         coords={"trial": [0], "time": [0.0], "neuron": [0]})
    with pytest.raises(VocabularyError, match=r"start with dims \('epoch', 'batch'\)"):
        recorder.declare("batches/a", {"rate": {}}, dims=("epoch", *STEADY),
                         coords={"trial": [0], "neuron": [0]})
    recorder.declare("layers/a", {"rate": {}, "target": {}}, dims=("epoch", *STEADY),
                     coords={"trial": [0, 1], "neuron": [0, 1, 2]})


def test_the_vocabulary_is_closed():
    """Every section's dims are dims of the vocabulary."""
    for section in SECTIONS.values():
        for variable in (*section.variables.values(), *section.events.values()):
            for form in variable.forms:
                assert set(section.entry) | set(form) <= set(DIMS), (section.name, form)


def _engine(model, protocol, overrides):
    from bioprop.spec import load_model, load_protocol
    from bioprop.training import make_engine

    model_spec = load_model(model and ROOT / "models" / model, overrides)
    protocol_spec = load_protocol(protocol and ROOT / "protocols" / protocol, overrides)
    return make_engine(model_spec, protocol_spec, np.random.default_rng(0)), model_spec


@pytest.mark.parametrize("model, protocol, overrides, form", [
    (None, None, ["engine.name=reference"], STEADY),
    (None, None, ["engine.name=brian2", "training.batch_size=4", *SHORT], TIMED),
    ("lif.toml", "spiking.toml", ["training.batch_size=4", "engine.codegen=numpy", *SHORT], TIMED),
], ids=["reference", "brian2-rate", "brian2-spiking"])
def test_every_variable_the_engines_record_is_in_the_vocabulary(model, protocol, overrides, form):
    engine, spec = _engine(model, protocol, overrides)
    rng = np.random.default_rng(1)
    x = rng.random((engine.batch_size, spec.sizes[0]))
    y = rng.integers(0, spec.sizes[-1], engine.batch_size)
    record = engine.record_activity(x, y)
    coords = record.pop(RECORD_COORDS, {})
    assert ("time" in coords) == ("time" in form)
    seen = set()
    for layer, values in record.items():
        for name, value in values.items():
            seen.add(name)
            if name in SPIKE_EVENTS:
                assert np.ndim(value) == 1, (layer, name)
            else:
                assert name in ACTIVITY, (layer, name)
                assert form in ACTIVITY[name].forms, (layer, name)
                assert np.ndim(value) == len(form), (layer, name)
    assert "rate" in seen
    if model == "lif.toml":
        assert SPIKE_EVENTS.keys() <= seen
