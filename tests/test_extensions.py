"""User extensions (bioprop.register): the examples of docs/extensions.md run in both engines,
each extension does in the Brian2 engine what it does in the reference, and the registries
refuse what they cannot run, in one message, and forget what a test registered."""
import re
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import bioprop
from bioprop.errors import SpecError
from bioprop.extensions import ExtensionError, isolated, unregister
from bioprop.plugins import PluginWarning, load_entry_points
from bioprop.rules import FEEDBACK_OBJECTIVES, TARGET_RULES

from conftest import assert_close, install_package

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"network": {"input_size": 64},
         "layers": [{"name": "hidden1", "size": 24}, {"name": "hidden2", "size": 16},
                    {"name": "output", "size": 10, "activation": "linear"}]}
#: dt = τ = τ_apical: Euler settles in one step, so the engines agree to rounding
EXACT = {"training": {"batch_size": 8},
         "phases": {"dt": "10 ms", "forward": "30 ms", "feedback": "30 ms", "target": "30 ms"}}

#: dt = 2 ms, which a synaptic filter of 2 ms needs, and phases in which 10 ms settles
SHORT = {"training": {"batch_size": 8},
         "phases": {"dt": "2 ms", "forward": "60 ms", "feedback": "20 ms", "target": "40 ms"}}


@pytest.fixture(scope="module")
def xy():
    data = bioprop.load_dataset("digits")
    return data.x_train[:8], data.y_train[:8]


