"""A user's spiking population kind (bioprop.register.spiking_kind): the example of
docs/extensions.md trains in both engines, its simulated neurons fire at its declared twin's
rate over the inputs its layer received, it continues bit for bit from a saved network, and
what cannot be registered is one message each."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from brian2 import Clock, Network, SpikeMonitor, StateMonitor, ms, second

import bioprop
from bioprop.extensions import isolated
from bioprop.plugins import load_entry_points
from bioprop.populations import POPULATION_KINDS, layer_population
from bioprop.spec import LayerSpec

from conftest import assert_refused, install_package

ROOT = Path(__file__).resolve().parent.parent
#: the tolerance of the simulated rate against the twin, as a fraction of max_rate
RATE_TOLERANCE = 0.02


def _block(defining: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/extensions.md").read_text(), re.S)
    (block,) = [b for b in blocks if defining in b]
    assert len(block.strip().splitlines()) <= 30
    return block


@pytest.fixture(scope="module")
def theta():
    """The page's spiking kind, its block run as the page runs it (both engines, 3 batches)."""
    data = bioprop.load_dataset("digits")
    ns = {"bioprop": bioprop, "np": np, "x": data.x_train[:16], "y": data.y_train[:16]}
    with isolated():
        exec(compile(_block("spiking_kind("), "docs/extensions.md", "exec"), ns)
        yield ns


def test_the_documented_kind_trains_in_both_engines(theta):
    x, y, spiky = theta["x"], theta["y"], theta["spiky"]
    first = {}
    for engine in ("reference", "brian2"):
        net = bioprop.build(spiky, engine=engine, batch_size=16, dt="0.5 ms")
        before = net.weights["input_to_hidden1"].values.copy()
        steps = [net.step(x, y) for _ in range(3)]
        first[engine] = steps[0]
        moved = np.abs(net.weights["input_to_hidden1"].values - before).max()
        assert np.isfinite(moved) and moved > 1e-4, engine
        assert all(np.isfinite(s["target_hidden1"]).all() for s in steps)
    assert "theta" in net.engine.layers[1].state()
    # the same weights at the first step: the spikes' trace is the twin's rate, up to its
    # noise, which a 125 ms phase leaves large at a few Hz (one spike in the phase)
    ref, b2 = first["reference"]["rate_hidden1"].values, first["brian2"]["rate_hidden1"].values
    assert ref.max() > 0.3  # the range the comparison covers
    assert np.abs(b2 - ref).mean() < 0.025
    assert np.corrcoef(b2.ravel(), ref.ravel())[0, 1] > 0.95


def test_the_simulated_rate_is_the_twins_over_the_inputs_used(theta):
    """Constant currents over the range of drives the layer received in training: the spike
    count over 2 s and the trace's mean both within RATE_TOLERANCE of max_rate of the twin."""
    net = bioprop.build(theta["spiky"], engine="reference", batch_size=16)
    drives = net.step(theta["x"], theta["y"])["potential_hidden1"].values
    currents = np.linspace(drives.min(), drives.max(), 16)
    assert currents[0] < 0 < currents[-1]  # silent and firing neurons both
    layer = LayerSpec(name="h", size=16, population="theta")
    dt = 0.5 * ms
    population = layer_population(layer, dt)
    group = population.build("theta_probe", len(currents), Clock(dt), 0, "float64")
    group.I_ff = currents
    spikes, trace = SpikeMonitor(group), StateMonitor(group, "r", record=True, dt=5 * ms)
    Network(group, spikes, trace).run(3 * second)
    counted = np.array([(spikes.t[spikes.i == i] > 1 * second).sum() for i in range(16)]) / 2.0
    twin = population.activation.fn(currents)
    assert twin.max() > 0.3
    assert np.abs(counted / 100 - twin).max() < RATE_TOLERANCE
    settled = trace.r[:, trace.t > 1 * second].mean(axis=1)
    assert np.abs(settled - twin).max() < RATE_TOLERANCE
    # the inverse: the current at which the twin fires each rate
    rates = twin[twin > 0.01]
    assert np.allclose(population.activation.fn(population.current_for(rates, 0.0)), rates)


def test_the_kinds_record_is_complete_and_its_group_takes_synaptic_input(theta):
    """What the engines read of a kind (as tests/test_population_kinds.py checks the built-in
    ones), and the group the standalone forward pass builds, its I_ff fed by synapses."""
    kind, dt = POPULATION_KINDS["theta"], 0.5 * ms
    layer = LayerSpec(name="h", size=4, population="theta")
    assert kind.spiking and kind.spikes and not kind.stochastic and kind.synaptic_input
    assert kind.max_rate(layer, dt) == 100 and kind.dendrite(layer, dt).name == "linear"
    population = layer_population(layer, dt)
    for synaptic in (False, True):
        group = population.build(f"theta_{synaptic}", 4, Clock(dt), 0, "float64",
                                 synaptic_input=synaptic)
        assert {*kind.state_variables, kind.rate_variable} <= set(group.variables)
        assert set(re.findall(r"[A-Za-z_]\w*", kind.jump())) <= set(group.variables)
    group.I_ff_bias = 1.0  # the synapses' bias alone: the twin's rate at I = 1
    spikes = SpikeMonitor(group)
    Network(group, spikes).run(1 * second)
    assert np.abs(spikes.count / 100 - population.activation.fn(np.ones(4))).max() < RATE_TOLERANCE


