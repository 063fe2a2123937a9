"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint sits beside its run file (``RUN.ckpt.npz``) and holds the learned and
fixed weights, both optimizers' state, the Brian2 engine's state variables (its
populations carry their state from one trial into the next), the training random
generator's state and the last finished epoch. It is written to a temporary file
and renamed into place, so a run killed at any moment leaves either the previous
checkpoint or the new one, never half of one.

* :func:`checkpoint_path` — where the checkpoint of a run file lives.
* :func:`save_checkpoint` / :func:`load_checkpoint`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["checkpoint_path", "save_checkpoint", "load_checkpoint", "CheckpointError"]

FORMAT = 1


class CheckpointError(FileNotFoundError):
    """A run that cannot be resumed; the message says why."""


def checkpoint_path(run_path) -> Path:
    run_path = Path(run_path)
    return run_path.with_name(run_path.stem + ".ckpt.npz")


def save_checkpoint(run_path, learner, epoch: int, rng: np.random.Generator) -> Path:
    """Write the checkpoint of `learner` after `epoch`, atomically."""
    path = checkpoint_path(run_path)
    meta = {"format": FORMAT, "epoch": int(epoch), "rng": rng.bit_generator.state}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **learner.state_arrays())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(run_path):
    """The arrays and the metadata (epoch, rng state) of a run's checkpoint."""
    path = checkpoint_path(run_path)
    if not path.is_file():
        raise CheckpointError(f"{run_path}: no checkpoint ({path.name}) beside the run file; "
                              "a run can be resumed only from a checkpoint written at an epoch end")
    with np.load(path) as data:
        meta = json.loads(str(data["__meta__"]))
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')} is not {FORMAT}")
    return arrays, meta
