"""Why a run stops before its last epoch: a Ctrl-C, or a loss or weight that diverged.

* :class:`RunInterrupted` — a run stopped by SIGINT (Ctrl-C) at a safe point.
* :class:`DivergenceError` — training produced a non-finite or exploding loss or weight.
* :class:`WriteFailed` — the run file or checkpoint could not be written (a full disk).
* :func:`catch_sigint` — while training, the first Ctrl-C (or SIGTERM) only asks the run
  to stop.
* :func:`interrupted_before_training` — a Ctrl-C before training says what was left.
* :func:`divergence` — the reason an epoch counts as diverged, or None.

A stopped run never counts a partial epoch: a Ctrl-C abandons the epoch under way
(its figures, weights and checkpoint are not written), so the run file and the
checkpoint both end at the last finished epoch, and ``--resume`` continues from
there exactly as an uninterrupted run would have.
"""
from __future__ import annotations

import math
import signal
import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["RunInterrupted", "DivergenceError", "WriteFailed", "Terminated", "raise_terminated",
           "interrupted_before_training", "STOP_SIGNALS", "StopRequested", "StopSignal", "catch_sigint",
           "divergence", "silent_output_loss", "DIVERGENCE_FACTOR"]

#: the signals that stop a run at its next safe point
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: An epoch diverged when a loss exceeds this many times the loss of a silent output
#: (:func:`silent_output_loss`, ln 10 for softmax cross-entropy on ten classes), or
#: exceeds that loss and this many times the first epoch's training loss: the default of
#: the protocol's ``training.divergence_factor``.
DIVERGENCE_FACTOR = 10.0


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or weight, or a loss far above chance."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT) at a safe point; its finished epochs are kept.

    Attributes
    ----------
    path : Path or None
        The run file; None when the run stopped before it created one.
    epoch : int or None
        The last finished epoch, whose checkpoint is beside the run file; None when the
        run stopped before its first checkpoint.
    signum : int
        The signal that stopped it: SIGINT, or SIGTERM (which is handled the same way).
    """

    def __init__(self, path, epoch, signum: int = signal.SIGINT):
        self.path, self.epoch, self.signum = path, epoch, int(signum)
        if path is None:
            text = ("interrupted before training started; nothing was trained and no run file "
                    "was written")
        elif epoch is None:
            text = (f"interrupted before the first checkpoint; {path} holds no finished "
                    "epoch: start the run again")
        else:
            text = (f"interrupted after epoch {epoch}; the finished epochs are in {path}. "
                    f"Continue with: bioprop run --resume {path}")
        super().__init__(text)

    def __str__(self):
        return self.args[0]


class WriteFailed(OSError):
    """A run stopped because its run file or checkpoint could not be written (a full disk,
    a file system that went away); the epochs finished before are kept.

    Attributes
    ----------
    path : Path
        The run file.
    epoch : int or None
        The last finished epoch, as for :class:`RunInterrupted`.
    """

    def __init__(self, path, epoch, error: OSError):
        self.path, self.epoch = path, epoch
        reason = error.strerror or str(error)
        if epoch is None:
            text = (f"{path}: writing failed before the first checkpoint ({reason}); no epoch "
                    "was finished: start the run again")
        else:
            text = (f"{path}: writing failed after epoch {epoch} ({reason}); the finished "
                    f"epochs are kept. Once it can be written, continue with: bioprop run "
                    f"--resume {path}")
        super().__init__(error.errno, text)

    def __str__(self):
        return self.args[1]


class StopRequested(Exception):
    """Raised inside an epoch to abandon it after a Ctrl-C (caught by the training loop)."""


class StopSignal:
    """Whether a Ctrl-C asked the run to stop.

    The first SIGINT (or SIGTERM) only sets :attr:`requested` and :attr:`signum`; training
    stops at the next safe point. A second one raises ``KeyboardInterrupt`` at once, for a
    run that does not reach one.
    """

    def __init__(self):
        self.requested = False
        self.signum = signal.SIGINT

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def check(self):
        """Raise :class:`StopRequested` if a Ctrl-C came (called between batches)."""
        if self.requested:
            raise StopRequested


@contextmanager
def catch_sigint():
    """Turn SIGINT and SIGTERM into a :class:`StopSignal` while the block runs.

    Installed after the engine is built: Brian2 installs its own handler when it is
    imported, which would only end the current ``Network.run`` (one epoch) and let
    training carry on from a half-trained epoch. SIGTERM (a batch scheduler's, or
    ``kill``'s) gets the same safe stop, so that a job stopped at its time limit keeps
    its finished epochs and can be resumed. Outside the main thread Python allows no
    handler, and the block runs with a signal that never fires.
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside training, raised where a Ctrl-C raises ``KeyboardInterrupt``."""

    signum = signal.SIGTERM


def raise_terminated(signum, frame):
    """A SIGTERM handler that stops the program as a Ctrl-C does (:class:`Terminated`)."""
    raise Terminated


@contextmanager
def interrupted_before_training(path=None):
    """Turn a Ctrl-C (or SIGTERM) in the block, before training starts, into a
    :class:`RunInterrupted` that says what was left: nothing (`path` None), or a run file
    without a finished epoch."""
    try:
        yield
    except RunInterrupted:
        raise
    except KeyboardInterrupt as err:
        raise RunInterrupted(path, None, getattr(err, "signum", signal.SIGINT)) from None


def silent_output_loss(learner, y) -> float:
    """The mean loss of an output of zeros on labels `y`: the scale of "no learning".

    For softmax cross-entropy it is ln(n_classes); for the squared error, ½ mean ‖y‖².
    """
    targets = learner.targets_of(y)
    loss, _ = learner.loss_fn(np.zeros(targets.shape, dtype=np.float64), targets)
    return float(loss.mean())


def divergence(learner, row, first_loss, silent_loss, factor=DIVERGENCE_FACTOR):
    """What diverged in an epoch (a sentence naming the quantity), or None.

    Parameters
    ----------
    learner : Learner
        Its forward weights are checked for non-finite values.
    row : dict
        The epoch's figures: ``loss`` (training) and ``test_loss``.
    first_loss : float or None
        The first epoch's training loss (None in the first epoch).
    silent_loss : float
        :func:`silent_output_loss` of the training labels.
    factor : float
        The protocol's ``training.divergence_factor`` (default :data:`DIVERGENCE_FACTOR`).
    """
    model = learner.model
    for l in range(1, model.n_layers + 1):
        for label, p in zip(("weights", "biases"), model.forward[l].params):
            if not np.all(np.isfinite(p)):
                return f"the forward {label} into layer {model.names[l]!r} are not finite"
    for name, key in (("training loss", "loss"), ("test loss", "test_loss")):
        value = row[key]
        if not math.isfinite(value):
            return f"the {name} is {value}"
        if value > factor * silent_loss:
            return (f"the {name} {value:.4g} is above {factor:g} × the loss of a silent output "
                    f"({silent_loss:.4g})")
        if first_loss is not None and value > max(silent_loss, factor * first_loss):
            return (f"the {name} {value:.4g} is above {factor:g} × the first epoch's training "
                    f"loss ({first_loss:.4g}) and above the loss of a silent output "
                    f"({silent_loss:.4g})")
    return None
