"""Activity logging: what the file holds, that it is right, and that it changes nothing."""
import json

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
    bioprop.run(output=without, progress=False, overrides=RUN)
    return with_activity, without


def test_activity_round_trip_dims_and_units(recorded):
    tree = xr.open_datatree(recorded[0], engine="h5netcdf")
    layer = tree["layers"]["hidden1"]
    assert layer["rate"].dims == ("epoch", "trial", "time", "neuron")
    assert layer["time"].attrs["units"] == "ms"
    assert list(layer["epoch"].values) == [0, 1, 2] and layer.sizes["trial"] == 32
    assert set(layer.data_vars) == {"rate", "potential", "nudge", "apical"}
    assert "apical" not in tree["layers"]["output"].data_vars  # the top has no dendrite
    phases = [p[0] for p in json.loads(layer.attrs["phases"])]
    assert phases == ["forward", "noise_a", "noise_b", "settle", "target"]


def test_recorded_rates_settle_on_the_algebraic_forward_pass(recorded):
    """At the end of the forward phase the recorded rates equal the forward pass of the probe
    inputs, computed here from the weights in the file (biases: zero at epoch 0, the final
    checkpoint's at epoch 2): an independent computation."""
    from bioprop.checkpoint import load_checkpoint
    from bioprop.datasets import load_dataset

    tree = xr.open_datatree(recorded[0], engine="h5netcdf")
    end = json.loads(tree["layers"]["hidden1"].attrs["phases"])[0][2]
    final, _ = load_checkpoint(recorded[0])
    x = load_dataset("digits", n_train=32).x_train
    for epoch in (0, 2):
        h = x
        for l, (name, act) in enumerate((("hidden1", "tanh"), ("hidden2", "tanh"),
                                        ("output", "linear")), start=1):
            W = tree["pathways"][f"forward_{l}"]["weight"].sel(epoch=epoch).values
            b = final[f"b_{l}"] if epoch == 2 else 0.0
            h = get_activation(act).fn(h @ W.T + b)
            recorded_rate = tree["layers"][name]["rate"].sel(epoch=epoch, time=end).values
            np.testing.assert_allclose(recorded_rate, h, atol=1e-4, err_msg=f"{name} @ {epoch}")


def test_recording_activity_changes_nothing_in_training(recorded):
    a, b = (xr.open_datatree(p, engine="h5netcdf") for p in recorded)
    np.testing.assert_array_equal(a["train"]["loss"].values, b["train"]["loss"].values)
    np.testing.assert_array_equal(a["pathways"]["forward_1"]["weight"].values,
                                  b["pathways"]["forward_1"]["weight"].values)
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


def test_report_draws_the_probe_trial(recorded, tmp_path):
    import matplotlib.image as mpimg

    from bioprop.analysis.report import write_report

    write_report([recorded[0]], tmp_path / "r")
    assert mpimg.imread(tmp_path / "r" / "probe_rates.png").shape[0] > 300
    write_report([recorded[1]], tmp_path / "none")  # no activity: no activity figure
    assert not (tmp_path / "none" / "probe_rates.png").exists()
