"""The Python API (bioprop.Network): built from files or dicts, arrays by name, one batch
at a time, whole runs, and saved networks that continue bit for bit, in both engines."""
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.api import Network, NetworkArrayError, NetworkFileError, build
from bioprop.batching import epoch_batches
from bioprop.datasets import load_dataset, subset
from bioprop.errors import SpecError
from bioprop.spec import to_toml

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ["reference", "brian2"]

#: a small network and a short protocol, as plain dicts (no TOML)
MODEL = {"network": {"name": "tiny", "input_size": 64},
         "layers": [{"name": "hidden1", "size": 12}, {"name": "hidden2", "size": 10},
                    {"name": "output", "size": 10, "activation": "linear"}],
         "optimizer": {"forward": {"name": "adam"}}}
PROTOCOL = {"data": {"n_train": 64, "n_test": 32}, "training": {"epochs": 1, "batch_size": 8},
            "phases": {"dt": "5 ms", "forward": "35 ms", "feedback": "15 ms",
                       "target": "35 ms"},
            "record": {"probe_size": 8, "weights_every": 1, "first_and_last": False}}

#: the same with random binary units, which draw from NumPy's global generator in Brian2
BERNOULLI = {**MODEL, "layers": [{"name": "hidden1", "size": 12, "population": "bernoulli",
                                  "tau_trace": "4 ms"},
                                 *MODEL["layers"][1:]]}


@pytest.fixture(scope="module")
def data():
    return subset(load_dataset("digits", seed=1), 64, 32)


def tiny(engine, **keywords):
    return build(MODEL, PROTOCOL, engine=engine, **keywords)


def state(net):
    """Every array of the network, Brian2's generator (its own, see Network._running) too."""
    with net._running():
        return {k: v.copy() for k, v in net.engine.state_arrays().items()}


def assert_same_state(a, b):
    sa, sb = state(a), state(b)
    assert sorted(sa) == sorted(sb)
    different = [k for k in sa if not np.array_equal(sa[k], sb[k])]
    assert not different, f"arrays differ: {different}"
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


@pytest.mark.parametrize("engine", ENGINES)
def test_save_load_step_is_bit_for_bit(tmp_path, data, engine):
    net = tiny(engine)
    x, y = data.x_train[:8], data.y_train[:8]
    net.step(x, y)  # optimizer state and populations' state are not at their start
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    assert loaded.engine.name == engine and to_toml(loaded.protocol) == to_toml(net.protocol)
    assert_same_state(net, loaded)
    first, second = net.step(x[::-1], y[::-1]), loaded.step(x[::-1], y[::-1])
    assert_same_state(net, loaded)
    xr.testing.assert_identical(first, second)


def test_stochastic_networks_draw_as_their_runs_do(tmp_path, data):
    """Bernoulli units draw from NumPy's global generator: each network keeps its own state
    of it, so a saved and loaded network, stepped in turn with the original, repeats it bit
    for bit, and the caller's global generator is left alone."""
    model = BERNOULLI
    net = build(model, PROTOCOL, engine="brian2")
    assert net.engine.stochastic
    x, y = data.x_train[:8], data.y_train[:8]
    net.step(x, y)
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    outside = np.random.get_state()
    for _ in range(2):
        xr.testing.assert_identical(net.step(x, y), loaded.step(x, y))
    assert_same_state(net, loaded)
    assert all(np.array_equal(a, b) for a, b in zip(outside[1:], np.random.get_state()[1:]))
    other = build(model, {**PROTOCOL, "training": {"batch_size": 8, "seed": 2}}, engine="brian2")
    assert not state(other)["brian2/rng"].tolist() == state(net)["brian2/rng"].tolist()


@pytest.mark.parametrize("engine, model", [("reference", MODEL), ("brian2", MODEL),
                                           ("brian2", BERNOULLI)])
