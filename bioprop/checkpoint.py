"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint sits beside its run file (``RUN.ckpt.npz``) and holds the learned and
fixed weights, both optimizers' state (not their learning rates: a schedule's rate is a
function of the epoch, which is here), the forward weights' moving average of
``training.average_weights``, the Brian2 engine's state variables (its
populations carry their state from one trial into the next), the training random
generator's state, the last finished epoch (-1 during feedback pre-training, with the
pre-training epochs done) and the fingerprint of its run file. It is written to a
temporary file and renamed into place (:mod:`bioprop.atomic`), so a run killed at any
moment leaves either the previous checkpoint or the new one, never half of one.

* :func:`checkpoint_path` — where the checkpoint of a run file lives.
* :func:`save_checkpoint` / :func:`load_checkpoint`, through :func:`write_state` /
  :func:`read_state` (the file format, which a saved ``Network`` shares).
* :func:`run_fingerprint` and :func:`check_belongs` — is a checkpoint this run file's own,
  and its latest?
* :func:`recorded_progress` and :func:`recorded_specs` — what a run file says about the run
  to be resumed.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
import zipfile
from pathlib import Path

import numpy as np

from .atomic import fsync_path, replace, temporary

__all__ = ["checkpoint_path", "save_checkpoint", "load_checkpoint", "run_fingerprint",
           "check_belongs", "recorded_progress", "recorded_specs", "CheckpointError", "FORMAT",
           "write_state", "read_state", "UNREADABLE"]

#: 2: the run's fingerprint and the feedback pre-training epochs done were added
FORMAT = 2
#: what reading a truncated, corrupt or foreign file with :func:`read_state` raises
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class CheckpointError(FileNotFoundError):
    """A run that cannot be resumed; the message says why."""


def checkpoint_path(run_path) -> Path:
    run_path = Path(run_path)
    return run_path.with_name(run_path.stem + ".ckpt.npz")


def run_fingerprint(attrs) -> str:
    """SHA-256 of what makes a run itself: its resolved model and protocol TOML and its seed.

    `attrs` are a run file's root attributes. Two runs with the same fingerprint train
    the same weights, so a checkpoint of one continues the other exactly.
    """
    def text(value):
        return value.decode() if isinstance(value, bytes) else str(value)

    key = json.dumps([text(attrs.get("model_toml", "")), text(attrs.get("protocol_toml", "")),
                      text(attrs.get("seed", ""))])
    return hashlib.sha256(key.encode()).hexdigest()


def save_checkpoint(recorder, learner, epoch: int, rng: np.random.Generator, *,
                    pretrained: int = 0) -> Path:
    """Write the checkpoint of `learner` after `epoch`, atomically.

    Parameters
    ----------
    recorder : RunRecorder
        The run being written: the checkpoint goes beside its file and carries the
        fingerprint of its root attributes.
    learner : Learner
    epoch : int
        The last epoch whose entries are all in the run file: 0 once the feedback
        pre-training and epoch 0's figures are; -1 during the feedback pre-training.
    rng : numpy.random.Generator
        The training generator, whose state continues the run.
    pretrained : int
        With ``epoch = -1``: the feedback pre-training epochs done.
    """
    path = checkpoint_path(recorder.path)
    meta = {"format": FORMAT, "epoch": int(epoch), "pretrained": int(pretrained),
            "rng": rng.bit_generator.state, "run": run_fingerprint(recorder.attrs)}
    return write_state(path, meta, learner.state_arrays())


def write_state(path, meta: dict, arrays: dict) -> Path:
    """Write `arrays` and the JSON-able `meta` to the .npz file `path`, atomically: a
    checkpoint, or a saved ``Network``. :func:`read_state` reads it back."""
    path = Path(path)
    tmp = temporary(path)
    with open(tmp, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
    fsync_path(tmp)
    replace(tmp, path)
    return path


def read_state(path):
    """The arrays and the metadata that :func:`write_state` wrote to `path`.

    Raises
    ------
    OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile
        A file that is not one :func:`write_state` wrote, whole (:data:`UNREADABLE`).
    """
    with np.load(path) as data:
        meta = json.loads(str(data["__meta__"]))
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
    if not isinstance(meta, dict):
        raise ValueError("its metadata is not a table")
    return arrays, meta


def load_checkpoint(run_path):
    """The arrays and the metadata (epoch, pretrained, rng state, run) of a run's checkpoint.

    Raises
    ------
    CheckpointError
        No checkpoint, or one that is truncated, not a checkpoint, or of another format.
    """
    path = checkpoint_path(run_path)
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path}: is not a file; the checkpoint of {run_path} must be "
                              "the .npz file a run writes; nothing was changed")
    if not path.is_file():
        raise CheckpointError(f"{run_path}: no checkpoint ({path.name}) beside the run file; "
                              "a run can be resumed only from a checkpoint written at an epoch end")
    try:
        arrays, meta = read_state(path)
    except UNREADABLE as err:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"{err}; nothing was changed") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')} is not {FORMAT} "
                              "(written by another bioprop version); nothing was changed")
    return arrays, meta


