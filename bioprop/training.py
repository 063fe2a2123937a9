"""Run a protocol: data → engine → epochs → run file.

:func:`run` is what ``bioprop run`` calls. It loads the data, builds the model and
the engine named in the protocol, trains for the protocol's epochs with a progress
bar, and streams per-epoch figures and provenance to one HDF5 run file
(:mod:`bioprop.runlog`). A run that diverges stops with :class:`DivergenceError`
(status ``diverged``), and a Ctrl-C stops it with :class:`RunInterrupted` (status
``interrupted``) at the next safe point (:mod:`bioprop.stopping`); either way its
finished epochs, and only those, stay in the file.
"""
from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batching import epoch_samples
from .engines import ENGINES, make_engine
from .run_data import run_data as _data
from .outputs import RUN_SUFFIXES, check_new_file, default_run_file
from .overrides import blame
from .runlog import (RunFileExistsError, RunRecorder, batch_entries, declare_run, provenance,
                     record_diagnostics, record_epoch, record_probe_activity, recording,
                     records_batches, reopen_run, snapshot_weights)
from .spec import ModelSpec, ProtocolSpec, load_model, load_protocol, to_toml
from .stopping import (DivergenceError, RunInterrupted, StopRequested, WriteFailed, catch_sigint,
                       divergence, interrupted_before_training, silent_output_loss)

__all__ = ["run", "train", "make_engine", "generators", "RunResult", "DivergenceError",
           "RunInterrupted", "ENGINES"]


@dataclass
class RunResult:
    """What a finished run reports."""

    path: Path
    engine: str
    epochs: int
    test_accuracy: float | None
    test_loss: float
    wall_time: float
    samples_per_second: float
    #: one dict per epoch: epoch, loss, accuracy (train), test_loss, test_accuracy,
    #: validation_loss and validation_accuracy (with data.validation),
    #: wall_time, n_samples, samples_per_second
    history: list = field(default_factory=list)


def _resolve(model, protocol, overrides):
    if not isinstance(model, ModelSpec):
        model = load_model(model, overrides)
    if not isinstance(protocol, ProtocolSpec):
        # no protocol given: the one the model file names, if any (models/lif.toml: spiking)
        protocol = load_protocol(protocol or model.protocol or None, overrides)
    return model, protocol


def run(model=None, protocol=None, *, output=None, force: bool = False, overrides=(),
        progress: bool = True, resume=None) -> RunResult:
    """Train a model under a protocol and record the run.

    Parameters
    ----------
    model : ModelSpec, path, shipped name or None
        None is the embedded default (a DTP rate network for the digits data).
    protocol : ProtocolSpec, path, shipped name or None
        None is the protocol the model file names (its ``protocol`` key), else the
        embedded default.
    output : path, optional
        The run file. By default the protocol's ``record.path``, numbered ``-2``, ``-3``...
        if that file exists.
    force : bool
        Replace an existing run file. Without it an existing file is an error.
    overrides : sequence of "key=value"
        Applied to the model and protocol files, as ``--set`` does.
    progress : bool
        Show a tqdm progress bar.
    resume : path, optional
        Continue this run file from its checkpoint instead: the model and protocol
        are the ones recorded in it, and the result equals an uninterrupted run's.

    Returns
    -------
    RunResult

    Raises
    ------
    DivergenceError
        When an epoch's loss or weights diverge (:func:`bioprop.stopping.divergence`).
    RunInterrupted
        After a Ctrl-C or SIGTERM: at the next safe point, or, before training started,
        saying what was left.
    """
    if resume is not None:
        return _resume(resume, progress)
    with interrupted_before_training():  # nothing is written yet, and nothing is left
        model_spec, protocol = _resolve(model, protocol, overrides)
    return train(model_spec, protocol, output=output, force=force, progress=progress)


