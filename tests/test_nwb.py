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


def test_export_errors(run_with_activity, tmp_path):
    from bioprop.nwb import export_nwb

    out = export_nwb(run_with_activity, tmp_path / "a.nwb", epoch=0)
    with pytest.raises(FileExistsError, match="exists; pass force=True"):
        export_nwb(run_with_activity, out)
    with pytest.raises(ValueError, match="no activity recorded at epoch 7"):
        export_nwb(run_with_activity, tmp_path / "b.nwb", epoch=7, force=True)
    plain = tmp_path / "plain.h5"
    bioprop.run(output=plain, progress=False,
                overrides=["training.epochs=1", "data.n_train=64", "data.n_test=32"])
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
