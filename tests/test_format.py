"""Run-file format 2, and format-1 files (tests/data, written by bioprop at 1197371) read as it.

Format 2: test figures in /test, pathways named by the layers they join, the phases of a
trial as the table /phases, spiking rates in Hz. Every reader (open_run, info, report, NWB
export, the analysis, --resume) takes a format-1 file too.
"""
import gzip
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.runlog import FORMAT_VERSION, RunRecorder
from bioprop.runlog.formats import rate_in_hz

DATA = Path(__file__).parent / "data"
DEEP = {"forward_1": "input_to_hidden1", "forward_2": "hidden1_to_hidden2",
        "forward_3": "hidden2_to_output", "feedback_2": "hidden2_to_hidden1",
        "feedback_3": "output_to_hidden2"}


def _unpacked(tmp_path, *names):
    """Copies of the gzipped format-1 files `names` in `tmp_path`; the first one's path."""
    for name in names:
        with gzip.open(DATA / f"{name}.gz") as packed, open(tmp_path / name, "wb") as out:
            shutil.copyfileobj(packed, out)
    return tmp_path / names[0]


@pytest.fixture
def deep(tmp_path):
    return _unpacked(tmp_path, "format1-brian2.h5")


def test_the_fixtures_are_format_1(deep):
    assert FORMAT_VERSION == 2
    with h5py.File(deep, "r") as f:
        assert f.attrs["bioprop_format_version"] == 1 and "eval" in f and "test" not in f
        assert set(f["pathways"]) == set(DEEP) and "phases" in f["layers/hidden1"].attrs


def test_open_run_reads_format_1_in_todays_layout(deep):
    tree = bioprop.open_run(deep)
    with h5py.File(deep, "r") as f:
        np.testing.assert_array_equal(tree["test"]["loss"].values, f["eval/loss"][:])
        assert list(tree["test"]["epoch"].values) == list(tree["train"]["epoch"].values) == [1]
        for old, new in DEEP.items():  # every pathway under the layers it joins, same weights
            np.testing.assert_array_equal(tree["pathways"][new]["weight"].values,
                                          f[f"pathways/{old}/weight"][:])
    assert "eval" not in tree.children and "phases" not in tree["layers"]["hidden1"].attrs
    phases = tree["phases"]
    assert list(phases["name"].values) == ["forward", "noise_a", "noise_b", "settle", "target"]
    assert phases["duration"].attrs["units"] == "ms"
    # recorded every 50 ms: a phase starts at its first recorded point (forward 0-125 ms,
    # noise_a 125-200, noise_b 200-275, settle 275-350, target 350-450)
    np.testing.assert_array_equal(phases["start"].values, [0, 150, 200, 300, 350])
    np.testing.assert_array_equal(phases["duration"].values, [150, 50, 100, 50, 100])
    assert tree.attrs["read_from_format_version"] == 1
    tree.close()


def test_format_1_spiking_rates_read_in_hz(tmp_path):
    path = _unpacked(tmp_path, "format1-lif.h5")
    tree = bioprop.open_run(path)
    rate = tree["layers"]["hidden1"]["rate"]
    assert rate.attrs["units"] == "Hz" and rate.attrs["scale_factor"] == 200.0  # 1 / 5 ms
    assert tree["layers"]["output"]["rate"].attrs["units"] == "1"  # a rate layer stays so
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(rate.values, f["layers/hidden1/rate"][:] * 200.0)
    from bioprop.analysis.firing import mean_firing_rates

    forward = mean_firing_rates(tree)["hidden1"]
    inside = rate["time"].values < 40  # the forward phase, 0-40 ms
    assert forward.attrs["units"] == "Hz"
    assert float(forward) == pytest.approx(float(rate.isel(epoch=-1, time=inside).mean()))


def test_spiking_rates_are_stored_as_fractions_and_read_in_hz(tmp_path):
    """A rate with rate_in_hz's attributes: the stored bits are the fractions, and plain
    xarray (netCDF's scale_factor) reads them in Hz."""
    path = tmp_path / "hz.h5"
    fractions = np.array([[0.0, 0.25], [0.5, 1.0]])
    with RunRecorder(path, {"bioprop_format_version": FORMAT_VERSION}) as rec:
        rec.declare("layers/hidden1", {"rate": rate_in_hz({"units": "1"}, 200.0)},
                    dims=("epoch", "trial", "neuron"),
                    coords={"trial": np.arange(2), "neuron": np.arange(2)})
        rec.append("layers/hidden1", 0, {"rate": fractions})
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["layers/hidden1/rate"][0], fractions)
    plain = xr.open_datatree(path, engine="h5netcdf")
    rate = plain["layers"]["hidden1"]["rate"]
    np.testing.assert_array_equal(rate.values[0], fractions * 200.0)
    assert rate.attrs["units"] == "Hz"
    plain.close()


