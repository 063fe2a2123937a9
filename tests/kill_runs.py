"""Kill training runs with SIGKILL at seeded moments, resume them, and check nothing was lost.

Each kill starts ``bioprop run`` in a subprocess and, once its run file appears, waits a
seeded delay within the span an uninterrupted run takes from that moment to its end
(start-up, feedback pre-training, epochs, checkpoint writes and epoch-end flushes), then
sends SIGKILL. Every other kill also kills the first ``--resume`` at a seeded moment.
Then it checks:

* after the documented step, ``bioprop recover RUN.h5`` (exit 0, one line), the killed file
  opens in plain ``xr.open_datatree(path, engine="h5netcdf")``, and every finished epoch it
  holds is bit for bit the uninterrupted run's (an entry a kill left unfinished has the epoch
  -1 and is no finished epoch);
* ``--resume`` (after a killed resume, too) exits 0 and the run file then equals the
  uninterrupted one: every array (except wall times), every epoch coordinate, and the final
  checkpoint's weights, optimizer and engine state, bit for bit;
* no ``*.tmp`` file is left beside it.

A run file appears only once it is declared and in SWMR mode (it is declared as a
temporary, then renamed), so every kill after its appearance leaves a file that
``bioprop recover`` makes readable; a kill before it leaves no run file.

A kill before the first checkpoint (feedback pre-training's first epoch) leaves nothing to
resume: ``--resume`` must then fail with "no checkpoint" and change nothing.

Run it from the repository::

    python tests/kill_runs.py                       # 15 reference + 5 Brian2 kills
    python tests/kill_runs.py --reference 3 --brian2 0

``tests/test_resume.py`` runs a few kills of the reference engine with :func:`kill_and_resume`.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

#: tiny runs whose every part (pre-training, epochs, weights and activity) is recorded
OVERRIDES = {
    "reference": ["engine.name=reference", "training.epochs=5", "data.n_train=1024",
                  "data.n_test=128", "rule.feedback_pretrain_epochs=2", "record.weights_every=1",
                  "record.activity_every=2", "record.activity_batch_every=3"],
    "brian2": ["engine.name=brian2", "training.epochs=3", "data.n_train=64", "data.n_test=32",
               "rule.feedback_pretrain_epochs=1", "record.weights_every=1",
               "record.activity_every=1", "record.probe_size=16"],
}


def _cli(*args) -> list:
    return [sys.executable, "-m", "bioprop.cli", *args]


def _sets(overrides) -> list:
    return sum((["--set", o] for o in overrides), [])


def uninterrupted(engine, workdir) -> tuple:
    """Run `engine`'s case to its end: (run file, seconds from the file's appearance to the
    last checkpoint)."""
    from bioprop.checkpoint import checkpoint_path

    path = Path(workdir) / f"whole-{engine}.h5"
    path.unlink(missing_ok=True)
    proc = subprocess.Popen(_cli("run", "-q", "-o", str(path), *_sets(OVERRIDES[engine])),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not path.exists() and proc.poll() is None:
        time.sleep(0.002)
    appeared = time.time()
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the uninterrupted {engine} run failed: {err}")
    # the last checkpoint is written just before the run is marked complete
    return path, checkpoint_path(path).stat().st_mtime - appeared


def _kill_after(cmd, ready, delay) -> bool:
    """Start `cmd`, wait until `ready()` and then `delay` seconds, and SIGKILL it.

    Returns whether the kill came before the process ended by itself.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready() and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(delay)
        killed = proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        killed = False
    finally:
        proc.wait()
    return killed


def arrays(path) -> dict:
    """Every dataset of a run file (wall times left out: they differ from run to run)."""
    from bioprop.runlog import read_run_file

    out = {}
    with read_run_file(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset)
                     and name.rsplit("/", 1)[-1] not in ("wall_time", "samples_per_second")
                     else None)
    return out


def recover(path) -> list:
    """The documented step after a kill, ``bioprop recover RUN.h5``: problems if it fails or
    says more (or less) than one line."""
    proc = subprocess.run(_cli("recover", str(path)), capture_output=True, text=True)
    if proc.returncode or proc.stderr or len(proc.stdout.splitlines()) != 1:
        return [f"bioprop recover: rc {proc.returncode}, {proc.stdout.strip()} {proc.stderr.strip()}"]
    return []


def _same_epochs_as(killed, whole) -> list:
    """Problems of a killed file: after ``bioprop recover`` it must open in plain xarray (no
    SWMR reader) and hold only entries of the whole run, every finished one bit for bit."""
    import xarray as xr

    from bioprop.runlog import UNFINISHED

    problems = recover(killed)
    try:
        tree = xr.open_datatree(killed, engine="h5netcdf")
    except (OSError, ValueError) as err:
        return problems + [f"the killed file does not open in plain xarray: {err}"]
    reference = xr.open_datatree(whole, engine="h5netcdf")
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "epoch" not in ds.indexes or not ds.sizes["epoch"]:
            continue
        ds = ds.isel(epoch=ds["epoch"].values != UNFINISHED)  # unfinished: not an epoch
        other = reference[node.path].to_dataset(inherit=False)
        epochs = ds["epoch"].values
        if not set(epochs) <= set(other["epoch"].values):
            problems.append(f"{node.path}: epochs {list(epochs)} not in the whole run's")
            continue
        for name in ds.data_vars:
            if "epoch" in ds[name].dims and name not in ("wall_time", "samples_per_second"):
                a, b = ds[name].values, other[name].sel(epoch=epochs).values
                if not np.array_equal(a, b, equal_nan=True):
                    problems.append(f"{node.path}/{name}: a finished epoch differs")
    tree.close()
    reference.close()
    return problems