def check_belongs(meta, run_path, attrs, finished, n_epochs: int, n_pretrain: int):
    """Refuse a checkpoint that is not the run file's own, or not its latest.

    Parameters
    ----------
    meta : dict
        The checkpoint's metadata (:func:`load_checkpoint`).
    run_path : path
    attrs : mapping
        The run file's root attributes.
    finished : sequence of int
        The epochs ``/train`` of the run file holds.
    n_epochs, n_pretrain : int
        The run's epochs (``training.epochs``) and feedback pre-training epochs.

    Raises
    ------
    CheckpointError
        The checkpoint belongs to a run with another model, protocol or seed; or its
        epoch is outside the run or is not the file's last finished epoch. A run records
        an epoch's figures before it writes the epoch's checkpoint, so the file may hold
        one epoch more than the checkpoint (that epoch is cut and trained again).
    """
    path, finished = checkpoint_path(run_path), [int(e) for e in finished]
    keep = "; nothing was changed"
    if meta.get("run") != run_fingerprint(attrs):
        raise CheckpointError(f"{path}: this checkpoint belongs to another run (its model, "
                              f"protocol or seed differ from those recorded in {run_path}){keep}")
    epoch, pretrained = meta.get("epoch"), meta.get("pretrained")
    if not isinstance(epoch, int) or not -1 <= epoch <= n_epochs:
        raise CheckpointError(f"{path}: checkpoint of epoch {epoch!r}, but the run has epochs "
                              f"0 to {n_epochs}{keep}")
    if not isinstance(pretrained, int) or not 0 <= pretrained <= n_pretrain:
        raise CheckpointError(f"{path}: checkpoint after {pretrained!r} feedback pre-training "
                              f"epochs, but the run has {n_pretrain}{keep}")
    done = max(epoch, 0)
    at_most = done + 1 if epoch >= 0 else 0  # nothing is recorded during pre-training
    if finished[:done] != list(range(1, done + 1)) or len(finished) > at_most:
        raise CheckpointError(f"{path}: checkpoint of epoch {epoch}, but {run_path} holds the "
                              f"finished epochs {finished or 'none'}: it is not the file's "
                              f"latest checkpoint{keep}")


def recorded_progress(path):
    """The root attributes of a run file, the epochs its ``/train`` holds, and the first
    epoch's training loss (for the divergence test; None before epoch 1).

    Raises
    ------
    ValueError
        A file that is not a readable run, or has no ``/train`` group.
    """
    import warnings

    from .runlog import KilledWriterWarning, open_run

    with warnings.catch_warnings():  # a killed writer's file: --resume rewrites it anyway
        warnings.simplefilter("ignore", KilledWriterWarning)
        tree = open_run(path)  # refuses a file that is not a readable run, with a clear message
    try:
        if "train" not in tree.children:
            raise ValueError(f"{path}: no /train group; not a run file that can be resumed")
        train = tree["train"]
        epochs = [int(e) for e in train["epoch"].values]
        first_loss = float(train["loss"].values[0]) if epochs[:1] == [1] else None
        return dict(tree.attrs), epochs, first_loss
    finally:
        tree.close()


def recorded_specs(path, attrs):
    """The model and protocol recorded in a run file's root attributes `attrs`.

    Raises
    ------
    ValueError
        No ``model_toml`` or ``protocol_toml``, or one that is not TOML.
    SpecError
        A recorded spec that this bioprop does not accept.
    """
    from .ranges import recorded_as_before
    from .spec import ModelSpec, ProtocolSpec, parse_model, parse_protocol

    specs = []
    for key, parse, cls in (("model_toml", parse_model, ModelSpec),
                            ("protocol_toml", parse_protocol, ProtocolSpec)):
        try:
            table = tomllib.loads(str(attrs[key]))
        except KeyError:
            raise ValueError(f"{path}: no {key} attribute; not a run file that can be "
                             "resumed") from None
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: its {key} attribute is not TOML ({err})") from None
        specs.append(parse(recorded_as_before(table, cls), f"{path} ({key})"))
    return specs
