"""The run file: round trip through xarray, crash safety, refusal to overwrite, hostile files."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import xarray as xr

from bioprop.runlog import FORMAT_VERSION, RunFileExistsError, RunRecorder, open_run, provenance

ATTRS = {"bioprop_format_version": FORMAT_VERSION, "seed": 3}


def _write(path, epochs=3):
    with RunRecorder(path, ATTRS) as rec:
        rec.declare("train", {"loss": {"units": "1", "long_name": "training loss"}}, dims=("epoch",))
        rec.declare("metrics", {"angle_to_bp": {"units": "degree"}}, dims=("epoch", "layer"),
                    coords={"layer": ["hidden1", "hidden2", "output"]})
        for e in range(1, epochs + 1):
            rec.append("train", e, {"loss": 1.0 / e})
            rec.append("metrics", e, {"angle_to_bp": np.array([10.0, 20.0, 30.0]) * e})
            rec.flush()
        rec.set_attrs(status="complete")


def test_round_trip_through_xarray(tmp_path):
    path = tmp_path / "run.h5"
    _write(path)
    tree = xr.open_datatree(path, engine="h5netcdf")
    loss, angle = tree["train"]["loss"], tree["metrics"]["angle_to_bp"]
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
    with pytest.raises(RunFileExistsError, match="exists; pass force=True"):
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
        from bioprop.runlog import RunRecorder
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


def test_a_killed_unfinished_entry_is_never_a_wrong_epoch(tmp_path):
    """A writer killed inside an entry: /train's variables written but its epoch not, /test's
    epoch grown but not written (the issue saw epoch 0 there). Plain xarray reads their epoch
    as -1, which no epoch is; open_run and --resume's rewrite leave them out."""
    from bioprop.runlog import UNFINISHED, reopen_run

    path = tmp_path / "run.h5"
    script = textwrap.dedent(f"""
        import os, signal
        from bioprop.runlog import RunRecorder
        rec = RunRecorder({str(path)!r}, {{"bioprop_format_version": 2}})
        for group in ("train", "test"):
            rec.declare(group, {{"loss": {{"units": "1"}}}}, dims=("epoch",))
            rec.append(group, 1, {{"loss": 1.0}})
        rec.flush()
        rec.grow("train")
        rec.put("train", {{"loss": 2.0}})
        rec.append("test", 2, {{"loss": 2.0}})
        rec._file["test/epoch"][-1] = {UNFINISHED}  # as if killed before the value landed
        rec.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    plain = xr.open_datatree(path, engine="h5netcdf", driver_kwds={"swmr": True})
    assert UNFINISHED == -1
    for group in ("train", "test"):
        assert list(plain[group]["epoch"].values) == [1, -1], group
        assert list(open_run(path)[group]["epoch"].values) == [1], group
        np.testing.assert_array_equal(open_run(path)[group]["loss"].values, [1.0])
    plain.close()
    with reopen_run(path, epoch=2) as rec:  # the unfinished entries are cut, not copied
        assert rec.attrs["bioprop_format_version"] == 2
    with h5py.File(path, "r") as f:
        assert list(f["train/epoch"][:]) == [1] and list(f["test/epoch"][:]) == [1]
        assert len(f["train/loss"]) == 1 and f["train/epoch"].fillvalue == UNFINISHED


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


@pytest.mark.slow
def test_a_reader_watches_a_live_run(tmp_path):
    """SWMR: while a training process writes the run file, a reader opened with
    ``swmr=True`` sees /train grow after ``refresh()``; open_run reads the live file too,
    and the finished file opens normally with its final status."""
    path = tmp_path / "live.h5"
    script = textwrap.dedent(f"""
        import time
        import bioprop
        from bioprop import training
        record = training.record_epoch
        def slow_record(recorder, row):  # a slow run, so that the reader sees it grow
            record(recorder, row)
            time.sleep(0.3)
        training.record_epoch = slow_record
        bioprop.run(output={str(path)!r}, progress=False, overrides=[
            "engine.name=reference", "training.epochs=12", "data.n_train=128",
            "data.n_test=32", "record.activity_every=4"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        # the reader stays open until the writer has ended: closing (and writing the final
        # status) must not wait for readers
        with _open_when_live(path, proc) as f:
            epochs = f["train"]["epoch"]
            first = len(epochs)
            seen = [first]
            deadline = time.time() + 60
            while seen[-1] <= first and time.time() < deadline:
                time.sleep(0.1)
                epochs.refresh()
                seen.append(len(epochs))
            assert seen[-1] > first, f"the epoch count never grew: {seen}"
            loss = f["train"]["loss"]
            loss.refresh()
            assert len(loss) >= seen[-1] - 1 and np.isfinite(loss[0])
            assert f.attrs["status"] == b"running"  # fixed width: h5py reads bytes
            tree = open_run(path)  # xarray, on the live file
            assert tree["train"].sizes["epoch"] >= 1
            tree.close()
            _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    tree = open_run(path)
    assert tree.attrs["status"] == "complete" and list(tree["train"]["epoch"].values) == \
        list(range(1, 13))
    assert list(tree["layers"]["hidden1"]["epoch"].values) == [0, 4, 8, 12]


def _open_when_live(path, proc, timeout=60):
    """Open `path` as a SWMR reader as soon as its writer has switched SWMR on."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the writer finished before the reader saw it live"
        try:
            return h5py.File(path, "r", swmr=True)
        except (OSError, FileNotFoundError):
            time.sleep(0.05)  # not created yet, or still declaring (not yet SWMR)
    pytest.fail("the run file never became readable")


def test_nothing_is_declared_in_swmr_mode_and_status_is_written_at_close(tmp_path):
    path = tmp_path / "run.h5"
    with RunRecorder(path, ATTRS) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        rec.append("train", 1, {"loss": 1.0})
        rec.flush()
        assert rec.swmr
        with pytest.raises(RuntimeError, match="SWMR mode"):
            rec.declare("test", {"loss": {}}, dims=("epoch",))
        rec.set_attrs(status="diverged")
        reader = h5py.File(path, "r", swmr=True)  # a reader still watching at close
    reader.close()
    assert open_run(path).attrs["status"] == "diverged"


def test_events_round_trip_with_a_plain_dimension(tmp_path):
    path = tmp_path / "run.h5"
    with RunRecorder(path, ATTRS) as rec:
        rec.declare_events("layers/a", {"spike_epoch": ("i8", {}),
                                        "spike_time": ("f8", {"units": "ms"})})
        rec.append_events("layers/a", {"spike_epoch": [0, 0, 0], "spike_time": [1.0, 2.5, 3.0]})
        rec.flush()
        rec.append_events("layers/a", {"spike_epoch": [2], "spike_time": [0.5]})
        with pytest.raises(ValueError, match="different lengths"):
            rec.append_events("layers/a", {"spike_epoch": [2, 2], "spike_time": [0.5]})
    node = open_run(path)["layers"]["a"]
    assert node["spike_time"].dims == ("spike",) and "spike" not in node.coords
    assert node["spike_time"].attrs["units"] == "ms"
    np.testing.assert_array_equal(node["spike_epoch"].values, [0, 0, 0, 2])
    with h5py.File(path, "r") as f:
        assert f["layers/a/spike_time"].compression == "gzip"


def test_protocol_chooses_what_is_recorded(tmp_path):
    """record.pathways, record.layers and record.variables: the file holds exactly those."""
    import bioprop

    path = tmp_path / "chosen.h5"
    bioprop.run(output=path, progress=False, overrides=[
        "engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=1",
        "record.weights_every=1", 'record.pathways=["input_to_hidden1", "output_to_hidden2"]',
        "record.activity_every=1", 'record.layers=["hidden2"]', 'record.variables=["rate"]'])
    tree = bioprop.open_run(path)
    assert sorted(tree["pathways"].children) == ["input_to_hidden1", "output_to_hidden2"]
    assert list(tree["layers"].children) == ["hidden2"]
    assert list(tree["layers"]["hidden2"].data_vars) == ["rate"]


@pytest.mark.parametrize("override,message", [
    ('record.pathways=["hidden1_to_output"]',
     r'^--set record.pathways=\["hidden1_to_output"\]: \'hidden1_to_output\' is not one of the '
     r"model's pathways \(input_to_hidden1, hidden1_to_hidden2, hidden2_to_output, "
     r"hidden2_to_hidden1, output_to_hidden2,"),
    ('record.layers=["hiden1"]', "Did you mean 'hidden1'"),
    ('record.variables=["rates"]', r'^--set record.variables=\["rates"\]: unknown \[\'rates\'\]'),
])
def test_unknown_recorded_names_are_errors(tmp_path, override, message):
    import bioprop
    from bioprop.spec import SpecError

    with pytest.raises(SpecError, match=message):
        bioprop.run(output=tmp_path / "x.h5", progress=False,
                    overrides=["engine.name=reference", override])


def test_open_run_with_chunks_streams_through_dask(tmp_path):
    """open_run(path, chunks={}) gives dask arrays in the file's chunks whose reductions
    equal the eager ones."""
    import dask.array

    import bioprop

    path = tmp_path / "run.h5"
    bioprop.run(output=path, progress=False, overrides=[
        "engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=2",
        "record.activity_every=1"])
    eager = bioprop.open_run(path)["layers"]["hidden1"]["rate"]
    lazy = bioprop.open_run(path, chunks={})["layers"]["hidden1"]["rate"]
    assert isinstance(lazy.data, dask.array.Array)
    np.testing.assert_allclose(lazy.mean(["trial", "neuron"]).compute(),
                               eager.mean(["trial", "neuron"]), rtol=1e-12)


def _cli_line(capsys, *argv):
    """bioprop's exit code and its one line on stderr (asserting it is one line)."""
    from bioprop import cli

    code = cli.main(list(argv))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return code, lines[0]


TINY_RUN = ["--set", "engine.name=reference", "--set", "data.n_train=64", "--set",
            "data.n_test=32", "--set", "record.weights_every=1"]


def test_an_unwritable_output_is_one_line(tmp_path, monkeypatch, capsys):
    """A folder without write permission, found before anything runs; and a file system that
    refuses the file when it is created (what h5py raises is rewritten to name it)."""
    import errno

    from bioprop import outputs

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.chdir(tmp_path)
    if os.geteuid() == 0:  # root writes anywhere: let os.access answer as for a user
        monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    code, line = _cli_line(capsys, "run", "-q", "-o", "ro/run.h5", *TINY_RUN)
    assert code == 2 and line == ("bioprop run: error: ro/run.h5: cannot write in the folder ro "
                                  "(permission denied)")
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Unable to synchronously create file")
    monkeypatch.setattr(h5py, "File", refuse)
    code, line = _cli_line(capsys, "run", "-q", "-o", "run.h5", *TINY_RUN)
    assert code == 2 and line == ("bioprop run: error: run.h5: cannot create the run file "
                                  "(Read-only file system)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]


def test_a_full_disk_stops_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    """A write that fails in epoch 2 (ENOSPC) stops the run with one line; epoch 1 stays in
    the file, which --resume then finishes as an uninterrupted run would have."""
    import errno

    from bioprop import training

    monkeypatch.chdir(tmp_path)
    epochs = ["--set", "training.epochs=3"]
    assert _cli_line_ok(["run", "-q", "-o", "whole.h5", *TINY_RUN, *epochs])
    real = training.record_epoch

    def full_at_epoch_2(recorder, row):
        if row["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(recorder, row)
    monkeypatch.setattr(training, "record_epoch", full_at_epoch_2)
    code, line = _cli_line(capsys, "run", "-q", "-o", "run.h5", *TINY_RUN, *epochs)
    assert code == 2 and line == (
        "bioprop run: error: run.h5: writing failed after epoch 1 (No space left on device); "
        "the finished epochs are kept. Once it can be written, continue with: bioprop run "
        "--resume run.h5")
    with open_run("run.h5") as tree:
        assert list(tree["train"]["epoch"].values) == [1]
        assert tree.attrs["status"] == "interrupted"
    monkeypatch.setattr(training, "record_epoch", real)  # space freed
    assert _cli_line_ok(["run", "-q", "--resume", "run.h5"])
    with open_run("run.h5") as resumed, open_run("whole.h5") as whole:
        for name, node in whole["pathways"].children.items():
            assert np.array_equal(resumed["pathways"][name]["weight"].values,
                                  node["weight"].values), name


def _cli_line_ok(argv):
    from bioprop import cli

    return cli.main(argv) == 0
