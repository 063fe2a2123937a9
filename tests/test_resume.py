"""Checkpoints and --resume: an interrupted run, resumed, ends exactly as an uninterrupted one."""
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
    np.testing.assert_array_equal(ta["test"]["loss"].values, tb["test"]["loss"].values)
    assert ("validation" in ta.children) == ("validation" in tb.children)
    if "validation" in ta.children:  # data.validation: the figures and the split go on
        np.testing.assert_array_equal(ta["validation"]["loss"].values,
                                      tb["validation"]["loss"].values)
        np.testing.assert_array_equal(ta["split"]["validation_index"].values,
                                      tb["split"]["validation_index"].values)
    np.testing.assert_array_equal(ta["metrics"]["angle_to_bp"].values,
                                  tb["metrics"]["angle_to_bp"].values)
    if "pathways" in ta.children:  # nested groups are cut back and continued too
        assert set(ta["pathways"].children) == set(tb["pathways"].children)
        for name in ta["pathways"].children:
            wa, wb = ta["pathways"][name], tb["pathways"][name]
            assert list(wa["epoch"].values) == list(wb["epoch"].values), name
            np.testing.assert_array_equal(wa["weight"].values, wb["weight"].values, err_msg=name)
    assert list(tb["train"]["epoch"].values) == list(range(1, epoch_a + 1))
    if "probe" in ta.children:  # written before training, copied whole by the rewrite
        xr.testing.assert_identical(ta["probe"].to_dataset(), tb["probe"].to_dataset())
    for name in ta["layers"].children if "layers" in ta.children else ():
        xr.testing.assert_identical(ta["layers"][name].to_dataset(),
                                    tb["layers"][name].to_dataset())


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


#: learning-rate schedules on both pathways: the rates of the epochs after the checkpoint
SCHEDULED = ["optimizer.forward.schedule=cosine", "optimizer.feedback.schedule=linear",
             "optimizer.feedback.lr_final=0.0002"]


@pytest.mark.parametrize("engine, optimizer, extra", [
    pytest.param("brian2", "rmsprop", [], marks=pytest.mark.slow), ("reference", "rmsprop", []),
    pytest.param("reference", "rmsprop_graves", [], marks=pytest.mark.slow),
    ("reference", "adam", SCHEDULED + ["training.average_weights=0.9"]),
    # a validation set, the last partial batch (226 = 7 x 30 + 16) and the batch-mean step
    ("reference", "adam", ["data.validation=30", "training.batch_size=30",
                           "training.keep_partial_batch=true", "rule.target_step_loss=batch_mean"]),
    pytest.param("brian2", "rmsprop", SCHEDULED, marks=pytest.mark.slow)])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, engine, optimizer,
                                                       extra):
    # rmsprop_graves keeps three arrays per parameter, all of which the checkpoint must carry;
    # a schedule's rates depend on the epoch alone, which the checkpoint holds; the moving
    # average of the weights (the test figures) is in the checkpoint
    overrides = SMALL + extra + [f"engine.name={engine}", f"optimizer.forward.name={optimizer}",
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


# ------------------------------------------------ issue 13: kills at every moment of a run
#: a tiny reference run with feedback pre-training, weights and activity at every epoch
TINY = ["engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=2",
        "rule.feedback_pretrain_epochs=2", "record.weights_every=1", "record.activity_every=1"]


@pytest.fixture(scope="module")
def tiny_whole(tmp_path_factory):
    path = tmp_path_factory.mktemp("whole") / "whole.h5"
    bioprop.run(output=path, progress=False, overrides=TINY)
    return path


def _stopped_at(path, monkeypatch, when, epoch, pretrained=0, overrides=TINY):
    """A run (TINY unless `overrides` says otherwise) stopped by KeyboardInterrupt just
    `when` ("before"/"after") its checkpoint of (`epoch`, `pretrained`) is written."""
    from bioprop import checkpoint

    original = checkpoint.save_checkpoint

    def stop(recorder, learner, at, rng, *, pretrained=0, _target=(epoch, pretrained)):
        here = (at, pretrained) == _target
        if here and when == "before":
            raise KeyboardInterrupt
        original(recorder, learner, at, rng, pretrained=pretrained)
        if here:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "save_checkpoint", stop)
        with pytest.raises(KeyboardInterrupt):
            bioprop.run(output=path, progress=False, overrides=overrides)