@pytest.fixture(scope="module")
def documented():
    """The page's blocks, run in order in one namespace; what they registered is removed."""
    text = (ROOT / "docs/extensions.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace = {}
    with isolated(), warnings.catch_warnings():
        warnings.simplefilter("error")  # an example that warns is not one to copy
        for i, block in enumerate(blocks):
            assert len(block.strip().splitlines()) <= 30, f"block {i + 1} is over 30 lines"
            exec(compile(block, f"docs/extensions.md block {i + 1}", "exec"), namespace)
    return {**namespace, "blocks": blocks}


@pytest.fixture
def examples(documented):
    """The documented extensions registered again, for one test."""
    ns = documented
    with isolated():
        bioprop.register.target_rule("halfway")(ns["halfway"])
        bioprop.register.target_rule("inverted", kind="difference")(ns["inverted"])
        bioprop.register.feedback_objective("anchored", points=("noisy", "clean"))(ns["anchored"])
        bioprop.register.activation("softsign", derivative=lambda v: 1 / (1 + np.abs(v)) ** 2,
                                    inverse=lambda r: r / (1 - np.abs(r)),
                                    brian2="{x} / (1 + abs({x}))")(ns["softsign"])
        bioprop.register.population_kind("filtered", activation="tanh")(ns["filtered"])
        yield ns


def _steps(model, protocol, x, y, **overrides):
    """One step of the same network in each engine: {engine: Dataset}."""
    return {engine: bioprop.build(model, protocol, engine=engine, overrides=overrides).step(x, y)
            for engine in ("reference", "brian2")}


def _agree(steps, rtol, names=("rate_", "target_", "update_", "feedback_loss_")):
    ref, b2 = steps["reference"], steps["brian2"]
    compared = [v for v in ref.data_vars if str(v).startswith(names)]
    assert compared
    for name in compared:
        assert_close(b2[name].values, ref[name].values, rtol, name)


def test_the_documented_examples_run_in_both_engines(documented):
    assert len(documented["blocks"]) == 8
    steps = documented["steps"]
    assert set(steps) == {"reference", "brian2"}
    _agree(steps, 1e-2, ("rate_", "target_"))  # the default phases: settled to about 1e-4
    for name in ("halfway", "inverted", "anchored"):  # the page's registrations are gone
        assert name not in TARGET_RULES and name not in FEEDBACK_OBJECTIVES


def test_an_inverse_rule_runs_as_dtp_does(examples, xy):
    x, y = xy
    dtp = bioprop.build(SMALL, EXACT, engine="reference").targets(x, y)
    half = bioprop.build(SMALL, EXACT, engine="reference",
                         overrides={"rule.target": "halfway"}).targets(x, y)
    # below the top, the change is half DTP's (hidden2 from the output's own target)
    assert_close(half["target_hidden2"] - half["rate_hidden2"],
                 0.5 * (dtp["target_hidden2"] - dtp["rate_hidden2"]), 1e-12, "hidden2")
    _agree(_steps(SMALL, EXACT, x, y, **{"rule.target": "halfway"}), 1e-9)


def test_a_difference_rule_inverts_each_layer_in_both_engines(examples, xy):
    x, y = xy
    net = bioprop.build(SMALL, EXACT, engine="reference", overrides={"rule.target": "inverted"})
    asked = net.targets(x, y)
    model = net.engine.model
    # W_3 (10 × 16) has full row rank: f_3 fires the output's target from hidden2's exactly
    _, reached = model.f(3, asked["target_hidden2"].values)
    assert_close(reached, asked["target_output"].values, 1e-9, "f_3(target of hidden2)")
    _agree(_steps(SMALL, EXACT, x, y, **{"rule.target": "inverted"}), 1e-9)


def test_an_objective_at_two_points_trains_g_in_both_engines(examples, xy):
    x, y = xy
    steps = _steps(SMALL, EXACT, x, y, **{"rule.feedback": "anchored"})
    ref = steps["reference"]
    noisy = ref["reconstruction_hidden2_to_hidden1"].sel(point="noisy")
    clean = ref["reconstruction_hidden2_to_hidden1"].sel(point="clean")
    h, eps = ref["rate_hidden1"], ref["noise_hidden1"]
    by_hand = (((noisy - h - eps) ** 2).sum("hidden1") + ((clean - h) ** 2).sum("hidden1"))
    assert float(ref["feedback_loss_hidden2_to_hidden1"]) == pytest.approx(
        float(by_hand.mean()), rel=1e-12)
    _agree(steps, 1e-9)
    assert float(abs(ref["update_hidden2_to_hidden1"]).max()) > 0


def test_an_activation_runs_the_same_in_both_engines(examples, xy):
    x, y = xy
    soft = {**SMALL, "layers": [{**SMALL["layers"][0], "activation": "softsign"},
                                *SMALL["layers"][1:]]}
    steps = _steps(soft, EXACT, x, y)
    rate = steps["reference"]["rate_hidden1"].values
    assert_close(rate, examples["softsign"](steps["reference"]["potential_hidden1"].values),
                 1e-15, "softsign")
    _agree(steps, 1e-9)


def test_a_population_kind_settles_where_the_reference_computes(examples, xy, tmp_path):
    x, y = xy
    slow = {**SMALL, "layers": [{**SMALL["layers"][0], "population": "filtered"},
                                *SMALL["layers"][1:]]}
    fine = {"training": {"batch_size": 8}, "phases": {"dt": "0.5 ms", "forward": "200 ms",
                                                       "feedback": "200 ms", "target": "200 ms"}}
    _agree(_steps(slow, fine, x, y), 1e-3, ("rate_", "target_"))
    net = bioprop.build(slow, SHORT, engine="brian2")
    net.step(x, y)
    assert "brian2/1/s" in net.engine.state_arrays()
    net.save(tmp_path / "net.npz")
    again = bioprop.Network.load(tmp_path / "net.npz")
    assert again.step(x, y).identical(net.step(x, y))


def test_a_noisy_soma_is_stochastic_and_continues_bit_for_bit(xy, tmp_path):
    x, y = xy
    with isolated():
        @bioprop.register.population_kind("noisy")
        def noisy(layer):
            return "dv/dt = (-v + I_ff) / tau + 0.05 * xi / sqrt(tau) : 1"

        model = {**SMALL, "layers": [{**SMALL["layers"][0], "population": "noisy"},
                                     *SMALL["layers"][1:]]}
        net = bioprop.build(model, SHORT, engine="brian2")
        assert net.engine.stochastic
        net.save(tmp_path / "noisy.npz")
        again = bioprop.Network.load(tmp_path / "noisy.npz")
        assert again.step(x, y).identical(net.step(x, y))
        reference = bioprop.build(model, EXACT, engine="reference").step(x, y)
        assert np.isfinite(reference["update_input_to_hidden1"]).all()


def test_registered_names_are_checked_and_suggested():
    with isolated():
        @bioprop.register.target_rule("halfway")
        def halfway(h_lower, g_target, g_forward):
            return h_lower + 0.5 * (g_target - g_forward)

        assert bioprop.load_model(None, ["rule.target=halfway"]).rule.target == "halfway"
        with pytest.raises(SpecError, match=r"Expected one of: bp, dfa, dtp, fa, gn, halfway, "
                                            r"iterative, tp\. Did you mean 'halfway'\?$"):
            bioprop.load_model(None, ["rule.target=halfwya"])
    with pytest.raises(SpecError, match=r"Expected one of: bp, dfa, dtp, fa, gn, iterative, tp\.$"):
        bioprop.load_model(None, ["rule.target=halfway"])


def _rule(h_lower, g_target, g_forward):
    return h_lower


@pytest.mark.parametrize("register,message", [
    (lambda: bioprop.register.target_rule("dtp")(_rule),
     "target rule 'dtp' is built in and cannot be replaced; register yours under another name"),
    (lambda: bioprop.register.target_rule("x y")(_rule),
     "target rule name 'x y': a name is letters, digits, '_' and '-', starting with a letter "
     "or '_'"),
    (lambda: bioprop.register.target_rule("mine", kind="differense"),
     "target rule 'mine': kind: unknown 'differense'. Expected one of: inverse, difference. "
     "Did you mean 'difference'?"),
    (lambda: bioprop.register.target_rule("mine", kind="difference")(_rule),
     "target rule 'mine' (difference): the function must take (ctx, l): missing a required "
     "argument: 'g_forward'"),
    (lambda: bioprop.register.feedback_objective("mine", points=("noisy", "clear")),
     "feedback objective 'mine': point: unknown 'clear'. Expected one of: noisy, clean, "
     "upper_noisy, drl. Did you mean 'clean'?"),
    (lambda: bioprop.register.feedback_objective("mine", points=()),
     "feedback objective 'mine': an objective with no points trains nothing; rule.feedback = "
     "\"fixed\" keeps the feedback weights as drawn"),
    (lambda: bioprop.register.activation("cube", derivative=lambda v: 2 * v ** 2)(
        lambda v: v ** 3),
     "activation 'cube': its derivative is 17.405 at v = -2.95, the slope of its function 26.1075 "
     "(check_derivative=False for a surrogate)"),
    (lambda: bioprop.register.activation("cube", derivative=lambda v: 3 * v ** 2,
                                         inverse=np.sqrt)(lambda v: v ** 3),
     "activation 'cube': φ(inverse(φ(v))) is 1.39754e-06 at v = 0.05, φ(v) 0.000125"),
    (lambda: bioprop.register.activation("cube", derivative=lambda v: 3 * v ** 2,
                                         brian2="{v} ** 3"),
     "activation 'cube': brian2='{v} ** 3' is not a template in {x} (KeyError: 'v')"),
    (lambda: bioprop.register.population_kind("flat")(lambda layer: "v : 1"),
     "population kind 'flat': its equations have no 'dv/dt = ...' line: the soma's potential v "
     "must settle on its input I_ff"),
    (lambda: bioprop.register.population_kind("own")(
        lambda layer: "dv/dt = (-v + I_ff) / tau : 1\nI_ff : 1"),
     "population kind 'own': its equations define 'I_ff', which bioprop adds itself (r, I_ff, "
     "I_nudge, tau)"),
    (lambda: bioprop.register.population_kind("kind", activation="tnah"),
     "population kind 'kind': activation: unknown 'tnah'."),
    (lambda: unregister("target_rule", "dtp"),
     "target rule 'dtp' is built in and cannot be unregistered"),
    (lambda: unregister("target_rules", "mine"),
     "extension kind: unknown 'target_rules'. Expected one of: target_rule, feedback_objective, "
     "activation, population_kind, plasticity_rule. Did you mean 'target_rule'?"),
])
def test_what_cannot_be_registered_is_one_error(register, message):
    with isolated(), pytest.raises(ExtensionError) as err:
        register()
    assert str(err.value).startswith(message)


def test_a_taken_name_needs_replace_and_unregister_frees_it():
    with isolated():
        bioprop.register.target_rule("mine")(_rule)
        with pytest.raises(ExtensionError, match="target rule 'mine' is already registered; "
                                                 "pass replace=True"):
            bioprop.register.target_rule("mine")(_rule)
        bioprop.register.target_rule("mine", kind="difference", replace=True)(lambda ctx, l: 0)
        assert not TARGET_RULES["mine"].uses_inverse
        unregister("target_rule", "mine")
        assert "mine" not in TARGET_RULES
        with pytest.raises(ExtensionError, match="no target rule 'mine' is registered"):
            unregister("target_rule", "mine")


def test_what_an_engine_cannot_run_is_refused_there(xy):
    x, y = xy
    with isolated():
        bioprop.register.activation("cube", derivative=lambda v: 3 * v ** 2)(lambda v: v ** 3)
        model = {**SMALL, "layers": [{**SMALL["layers"][0], "activation": "cube"},
                                     *SMALL["layers"][1:]]}
        assert np.isfinite(bioprop.build(model, EXACT, engine="reference").step(x, y)["loss"]).all()
        with pytest.raises(SpecError) as err:
            bioprop.build(model, EXACT, engine="brian2")
        assert str(err.value) == (
            "<model dict>: layers.hidden1.activation: activation 'cube' has no Brian2 form, so "
            "it runs in the reference engine only: set engine.name = \"reference\", or register "
            "it with brian2=\"...\"")
        bioprop.register.activation("wrong", derivative=lambda v: 3 * v ** 2,
                                    brian2="{x} ** 2")(lambda v: v ** 3)
        model["layers"][0]["activation"] = "wrong"
        with pytest.raises(ValueError, match=r"activation 'wrong': its Brian2 form '\{x\} \*\* 2' "
                                             r"gives 8.7025 at x = -2.95, its function -25.67"):
            bioprop.build(model, EXACT, engine="brian2")


def test_an_objective_that_returns_misshapen_gradients_stops_the_step(xy):
    x, y = xy
    with isolated():
        @bioprop.register.feedback_objective("short")
        def short(h_lower, noise, recon, sigma):
            return (recon["noisy"] ** 2).sum(axis=1), {"noisy": recon["noisy"][:, :1]}

        net = bioprop.build(SMALL, EXACT, engine="reference", overrides={"rule.feedback": "short"})
        with pytest.raises(ExtensionError, match=r"feedback objective 'short' returned a gradient "
                                                 r"of shape \(8, 1\) at point 'noisy'; expected "
                                                 r"its reconstruction's, \(8, 24\)"):
            net.step(x, y)


def test_an_installed_package_is_found_by_its_entry_point(tmp_path, monkeypatch):
    """A package as pip installs one: a dist-info with entry_points.txt, beside its module."""
    install_package(tmp_path, monkeypatch, "pkg_rules",
                    "[bioprop.objectives]\npkg_dtp = pkg_rules:dtp\n",
                    "import bioprop\n\n"
                    "@bioprop.register.feedback_objective('pkg_dtp')\n"
                    "def dtp(h_lower, noise, recon, sigma):\n"
                    "    diff = recon['noisy'] - (h_lower + noise)\n"
                    "    return (diff ** 2).sum(axis=1), {'noisy': 2 * diff}\n")
    from importlib.metadata import entry_points
    with isolated():
        assert load_entry_points(lambda group: entry_points(group=group)) == [
            "bioprop.objectives:pkg_dtp"]
        assert bioprop.load_model(None, ["rule.feedback=pkg_dtp"]).rule.feedback == "pkg_dtp"
    assert "pkg_dtp" not in FEEDBACK_OBJECTIVES
    sys.modules.pop("pkg_rules", None)


class _EntryPoint(SimpleNamespace):
    def load(self):
        return self.loader()


def test_packages_register_through_entry_points():
    def halfway():
        bioprop.register.target_rule("pkg_halfway")(_rule)

    def broken():
        raise ImportError("no module named 'gone'")

    groups = {"bioprop.rules": [_EntryPoint(name="pkg_halfway", value="pkg:halfway",
                                            loader=halfway),
                                _EntryPoint(name="gone", value="gone:rule", loader=broken),
                                _EntryPoint(name="silent", value="pkg:silent",
                                            loader=lambda: None)]}
    with isolated(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_entry_points(lambda group: groups.get(group, []))
        assert loaded == ["bioprop.rules:pkg_halfway"]
        assert bioprop.load_model(None, ["rule.target=pkg_halfway"]).rule.target == "pkg_halfway"
    messages = [str(w.message) for w in caught if w.category is PluginWarning]
    assert messages == [
        "entry point 'gone' of group 'bioprop.rules' (gone:rule) failed to load and is left "
        "out: ImportError: no module named 'gone'",
        "entry point 'silent' of group 'bioprop.rules' (pkg:silent) loaded, but registered no "
        "target rule of that name: register it with @bioprop.register.target_rule('silent')"]
    assert "pkg_halfway" not in TARGET_RULES
