"""The run file: round trip through xarray, crash safety, refusal to overwrite, hostile files."""
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import xarray as xr

from bioprop.record import FORMAT_VERSION, RunFileExistsError, RunRecorder, open_run, provenance

ATTRS = {"bioprop_format_version": FORMAT_VERSION, "seed": 3}


def _write(path, epochs=3):
    with RunRecorder(path, ATTRS) as rec:
        rec.declare("train", {"loss": {"units": "1", "long_name": "training loss"}}, dims=("epoch",))
        rec.declare("metrics", {"angle": {"units": "degree"}}, dims=("epoch", "layer"),
                    coords={"layer": ["hidden1", "hidden2", "output"]})
        for e in range(1, epochs + 1):
            rec.append("train", e, {"loss": 1.0 / e})
            rec.append("metrics", e, {"angle": np.array([10.0, 20.0, 30.0]) * e})
            rec.flush()
        rec.set_attrs(status="complete")


def test_round_trip_through_xarray(tmp_path):
    path = tmp_path / "run.h5"
    _write(path)
    tree = xr.open_datatree(path, engine="h5netcdf")
    loss, angle = tree["train"]["loss"], tree["metrics"]["angle"]
    assert loss.dims == ("epoch",) and angle.dims == ("epoch", "layer")
    np.testing.assert_array_equal(tree["train"]["epoch"].values, [1, 2, 3])
    assert list(tree["metrics"]["layer"].values) == ["hidden1", "hidden2", "output"]
    np.testing.assert_allclose(loss.values, [1, 0.5, 1 / 3])
    np.testing.assert_allclose(angle.sel(layer="hidden2").values, [20, 40, 60])
    assert loss.attrs["units"] == "1" and angle.attrs["units"] == "degree"
    assert tree.attrs["status"] == "complete" and tree.attrs["seed"] == 3


def test_provenance_keys():
    attrs = provenance(model_toml="a", protocol_toml="b", seed=1, engine="brian2",
                       codegen_target="numpy")
    for key in ("bioprop_format_version", "model_toml", "protocol_toml", "seed", "engine",
                "codegen_target", "bioprop_version", "brian2_version", "numpy_version",
                "h5py_version", "python_version", "platform", "git_commit", "created"):
        assert key in attrs, key


def test_existing_file_refused_unless_forced(tmp_path):
    path = tmp_path / "run.h5"
    _write(path)
    with pytest.raises(RunFileExistsError, match="--force"):
        RunRecorder(path, ATTRS)
    with h5py.File(path, "r") as f:
        assert len(f["train"]["loss"]) == 3  # untouched
    RunRecorder(path, ATTRS, force=True).close()
    with h5py.File(path, "r") as f:
        assert "train" not in f


def test_sigkill_keeps_finished_epochs(tmp_path):
    """A writer killed mid-run leaves a file xarray opens, with every flushed epoch."""
    path = tmp_path / "run.h5"
    script = textwrap.dedent(f"""
        import os, signal
        from bioprop.record import RunRecorder
        rec = RunRecorder({str(path)!r}, {{"bioprop_format_version": 1}})
        rec.declare("train", {{"loss": {{"units": "1"}}}}, dims=("epoch",))
        for e in (1, 2):
            rec.append("train", e, {{"loss": float(e)}})
            rec.flush()
        rec.append("train", 3, {{"loss": 3.0}})  # appended, never flushed
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    tree = open_run(path)
    assert tree.attrs["status"] == "running"  # it never finished
    epochs = list(tree["train"]["epoch"].values)
    assert epochs[:2] == [1, 2]
    np.testing.assert_array_equal(tree["train"]["loss"].values[:2], [1.0, 2.0])


def test_hostile_files(tmp_path):
    not_run = tmp_path / "other.h5"
    with h5py.File(not_run, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(ValueError, match=r"other\.h5: not a bioprop run file"):
        open_run(not_run)
    newer = tmp_path / "newer.h5"
    with h5py.File(newer, "w") as f:
        f.attrs["bioprop_format_version"] = 99
    with pytest.raises(ValueError, match=r"newer\.h5: run file format version 99 is newer"):
        open_run(newer)
    truncated = tmp_path / "truncated.h5"
    _write(truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.h5: not a readable HDF5 file"):
        open_run(truncated)
    with pytest.raises(FileNotFoundError, match="no such run file"):
        open_run(tmp_path / "absent.h5")


def test_undeclared_variable_is_an_error(tmp_path):
    with RunRecorder(tmp_path / "run.h5", ATTRS) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        with pytest.raises(KeyError, match="undeclared variable"):
            rec.append("train", 1, {"los": 1.0})


def test_exception_marks_run_interrupted(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError):
        with RunRecorder(path, ATTRS):
            raise RuntimeError("boom")
    assert open_run(path).attrs["status"] == "interrupted"
