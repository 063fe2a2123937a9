"""Ctrl-C: a real SIGINT stops a run at a safe point, says how to resume, and the resumed
run ends bit-identical to an uninterrupted one (bioprop.stopping, training, cli)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import bioprop
from bioprop.checkpoint import checkpoint_path, load_checkpoint
from bioprop.stopping import RunInterrupted, StopRequested, StopSignal

TINY = {"reference": ["engine.name=reference", "data.n_train=128", "data.n_test=64",
                      "training.epochs=60", "record.weights_every=1"],
        "brian2": ["data.n_train=64", "data.n_test=32", "training.epochs=12",
                   "record.weights_every=1"]}


def _cli(*args, overrides=()):
    cmd = [sys.executable, "-m", "bioprop.cli", "run", "-q", *args]
    return cmd + sum([["--set", o] for o in overrides], [])


def _checkpoint_epoch(path):
    try:
        return load_checkpoint(path)[1]["epoch"] if checkpoint_path(path).exists() else -1
    except Exception:  # caught between the write and the rename
        return -1


def _interrupt_after_first_epoch(path, overrides, signum=signal.SIGINT):
    """Start `bioprop run`, send one `signum` once epoch 1 is checkpointed; (rc, stderr)."""
    proc = subprocess.Popen(_cli("-o", str(path), overrides=overrides),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _checkpoint_epoch(path) < 1:
        assert proc.poll() is None and time.time() < deadline, "the run never reached epoch 1"
        time.sleep(0.005)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _weights(path):
    tree = xr.open_datatree(path, engine="h5netcdf")
    out = {name: (list(node["epoch"].values), node["weight"].values)
           for name, node in tree["pathways"].children.items()}
    out["loss"] = ([], tree["train"]["loss"].values)
    tree.close()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["reference", "brian2"])
def test_sigint_stops_keeps_epochs_and_resumes_bit_identical(tmp_path, engine):
    _stop_keep_and_resume(tmp_path, engine, signal.SIGINT)


@pytest.mark.slow
def test_sigterm_stops_like_sigint(tmp_path):
    """SIGTERM (a batch scheduler at its time limit, or kill) gets Ctrl-C's safe stop, with
    the exit status of SIGTERM, 143."""
    _stop_keep_and_resume(tmp_path, "reference", signal.SIGTERM)


def _stop_keep_and_resume(tmp_path, engine, signum):
    overrides = TINY[engine]
    broken, whole = tmp_path / "broken.h5", tmp_path / "whole.h5"
    rc, err = _interrupt_after_first_epoch(broken, overrides, signum)
    lines = err.strip().splitlines()
    assert rc == 128 + signum, err
    assert lines == [f"bioprop run: interrupted after epoch {_checkpoint_epoch(broken)}; the "
                     f"finished epochs are in {broken}. Continue with: bioprop run --resume "
                     f"{broken}"]
    assert "Press Ctrl+C" not in err
    kept = _checkpoint_epoch(broken)
    n_epochs = int(overrides[3 if engine == "reference" else 2].split("=")[1])
    assert 1 <= kept < n_epochs
    tree = xr.open_datatree(broken, engine="h5netcdf")
    assert tree.attrs["status"] == "interrupted"
    # every finished epoch, and no partial one, is in the file
    assert list(tree["train"]["epoch"].values) == list(range(1, kept + 1))
    assert np.all(np.isfinite(tree["train"]["loss"].values))
    tree.close()

    proc = subprocess.run(_cli("--resume", str(broken)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    bioprop.run(output=whole, progress=False, overrides=overrides)
    a, b = _weights(whole), _weights(broken)
    assert set(a) == set(b)
    for key in a:
        assert a[key][0] == b[key][0], key
        np.testing.assert_array_equal(a[key][1], b[key][1], err_msg=key)
    final_a, final_b = load_checkpoint(whole)[0], load_checkpoint(broken)[0]
    for key in final_a:
        np.testing.assert_array_equal(final_a[key], final_b[key], err_msg=key)


def test_a_stop_request_abandons_the_epoch_under_way(tmp_path, monkeypatch):
    """A Ctrl-C at the second batch of epoch 2 (4 batches an epoch): epoch 2 is neither
    recorded nor checkpointed, and bioprop.run raises RunInterrupted naming epoch 1."""
    from contextlib import contextmanager

    from bioprop import training

    class CtrlCAtSixthBatch(StopSignal):
        calls = 0

        def check(self):
            self.calls += 1
            self.requested = self.requested or self.calls == 6
            super().check()

    armed = CtrlCAtSixthBatch()
    monkeypatch.setattr(training, "catch_sigint", contextmanager(lambda: (yield armed)))
    path = tmp_path / "run.h5"
    with pytest.raises(RunInterrupted, match=r"after epoch 1; .*--resume") as info:
        bioprop.run(output=path, progress=False,
                    overrides=TINY["reference"][:3] + ["training.epochs=3"])
    assert info.value.epoch == 1 and isinstance(info.value, KeyboardInterrupt)
    assert armed.calls == 6
    assert load_checkpoint(path)[1]["epoch"] == 1
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert tree.attrs["status"] == "interrupted" and list(tree["train"]["epoch"].values) == [1]
    tree.close()


def test_stop_signal_second_ctrl_c_raises_at_once():
    stop = StopSignal()
    stop(signal.SIGINT, None)
    assert stop.requested
    with pytest.raises(StopRequested):
        stop.check()
    with pytest.raises(KeyboardInterrupt):
        stop(signal.SIGINT, None)


def test_interrupted_before_the_first_checkpoint_says_start_again(tmp_path):
    err = RunInterrupted(tmp_path / "r.h5", None)
    assert str(err) == (f"interrupted before the first checkpoint; {tmp_path / 'r.h5'} holds no "
                        "finished epoch: start the run again")


def test_brian2_engine_stops_its_network_when_progress_raises():
    """Brian2's own SIGINT handling is off, and a progress callback that raises ends the
    Network.run cleanly (not mid-step) and the error reaches the caller."""
    import brian2

    from bioprop.spec import load_model, load_protocol
    from bioprop.training import make_engine

    model = load_model(None, ["layers.0.size=8", "layers.1.size=8"])
    protocol = load_protocol(None, ["training.batch_size=4"])
    engine = make_engine(model, protocol, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 64)), rng.integers(0, 10, 16)
    seen = []

    def progress(n):
        seen.append(n)
        raise StopRequested

    with pytest.raises(StopRequested):
        engine.train_epoch(x, y, rng, progress=progress)
    assert seen == [4]  # one trial, then the network stopped
    assert not brian2.prefs.core.stop_on_keyboard_interrupt
    assert not brian2.Network._globally_running


def test_a_stop_in_an_epoch_that_records_batches_finishes_it(tmp_path, monkeypatch):
    """Training batches are written as the epoch goes: a Ctrl-C there ends the epoch
    first, so no partial entry (with no epoch) is left in /batches."""
    from contextlib import contextmanager

    from bioprop import training

    stop = StopSignal()
    original = training.recording

    def ctrl_c_at_first_batch(*args, **kwargs):
        stop.requested = True
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "catch_sigint", contextmanager(lambda: (yield stop)))
    monkeypatch.setattr(training, "recording", ctrl_c_at_first_batch)
    path = tmp_path / "run.h5"
    with pytest.raises(RunInterrupted, match="after epoch 1;"):
        bioprop.run(output=path, progress=False, overrides=TINY["reference"][:3] + [
            "training.epochs=3", "record.activity_every=1", "record.activity_batch_every=1"])
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert list(tree["batches"]["hidden1"]["epoch"].values) == [1]
    assert list(tree["batches"]["hidden1"]["batch"].values) == [0, 1, 2, 3]
    assert np.all(np.isfinite(tree["batches"]["hidden1"]["rate"].values))
    assert list(tree["train"]["epoch"].values) == [1]
    tree.close()


#: `bioprop run` whose data loading announces itself on stdout, then takes its time: a signal
#: sent after the line arrives lands before the engine is built
_SLOW_DATA = """
import sys, time
from bioprop import cli, training
load = training._data
def slow(*args):
    print("loading", flush=True)
    time.sleep(60)
    return load(*args)
training._data = slow
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_before_training_leaves_no_file(tmp_path, signum):
    """A Ctrl-C (or SIGTERM) while the data load, before the engine is built: one line says
    nothing was trained and no file was written, and none was."""
    out = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_DATA, "run", "-q", "-o", str(out),
                             "--set", "engine.name=reference"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "loading\n"
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert err.splitlines() == ["bioprop run: interrupted before training started; nothing "
                                "was trained and no run file was written"]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_run_file_is_declared_says_it_holds_no_epoch(tmp_path, monkeypatch,
                                                                       capsys):
    """Between the run file's creation and training: the file is left, marked interrupted,
    and the line says it holds no finished epoch."""
    from bioprop import cli, training

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "declare_run", interrupted)
    out = tmp_path / "run.h5"
    assert cli.main(["run", "-q", "-o", str(out), "--set", "engine.name=reference"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"bioprop run: interrupted before the first checkpoint; {out} holds no finished epoch: "
        "start the run again"]
    with xr.open_datatree(out, engine="h5netcdf") as tree:
        assert tree.attrs["status"] == "interrupted"