def test_step_is_one_batch_of_the_training_loop(data, engine, model):
    """Stepping through an epoch's batches, in the order the generator draws them, leaves
    the network as the engine's own epoch does, to the bit; with random units too, though
    another network steps in between (each draws from its own generator state)."""
    stepped, trained = build(model, PROTOCOL, engine=engine), build(model, PROTOCOL, engine=engine)
    other = build(model, {**PROTOCOL, "training": {"batch_size": 8, "seed": 5}}, engine=engine)
    for index in epoch_batches(len(data.x_train), 8, stepped.rng):
        stepped.step(data.x_train[index], data.y_train[index])
        other.step(data.x_train[index], data.y_train[index])
    with trained._running():  # as Network.fit runs its engine
        trained.engine.train_epoch(data.x_train, data.y_train, trained.rng)
    assert_same_state(stepped, trained)


@pytest.mark.parametrize("engine", ENGINES)
def test_step_returns_the_documented_variables_and_dims(data, engine):
    net = tiny(engine)
    before = net.weights
    out = net.step(data.x_train[:8], data.y_train[:8])
    layers = ["hidden1", "hidden2", "output"]
    pathways = ["input_to_hidden1", "hidden1_to_hidden2", "hidden2_to_output",
                "hidden2_to_hidden1", "output_to_hidden2"]
    for layer in layers:
        for var in ("rate", "potential", "target"):
            assert out[f"{var}_{layer}"].dims == ("sample", layer)
    assert out["rate_input"].dims == ("sample", "input")
    assert {"noise_hidden1", "noise_hidden2"} <= set(out.data_vars)
    assert out["loss"].dims == ("sample",)
    assert out["reconstruction_hidden2_to_hidden1"].dims == ("point", "sample", "hidden1")
    assert out["reconstruction_input_hidden2_to_hidden1"].dims == ("point", "sample", "hidden2")
    assert list(out["point"].values) == ["noisy"]
    for name in pathways:
        post, pre = name.split("_to_")[::-1]
        assert out[f"gradient_{name}"].dims == (post, pre)
        assert out[f"bias_gradient_{name}"].dims == (post,)
        np.testing.assert_array_equal(out[f"update_{name}"], net.weights[name] - before[name])
    assert float(abs(out["update_input_to_hidden1"]).max()) > 0
    assert out.sizes["sample"] == 8 and out.sizes["hidden1"] == 12
    # the rates are the network's forward pass of x
    np.testing.assert_array_equal(out["rate_input"], data.x_train[:8])


@pytest.mark.parametrize("engine", ENGINES)
def test_predict_and_targets_change_nothing(data, engine):
    net, same = tiny(engine), tiny(engine)
    x, y = data.x_train[:8], data.y_train[:8]
    out = net.predict(data.x_test[:5])
    assert out.dims == ("sample", "output") and out.shape == (5, 10)
    targets = net.targets(x, y)
    assert not any("gradient" in str(v) or "update" in str(v) for v in targets.data_vars)
    assert_same_state(net, same)
    # what targets() reports is what the next step starts from
    stepped = net.step(x, y)
    for layer in ("hidden1", "hidden2", "output"):
        np.testing.assert_allclose(targets[f"rate_{layer}"], stepped[f"rate_{layer}"],
                                   rtol=0, atol=1e-12 if engine == "reference" else 1e-3)


def test_predict_is_the_forward_pass(data):
    net = tiny("reference")
    h = data.x_test
    for l in (1, 2, 3):
        h = net.engine.model.f(l, h)[1]
    np.testing.assert_array_equal(net.predict(data.x_test), h)


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_set_and_get_by_name(engine):
    net = tiny(engine)
    weights = net.weights
    assert weights["input_to_hidden1"].dims == ("hidden1", "input")
    assert weights["hidden2_to_hidden1"].dims == ("hidden1", "hidden2")
    assert weights["hidden2_to_hidden1"].attrs["pathway"] == "feedback"
    net.weights = weights * 2  # a Dataset
    xr.testing.assert_identical(net.weights, weights * 2)
    # a mapping of one pathway; a DataArray is transposed by its dims
    new = xr.DataArray(np.ones((64, 12)), dims=("input", "hidden1"))
    net.weights = {"input_to_hidden1": new}
    np.testing.assert_array_equal(net.engine.model.forward[1].weight, np.ones((12, 64)))
    np.testing.assert_array_equal(net.weights["hidden1_to_hidden2"],
                                  2 * weights["hidden1_to_hidden2"])
    net.biases = {"hidden2_to_hidden1": np.full(12, 0.5)}
    np.testing.assert_array_equal(net.engine.model.feedback[2].bias, np.full(12, 0.5))
    # returned arrays are copies
    net.weights["hidden2_to_output"][...] = 7
    assert not np.any(net.engine.model.forward[3].weight == 7)