@pytest.mark.parametrize("when, epoch, pretrained, left", [
    ("after", -1, 1, "pre-training 1"),  # killed in the second pre-training epoch
    ("before", 0, 0, "pre-training 2"),  # epoch 0's entries written, its checkpoint not
    ("after", 0, 0, "epoch 0"),          # the issue's repro: before epoch 1's checkpoint
    ("before", 1, 0, "epoch 0"),         # epoch 1 in the file, its checkpoint not written
])
def test_resume_from_pretraining_and_epoch_0_equals_uninterrupted(
        tmp_path, monkeypatch, tiny_whole, when, epoch, pretrained, left):
    """Every checkpoint before epoch 1's resumes to the uninterrupted run: no epoch-0 entry
    twice, no pre-training repeated, every array and the final state bit for bit."""
    from kill_runs import _checkpoint_epoch, _same_run

    path = tmp_path / "run.h5"
    _stopped_at(path, monkeypatch, when, epoch, pretrained)
    assert _checkpoint_epoch(path) == left
    result = bioprop.run(resume=path, progress=False)
    assert result.epochs == 2
    assert _same_run(path, tiny_whole) == []
    tree = bioprop.open_run(path)
    for group in ("train", "metrics", "pathways/input_to_hidden1", "layers/hidden1"):
        first = 1 if group == "train" else 0
        assert list(tree[group]["epoch"].values) == list(range(first, 3)), group
    assert tree.attrs["status"] == "complete"


def _interrupted_tiny(path, monkeypatch):
    """A TINY run stopped after epoch 1's checkpoint."""
    _stopped_at(path, monkeypatch, "after", 1)


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_resume_killed_at_its_swap_loses_nothing(tmp_path, monkeypatch, tiny_whole, moment):
    """SIGKILL of --resume just before or just after it renames the rewritten file into place:
    the file still opens with every finished epoch, and the next --resume ends as the
    uninterrupted run (the issue lost every epoch here, 4 times out of 4)."""
    from kill_runs import _same_run

    path = tmp_path / "run.h5"
    _interrupted_tiny(path, monkeypatch)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        import bioprop
        from bioprop.runlog import recorder
        swap = recorder.replace
        def die_{moment}_swap(tmp, target):
            if {moment == "after"}:
                swap(tmp, target)
            os.kill(os.getpid(), signal.SIGKILL)
        recorder.replace = die_{moment}_swap
        bioprop.run(resume={str(path)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = list(tmp_path.glob("run.h5.*.tmp"))
    if moment == "before":  # the original is untouched; the copy is left behind
        assert path.read_bytes() == before and len(leftovers) == 1
    else:
        assert leftovers == []
    tree = bioprop.open_run(path)
    assert list(tree["train"]["epoch"].values) == [1]
    assert list(tree["pathways"]["input_to_hidden1"]["epoch"].values) == [0, 1]
    tree.close()
    bioprop.run(resume=path, progress=False)
    assert _same_run(path, tiny_whole) == [] and list(tmp_path.glob("*.tmp")) == []


def test_resume_removes_the_temporaries_of_killed_writers(tmp_path, monkeypatch, tiny_whole):
    """Leftovers of killed checkpoint writes and rewrites go; those of a live process, and
    files that are not bioprop's, stay."""
    path = tmp_path / "run.h5"
    _interrupted_tiny(path, monkeypatch)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    gone = [tmp_path / f"run.ckpt.npz.{dead}.tmp", tmp_path / f"run.h5.{dead}.tmp"]
    kept = [tmp_path / f"run.h5.{os.getppid()}.tmp", tmp_path / "run.h5.backup.tmp"]
    for leftover in gone + kept:
        leftover.write_bytes(b"half a file")
    bioprop.run(resume=path, progress=False)
    assert [p.exists() for p in gone + kept] == [False, False, True, True]


def _rewrite_meta(path, **changes):
    """Rewrite the metadata of `path`'s checkpoint."""
    import json

    arrays, meta = load_checkpoint(path)
    meta.update(changes)
    with open(checkpoint_path(path), "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)


def _damage(path, kind, tmp_path, monkeypatch):
    """Give the run file `path` a checkpoint that is not its own, or not its latest."""
    ckpt = checkpoint_path(path)
    if kind == "another rule":  # a same-shaped run with another feedback objective
        other = tmp_path / "other.h5"
        _stopped_at(other, monkeypatch, "after", 1, overrides=TINY + ["rule.feedback=drl"])
        ckpt.write_bytes(checkpoint_path(other).read_bytes())
    elif kind == "epoch 50":
        _rewrite_meta(path, epoch=50)
    elif kind == "an earlier epoch":  # the file holds epoch 1; this checkpoint says -1
        _rewrite_meta(path, epoch=-1, pretrained=1)
    elif kind == "format 1":
        _rewrite_meta(path, format=1)
    elif kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:300])
    elif kind == "random bytes":
        ckpt.write_bytes(np.random.default_rng(0).bytes(4096))


@pytest.mark.parametrize("kind, message", [
    ("another rule", r"run\.ckpt\.npz: this checkpoint belongs to another run \(its model, "
                     r"protocol or seed differ from those recorded in .*run\.h5\); nothing was"),
    ("epoch 50", r"run\.ckpt\.npz: checkpoint of epoch 50, but the run has epochs 0 to 2; "
                 "nothing was changed"),
    ("an earlier epoch", r"checkpoint of epoch -1, but .*run\.h5 holds the finished epochs \[1\]: "
                         "it is not the file's latest checkpoint"),
    ("format 1", r"run\.ckpt\.npz: checkpoint format 1 is not 2"),
    ("truncated", r"run\.ckpt\.npz: not a readable checkpoint \(truncated or corrupt\?\)"),
    ("random bytes", r"run\.ckpt\.npz: not a readable checkpoint \(truncated or corrupt\?\)"),
])
def test_resume_refuses_a_checkpoint_not_its_own(tmp_path, monkeypatch, kind, message):
    """Checked before anything is touched: the error names the checkpoint, and the run file,
    the checkpoint and the leftovers beside them stay as they were."""
    path = tmp_path / "run.h5"
    _interrupted_tiny(path, monkeypatch)
    _damage(path, kind, tmp_path, monkeypatch)
    leftover = tmp_path / "run.ckpt.npz.1.tmp"
    leftover.write_bytes(b"")
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob("run.*")}
    with pytest.raises(CheckpointError, match=message):
        bioprop.run(resume=path, progress=False)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob("run.*")} == files


