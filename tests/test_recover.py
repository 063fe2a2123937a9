"""``bioprop recover``: a run file whose writer was killed opens in plain xarray afterwards.

The superblock patch is checked against Jenkins' own lookup3 test values and against what
HDF5 then reads; the kills are real SIGKILLs of writers in subprocesses.
"""
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.runlog import KilledWriterWarning, RunRecorder, recover_run
from bioprop.runlog.superblock import lookup3, read_superblock

sys.path.insert(0, str(Path(__file__).parent))
from kill_runs import OVERRIDES, _cli, _kill_after, _sets, recover  # noqa: E402

ATTRS = {"bioprop_format_version": 1, "model_toml": "", "protocol_toml": ""}


def test_lookup3_matches_jenkins_test_values():
    """The driver in Jenkins' lookup3.c prints these for hashlittle()."""
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def _killed_writer(path, *, swmr=True, run=True):
    """An HDF5 file whose writer was SIGKILLed after three flushed entries (in SWMR mode, or
    not), with bioprop's format attribute if `run`."""
    script = textwrap.dedent(f"""
        import os, signal, h5py
        f = h5py.File({str(path)!r}, "w", libver="latest")
        if {run}:
            f.attrs["bioprop_format_version"] = 1
        x = f.create_dataset("x", shape=(0,), maxshape=(None,), chunks=(8,), dtype="f8")
        if {swmr}:
            f.swmr_mode = True
        for i in range(3):
            x.resize((i + 1,)); x[i] = i + 0.5; f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL


def _flags(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_superblock(fd).flags
    finally:
        os.close(fd)


@pytest.mark.parametrize("swmr", [True, False], ids=["swmr", "before-swmr"])
def test_recover_clears_the_flags_and_keeps_the_data(tmp_path, swmr):
    path = tmp_path / "run.h5"
    _killed_writer(path, swmr=swmr)
    assert _flags(path) == (5 if swmr else 1)  # write (+ SWMR write), as HDF5 documents
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    assert "recovered" in recover_run(path)
    with h5py.File(path, "r") as f:  # a plain reader, no SWMR
        assert f["x"][:].tolist() == [0.5, 1.5, 2.5]
    before = path.read_bytes()
    assert "nothing to recover" in recover_run(path)  # idempotent
    assert path.read_bytes() == before


@pytest.mark.parametrize("swmr", [True, False], ids=["swmr", "before-swmr"])
def test_recover_leaves_an_hdf5_file_that_is_not_a_run_unchanged(tmp_path, swmr):
    path = tmp_path / "other.h5"
    _killed_writer(path, swmr=swmr, run=False)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="other.h5: an HDF5 file, but not a bioprop run file"):
        recover_run(path)
    assert path.read_bytes() == before


def test_recover_refuses_a_live_run_and_open_run_does_not_warn(tmp_path):
    """A writer's flags are set while it lives; its lock keeps recover off them."""
    path = tmp_path / "run.h5"
    with RunRecorder(path, ATTRS) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        rec.append("train", 1, {"loss": 0.25})
        rec.flush()
        before = path.read_bytes()
        with pytest.raises(ValueError, match="run.h5: another process has it open"):
            recover_run(path)
        assert path.read_bytes() == before
        with warnings.catch_warnings():
            warnings.simplefilter("error", KilledWriterWarning)
            with bioprop.open_run(path) as tree:
                assert tree["train"]["loss"].values.tolist() == [0.25]
    assert _flags(path) == 0


def test_a_run_file_appears_only_once_declared(tmp_path):
    """Declared as a temporary, renamed into place when it enters SWMR mode."""
    path = tmp_path / "run.h5"
    with RunRecorder(path, ATTRS) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        assert not path.exists() and len(list(tmp_path.glob("run.h5.*.tmp"))) == 1
        rec.flush()
        assert path.exists() and not list(tmp_path.glob("*.tmp"))


def _killed_run(tmp_path, ready, delay=0.0):
    """SIGKILL a tiny reference run `delay` s after `ready(path)`; the run file's path."""
    path = tmp_path / "run.h5"
    cmd = _cli("run", "-q", "-o", str(path), *_sets(OVERRIDES["reference"]))
    assert _kill_after(cmd, lambda: ready(path), delay), "the run ended before the kill"
    return path


@pytest.mark.slow
def test_a_run_killed_before_its_first_epoch_opens_after_recover(tmp_path):
    """Killed as soon as its file is in place (before any epoch is flushed): after bioprop
    recover, plain xarray opens it, every group declared and empty, status running."""
    path = _killed_run(tmp_path, Path.exists)
    with pytest.raises(OSError):
        xr.open_datatree(path, engine="h5netcdf")
    with pytest.warns(KilledWriterWarning, match="bioprop recover"):
        bioprop.open_run(path).close()
    assert recover(path) == []
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert tree.attrs["status"] == "running" and "train" in tree.children
    sizes = {node.path: node.sizes["epoch"] for node in tree.subtree if "epoch" in node.sizes}
    assert len(sizes) > 5 and set(sizes.values()) == {0}, sizes
    tree.close()


@pytest.mark.slow
def test_a_run_killed_while_declaring_leaves_no_run_file(tmp_path):
    """Killed while its file is declared (as a temporary): no run file, and bioprop recover
    says so and removes the temporary."""
    path = _killed_run(tmp_path, lambda p: any(p.parent.glob(f"{p.name}.*.tmp")))
    assert not path.exists()
    proc = subprocess.run(_cli("recover", str(path)), capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{path}: no such run file (removed 1 temporary file(s)" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_run_killed_mid_run_opens_in_plain_xarray_after_recover(tmp_path):
    """Killed after epoch 2's checkpoint: after bioprop recover, plain xarray opens it with
    every finished epoch bit for bit the uninterrupted run's."""
    from bioprop.checkpoint import checkpoint_path, load_checkpoint
    from kill_runs import _same_epochs_as, uninterrupted

    whole, _ = uninterrupted("reference", tmp_path)

    def at_epoch_2(path):
        return checkpoint_path(path).exists() and load_checkpoint(path)[1]["epoch"] >= 2

    path = _killed_run(tmp_path, at_epoch_2)
    assert _same_epochs_as(path, whole) == []  # runs bioprop recover first
    tree = xr.open_datatree(path, engine="h5netcdf")
    epochs = tree["train"]["epoch"].values
    assert list(epochs[:2]) == [1, 2] and np.all(np.isfinite(tree["train"]["loss"].values[:2]))
    tree.close()


def test_info_on_a_killed_run_says_in_one_line_to_recover(tmp_path, capsys):
    """`bioprop info` reads a killed run's file as it is, changes nothing, and names the step."""
    from bioprop import cli

    path = tmp_path / "run.h5"
    script = textwrap.dedent(f"""
        import os, signal
        from bioprop.runlog import RunRecorder
        rec = RunRecorder({str(path)!r}, {ATTRS!r})
        rec.declare("train", {{"loss": {{}}}}, dims=("epoch",))
        rec.append("train", 1, {{"loss": 0.25}})
        rec.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
    before = path.read_bytes()
    assert cli.main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "/train" in out and path.read_bytes() == before
    assert err.splitlines() == [f"bioprop info: warning: {path}: its writer was killed, so plain "
                                f"HDF5 readers (xarray too) refuse it; bioprop recover {path} "
                                "fixes that"]
    assert cli.main(["recover", str(path)]) == 0
    assert capsys.readouterr().out == (f"{path}: recovered: cleared the writer flags a killed "
                                       "run left; it holds epoch 1, status running; it now "
                                       "opens in any HDF5 reader\n")
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        assert tree["train"]["loss"].values.tolist() == [0.25]