def test_weights_that_do_not_fit_are_one_line_errors_and_change_nothing():
    net = tiny("reference")
    before = state(net)
    cases = {
        "input_to_hidden1: shape (3, 4), expected (12, 64) (hidden1 12, input 64)":
            {"input_to_hidden1": np.zeros((3, 4))},
        "input_to_hidden1: dims ('hidden1', 'pixel'), expected ('hidden1', 'input')":
            {"input_to_hidden1": xr.DataArray(np.zeros((12, 64)), dims=("hidden1", "pixel"))},
        "no pathway 'input_to_hiden1'; the network's are input_to_hidden1, hidden1_to_hidden2, "
        "hidden2_to_output, hidden2_to_hidden1, output_to_hidden2. Did you mean "
        "'input_to_hidden1'?": {"input_to_hiden1": np.zeros((12, 64))},
    }
    for message, value in cases.items():
        with pytest.raises(NetworkArrayError) as err:
            net.weights = {"hidden1_to_hidden2": np.zeros((10, 12)), **value}
        assert str(err.value) == message
        assert "\n" not in str(err.value)
    after = state(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_a_sparse_pathway_keeps_its_absent_connections_at_zero():
    net = build(MODEL, PROTOCOL, engine="reference",
                overrides={"layers.hidden1.p_connect": 0.5})
    with pytest.raises(NetworkArrayError, match=r"^input_to_hidden1: \d+ weights at "
                                                 r"connections this sparse pathway lacks"):
        net.weights = {"input_to_hidden1": np.ones((12, 64))}
    net.weights = {"input_to_hidden1": net.weights["input_to_hidden1"] * 3}  # fine


def test_optimizer_state_by_name_round_trips(data):
    net = tiny("reference")
    net.step(data.x_train[:8], data.y_train[:8])
    state = net.optimizer_state
    assert state["forward/t"] == 1  # adam's step count
    assert state["forward/m/input_to_hidden1"].shape == (12, 64)
    assert state["forward/m/input_to_hidden1/bias"].shape == (12,)
    assert state["feedback/mean_square/hidden2_to_hidden1"].shape == (12, 10)
    other = tiny("reference")
    other.weights, other.biases, other.optimizer_state = net.weights, net.biases, state
    x, y = data.x_train[8:16], data.y_train[8:16]
    other.rng.bit_generator.state = net.rng.bit_generator.state
    xr.testing.assert_identical(net.step(x, y), other.step(x, y))
    with pytest.raises(NetworkArrayError, match=r"^forward/m/input_to_hidden1: shape \(2,\), "
                                                 r"expected \(12, 64\)$"):
        net.optimizer_state = {"forward/m/input_to_hidden1": np.zeros(2)}


def test_dicts_build_what_the_files_build():
    def tables(path):
        text = (ROOT / path).read_text()
        return tomllib.loads(text)

    from_files = build(ROOT / "models/default.toml", ROOT / "protocols/default.toml",
                       engine="reference")
    from_dicts = build(tables("models/default.toml"), tables("protocols/default.toml"),
                       engine="reference")
    by_default = build(engine="reference")
    specs = Network(bioprop.load_model(), bioprop.load_protocol(None, ["engine.name=reference"]))
    respecified = build(bioprop.load_model(), bioprop.load_protocol(), engine="reference")
    for net in (from_dicts, by_default, specs, respecified):
        assert to_toml(net.model_spec) == to_toml(from_files.model_spec)
        assert to_toml(net.protocol) == to_toml(from_files.protocol)
        assert_same_state(net, from_files)


def test_settings_as_keywords_and_overrides():
    net = build("default", engine="reference", epochs=5, seed=3, batch_size=16,
                overrides={"layers.hidden1.size": 32, "rule.target": "tp"})
    assert (net.protocol.training.epochs, net.protocol.training.seed) == (5, 3)
    assert net.protocol.training.batch_size == 16 and net.engine.batch_size == 16
    assert net.model_spec.layers[0].size == 32 and net.model_spec.rule.target == "tp"
    assert net.weights["input_to_hidden1"].shape == (32, 64)
    same = build("default", overrides=["engine.name=reference", "training.epochs=5",
                                       "training.seed=3", "training.batch_size=16",
                                       "layers.hidden1.size=32", "rule.target=tp"])
    assert to_toml(same.protocol) == to_toml(net.protocol)
    assert_same_state(same, net)
    assert bioprop.load_model("lif").protocol  # a shipped name brings its usual protocol
    assert build("lif", engine="reference").protocol.phases.dt.text == \
        bioprop.load_protocol("spiking").phases.dt.text


@pytest.mark.parametrize("call, message", [
    (lambda: build(MODEL, PROTOCOL, epoch=5),
     "epoch=5: no key of a model or protocol is called 'epoch'; give a dotted key in "
     "overrides, e.g. overrides={'rule.target': 'tp'}. Did you mean 'epochs'?"),
    (lambda: build(MODEL, PROTOCOL, lr=0.1),
     "lr=0.1: 'lr' is a key of several tables (optimizer.feedback.lr, optimizer.forward.lr): "
     "give one in overrides, e.g. overrides={'optimizer.feedback.lr': 0.1}"),
    (lambda: build(MODEL, PROTOCOL, epochs=0),
     "--set training.epochs=0: must be positive, got 0"),
    (lambda: build(MODEL, PROTOCOL, engine="refrence"), None),
    (lambda: build({**MODEL, "rule": {"targte": "tp"}}, PROTOCOL), None),
    (lambda: build(MODEL, 5), "protocol: expected a path, a shipped name, a ProtocolSpec or a "
                              "dict of its tables, got int"),
])
def test_bad_settings_are_one_line_spec_errors(call, message):
    with pytest.raises(SpecError) as err:
        call()
    text = str(err.value)
    assert "\n" not in text
    if message is not None:
        assert text == message
    elif "refrence" in text:
        assert "Did you mean 'reference'?" in text
    else:
        assert text.startswith("<model dict>: unknown key 'rule.targte'") and "'target'" in text


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_writes_the_run_file_bioprop_run_writes(tmp_path, data, engine):
    net = tiny(engine)
    result = net.fit(record=tmp_path / "api.h5")
    run = bioprop.run(net.model_spec, net.protocol, output=tmp_path / "cli.h5",
                      progress=False)
    assert result.history[0]["loss"] == run.history[0]["loss"]
    assert result.test_accuracy == run.test_accuracy
    api, cli = bioprop.open_run(result.path), bioprop.open_run(run.path)
    try:
        assert list(api["train"]["epoch"].values) == [1]
        for name in net.weights.data_vars:
            recorded = api["pathways"][name]["weight"].sel(epoch=1).values
            np.testing.assert_array_equal(recorded, net.weights[name])
            np.testing.assert_array_equal(recorded, cli["pathways"][name]["weight"].sel(epoch=1))
    finally:
        api.close()
        cli.close()


def test_fit_takes_epochs_data_and_record_keys(tmp_path, data):
    net = tiny("reference")
    result = net.fit(data=data, epochs=2,
                     record={"path": str(tmp_path / "r-{seed}.h5"), "weights_every": 1})
    assert result.epochs == 2 and result.path == tmp_path / "r-1.h5"
    tree = bioprop.open_run(result.path)
    try:
        assert list(tree["pathways"]["input_to_hidden1"]["epoch"].values) == [0, 1, 2]
    finally:
        tree.close()
    assert net.protocol.training.epochs == 1  # the network's own protocol is unchanged


def test_batches_that_do_not_fit_are_one_line_errors(data):
    net = tiny("brian2")
    x, y = data.x_train[:8], data.y_train[:8]
    for call, message in [
        (lambda: net.step(x[:, :10], y), "x: float64 array of shape (8, 10), expected numbers "
                                         "of shape (samples, 64) for input layer of 64"),
        (lambda: net.step(x[:5], y[:5]), "x: 5 samples, but a batch of the Brian2 engine is "
                                         "exactly training.batch_size = 8 trials"),
        (lambda: net.step(x, np.arange(8) + 5), "y: labels from 5 to 12, expected classes 0 "
                                                "to 9 of the output layer"),
        (lambda: net.targets(x, y[:3]), "y: shape (3,), expected (8,) class labels or (8, 10) "
                                        "targets for 8 samples"),
        (lambda: net.step(x, y * 1.0), "y: float64 labels, expected class labels as whole "
                                       "numbers (or (8, 10) targets)"),
    ]:
        with pytest.raises(NetworkArrayError) as err:
            call()
        assert str(err.value) == message


def test_a_file_that_is_not_a_saved_network_is_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "other.npz", a=np.zeros(2), __meta__=np.array('{"format": 2}'))
    for path, message in [
        (tmp_path / "missing.npz", "no such file"),
        (tmp_path / "junk.npz", "not a saved network (truncated or corrupt?)"),
        (tmp_path / "other.npz", "not a network saved by Network.save"),
    ]:
        with pytest.raises(NetworkFileError) as err:
            Network.load(path)
        assert str(err.value).startswith(f"{path}: {message}")
        assert "\n" not in str(err.value)


