"""The tables of a protocol file: data, training, phases, engine and what to record.

Each is a frozen dataclass whose fields are the table's only keys, typed and ranged
beside their declaration as :mod:`bioprop.spec` declares a model's; a field's ``#:``
comment is its description in the reference (docs/gen_reference.py).
:class:`bioprop.spec.ProtocolSpec` gathers them; import them from :mod:`bioprop.spec`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ranges import ranged
from .stopping import DIVERGENCE_FACTOR
from .units import Duration

__all__ = ["DataSpec", "TrainingSpec", "PhasesSpec", "EngineSpec", "RecordSpec"]


@dataclass(frozen=True)
class DataSpec:
    #: datasets.DATASETS name
    dataset: str = "digits"
    #: use only the first n training samples (0: all)
    n_train: int = ranged(0, ge=0)
    #: use only the first n test samples (0: all)
    n_test: int = ranged(0, ge=0)
    #: hold this many samples out of the training set (after n_train) as a validation set,
    #: scored every epoch and never trained on (0: none); Bartunov et al. 2018 hold out
    #: 5000 of MNIST's 60000 (datasets.hold_out)
    validation: int = ranged(0, ge=0, written="when set")
    #: seeds the choice of the validation samples, apart from training.seed, so that every
    #: training seed is scored on the same held-out samples
    validation_seed: int = ranged(0, ge=0, lt=2**63, text="a whole number in [0, 2**63)",
                                  written="when set")


@dataclass(frozen=True)
class TrainingSpec:
    #: passes over the training set
    epochs: int = ranged(10, gt=0)
    #: trials simulated at once, and the samples of one weight update
    batch_size: int = ranged(32, gt=0)
    #: seeds the initial weights and the training order (numpy.random.SeedSequence)
    seed: int = ranged(1, ge=0, lt=2**63, text="a whole number in [0, 2**63)")
    #: an epoch diverged when a loss exceeds this many times a silent output's loss, or that
    #: loss and this many times the first epoch's (stopping.divergence); in the run file if set
    divergence_factor: float = ranged(DIVERGENCE_FACTOR, gt=1, written="when set")
    #: test figures from the forward weights' moving average, this decay per batch (0: off)
    average_weights: float = ranged(0.0, ge=0, lt=1, written="when set")
    #: also train on the samples left after the last whole batch of each epoch, as one smaller
    #: batch (PyTorch's default); false drops them (a different few each epoch). Reference
    #: engine only, unless batch_size divides the training set (batching.epoch_batches)
    keep_partial_batch: bool = ranged(False, written="when set")


@dataclass(frozen=True)
class PhasesSpec:
    """The phases of one trial in simulated time (docs/design.md: one model, two executions)."""

    #: simulation time step
    dt: Duration = Duration("5 ms")
    #: forward settling, input clamped
    forward: Duration = Duration("40 ms")
    #: each of the two noise-injection half-phases that train the inverses
    feedback: Duration = Duration("20 ms")
    #: target delivery through the apical input
    target: Duration = Duration("40 ms")
    #: where each trial starts: the state the last one left (``carry``), at rest (``rest``) or
    #: the rate twin's steady state for its input (``twin``); docs/spiking.md
    trial_start: str = ranged("carry", written="when set")


@dataclass(frozen=True)
class EngineSpec:
    #: ``brian2`` (the product) or ``reference`` (plain NumPy, no time)
    name: str = "brian2"
    #: Brian2 code generation target: ``numpy`` or ``cython``
    codegen: str = "numpy"
    #: pathways out of spiking layers: ``dense`` (W · trace each step) or ``events`` (the
    #: weight columns of the neurons that fired, filtered; equal to rounding: event_pathways.py)
    transmission: str = ranged("dense", written="when set")
    #: floating point type of the weights and activity
    dtype: str = "float64"
    #: BLAS threads; 1 avoids oversubscription on a shared machine (see README)
    threads: int = ranged(1, ge=1)


@dataclass(frozen=True)
class RecordSpec:
    #: run file; ``{model}`` and ``{seed}`` are filled in
    path: str = "runs/{model}-seed{seed}.h5"
    #: training samples in the fixed probe batch of the per-layer diagnostics (0: none)
    probe_size: int = ranged(64, ge=0)
    #: snapshot every pathway's weights every k epochs, and before training (0: never)
    weights_every: int = ranged(10, ge=0)
    #: record the activity of one probe batch of B trials every k epochs (0: never)
    activity_every: int = ranged(0, ge=0)
    #: also record the probe batch's activity and every pathway's weights at epoch 0 (before
    #: training) and at the last epoch, whatever weights_every and activity_every say
    first_and_last: bool = ranged(True, before=False)  # added in format 2
    #: the recording time step of activity, as a multiple of the simulation dt
    activity_dt_factor: int = ranged(1, ge=1)
    #: keep the activity of only the first N trials of each recorded batch (0: all of its
    #: training.batch_size trials); the engine still simulates the whole batch
    activity_trials: int = ranged(0, ge=0, written="when set")
    #: in every epoch whose probe is recorded, also record every k-th training batch (0: never)
    activity_batch_every: int = ranged(0, ge=0)
    #: the pathways whose weights are snapshot, e.g. ["input_to_hidden1"] (empty: all)
    pathways: tuple[str, ...] = ()
    #: the layers whose activity is recorded, by name (empty: all)
    layers: tuple[str, ...] = ()
    #: the activity variables recorded (runlog.vocabulary.ACTIVITY_VARIABLES;
    #: empty: all the engine has)
    variables: tuple[str, ...] = ()