def train(model_spec: ModelSpec, protocol: ProtocolSpec, *, engine=None, rng=None, data=None,
          output=None, force: bool = False, progress: bool = True) -> RunResult:
    """Train under `protocol` and record the run: :func:`run` once its specs are resolved.

    Parameters
    ----------
    model_spec, protocol : ModelSpec, ProtocolSpec
        What the run file records as the run's model and protocol.
    engine, rng : Learner and numpy.random.Generator, optional
        An engine built from these specs and the training generator to go on with
        (``Network.fit``): its weights are epoch 0. By default a fresh engine and the
        generators of ``training.seed`` (:func:`generators`).
    data : Dataset, optional
        Instead of the protocol's data set; checked against the model the same way.
    output, force, progress
        As :func:`run`'s.
    """
    from .checkpoint import checkpoint_path

    with ExitStack() as stack:
        with interrupted_before_training():  # nothing is written yet, and nothing is left
            path = None
            if output is not None:  # a mistaken -o is named before the data are loaded
                path = check_new_file(output, suffixes=RUN_SUFFIXES)
                if path.exists() and not force:
                    raise RunFileExistsError(path)
            data = _data(model_spec, protocol, data)
            if path is None:
                with blame(dict(protocol.origins)):
                    path = default_run_file(protocol.record.path, seed=protocol.training.seed,
                                            model=model_spec.network.name, source=protocol.source)
            stack.enter_context(_threads(protocol))
            if engine is None:
                init_rng, rng = generators(protocol.training.seed)
                engine = make_engine(model_spec, protocol, init_rng)
            attrs = provenance(model_toml=to_toml(model_spec), protocol_toml=to_toml(protocol),
                               seed=protocol.training.seed, engine=engine.name,
                               codegen_target=protocol.engine.codegen
                               if engine.name == "brian2" else "")
            if engine.hooks:  # a run a user's hooks may have perturbed says which ran
                attrs["hooks"] = "; ".join(f"{event}: {getattr(fn, '__qualname__', repr(fn))}"
                                           for event, fn in engine.hooks)
            recorder = stack.enter_context(RunRecorder(path, attrs, force=force))
        with interrupted_before_training(path):  # the run file exists, holding no epoch
            # a checkpoint left by an earlier run at this path must never resume this one
            checkpoint_path(path).unlink(missing_ok=True)
            declare_run(recorder, data, engine, protocol.record)
        return _session(engine, data, protocol, rng, recorder, progress, path, 0, fresh=True)


def _resume(path, progress) -> RunResult:
    """Continue a run file from its checkpoint (``bioprop run --resume``).

    Everything is checked before anything changes: the file is a run that is neither
    complete nor diverged; its checkpoint is readable, is the file's own (the fingerprint
    of its model, protocol and seed) and its latest (:func:`check_belongs`), and fits the
    model. Only then are the temporaries of killed writers removed and the file rewritten
    (:func:`reopen_run`), and the run goes on after the checkpoint's epoch.
    """
    from .atomic import remove_leftovers
    from .checkpoint import (CheckpointError, check_belongs, checkpoint_path, load_checkpoint,
                             recorded_progress, recorded_specs)

    path = Path(path)
    attrs, finished, first_loss = recorded_progress(path)
    status = attrs.get("status")
    if status == "complete":
        raise CheckpointError(f"{path}: the run is complete; there is nothing to resume")
    if status == "diverged":
        raise CheckpointError(f"{path}: the run diverged; resuming would diverge again the same "
                              "way: start a new run with other settings")
    arrays, meta = load_checkpoint(path)
    model_spec, protocol = recorded_specs(path, attrs)
    check_belongs(meta, path, attrs, finished, protocol.training.epochs,
                  model_spec.rule.feedback_pretrain_epochs)
    data = _data(model_spec, protocol)
    init_rng, train_rng = generators(protocol.training.seed)
    with _threads(protocol):
        engine = make_engine(model_spec, protocol, init_rng)
        try:
            engine.load_state_arrays(arrays)
            train_rng.bit_generator.state = meta["rng"]
        except (KeyError, ValueError, TypeError) as err:
            raise CheckpointError(f"{checkpoint_path(path)}: does not fit the run's model "
                                  f"({err}); nothing was changed") from None
        remove_leftovers(checkpoint_path(path))
        epoch = meta["epoch"]
        with reopen_run(path, epoch=epoch) as recorder:
            # a checkpoint during feedback pre-training (epoch -1) goes on with it, then epoch 0
            return _session(engine, data, protocol, train_rng, recorder, progress, path,
                            max(epoch, 0), fresh=epoch < 0, first_loss=first_loss,
                            pretrained=meta["pretrained"])


def generators(seed):
    """The initialisation and the training generators of a seed, as a run draws them."""
    return (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))


def _threads(protocol):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(protocol.engine.threads)