def test_a_foreign_checkpoint_is_one_line_from_the_cli(tmp_path, monkeypatch):
    """`bioprop run --resume` with a checkpoint of 50 epochs for a 2-epoch run: exit 2, one
    line naming the checkpoint, no traceback, and the file is not marked complete."""
    path = tmp_path / "run.h5"
    _interrupted_tiny(path, monkeypatch)
    _rewrite_meta(path, epoch=50)
    proc = subprocess.run([sys.executable, "-m", "bioprop.cli", "run", "-q", "--resume",
                           str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "run.ckpt.npz: checkpoint of epoch 50, but the run has epochs 0 to 2" in proc.stderr
    assert bioprop.open_run(path).attrs["status"] == "interrupted"


@pytest.mark.slow
def test_sigkill_at_seeded_moments_then_resume(tmp_path):
    """Three SIGKILLs at seeded moments of a reference run (one also kills its --resume):
    finished epochs intact, the file opens in plain xarray after bioprop recover, and --resume gives the uninterrupted run bit
    for bit. ``python tests/kill_runs.py`` runs 20 in both engines."""
    from kill_runs import kill_and_resume, uninterrupted

    whole, span = uninterrupted("reference", tmp_path)
    outcomes = []
    for seed, kill_resume in ((1002, False), (1003, True), (1000, False)):
        result = kill_and_resume("reference", whole, span, tmp_path, seed, kill_resume)
        assert result["problems"] == [], result
        outcomes.append(result["outcome"])
    assert "killed before the file existed" not in outcomes


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
    assert list(tree["pathways"]["input_to_hidden1"]["epoch"].values) == [0, 1, 2]
    tree.close()
