"""Checkpoints and --resume: an interrupted run, resumed, ends exactly as an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

SMALL = ["data.n_train=256", "data.n_test=64", "training.epochs=4", "record.weights_every=1"]


def _final_state(path):
    arrays, meta = load_checkpoint(path)
    return arrays, meta["epoch"]


def _assert_same_run(a, b):
    (arrays_a, epoch_a), (arrays_b, epoch_b) = _final_state(a), _final_state(b)
    assert epoch_a == epoch_b
    assert set(arrays_a) == set(arrays_b)
    for key in arrays_a:  # weights, optimizer state, Brian2 state variables: bit for bit
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    ta, tb = (xr.open_datatree(p, engine="h5netcdf") for p in (a, b))
    np.testing.assert_array_equal(ta["train"]["loss"].values, tb["train"]["loss"].values)
    np.testing.assert_array_equal(ta["metrics"]["angle_to_bp"].values,
                                  tb["metrics"]["angle_to_bp"].values)
    if "pathways" in ta.children:  # nested groups are cut back and continued too
        wa, wb = ta["pathways"]["forward_1"], tb["pathways"]["forward_1"]
        assert list(wa["epoch"].values) == list(wb["epoch"].values)
        np.testing.assert_array_equal(wa["weight"].values, wb["weight"].values)
    assert list(tb["train"]["epoch"].values) == list(range(1, epoch_a + 1))


def _run_interrupted_in_epoch_3(path, overrides, monkeypatch):
    """A run stopped by KeyboardInterrupt in epoch 3: epochs 1-2 are recorded and
    checkpointed; epoch 3 is lost (some of it may be in the file)."""
    from bioprop import training

    original = training.record_epoch

    def interrupt_in_epoch_3(recorder, row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt
        original(recorder, row)

    with monkeypatch.context() as patch:
        patch.setattr(training, "record_epoch", interrupt_in_epoch_3)
        with pytest.raises(KeyboardInterrupt):
            bioprop.run(output=path, progress=False, overrides=overrides)


@pytest.mark.parametrize("engine, optimizer", [
    pytest.param("brian2", "rmsprop", marks=pytest.mark.slow), ("reference", "rmsprop"),
    pytest.param("reference", "rmsprop_graves", marks=pytest.mark.slow)])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, engine, optimizer):
    # rmsprop_graves keeps three arrays per parameter, all of which the checkpoint must carry
    overrides = SMALL + [f"engine.name={engine}", f"optimizer.forward.name={optimizer}",
                         f"optimizer.feedback.name={optimizer}"]
    whole = tmp_path / "whole.h5"
    bioprop.run(output=whole, progress=False, overrides=overrides)

    broken = tmp_path / "broken.h5"
    _run_interrupted_in_epoch_3(broken, overrides, monkeypatch)
    tree = xr.open_datatree(broken, engine="h5netcdf")
    assert tree.attrs["status"] == "interrupted" and list(tree["train"]["epoch"].values) == [1, 2]
    tree.close()

    result = bioprop.run(resume=broken, progress=False)
    assert result.epochs == 4 and len(result.history) == 2
    _assert_same_run(whole, broken)


@pytest.mark.slow
def test_resume_cuts_and_continues_activity_batches_and_spikes(tmp_path, monkeypatch):
    """Activity groups, training-batch activity and spike lists are cut back to the
    checkpoint (epoch 3's batches and spikes were written before the interruption) and
    recorded again, identically."""
    from bioprop.reference import ReferenceEngine
    from conftest import with_spikes

    monkeypatch.setattr(ReferenceEngine, "record_activity",
                        with_spikes(ReferenceEngine.record_activity))
    overrides = SMALL + ["engine.name=reference", "record.activity_every=1",
                         "record.activity_batch_every=3"]
    whole, broken = tmp_path / "whole.h5", tmp_path / "broken.h5"
    bioprop.run(output=whole, progress=False, overrides=overrides)
    _run_interrupted_in_epoch_3(broken, overrides, monkeypatch)
    with h5py.File(broken, "r") as f:  # epoch 3's batches are in the file, uncommitted
        assert 3 in f["batches/hidden1/spike_epoch"][:]
    bioprop.run(resume=broken, progress=False)
    _assert_same_run(whole, broken)
    a, b = (xr.open_datatree(p, engine="h5netcdf") for p in (whole, broken))
    for kind in ("layers", "batches"):
        x, y = a[kind]["hidden1"].dataset, b[kind]["hidden1"].dataset
        xr.testing.assert_identical(x, y)
        assert list(y["epoch"].values) == ([0, 1, 2, 3, 4] if kind == "layers" else [1, 2, 3, 4])


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    """A real SIGKILL of a training process: the file opens with its finished epochs, and
    --resume ends with the state of an uninterrupted run."""
    overrides = ["data.n_train=512", "data.n_test=64", "training.epochs=10"]
    killed = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "bioprop.cli", "run", "-q", "-o", str(killed)]
    proc = subprocess.Popen(cmd + sum([["--set", o] for o in overrides], []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            ckpt = checkpoint_path(killed)
            if ckpt.exists() and load_checkpoint(killed)[1]["epoch"] >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached epoch 2")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    tree = bioprop.open_run(killed)
    epochs = list(tree["train"]["epoch"].values)
    assert tree.attrs["status"] == "running" and epochs[:2] == [1, 2] and len(epochs) < 10
    assert np.all(np.isfinite(tree["train"]["loss"].values[:2]))
    tree.close()

    whole = tmp_path / "whole.h5"
    bioprop.run(output=whole, progress=False, overrides=overrides)
    proc = subprocess.run([sys.executable, "-m", "bioprop.cli", "run", "-q", "--resume",
                           str(killed)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    _assert_same_run(whole, killed)


def test_resume_errors(tmp_path):
    done = tmp_path / "done.h5"
    bioprop.run(output=done, progress=False, overrides=["training.epochs=1", "data.n_train=64",
                                                        "data.n_test=32"])
    with pytest.raises(CheckpointError, match="the run is complete"):
        bioprop.run(resume=done, progress=False)
    checkpoint_path(done).unlink()
    import h5py
    with h5py.File(done, "r+") as f:
        f.attrs["status"] = "interrupted"
    with pytest.raises(CheckpointError, match="no checkpoint"):
        bioprop.run(resume=done, progress=False)
    proc = subprocess.run([sys.executable, "-m", "bioprop.cli", "run", "--resume", str(done),
                           "--set", "training.epochs=3"], capture_output=True, text=True)
    assert proc.returncode == 2 and "takes no MODEL" in proc.stderr and "Traceback" not in proc.stderr


def test_a_new_run_removes_a_stale_checkpoint(tmp_path, monkeypatch):
    """--force over an old run: until the new run's first checkpoint, no old one remains."""
    from bioprop import training

    path = tmp_path / "run.h5"
    bioprop.run(output=path, progress=False, overrides=SMALL[:2] + ["training.epochs=1"])
    assert checkpoint_path(path).exists()
    seen = []
    monkeypatch.setattr(training, "declare_run",
                        lambda *a, **k: seen.append(checkpoint_path(path).exists()) or
                        (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        bioprop.run(output=path, progress=False, overrides=SMALL[:2], force=True)
    assert seen == [False] and not checkpoint_path(path).exists()


def test_resume_from_the_epoch_0_checkpoint_equals_uninterrupted(tmp_path, monkeypatch):
    """Stopped after the epoch-0 checkpoint (pre-training and epoch-0 records done): the
    resumed run pre-trains no second time and records epoch 0 once."""
    from contextlib import contextmanager

    from bioprop import training
    from bioprop.stopping import RunInterrupted, StopSignal

    overrides = SMALL[:2] + ["training.epochs=2", "record.weights_every=1",
                             "engine.name=reference", "rule.feedback_pretrain_epochs=1"]
    whole, broken = tmp_path / "whole.h5", tmp_path / "broken.h5"
    bioprop.run(output=whole, progress=False, overrides=overrides)
    stop = StopSignal()
    original = training.record_probe_activity

    def record_then_ctrl_c(engine, data, recorder, spec, epoch):
        original(engine, data, recorder, spec, epoch)
        stop.requested = True  # a Ctrl-C just before the epoch-0 checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(training, "catch_sigint", contextmanager(lambda: (yield stop)))
        patch.setattr(training, "record_probe_activity", record_then_ctrl_c)
        with pytest.raises(RunInterrupted, match="after epoch 0"):
            bioprop.run(output=broken, progress=False, overrides=overrides)
    assert load_checkpoint(broken)[1]["epoch"] == 0
    result = bioprop.run(resume=broken, progress=False)
    assert result.epochs == 2 and len(result.history) == 2
    _assert_same_run(whole, broken)
    tree = xr.open_datatree(broken, engine="h5netcdf")
    assert list(tree["metrics"]["epoch"].values) == [0, 1, 2]
    assert list(tree["pathways"]["forward_1"]["epoch"].values) == [0, 1, 2]
    tree.close()