def _session(engine, data, protocol, rng, recorder, progress, path, done: int,
             fresh: bool = False, first_loss=None, pretrained: int = 0) -> RunResult:
    """Train the epochs after `done` (from the start if `fresh`, with `pretrained` feedback
    pre-training epochs done), record them, and report."""
    # every group is declared by now: from here on readers may watch the file (SWMR)
    recorder.start_swmr()
    probe = _probe(data, protocol.record.probe_size)
    with catch_sigint() as stop:
        history, wall = _train(engine, data, protocol.training, rng, recorder, progress, path,
                               probe, done, protocol.record, stop=stop, fresh=fresh,
                               first_loss=first_loss, pretrained=pretrained)
    recorder.set_attrs(status="complete")
    final = history[-1] if history else {"test_loss": float("nan")}
    n_seen = sum(h["n_samples"] for h in history)
    return RunResult(path, engine.name, done + len(history), final.get("test_accuracy"),
                     final["test_loss"], wall, n_seen / wall if wall else float("nan"), history)


def _probe(data, size):
    """The fixed probe batch of the diagnostics: the first `size` training samples."""
    return (data.x_train[:size], data.y_train[:size]) if size else None


def _train(engine, data, training, rng, recorder, show_progress, path, probe, done=0,
           record_spec=None, stop=None, fresh=None, first_loss=None, pretrained=0):
    """Train the epochs after `done`; returns the per-epoch rows and the summed training time.

    A checkpoint is written after every epoch (and after epoch 0: pre-training and the
    first diagnostics), once the epoch's figures are flushed to the run file. A `fresh`
    run (by default: one with nothing `done`) pre-trains and records epoch 0 first; a run
    resumed from the epoch-0 checkpoint has both already. `first_loss` is the first
    epoch's training loss of a resumed run, for the divergence test.

    After a Ctrl-C (`stop`, a :class:`~bioprop.stopping.StopSignal`) the epoch under way
    is abandoned between two batches, before anything of it is written: the run file
    and the checkpoint end at the last finished epoch. One that has finished training
    (and is being evaluated or recorded), or that records training batches, is
    completed and checkpointed first.
    """
    from tqdm.auto import tqdm

    fresh = not done if fresh is None else fresh
    n = epoch_samples(len(data.x_train), training.batch_size, training.keep_partial_batch)
    history = []
    pretrain = engine.rule.feedback_pretrain_epochs if engine.trains_feedback and fresh else 0
    passes = (pretrain - pretrained) + (training.epochs - done) * engine.passes_per_epoch
    bar = tqdm(total=passes * n, unit="sample",
               disable=not show_progress, desc=f"{engine.name} {data.name}")

    def progress(count):
        bar.update(count)
        if stop is not None:
            stop.check()

    silent = silent_output_loss(engine, data.y_train)
    finished = done if not fresh else None
    # Overflow on the way to divergence is expected; it is reported once, below.
    with bar, np.errstate(over="ignore", invalid="ignore"):
        try:
            if fresh:
                _begin(engine, data, rng, progress, recorder, probe, record_spec, pretrained,
                       pretrain)
                finished = 0
            for epoch in range(done + 1, training.epochs + 1):
                if stop is not None and stop.requested:
                    raise StopRequested
                # an epoch that records training batches writes them as it goes: it is
                # finished, not abandoned, so that no partial entry is left in the file
                until_end = records_batches(record_spec, epoch)
                engine.start_epoch(epoch, training.epochs)  # its rates depend on the epoch alone
                row = _epoch(engine, data, rng, bar.update if until_end else progress, bar,
                             epoch, n, recorder, record_spec)
                _check_divergence(engine, row, first_loss, silent, recorder, path, epoch,
                                  training.divergence_factor)
                _record(engine, data, rng, recorder, record_spec, path, probe, row, epoch,
                        training.epochs)
                history.append(row)
                first_loss = row["loss"] if epoch == 1 else first_loss
                finished = epoch
        except StopRequested:
            raise RunInterrupted(path, finished, getattr(stop, "signum", signal.SIGINT)) from None
        except OSError as err:  # a full disk: stop, keeping what is finished
            raise WriteFailed(path, finished, err) from None
    return history, sum(row["wall_time"] for row in history)


def _check_divergence(engine, row, first_loss, silent, recorder, path, epoch, factor):
    """Stop with :class:`DivergenceError` (status ``diverged``) if epoch `epoch` diverged."""
    reason = divergence(engine, row, first_loss, silent, factor)
    if reason is not None:
        recorder.set_attrs(status="diverged")
        raise DivergenceError(
            f"training diverged in epoch {epoch} ({reason}); the {epoch - 1} finished epoch(s) "
            f"are in {path}. Try a smaller learning rate (optimizer.forward.lr, "
            f"optimizer.feedback.lr) or rule.target_step.")


