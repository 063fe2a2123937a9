"""Shared fixtures: small specs and models for both engines, and a clean slate per test."""
from dataclasses import replace

import brian2
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bioprop.extensions import isolated
from bioprop.spec import parse_model, parse_protocol
from bioprop.training import make_engine


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    # The suite runs on 2 shared cores; BLAS threads only add contention.
    with threadpool_limits(1):
        yield


def global_state():
    """What a test may change behind the suite's back: Brian2's preferences, device and
    default clock, and NumPy's global generator (which Brian2's runtime targets draw from)."""
    return {"prefs": dict(brian2.prefs), "device": brian2.get_device(),
            "dt": brian2.defaultclock.dt, "numpy": np.random.get_state()}


def restore_global_state(state):
    """Put back what :func:`global_state` saw.

    A device left active (a standalone build that failed half-way) first forgets the code
    it queued, so that the next build starts from nothing.
    """
    device = brian2.get_device()
    if device is not state["device"]:
        device.reinit()
        brian2.set_device(state["device"])
    brian2.defaultclock.dt = state["dt"]
    brian2.prefs.update(state["prefs"])
    np.random.set_state(state["numpy"])


@pytest.fixture(autouse=True)
def _clean_global_state():
    """Every test leaves Brian2 and NumPy's global generator as it found them, whatever it
    set (``prefs.codegen.target``, a standalone device, ``np.random.seed``...), and the
    registries as they were: what a test registers (bioprop.register) ends with it."""
    state = global_state()
    with isolated():
        yield
    restore_global_state(state)


def small_model_spec(sizes=(6, 5, 4, 4, 3), activations=None, **rule):
    activations = activations or ["tanh"] * (len(sizes) - 2) + ["linear"]
    layers = [{"name": f"l{i}", "size": n, "activation": a}
              for i, (n, a) in enumerate(zip(sizes[1:], activations), start=1)]
    return parse_model({"network": {"input_size": sizes[0]}, "layers": layers, "rule": rule,
                        "optimizer": {"forward": {"name": "sgd", "lr": 0.1},
                                      "feedback": {"name": "sgd", "lr": 0.1}}})


def phases(dt="10 ms", length="10 ms"):
    return parse_protocol({"phases": {"dt": dt, "forward": length, "feedback": length,
                                      "target": length}})


#: builds models only: make_engine's reference engine costs nothing to construct
_MODEL_ONLY = parse_protocol({"engine": {"name": "reference"}})


def model_for(spec, seed=0, protocol=None):
    """The initial model :func:`bioprop.training.make_engine` builds for `spec` from
    ``default_rng(seed)``, at the time step and dtype of `protocol` (default: the
    default protocol's)."""
    protocol = _MODEL_ONLY if protocol is None else replace(
        protocol, engine=replace(protocol.engine, name="reference"))
    return make_engine(spec, protocol, np.random.default_rng(seed)).model


def assert_close(actual, expected, rtol, what=""):
    """Relative max-norm error, with a message that says how far off and where."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(np.abs(expected).max(), 1e-12)
    err = np.abs(actual - expected).max() / scale
    where = np.unravel_index(np.abs(actual - expected).argmax(), expected.shape)
    assert err < rtol, (f"{what}: relative error {err:.3g} ≥ {rtol:g} (worst at index {where}: "
                        f"{actual[where]!r} vs {expected[where]!r})")


def with_spikes(record_activity):
    """Wrap an engine's ``record_activity`` so that every layer also returns spikes.

    A stand-in for the spiking populations to come: each neuron integrates 0.5·|rate| per
    recorded time point and spikes at every whole unit it crosses. Steady states
    (trial, neuron) count as 10 time points 10 ms apart, so a tanh neuron of rate r fires
    floor(5·|r|) spikes in 100 ms.
    """
    def recording(self, x, y, every=1):
        out = record_activity(self, x, y, every)
        times = out.get("_coords", {}).get("time")
        for name, values in out.items():
            if name == "_coords":
                continue
            rate = np.abs(values["rate"])
            if rate.ndim == 2:
                rate, times = np.repeat(rate[:, None, :], 10, axis=1), np.arange(10) * 10.0
            crossed = np.floor(0.5 * np.cumsum(rate, axis=1))
            trial, step, neuron = np.nonzero(np.diff(crossed, axis=1, prepend=0) > 0)
            values.update(spike_trial=trial, spike_time=np.asarray(times)[step],
                          spike_neuron=neuron)
        return out
    return recording


@pytest.fixture(scope="session")
def spiking_run(tmp_path_factory):
    """A short Brian2 run whose recorded probe trials carry (stand-in) spikes."""
    import bioprop
    from bioprop.brian2 import Brian2Engine

    path = tmp_path_factory.mktemp("spiking") / "spiking.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Brian2Engine, "record_activity", with_spikes(Brian2Engine.record_activity))
        bioprop.run(output=path, progress=False,
                    overrides=["training.epochs=1", "data.n_train=64", "data.n_test=32",
                               "record.activity_every=1", "record.activity_dt_factor=4"])
    return path


def install_package(tmp_path, monkeypatch, module: str, entry_points: str, source: str):
    """A package as pip installs one, importable: a dist-info beside its module `module`,
    whose ``entry_points.txt`` is `entry_points` and whose module's text is `source`."""
    info = tmp_path / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


def assert_refused(register, message: str, registry: dict, name: str):
    """`register()` raises one ExtensionError starting with `message`, and leaves `name` out
    of `registry`."""
    from bioprop.extensions import ExtensionError

    with isolated():
        with pytest.raises(ExtensionError) as caught:
            register()
        assert str(caught.value).startswith(message)
        assert name not in registry