def test_info_report_and_nwb_read_format_1(deep, tmp_path):
    from bioprop.analysis.report import describe, write_report
    from bioprop.nwb import export_nwb

    text = describe(deep)
    assert "/test  (epoch=1)" in text and "/pathways/hidden1_to_hidden2" in text
    assert "/phases  (phase=5)" in text and "/eval" not in text
    write_report([deep], tmp_path / "report")
    for stem in ("learning_curves", "weight_histograms", "probe_rates", "lipschitz"):
        assert (tmp_path / "report" / f"{stem}.png").exists(), stem
    pynwb = pytest.importorskip("pynwb")
    out = export_nwb(deep, tmp_path / "run.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert io.read().processing["bioprop"]["hidden1_rate"].unit == "a.u."


def test_nwb_writes_spiking_rates_in_hz(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    from bioprop.nwb import export_nwb

    out = export_nwb(_unpacked(tmp_path, "format1-lif.h5"), tmp_path / "lif.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        series = io.read().processing["bioprop"]
        assert series["hidden1_rate"].unit == "Hz" and series["output_rate"].unit == "a.u."


def test_resume_rewrites_a_format_1_run_as_format_2(tmp_path):
    """A format-1 run stopped in epoch 2 (reference engine) resumes: the file becomes
    format 2 with the finished epoch kept bit for bit, and the run ends exactly as one
    trained without a stop by today's bioprop."""
    path = _unpacked(tmp_path, "format1-stopped.h5", "format1-stopped.ckpt.npz")
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == b"interrupted" and list(f["eval/epoch"][:]) == [1]
        kept = {"loss": f["eval/loss"][:], "weight": f["pathways/forward_2/weight"][:]}
        model_toml, protocol_toml = f.attrs["model_toml"], f.attrs["protocol_toml"]
    bioprop.run(resume=path, progress=False)
    whole = tmp_path / "whole.h5"
    (tmp_path / "model.toml").write_text(model_toml)
    (tmp_path / "protocol.toml").write_text(protocol_toml)
    bioprop.run(tmp_path / "model.toml", tmp_path / "protocol.toml", output=whole, progress=False)
    with h5py.File(path, "r") as f, h5py.File(whole, "r") as w:
        assert f.attrs["bioprop_format_version"] == 2 and "eval" not in f
        assert set(f["pathways"]) == set(DEEP.values())
        np.testing.assert_array_equal(f["test/loss"][:1], kept["loss"])
        np.testing.assert_array_equal(f["pathways/hidden1_to_hidden2/weight"][:2], kept["weight"])
        # The fixture's epoch 1 was trained on another machine, whose BLAS may round a few
        # weights 1 ulp apart from this one's (seen: 5.6e-17), and at the output, where DTP's
        # and BP's updates agree exactly, arccos(1 − 1 ulp) reads 8.5e-7° there and 0° here:
        # across machines the resumed run equals the whole one to rounding, not bit for bit.
        for name in ("test/loss", "test/epoch", "train/loss", "metrics/angle_to_bp",
                     *(f"pathways/{p}/weight" for p in DEEP.values())):
            np.testing.assert_allclose(f[name][:], w[name][:], rtol=1e-9, atol=1e-5,
                                       err_msg=name)


def test_record_pathways_takes_the_format_1_names_too(tmp_path):
    """A format-1 run's protocol names pathways forward_l, feedback_l; they still choose."""
    path = tmp_path / "old-names.h5"
    bioprop.run(output=path, progress=False, overrides=[
        "engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=1",
        "record.weights_every=1", 'record.pathways=["forward_2", "feedback_3"]'])
    tree = bioprop.open_run(path)
    assert sorted(tree["pathways"].children) == ["hidden1_to_hidden2", "output_to_hidden2"]
    # /test shares /train's epochs; the diagnostics and weights also have epoch 0
    assert list(tree["test"]["epoch"].values) == list(tree["train"]["epoch"].values) == [1]
    assert list(tree["metrics"]["epoch"].values) == [0, 1]
    assert list(tree["pathways"]["hidden1_to_hidden2"]["epoch"].values) == [0, 1]
    assert tree["test"]["loss"].attrs["long_name"] == "mean test loss"
    tree.close()


def test_resume_copies_the_phases_table(tmp_path):
    """--resume's rewrite keeps /phases, text columns and units included."""
    from bioprop.runlog import reopen_run
    from bioprop.runlog.vocabulary import SECTIONS

    path = tmp_path / "run.h5"
    columns = {"name": ["forward", "target"], "start": [0.0, 125.0], "duration": [125.0, 100.0],
               "somas": ["hidden1 output", ""], "dendrites": ["hidden1", "hidden1"]}
    variables = SECTIONS["phases"].variables
    with RunRecorder(path, {"bioprop_format_version": FORMAT_VERSION}) as rec:
        rec.write_table("phases", {k: (v, variables[k].attrs()) for k, v in columns.items()},
                        dim="phase")
        rec.declare("train", {"loss": {"units": "1"}}, dims=("epoch",))
        rec.append("train", 1, {"loss": 0.5})
    with reopen_run(path, epoch=1):
        pass
    tree = bioprop.open_run(path)
    phases = tree["phases"]
    assert list(phases.data_vars) == list(columns)  # in the order written
    for name, values in columns.items():
        assert list(phases[name].values) == values, name
    assert phases["start"].attrs["units"] == "ms" and "units" not in phases["name"].attrs
    tree.close()