def _record(engine, data, rng, recorder, record_spec, path, probe, row, epoch, last):
    """Write a finished epoch of `last`: its figures, diagnostics, weights, activity,
    checkpoint."""
    from .checkpoint import save_checkpoint

    record_epoch(recorder, row)
    row["diagnostics_time"] = _diagnose(engine, probe, recorder, epoch)
    snapshot_weights(engine, recorder, record_spec, epoch, last)
    record_probe_activity(engine, data, recorder, record_spec, epoch, last)
    save_checkpoint(recorder, engine, epoch, rng)


def _begin(engine, data, rng, progress, recorder, probe, record_spec, pretrained, pretrain):
    """Feedback pre-training after `pretrained` of `pretrain` epochs, then epoch 0.

    Each pre-training epoch (the feedback pathway alone, before forward learning) is
    checkpointed as epoch -1, so a kill loses at most one; epoch 0's figures (the
    weights forward learning starts from) are recorded and checkpointed once it is done.
    """
    from .checkpoint import save_checkpoint

    for k in range(pretrained + 1, pretrain + 1):
        engine.train_epoch(data.x_train, data.y_train, rng, progress=progress,
                           learn_forward=False)
        save_checkpoint(recorder, engine, -1, rng, pretrained=k)
    _diagnose(engine, probe, recorder, 0)
    snapshot_weights(engine, recorder, record_spec, 0)
    record_probe_activity(engine, data, recorder, record_spec, 0)
    save_checkpoint(recorder, engine, 0, rng)


def _epoch(engine, data, rng, progress, bar, epoch, n, recorder=None, record_spec=None):
    start = time.perf_counter()
    engine.feedback_pass(data.x_train, data.y_train, rng, progress)  # "epochs" schedule only
    alone = engine.passes_per_epoch == 1
    if records_batches(record_spec, epoch):
        metrics, spent = _train_recording_batches(engine, data, rng, progress, recorder,
                                                  record_spec, epoch, learn_feedback=alone)
    else:
        metrics, spent = engine.train_epoch(data.x_train, data.y_train, rng, progress=progress,
                                            learn_feedback=alone), 0.0
    elapsed = time.perf_counter() - start - spent
    test = engine.evaluate(data.x_test, data.y_test)
    # after the test set: the test figures are those of a run without validation
    held = (engine.evaluate(data.x_validation, data.y_validation)
            if data.x_validation is not None else {})
    bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics.get('accuracy', float('nan')):.3f}",
                    test=f"{test.get('accuracy', test['loss']):.3f}")
    # samples/s counts every trial trained, both passes of an "epochs" epoch
    row = {"epoch": epoch, "loss": metrics["loss"], "test_loss": test["loss"], "wall_time": elapsed,
           "n_samples": n, "samples_per_second": n * engine.passes_per_epoch / elapsed}
    if "accuracy" in test:
        row.update(accuracy=metrics["accuracy"], test_accuracy=test["accuracy"])
    row.update({f"validation_{k}": v for k, v in held.items()})
    return row


def _train_recording_batches(engine, data, rng, progress, recorder, record_spec, epoch,
                             learn_feedback=True):
    """One epoch, batch by batch, recording every k-th batch's activity just before it learns.

    The batches are those ``engine.train_epoch`` would draw from `rng`, trained in the
    same order with the same noise, so the epoch's learning is the same; and
    ``record_activity`` learns nothing and restores the engine's state. Returns the
    epoch's figures and the seconds spent recording (left out of its wall time).
    """
    every = record_spec.activity_batch_every
    spent = [0.0]
    with batch_entries(recorder, epoch) as write:
        def record(j, x, y):
            if j % every == 0 and len(x) == engine.batch_size:  # /batches holds whole ones
                start = time.perf_counter()
                write(recording(engine, x, y, record_spec), batch=j)
                spent[0] += time.perf_counter() - start

        metrics = engine.train_batchwise(data.x_train, data.y_train, rng, progress,
                                         before_batch=record, learn_feedback=learn_feedback)
    return metrics, spent[0]


def _diagnose(engine, probe, recorder, epoch) -> float:
    """Per-layer diagnostics on the probe batch, appended at `epoch` (0: before training)."""
    from .analysis import layer_diagnostics

    if probe is None:
        return 0.0
    start = time.perf_counter()
    record_diagnostics(recorder, epoch, layer_diagnostics(engine, *probe))
    return time.perf_counter() - start
