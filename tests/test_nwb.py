"""NWB export: the file validates, and holds the run's rates and trials."""
import numpy as np
import pytest

import bioprop

pynwb = pytest.importorskip("pynwb", reason="the nwb extra: pip install 'bioprop[nwb]'")


@pytest.fixture(scope="module")
def run_with_activity(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "run.h5"
    bioprop.run(output=path, progress=False,
                overrides=["training.epochs=1", "data.n_train=64", "data.n_test=32",
                           "record.activity_every=1", "record.activity_dt_factor=4"])
    return path


def test_export_validates_and_holds_the_rates(run_with_activity, tmp_path):
    from bioprop.nwb import export_nwb

    out = export_nwb(run_with_activity, tmp_path / "run.nwb")
    assert list(pynwb.validate(path=str(out))) == []
    tree = bioprop.open_run(run_with_activity)
    rate = tree["layers"]["hidden2"]["rate"].sel(epoch=1).transpose("trial", "time", "neuron")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        series = nwb.processing["bioprop"]["hidden2_rate"]
        np.testing.assert_array_equal(series.data[:], rate.values.reshape(-1, rate.sizes["neuron"]))
        assert len(nwb.trials) == rate.sizes["trial"]
        assert np.all(np.diff(series.timestamps[:]) > 0)


def test_trials_table_has_the_labels_and_the_phase_intervals(run_with_activity, tmp_path):
    """Read back with pynwb: each trial's label is the probe sample's (the digits' own
    label, looked up here), and its phases tile the trial, at the protocol's lengths."""
    from bioprop.datasets import load_dataset
    from bioprop.nwb import export_nwb

    out = export_nwb(run_with_activity, tmp_path / "trials.nwb")
    assert list(pynwb.validate(path=str(out))) == []
    data = load_dataset("digits", n_train=64)
    # forward 125 ms, noise_a and noise_b 75 ms each, settle 75 ms, target 100 ms (default
    # protocol); the recording kept every 4th point, the intervals are exact all the same
    lengths = {"forward": 0.125, "noise_a": 0.075, "noise_b": 0.075, "settle": 0.075,
               "target": 0.1}
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        trials = io.read().trials.to_dataframe()
    assert len(trials) == 32
    np.testing.assert_array_equal(trials["label"].values, data.y_train[:32])
    length = sum(lengths.values())
    np.testing.assert_allclose(trials["start_time"].values, np.arange(32) * length)
    np.testing.assert_allclose(trials["stop_time"] - trials["start_time"], length)
    begin = trials["start_time"].values
    for name, duration in lengths.items():
        start, stop = trials[f"{name}_start_time"].values, trials[f"{name}_stop_time"].values
        np.testing.assert_allclose(start, begin, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(stop - start, duration, atol=1e-12, err_msg=name)
        begin = stop  # the next phase starts where this one stops
    np.testing.assert_allclose(begin, trials["stop_time"].values)


def test_export_errors(run_with_activity, tmp_path):
    from bioprop.nwb import export_nwb

    out = export_nwb(run_with_activity, tmp_path / "a.nwb", epoch=0)
    with pytest.raises(FileExistsError, match="exists; pass force=True"):
        export_nwb(run_with_activity, out)
    with pytest.raises(ValueError, match="no activity recorded at epoch 7"):
        export_nwb(run_with_activity, tmp_path / "b.nwb", epoch=7, force=True)
    plain = tmp_path / "plain.h5"
    bioprop.run(output=plain, progress=False,
                overrides=["training.epochs=1", "data.n_train=64", "data.n_test=32",
                           "record.first_and_last=false"])
    with pytest.raises(ValueError, match="no time-resolved activity.*record.activity_every"):
        export_nwb(plain, tmp_path / "c.nwb")


def test_export_writes_spikes_to_the_units_table(spiking_run, tmp_path):
    """One unit per (layer, neuron); its spike times are the file's, in seconds, with
    trial b shifted to where the trials table puts it."""
    from bioprop.analysis import recorded_spikes
    from bioprop.nwb import export_nwb

    out = export_nwb(spiking_run, tmp_path / "spikes.nwb")
    assert list(pynwb.validate(path=str(out))) == []
    tree = bioprop.open_run(spiking_run)
    layers = tree["layers"]
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        assert len(units) == sum(layers[n].sizes["neuron"] for n in layers.children)
        trial_length = float(nwb.trials["stop_time"][0])
        for name in ("hidden1", "output"):
            trial, time, neuron = recorded_spikes(layers[name], epoch=1)
            assert len(trial) > 0
            rows = units[units["layer"] == name]
            assert sum(len(t) for t in rows["spike_times"]) == len(trial)
            i = int(np.bincount(neuron).argmax())  # the busiest neuron
            expected = np.sort(trial[neuron == i] * trial_length + time[neuron == i] / 1000)
            np.testing.assert_allclose(rows[rows["neuron"] == i]["spike_times"].iloc[0], expected)
            start = nwb.trials["start_time"][:]
            np.testing.assert_allclose(np.diff(start), trial_length)
            assert trial_length > time.max() / 1000
