"""Event-driven transmission and trial resets in the Brian2 engine (issue 14, speed).

The oracle of ``engine.transmission = "events"`` is the dense path itself: the spike
trace is a linear filter, so W · r of the traces Brian2 integrates must equal the
filtered weight columns of the spikes, step by step, to rounding (1e-9 in float64).
Each step runs in a compiled kernel or, where it cannot be compiled, in NumPy: the
tests that compile it are marked slow, and the two must agree bit for bit.
"""
from pathlib import Path

import numpy as np
import pytest

import bioprop.compiled as compiled
import bioprop.event_pathways as event_pathways
from bioprop.spec import SpecError, parse_model, parse_protocol
from bioprop.training import make_engine


#: the two ways of stepping: "kernel" compiles event_kernel.pyx (once per machine), so slow
PATHS = ["numpy", pytest.param("kernel", marks=pytest.mark.slow)]


@pytest.fixture
def step_with(monkeypatch):
    """Make every EventTransmission built afterwards step on the given path."""
    def choose(path):
        if path == "numpy":
            monkeypatch.setattr(event_pathways, "load_kernel", lambda name: None)
        else:
            assert compiled.load_kernel("event_kernel") is not None, "the kernel did not compile"
    return choose


def _specs(encoding="rate", transmission="dense", start="carry", hidden="lif", target="trace"):
    layers = [{"name": "h1", "size": 16, "population": hidden, "threshold": 0.2},
              {"name": "h2", "size": 12, "population": hidden, "threshold": 0.2},
              {"name": "out", "size": 3, "activation": "linear"}]
    if hidden != "lif":
        for layer in layers[:2]:
            del layer["threshold"]
    model = parse_model({"network": {"input_size": 8, "input_encoding": encoding,
                                     "input_rate": 300.0},
                         "layers": layers, "rule": {"noise": 0.1, "spiking_target": target}})
    protocol = parse_protocol({"phases": {"dt": "0.5 ms", "forward": "20 ms",
                                          "feedback": "10 ms", "target": "20 ms",
                                          "trial_start": start},
                               "engine": {"transmission": transmission},
                               "training": {"batch_size": 4, "seed": 1}})
    return model, protocol


def _train(encoding="rate", transmission="dense", start="carry", hidden="lif", batches=2,
           target="trace"):
    model, protocol = _specs(encoding, transmission, start, hidden, target)
    engine = make_engine(model, protocol, np.random.default_rng(0))
    data = np.random.default_rng(5)
    x, y = data.random((4 * batches, 8)), data.integers(0, 3, 4 * batches)
    engine.train_epoch(x, y, np.random.default_rng(1))
    return engine, engine.predict(x[:4])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("encoding", ["rate", "poisson"])
def test_event_driven_input_equals_the_dense_product_every_step(monkeypatch, step_with, encoding,
                                                                path):
    """Every step of a training run, the events' R + b equals W · r + b of the traces
    Brian2 integrated, for the forward and feedback pathways of two LIF layers (and the
    Poisson input's pathway)."""
    step_with(path)
    worst = []

    def checked(method):
        def check(self, out):
            result = method(self, out)
            assert result is out
            dense = self.r @ self.projection.weight.T + self.projection.bias
            worst.append((np.abs(out - dense).max(), np.abs(dense).max()))
            return result
        return check

    for name in ("drive", "advance"):  # the input written at a phase's first step, and after
        monkeypatch.setattr(event_pathways.EventTransmission, name,
                            checked(getattr(event_pathways.EventTransmission, name)))
    engine, _ = _train(encoding, "events")
    expected = {"forward_2", "forward_3", "feedback_2"} | ({"forward_1"} if encoding == "poisson"
                                                          else set())
    assert set(engine.events) == expected
    assert all((t.kernel is not None) == (path == "kernel") for t in engine.events.values())
    assert all(t.spikes > 0 for t in engine.events.values()), "the test needs spikes"
    errors, scales = np.array(worst).T
    assert len(errors) > 100 and scales.max() > 0.1
    assert errors.max() < 1e-9, errors.max()