def _equal(a, b) -> bool:
    """Bit for bit, NaN equal to NaN (an entry that holds none)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _same_run(path, whole) -> list:
    from bioprop.checkpoint import load_checkpoint

    problems = []
    a, b = arrays(path), arrays(whole)
    if set(a) != set(b):
        problems.append(f"datasets differ: {sorted(set(a) ^ set(b))}")
    problems += [f"{k} differs" for k in sorted(set(a) & set(b)) if not _equal(a[k], b[k])]
    (ca, ma), (cb, mb) = load_checkpoint(path), load_checkpoint(whole)
    if ma["epoch"] != mb["epoch"] or set(ca) != set(cb):
        problems.append(f"final checkpoints differ (epoch {ma['epoch']} vs {mb['epoch']})")
    problems += [f"checkpoint {k} differs" for k in sorted(set(ca) & set(cb))
                 if not np.array_equal(ca[k], cb[k])]
    return problems


def _checkpoint_epoch(path) -> str:
    """The checkpoint a kill left: ``epoch E``, ``pre-training K`` or ``none``."""
    from bioprop.checkpoint import CheckpointError, load_checkpoint

    try:
        meta = load_checkpoint(path)[1]
    except CheckpointError:
        return "none"
    return f"epoch {meta['epoch']}" if meta["epoch"] >= 0 else f"pre-training {meta.get('pretrained')}"


def kill_and_resume(engine, whole, span, workdir, seed, kill_resume) -> dict:
    """One seeded kill of `engine`'s case (and maybe of its resume): what happened and the
    problems found (an empty list: everything kept, resumed bit for bit)."""
    from bioprop.checkpoint import checkpoint_path

    rng = np.random.default_rng(seed)
    path = Path(workdir) / f"killed-{engine}-{seed}.h5"
    for stale in Path(workdir).glob(f"{path.name}*"):
        stale.unlink()
    checkpoint_path(path).unlink(missing_ok=True)
    delay = float(rng.uniform(0, 1.1 * span))
    out = {"engine": engine, "seed": seed, "delay": round(delay, 3), "problems": []}
    out["killed"] = _kill_after(_cli("run", "-q", "-o", str(path), *_sets(OVERRIDES[engine])),
                                path.exists, delay)
    if not path.exists():
        out["outcome"] = "killed before the file existed"
        return out
    out["problems"] += _same_epochs_as(path, whole)
    out["checkpoint"] = _checkpoint_epoch(path)
    resume = _cli("run", "-q", "--resume", str(path))
    if not checkpoint_path(path).exists():
        before = path.read_bytes()
        proc = subprocess.run(resume, capture_output=True, text=True)
        out["outcome"] = "no checkpoint yet"
        if proc.returncode != 2 or "no checkpoint" not in proc.stderr:
            out["problems"].append(f"--resume without a checkpoint: rc {proc.returncode}, "
                                   f"{proc.stderr.strip()}")
        if path.read_bytes() != before:
            out["problems"].append("--resume without a checkpoint changed the file")
        return out
    if kill_resume:
        # from the moment the resume starts rewriting the file (its temporary appears)
        out["resume_delay"] = round(float(rng.uniform(0, 1.1 * span)), 3)
        rewriting = lambda: any(path.parent.glob(f"{path.name}.*.tmp"))  # noqa: E731
        out["resume_killed"] = _kill_after(resume, rewriting, out["resume_delay"])
        out["problems"] += _same_epochs_as(path, whole)
    proc = subprocess.run(resume, capture_output=True, text=True)
    done_by_resume = "the run is complete" in proc.stderr and kill_resume
    if proc.returncode and not (proc.returncode == 2 and "the run is complete" in proc.stderr):
        out["problems"].append(f"--resume: rc {proc.returncode}: {proc.stderr.strip()[-300:]}")
        out["outcome"] = "resume failed"
        return out
    out["outcome"] = ("resumed" if not proc.returncode or done_by_resume
                      else "complete before the kill")
    out["problems"] += _same_run(path, whole)
    left = sorted(p.name for p in Path(workdir).glob(f"{path.name.split('.')[0]}*.tmp"))
    if left:
        out["problems"].append(f"temporaries left: {left}")
    return out


def main(argv=None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, default=15, help="kills in the reference engine")
    parser.add_argument("--brian2", type=int, default=5, help="kills in the Brian2 engine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = {"reference": args.reference, "brian2": args.brian2}
    failed = 0
    with tempfile.TemporaryDirectory() as workdir:
        for engine, n in counts.items():
            if not n:
                continue
            whole, span = uninterrupted(engine, workdir)
            print(f"{engine}: uninterrupted run {span:.2f} s from the file's appearance")
            for k in range(n):  # every other kill also kills the first --resume
                seed = args.seed * 1000 + k
                result = kill_and_resume(engine, whole, span, workdir, seed, kill_resume=k % 2 == 1)
                failed += bool(result["problems"])
                detail = ", ".join(f"{key}={result[key]}" for key in
                                   ("delay", "killed", "checkpoint", "resume_delay",
                                    "resume_killed")
                                   if key in result)
                print(f"  {engine} seed {seed}: {result['outcome']} ({detail}): "
                      + ("ok" if not result["problems"] else "; ".join(result["problems"])))
    total = sum(counts.values())
    print(f"{total - failed} of {total} kills passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