def _python_blocks(path, heading=None):
    text = (ROOT / path).read_text()
    if heading is not None:
        text = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_documented_examples_run(tmp_path, monkeypatch):
    """The README's Python section is docs/python-api.md's first example; every block of
    that page runs, in order, in one namespace."""
    readme, = _python_blocks("README.md", "Python API")
    blocks = _python_blocks("docs/python-api.md")
    assert readme == blocks[0]
    assert len(readme.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/python-api.md block {i + 1}", "exec"), namespace)
    assert (tmp_path / "api.h5").is_file() and (tmp_path / "api.npz").is_file()
    assert namespace["result"].epochs == 2 and namespace["again"].names == ["input", "hidden",
                                                                           "output"]


def test_refractory_neurons_continue_after_save_and_load(tmp_path, data):
    """A LIF layer's spike times are on the network's clock, which a loaded network starts
    again at 0: the saved network holds how long ago each neuron fired, so a neuron that had
    just fired is as refractory after loading as before (trials carry their state over)."""
    model = {**MODEL, "layers": [{"name": "hidden1", "size": 16, "population": "lif",
                                  "threshold": 0.2, "refractory": "5 ms"},
                                 MODEL["layers"][-1]]}
    protocol = {**PROTOCOL, "phases": {"dt": "1 ms", "forward": "20 ms", "feedback": "10 ms",
                                       "target": "20 ms", "trial_start": "carry"},
                "engine": {"codegen": "numpy"}}
    net = build(model, protocol, engine="brian2")
    x, y = data.x_train[:8], data.y_train[:8]
    net.step(x, y)
    with net._running():
        refractory = ~net.engine.dynamic_state()["brian2/1/not_refractory"]
    assert refractory.any()  # the test needs neurons that are refractory as it saves
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    for _ in range(2):
        xr.testing.assert_identical(net.step(x[::-1], y[::-1]), loaded.step(x[::-1], y[::-1]))
    assert all(np.array_equal(a, b) for a, b in zip(net.weights.data_vars.values(),
                                                    loaded.weights.data_vars.values()))