@pytest.mark.parametrize("target", ["trace", "rate"])
@pytest.mark.parametrize("path", PATHS)
def test_event_driven_training_matches_the_dense_run(step_with, path, target):
    """Two trained batches: the same outputs and weights, to rounding. With
    ``spiking_target = "rate"`` a held layer sends h + I_nudge instead of spikes (in the
    noise phases, to the live layer above it): that pathway is then a dense product."""
    step_with(path)
    dense, out_dense = _train(transmission="dense", target=target)
    events, out_events = _train(transmission="events", target=target)
    assert np.abs(out_events - out_dense).max() < 1e-9
    for l in (1, 2, 3):
        assert np.abs(events.model.forward[l].weight - dense.model.forward[l].weight).max() < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3])
def test_kernel_steps_bit_for_bit_as_numpy(dtype, fraction):
    """The compiled step and the NumPy step give the same Z and R, bit for bit, over many
    steps of random spikes (B = 7 trials, 33 → 19 neurons), in either precision."""
    kernel = compiled.load_kernel("event_kernel")
    assert kernel is not None, "the kernel did not compile"
    rng = np.random.default_rng(2)
    B, n_pre, n_post = 7, 33, 19
    group = _FakeGroup(rng, B * n_pre, dtype)
    projection = _FakeProjection(rng.standard_normal((n_post, n_pre)).astype(dtype))
    twins = [event_pathways.EventTransmission(projection, group, B, jump=0.3, tau=0.02,
                                              dt=0.001, compiled=use) for use in (True, False)]
    assert twins[0].kernel is not None and twins[1].kernel is None
    projection.bias[:] = rng.standard_normal(n_post)
    outs = [np.empty((B, n_post), dtype) for _ in twins]
    for t in twins:
        t.sync()
    for _ in range(40):
        group.fire(rng, fraction)
        for t, out in zip(twins, outs):
            t.advance(out)
        assert twins[0].Z.dtype == np.dtype(dtype)
        assert np.array_equal(twins[0].Z, twins[1].Z) and np.array_equal(twins[0].R, twins[1].R)
        assert np.array_equal(*outs)
    assert (twins[0].spikes > 0) == (fraction > 0)


@pytest.mark.slow
def test_kernel_adds_spikes_out_of_order_to_rounding():
    """Brian2 fills its spikespace in ascending order, but a shuffled one must give the same
    step (to rounding), not skip spikes or read outside Wᵀ."""
    kernel = compiled.load_kernel("event_kernel")
    rng = np.random.default_rng(3)
    B, n_pre, n_post = 6, 20, 9
    weight_t = rng.standard_normal((n_pre, n_post))
    fired = np.flatnonzero(rng.random(B * n_pre) < 0.4).astype(np.int32)
    results = []
    bias = rng.standard_normal(n_post)
    for order in (fired, rng.permutation(fired)):
        Z, R, out = np.ones((B, n_post)), np.zeros((B, n_post)), np.empty((B, n_post))
        in_order = kernel.advance(Z, R, weight_t, order, len(order), 0.5, 0.9, 0.1,
                                  np.empty(n_post), bias, out)
        results.append((Z, R, out, in_order))
    (Z, R, out, all_in_order), (Z2, R2, out2, fewer) = results
    assert all_in_order == len(fired) > fewer
    for shuffled, ordered in ((Z2, Z), (R2, R), (out2, out)):
        np.testing.assert_allclose(shuffled, ordered, rtol=1e-13, atol=1e-13)
    assert np.array_equal(out, R + bias)
    trial, j = np.divmod(fired, n_pre)
    expected = np.ones((B, n_post))
    np.add.at(expected, trial, 0.5 * weight_t[j])
    np.testing.assert_allclose(Z, 0.9 * expected, rtol=1e-13)


def test_without_cython_the_numpy_path_is_used_after_one_warning(monkeypatch):
    """No Cython (or no compiler): one warning naming the kernel, and None, so that
    EventTransmission steps in NumPy; the second request does not warn again."""
    import sys
    import warnings

    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setitem(sys.modules, "Cython", None)  # import Cython now fails
    with pytest.warns(compiled.KernelWarning,
                      match=r"bioprop/event_kernel.pyx could not be compiled"):
        assert compiled.load_kernel("event_kernel") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compiled.load_kernel("event_kernel") is None
    rng = np.random.default_rng(0)
    transmission = event_pathways.EventTransmission(
        _FakeProjection(rng.standard_normal((3, 4))), _FakeGroup(rng, 8, "float64"), 2,
        jump=1.0, tau=0.02, dt=0.001)
    assert transmission.kernel is None