def test_a_saved_network_of_the_kind_continues_bit_for_bit(theta, tmp_path):
    net = bioprop.build(theta["spiky"], engine="brian2", batch_size=16, dt="0.5 ms")
    net.step(theta["x"], theta["y"])
    net.save(tmp_path / "theta.npz")
    again = bioprop.Network.load(tmp_path / "theta.npz")
    assert again.step(theta["x"], theta["y"]).identical(net.step(theta["x"], theta["y"]))


def _rate(I, layer):
    return 50.0 * np.maximum(I, 0)


def _current(nu, layer):
    return nu / 50.0


def _equations(layer):
    return "dv/dt = (-v + I) / tau : 1"


def _kind(name="mine", **keys):
    options = dict(threshold="v > 1", reset="v = 0", rate=_rate, current=_current, max_rate=100)
    return lambda: bioprop.register.spiking_kind(name, **{**options, **keys})(_equations)


@pytest.mark.parametrize("register,message", [
    (_kind(threshold=None), "spiking kind 'mine': no threshold: give threshold=\"...\", e.g. "
                            "threshold=\"v > 1\" (got None)"),
    (_kind(reset=""), "spiking kind 'mine': no reset: give reset=\"...\", e.g. reset=\"v = 0\" "
                      "(got '')"),
    (_kind(rate=lambda I, layer: 50 * np.abs(I)),
     "spiking kind 'mine': its rate twin is not monotone: it falls from 200 Hz at I = -4 to "
     "199.5 Hz at I = -3.99; the inverse needs a non-decreasing f-I curve"),
    (_kind(current=lambda nu, layer: nu / 25.0),
     "spiking kind 'mine': its inverse is not the twin's: rate(current(0.5 Hz)) = 1 Hz"),
    (_kind(rate=lambda I, layer: I), "spiking kind 'mine': its rate twin must give a finite "
                                     "rate ≥ 0 (Hz) for each current of an array; on [-4, 4] it "
                                     "does not"),
    (_kind(rate=lambda current: current), "spiking kind 'mine': rate: the function must take "
                                          "(current, layer): too many positional arguments"),
    (_kind("lif"), "population kind 'lif' is built in and cannot be replaced; register yours "
                   "under another name"),
    (_kind(max_rate=0), "spiking kind 'mine': max_rate must be a positive number of Hz, or None "
                        "for the layer's max_rate; got 0"),
    (_kind(dendrite_activation="linaer"), "spiking kind 'mine': dendrite_activation: unknown "
                                          "'linaer'."),
    (lambda: bioprop.register.spiking_kind("mine", threshold="z > 1", reset="z = 0", rate=_rate,
                                           current=_current)(lambda layer: "dz/dt = -z / tau : 1"),
     "spiking kind 'mine': its equations define 'z', which bioprop adds itself (I, I_ff, "
     "I_apical, z, r, tau, tau_trace, max_rate)"),
])
def test_what_cannot_be_registered_is_one_error(register, message):
    assert_refused(register, message, POPULATION_KINDS, "mine")


def test_a_registered_kind_is_a_name_of_the_spec_with_did_you_mean():
    with isolated():
        _kind()()
        model = bioprop.load_model(None, ["layers.hidden1.population=mine"])
        assert model.layers[0].population == "mine"
        with pytest.raises(bioprop.SpecError, match=r"Did you mean 'mine'\?$"):
            bioprop.load_model(None, ["layers.hidden1.population=mien"])


def test_an_installed_package_registers_a_spiking_kind(tmp_path, monkeypatch):
    install_package(tmp_path, monkeypatch, "pkg_kinds",
                    "[bioprop.populations]\npkg_theta = pkg_kinds:theta\n",
                    "import bioprop\nimport numpy as np\n" + _block("spiking_kind(")
                    .split("\nspiky")[0].replace('"theta", threshold', '"pkg_theta", threshold'))
    from importlib.metadata import entry_points
    with isolated():
        assert load_entry_points(lambda group: entry_points(group=group)) == [
            "bioprop.populations:pkg_theta"]
        assert POPULATION_KINDS["pkg_theta"].spikes
    assert "pkg_theta" not in POPULATION_KINDS
    sys.modules.pop("pkg_kinds", None)
