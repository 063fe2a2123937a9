"""Event-driven transmission and trial resets in the Brian2 engine (issue 14, speed).

The oracle of ``engine.transmission = "events"`` is the dense path itself: the spike
trace is a linear filter, so W · r of the traces Brian2 integrates must equal the
filtered weight columns of the spikes, step by step, to rounding (1e-9 in float64).
"""
from pathlib import Path

import numpy as np
import pytest

import bioprop.event_pathways as event_pathways
from bioprop.spec import SpecError, parse_model, parse_protocol
from bioprop.training import make_engine


def _specs(encoding="rate", transmission="dense", start="carry", hidden="lif"):
    layers = [{"name": "h1", "size": 16, "population": hidden, "threshold": 0.2},
              {"name": "h2", "size": 12, "population": hidden, "threshold": 0.2},
              {"name": "out", "size": 3, "activation": "linear"}]
    if hidden != "lif":
        for layer in layers[:2]:
            del layer["threshold"]
    model = parse_model({"network": {"input_size": 8, "input_encoding": encoding,
                                     "input_rate": 300.0},
                         "layers": layers, "rule": {"noise": 0.1}})
    protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": "20 ms",
                                          "feedback": "10 ms", "target": "20 ms",
                                          "trial_start": start},
                               "engine": {"transmission": transmission},
                               "training": {"batch_size": 4, "seed": 1}})
    return model, protocol


def _train(encoding="rate", transmission="dense", start="carry", hidden="lif", batches=2):
    model, protocol = _specs(encoding, transmission, start, hidden)
    engine = make_engine(model, protocol, np.random.default_rng(0))
    data = np.random.default_rng(5)
    x, y = data.random((4 * batches, 8)), data.integers(0, 3, 4 * batches)
    engine.train_epoch(x, y, np.random.default_rng(1))
    return engine, engine.predict(x[:4])


@pytest.mark.parametrize("encoding", ["rate", "poisson"])
def test_event_driven_input_equals_the_dense_product_every_step(monkeypatch, encoding):
    """Every step of a training run, the events' R + b equals W · r + b of the traces
    Brian2 integrated, for the forward and feedback pathways of two LIF layers (and the
    Poisson input's pathway)."""
    worst, original = [], event_pathways.EventTransmission.drive

    def checked(self, out):
        result = original(self, out)
        dense = self.r @ self.projection.weight.T + self.projection.bias
        worst.append((np.abs(result - dense).max(), np.abs(dense).max()))
        return result

    monkeypatch.setattr(event_pathways.EventTransmission, "drive", checked)
    engine, _ = _train(encoding, "events")
    expected = {"forward_2", "forward_3", "feedback_2"} | ({"forward_1"} if encoding == "poisson"
                                                          else set())
    assert set(engine.events) == expected
    assert all(t.spikes > 0 for t in engine.events.values()), "the test needs spikes"
    errors, scales = np.array(worst).T
    assert len(errors) > 100 and scales.max() > 0.1
    assert errors.max() < 1e-9, errors.max()


def test_event_driven_training_matches_the_dense_run():
    """Two trained batches: the same outputs and weights, to rounding."""
    dense, out_dense = _train(transmission="dense")
    events, out_events = _train(transmission="events")
    assert np.abs(out_events - out_dense).max() < 1e-9
    for l in (1, 2, 3):
        assert np.abs(events.model.forward[l].weight - dense.model.forward[l].weight).max() < 1e-9


def test_layers_without_spike_events_stay_dense():
    engine, _ = _train(transmission="events", hidden="bernoulli", batches=1)
    assert engine.events == {}


@pytest.mark.parametrize("start,same", [("carry", False), ("rest", True), ("twin", True)])
def test_trial_start_removes_the_last_trial(start, same):
    """Starting at rest or at the twin's state, the first LIF layer's trace at the end of a
    batch does not depend on the batch before it (silent, or firing); carrying the state
    over, at phases this short, it does."""
    def trace(first):
        model, protocol = _specs(start=start)
        engine = make_engine(model, protocol, np.random.default_rng(0))
        engine.predict(first)
        engine.predict(2 * np.random.default_rng(3).random((4, 8)))
        return engine.layers[1].read_rate().copy()

    a, b = trace(np.zeros((4, 8))), trace(np.full((4, 8), 2.0))
    assert a.max() > 0.01, "the test needs spikes"
    assert np.array_equal(a, b) == same, np.abs(a - b).max()


def test_twin_start_begins_near_the_settled_trace():
    """After a forward phase, the trace started at the twin's rate is closer to the one
    settled in a long phase than the trace started at rest."""
    model, _ = _specs()
    x = 2 * np.random.default_rng(3).random((4, 8))
    traces = {}
    for start, length in (("rest", "200 ms"), ("rest", "10 ms"), ("twin", "10 ms")):
        protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": length,
                                              "trial_start": start},
                                   "training": {"batch_size": 4}})
        engine = make_engine(model, protocol, np.random.default_rng(0))
        engine.predict(x)
        traces[start, length] = engine.layers[1].read_rate().copy()
    settled = traces["rest", "200 ms"]
    assert settled.mean() > 0.02, "the test needs spikes"
    from_rest = np.abs(traces["rest", "10 ms"] - settled).mean()
    from_twin = np.abs(traces["twin", "10 ms"] - settled).mean()
    assert from_twin < 0.5 * from_rest, (from_twin, from_rest)


@pytest.mark.parametrize("key,value,message", [
    ("engine.transmission", "sparse", "engine.transmission"),
    ("phases.trial_start", "fresh", "phases.trial_start"),
])
def test_bad_values_name_the_key(key, value, message):
    table, name = key.split(".")
    with pytest.raises(SpecError, match=message):
        parse_protocol({table: {name: value}}, "p.toml")


def test_settling_check_spares_a_forward_phase_that_starts_at_the_twin():
    """The cascade of trace filters must be crossed from the carried state or from rest, not
    from the twin's state; the other phases are checked the same either way."""
    import warnings

    from bioprop.spec import check_compatible, load_model, load_protocol

    root = Path(__file__).parent.parent
    model, fast = load_model(root / "models" / "lif.toml"), root / "protocols" / "spiking_fast.toml"
    for start, flagged in (("carry", {"forward"}), ("rest", {"forward"}), ("twin", set())):
        protocol = load_protocol(fast, [f"phases.trial_start={start}"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_compatible(model, protocol, 64, 10)
        assert {str(w.message).split("phases.")[1].split(" ")[0] for w in caught} == flagged
    short = load_protocol(fast, ['phases.forward="20 ms"'])
    with pytest.warns(UserWarning, match="phases.forward = 20 ms is too short"):
        check_compatible(model, short, 64, 10)
