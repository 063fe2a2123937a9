"""Activity logging: what the file holds, that it is right, and that it changes nothing."""

import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.activations import get_activation

RUN = ["training.epochs=2", "data.n_train=128", "data.n_test=32", "record.weights_every=1"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("activity")
    with_activity = folder / "with.h5"
    bioprop.run(output=with_activity, progress=False,
                overrides=RUN + ["record.activity_every=1", "record.activity_dt_factor=1"])
    without = folder / "without.h5"
    bioprop.run(output=without, progress=False, overrides=RUN + ["record.first_and_last=false"])
    return with_activity, without


def test_activity_round_trip_dims_and_units(recorded):
    tree = xr.open_datatree(recorded[0], engine="h5netcdf")
    layer = tree["layers"]["hidden1"]
    assert layer["rate"].dims == ("epoch", "trial", "time", "neuron")
    assert layer["time"].attrs["units"] == "ms"
    assert list(layer["epoch"].values) == [0, 1, 2] and layer.sizes["trial"] == 32
    assert set(layer.data_vars) == {"rate", "potential", "nudge", "apical"}
    assert "apical" not in tree["layers"]["output"].data_vars  # the top has no dendrite
    phases = tree["phases"]
    assert list(phases["name"].values) == ["forward", "noise_a", "noise_b", "settle", "target"]
    assert phases["duration"].attrs["units"] == "ms" and "phases" not in layer.attrs
    # the phases run end to end, from the trial's start to its last recorded time and beyond
    ends = phases["start"].values + phases["duration"].values
    assert phases["start"].values[0] == 0 and np.array_equal(phases["start"].values[1:], ends[:-1])
    assert ends[-1] > layer["time"].values[-1]
    # the forward phase: every soma integrates; the noise phases: only the layer above noise
    assert phases["somas"].values[0] == "hidden1 hidden2 output"
    assert phases["somas"].values[1] == "hidden2" and phases["dendrites"].values[1] == "hidden1"


def test_recorded_rates_settle_on_the_algebraic_forward_pass(recorded):
    """At the end of the forward phase the recorded rates equal the forward pass of the probe
    inputs, computed here from the weights in the file (biases: zero at epoch 0, the final
    checkpoint's at epoch 2): an independent computation."""
    from bioprop.checkpoint import load_checkpoint
    from bioprop.datasets import load_dataset

    tree = xr.open_datatree(recorded[0], engine="h5netcdf")
    times, forward = tree["layers"]["hidden1"]["time"].values, tree["phases"].isel(phase=0)
    end = times[times < float(forward["start"] + forward["duration"])].max()  # its last point
    final, _ = load_checkpoint(recorded[0])
    x = load_dataset("digits", n_train=32).x_train
    names = ["input", "hidden1", "hidden2", "output"]
    for epoch in (0, 2):
        h = x
        for l, (name, act) in enumerate((("hidden1", "tanh"), ("hidden2", "tanh"),
                                        ("output", "linear")), start=1):
            W = tree["pathways"][f"{names[l - 1]}_to_{name}"]["weight"].sel(epoch=epoch).values
            b = final[f"b_{l}"] if epoch == 2 else 0.0
            h = get_activation(act).fn(h @ W.T + b)
            recorded_rate = tree["layers"][name]["rate"].sel(epoch=epoch, time=end).values
            np.testing.assert_allclose(recorded_rate, h, atol=1e-4, err_msg=f"{name} @ {epoch}")


def test_recording_activity_changes_nothing_in_training(recorded):
    a, b = (xr.open_datatree(p, engine="h5netcdf") for p in recorded)
    np.testing.assert_array_equal(a["train"]["loss"].values, b["train"]["loss"].values)
    np.testing.assert_array_equal(a["pathways"]["input_to_hidden1"]["weight"].values,
                                  b["pathways"]["input_to_hidden1"]["weight"].values)
    assert "layers" not in b.children


def test_reference_engine_records_steady_states(tmp_path):
    path = tmp_path / "ref.h5"
    bioprop.run(output=path, progress=False,
                overrides=RUN + ["engine.name=reference", "record.activity_every=2"])
    tree = xr.open_datatree(path, engine="h5netcdf")
    hidden = tree["layers"]["hidden2"]
    assert hidden["rate"].dims == ("epoch", "trial", "neuron")
    assert list(hidden["epoch"].values) == [0, 2]
    assert "target" in hidden.data_vars


@pytest.mark.slow
def test_report_draws_the_probe_trial(recorded, tmp_path):
    import matplotlib.image as mpimg

    from bioprop.analysis.report import write_report

    write_report([recorded[0]], tmp_path / "r")
    assert mpimg.imread(tmp_path / "r" / "probe_rates.png").shape[0] > 300
    write_report([recorded[1]], tmp_path / "none")  # no activity: no activity figure
    assert not (tmp_path / "none" / "probe_rates.png").exists()


def test_spikes_round_trip_and_feed_spike_rates_and_raster(tmp_path, monkeypatch):
    """An engine whose record_activity returns spikes: the file holds them as gzip'd event
    lists along ``spike`` with the epoch of each, xarray opens them with named dims and units,
    and spike_rates / raster work on what is read back (checked against the stored rates)."""
    from bioprop.analysis import raster, recorded_spikes, spike_rates
    from bioprop.reference import ReferenceEngine
    from conftest import with_spikes

    monkeypatch.setattr(ReferenceEngine, "record_activity",
                        with_spikes(ReferenceEngine.record_activity))
    path = tmp_path / "spikes.h5"
    bioprop.run(output=path, progress=False,
                overrides=RUN + ["engine.name=reference", "record.activity_every=1"])
    tree = xr.open_datatree(path, engine="h5netcdf")
    layer = tree["layers"]["hidden1"]
    for name in ("spike_epoch", "spike_trial", "spike_time", "spike_neuron"):
        assert layer[name].dims == ("spike",), name
    assert layer["spike_time"].attrs["units"] == "ms"
    assert layer["spike_time"].dtype == np.float64 and layer["spike_neuron"].dtype == np.int64
    assert set(np.unique(layer["spike_epoch"].values)) == {0, 1, 2}
    assert np.all(np.diff(layer["spike_epoch"].values) >= 0)
    for epoch in (0, 2):
        trial, time, neuron = recorded_spikes(layer, epoch=epoch)
        counts = spike_rates(trial, time, neuron, n_trials=layer.sizes["trial"],
                             n_neurons=layer.sizes["neuron"], duration=100.0) * 100.0
        expected = np.floor(5 * np.abs(layer["rate"].sel(epoch=epoch).values))
        np.testing.assert_array_equal(counts.values, expected)
        times, neurons = raster(trial, time, neuron, trial=3)
        assert np.all(np.diff(times) >= 0) and len(times) == expected[3].sum()
    assert all(len(a) == 0 for a in recorded_spikes(tree["train"].dataset))


def test_every_kth_training_batch_is_recorded_before_it_learns(tmp_path, monkeypatch):
    """record.activity_batch_every: in each recorded epoch (≥ 1), the activity of batches 0,
    k, 2k... with dims (epoch, batch, trial, neuron), recorded from the very samples and
    weights that batch then trains with; and the run learns exactly as without it."""
    from bioprop.reference import ReferenceEngine

    calls = []
    record, train = ReferenceEngine.record_activity, ReferenceEngine.train_batch

    def spy_record(self, x, y, every=1):
        first = self.model.forward[1]
        calls.append(("record", x.copy(), first.weight.copy(), first.bias.copy()))
        return record(self, x, y, every)

    def spy_train(self, x, y, rng, learn_forward=True, **flags):
        calls.append(("train", x.copy(), self.model.forward[1].weight.copy(), None))
        return train(self, x, y, rng, learn_forward, **flags)

    monkeypatch.setattr(ReferenceEngine, "record_activity", spy_record)
    monkeypatch.setattr(ReferenceEngine, "train_batch", spy_train)
    overrides = RUN + ["engine.name=reference", "training.epochs=3", "record.activity_every=2",
                       "record.first_and_last=false"]
    path = tmp_path / "batches.h5"
    bioprop.run(output=path, progress=False, overrides=overrides + ["record.activity_batch_every=3"])
    tree = xr.open_datatree(path, engine="h5netcdf")
    hidden = tree["batches"]["hidden1"]
    assert hidden["rate"].dims == ("epoch", "batch", "trial", "neuron")
    assert list(hidden["epoch"].values) == [2] and list(hidden["batch"].values) == [0, 3]
    assert list(tree["layers"]["hidden1"]["epoch"].values) == [0, 2]  # the probe, as before

    # epoch 2 trains batches 0..3 one by one; batches 0 and 3 are recorded just before they
    # train, on their samples (the probe's records are followed by other samples)
    pairs = [i for i, c in enumerate(calls[:-1]) if c[0] == "record" and calls[i + 1][0] == "train"
             and np.array_equal(calls[i + 1][1], c[1])]
    assert len(pairs) == 2
    for j, i in zip((0, 3), pairs):
        _, x, weight, bias = calls[i]
        np.testing.assert_array_equal(calls[i + 1][2], weight)  # the weights it learns from
        expected = np.tanh(x @ weight.T + bias)  # hidden1's steady state, computed here
        np.testing.assert_allclose(hidden["rate"].sel(epoch=2, batch=j).values, expected,
                                   rtol=1e-12)

    plain = tmp_path / "plain.h5"
    monkeypatch.setattr(ReferenceEngine, "record_activity", record)
    monkeypatch.setattr(ReferenceEngine, "train_batch", train)
    bioprop.run(output=plain, progress=False, overrides=overrides)
    other = xr.open_datatree(plain, engine="h5netcdf")
    np.testing.assert_array_equal(tree["train"]["loss"].values, other["train"]["loss"].values)
    np.testing.assert_array_equal(tree["pathways"]["input_to_hidden1"]["weight"].values,
                                  other["pathways"]["input_to_hidden1"]["weight"].values)
    assert "batches" not in other.children


def test_brian2_batch_recording_learns_as_an_unrecorded_run(tmp_path):
    """In the Brian2 engine the recorded epochs run batch by batch (one Network.run each)
    instead of one run per epoch; the weights and figures come out the same, and the
    batches' activity has dims (epoch, batch, trial, time, neuron)."""
    from bioprop.checkpoint import load_checkpoint

    overrides = ["training.epochs=1", "data.n_train=96", "data.n_test=32",
                 "record.activity_every=1", "record.activity_dt_factor=5"]
    recorded, plain = tmp_path / "recorded.h5", tmp_path / "plain.h5"
    bioprop.run(output=recorded, progress=False, overrides=overrides + ["record.activity_batch_every=2"])
    bioprop.run(output=plain, progress=False, overrides=overrides)
    tree = xr.open_datatree(recorded, engine="h5netcdf")
    rate = tree["batches"]["hidden2"]["rate"]
    assert rate.dims == ("epoch", "batch", "trial", "time", "neuron")
    assert list(rate["batch"].values) == [0, 2] and np.isfinite(rate.values).all()
    assert tree["phases"]["name"].values[0] == "forward"
    a, b = load_checkpoint(recorded)[0], load_checkpoint(plain)[0]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    other = xr.open_datatree(plain, engine="h5netcdf")
    np.testing.assert_array_equal(tree["train"]["loss"].values, other["train"]["loss"].values)


def test_batch_recording_needs_recorded_epochs():
    from bioprop.spec import SpecError, load_protocol

    with pytest.raises(SpecError, match="--set record.activity_batch_every=2: .*record.activity_every"):
        load_protocol(overrides=["record.activity_batch_every=2"])
    with pytest.raises(SpecError, match="--set record.activity_batch_every=-1: must be ≥ 0"):
        load_protocol(overrides=["record.activity_batch_every=-1", "record.activity_every=1"])
    assert load_protocol(overrides=["record.activity_batch_every=2",
                                    "record.activity_every=5"]).record.activity_batch_every == 2


def test_activity_trials_keeps_the_first_trials_and_their_spikes(tmp_path, monkeypatch):
    """record.activity_trials = 3: the probe's dense variables, its spikes and /probe hold the
    first 3 trials of the batch, equal to those of a recording of all of them; a value over
    the batch size is one error that names the key."""
    from bioprop.reference import ReferenceEngine
    from bioprop.spec import SpecError, load_protocol
    from conftest import with_spikes

    monkeypatch.setattr(ReferenceEngine, "record_activity",
                        with_spikes(ReferenceEngine.record_activity))
    trees = {}
    for n in (0, 3):
        path = tmp_path / f"trials{n}.h5"
        bioprop.run(output=path, progress=False, overrides=RUN + [
            "engine.name=reference", "record.activity_every=1", f"record.activity_trials={n}"])
        trees[n] = xr.open_datatree(path, engine="h5netcdf")
    full, cut = trees[0]["layers"]["hidden1"], trees[3]["layers"]["hidden1"]
    assert full.sizes["trial"] == 32 and cut.sizes["trial"] == 3
    np.testing.assert_array_equal(cut["rate"].values, full["rate"].values[:, :3])
    first = full["spike_trial"].values < 3
    assert 0 < first.sum() < first.size  # the cut drops some spikes, not all
    for name in ("spike_epoch", "spike_trial", "spike_time", "spike_neuron"):
        np.testing.assert_array_equal(cut[name].values, full[name].values[first], err_msg=name)
    np.testing.assert_array_equal(trees[3]["probe"]["input"].values,
                                  trees[0]["probe"]["input"].values[:3])
    with pytest.raises(SpecError, match="record.activity_trials.*training.batch_size"):
        load_protocol(overrides=["record.activity_trials=33", "training.batch_size=32"])