@pytest.mark.slow
def test_a_failing_compiler_falls_back_and_leaves_no_file(monkeypatch, tmp_path):
    """A compiler that fails: one warning, None, and nothing left in the cache."""
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    with pytest.warns(compiled.KernelWarning, match="could not be compiled"):
        assert compiled.load_kernel("event_kernel") is None
    assert list((tmp_path / "kernels").iterdir()) == []


@pytest.mark.slow
def test_a_fresh_cache_compiles_once_and_then_reuses(monkeypatch, tmp_path):
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path))
    assert compiled.load_kernel("event_kernel") is not None
    built = compiled.kernel_path("event_kernel")
    assert built.parent == tmp_path / "kernels" and list(built.parent.iterdir()) == [built]
    stamp = built.stat().st_mtime_ns
    monkeypatch.setattr(compiled, "_loaded", {})
    assert compiled.load_kernel("event_kernel") is not None
    assert built.stat().st_mtime_ns == stamp


class _FakeProjection:
    def __init__(self, weight):
        self.weight, self.bias = weight, np.zeros(weight.shape[0], weight.dtype)


class _FakeGroup:
    """The variables EventTransmission reads of a Brian2 group: traces and a spikespace."""

    def __init__(self, rng, n, dtype):
        self.arrays = {"z": rng.random(n).astype(dtype), "r": rng.random(n).astype(dtype),
                       "_spikespace": np.zeros(n + 1, np.int32)}
        self.variables = {name: _Value(a) for name, a in self.arrays.items()}

    def fire(self, rng, fraction):
        fired = np.flatnonzero(rng.random(len(self.arrays["z"])) < fraction)
        space = self.arrays["_spikespace"]
        space[:len(fired)], space[-1] = fired, len(fired)


class _Value:
    def __init__(self, array):
        self.array = array

    def get_value(self):
        return self.array


def test_a_held_layer_that_sends_its_rate_is_not_simulated(monkeypatch):
    """``spiking_target = "rate"``, trials from the twin's state: a held LIF soma's spikes
    are read by no one, so its state updater runs only in the forward phase, and training
    is bit for bit what it is with every soma simulated in every step. Recording its
    activity simulates it in every phase."""
    from bioprop.brian2.layers import SpikingLayer

    def run_counted(frozen=None):
        if frozen is not None:
            monkeypatch.setattr(SpikingLayer, "frozen", property(lambda self: frozen))
        model, protocol = _specs(start="twin", target="rate")
        engine = make_engine(model, protocol, np.random.default_rng(0))
        updater = engine.layers[1].soma.state_updater
        counted = type(updater).run
        monkeypatch.setattr(type(updater), "run",
                            lambda self: ran.append(self.name) or counted(self))
        ran = []
        x, y = np.random.default_rng(5).random((4, 8)), np.arange(4) % 3
        engine.train_batch(x, y, np.random.default_rng(1))
        monkeypatch.undo()
        return engine, ran.count(updater.name)

    frozen, steps = run_counted()
    simulated, all_steps = run_counted(frozen=False)
    phases = frozen.train_phases
    assert [p.name for p in phases][0] == "forward" and len(phases) > 2
    assert (steps, all_steps) == (phases[0].steps, sum(p.steps for p in phases))
    for key, value in simulated.state_arrays().items():
        if not key.startswith("brian2/"):
            np.testing.assert_array_equal(frozen.state_arrays()[key], value, err_msg=key)
    recorded = frozen.record_activity(np.random.default_rng(5).random((4, 8)), np.arange(4) % 3)
    spikes = recorded["h1"]
    late = spikes["spike_time"] >= phases[0].steps * 0.5  # ms: after the forward phase
    assert late.any(), "the recorded soma fires in the held phases too"
    assert not frozen.layers[1].observed


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
