"""Run a protocol: data → engine → epochs → run file.

:func:`run` is what ``bioprop run`` calls. It loads the data, builds the model and
the engine named in the protocol, trains for the protocol's epochs with a progress
bar, and streams per-epoch figures and provenance to one HDF5 run file
(:mod:`bioprop.record`). A run that diverges stops with :class:`DivergenceError`;
its finished epochs stay in the file.
"""
from __future__ import annotations

import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .model import build_model
from .spec import (ModelSpec, ProtocolSpec, check_compatible, load_model, load_protocol,
                   parse_duration, to_toml)

__all__ = ["run", "make_engine", "RunResult", "DivergenceError", "ENGINES"]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or weight."""


def _reference(model, spec, protocol):
    from .reference import ReferenceEngine
    return ReferenceEngine(model, spec, protocol.training.batch_size)


def _brian2(model, spec, protocol):
    from .brian2 import Brian2Engine
    return Brian2Engine(model, spec, protocol, protocol.training.batch_size)


#: engine name → builder(model, model_spec, protocol_spec)
ENGINES = {"brian2": _brian2, "reference": _reference}


def make_engine(model_spec: ModelSpec, protocol: ProtocolSpec, rng: np.random.Generator):
    """A freshly initialised model inside the engine the protocol names."""
    from .model import side_size
    from .populations import layer_activation, layer_feedback_activation
    from .rules import top_layer

    rule = model_spec.rule
    dt = parse_duration(protocol.phases.dt)
    model = build_model(model_spec.names, model_spec.sizes,
                        [layer_activation(layer, dt) for layer in model_spec.layers], rng,
                        feedback_activations=[layer_feedback_activation(layer, dt)
                                              for layer in model_spec.layers],
                        dtype=np.dtype(protocol.engine.dtype), init=model_spec.network.init,
                        top=top_layer(len(model_spec.layers), rule.top),
                        side_size=side_size(rule.side_information, model_spec.sizes),
                        p_connect=[layer.p_connect for layer in model_spec.layers])
    return ENGINES[protocol.engine.name](model, model_spec, protocol)


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
    #: wall_time, n_samples, samples_per_second
    history: list = field(default_factory=list)


def _resolve(model, protocol, overrides):
    if not isinstance(model, ModelSpec):
        model = load_model(model, overrides)
    if not isinstance(protocol, ProtocolSpec):
        protocol = load_protocol(protocol, overrides)
    return model, protocol


def _finite(engine, metrics):
    values = [metrics["loss"]] + [float(np.abs(p).max()) for p in engine.model.forward_params()]
    return all(math.isfinite(v) for v in values)


def run(model=None, protocol=None, *, output=None, force: bool = False, overrides=(),
        progress: bool = True, resume=None) -> RunResult:
    """Train a model under a protocol and record the run.

    Parameters
    ----------
    model : ModelSpec, path or None
        None is the embedded default (a DTP rate network for the digits data).
    protocol : ProtocolSpec, path or None
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
    """
    from .checkpoint import checkpoint_path
    from .record import RunRecorder, provenance

    if resume is not None:
        return _resume(resume, progress)
    model_spec, protocol = _resolve(model, protocol, overrides)
    data = _data(model_spec, protocol)
    if output is None:
        path = _free_path(Path(protocol.record.path.format(model=model_spec.network.name,
                                                           seed=protocol.training.seed)))
    else:
        path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    init_rng, train_rng = _generators(protocol.training.seed)
    with _threads(protocol):
        engine = make_engine(model_spec, protocol, init_rng)
        attrs = provenance(model_toml=to_toml(model_spec), protocol_toml=to_toml(protocol),
                           seed=protocol.training.seed, engine=engine.name,
                           codegen_target=protocol.engine.codegen if engine.name == "brian2" else "")
        with RunRecorder(path, attrs, force=force) as recorder:
            # a checkpoint left by an earlier run at this path must never resume this one
            checkpoint_path(path).unlink(missing_ok=True)
            _declare(recorder, data, engine, protocol.record)
            return _session(engine, data, protocol, train_rng, recorder, progress, path, 0)


def _resume(path, progress) -> RunResult:
    """Continue a run file from its checkpoint (``bioprop run --resume``)."""
    from .checkpoint import CheckpointError, load_checkpoint
    from .record import RunRecorder, open_run
    from .spec import parse_model, parse_protocol

    path = Path(path)
    tree = open_run(path)  # refuses a file that is not a readable run, with a clear message
    status, attrs = tree.attrs["status"], dict(tree.attrs)
    tree.close()
    if status == "complete":
        raise CheckpointError(f"{path}: the run is complete; there is nothing to resume")
    arrays, meta = load_checkpoint(path)
    model_spec = parse_model(tomllib.loads(attrs["model_toml"]), f"{path} (model_toml)")
    protocol = parse_protocol(tomllib.loads(attrs["protocol_toml"]), f"{path} (protocol_toml)")
    data = _data(model_spec, protocol)
    init_rng, train_rng = _generators(protocol.training.seed)
    with _threads(protocol):
        engine = make_engine(model_spec, protocol, init_rng)
        engine.load_state_arrays(arrays)
        train_rng.bit_generator.state = meta["rng"]
        with RunRecorder.reopen(path, epoch=meta["epoch"]) as recorder:
            return _session(engine, data, protocol, train_rng, recorder, progress, path,
                            meta["epoch"])


def _data(model_spec, protocol):
    from .datasets import load_dataset

    data = load_dataset(protocol.data.dataset, seed=protocol.training.seed,
                        n_train=protocol.data.n_train or None, n_test=protocol.data.n_test or None)
    check_compatible(model_spec, protocol, data.n_features, data.n_outputs)
    return data


def _generators(seed):
    """The initialisation and the training generators of a seed."""
    return (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))


def _threads(protocol):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(protocol.engine.threads)


def _session(engine, data, protocol, rng, recorder, progress, path, done: int) -> RunResult:
    """Train the epochs after `done`, record them, and report."""
    # every group is declared by now: from here on readers may watch the file (SWMR)
    recorder.start_swmr()
    probe = _probe(data, protocol.record.probe_size)
    history, wall = _train(engine, data, protocol.training, rng, recorder, progress, path, probe,
                           done, protocol.record)
    recorder.set_attrs(status="complete")
    final = history[-1] if history else {"test_loss": float("nan")}
    n_seen = sum(h["n_samples"] for h in history)
    return RunResult(path, engine.name, done + len(history), final.get("test_accuracy"),
                     final["test_loss"], wall, n_seen / wall if wall else float("nan"), history)


def _free_path(path: Path) -> Path:
    """The templated default run file, or the first ``name-2.h5``, ``name-3.h5``... not taken.

    Only an explicit output path can collide (and then needs ``force``): repeating a
    default run must neither fail nor overwrite the earlier one.
    """
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _probe(data, size):
    """The fixed probe batch of the diagnostics: the first `size` training samples."""
    return (data.x_train[:size], data.y_train[:size]) if size else None


def _pathways(model, record_spec=None):
    """The learned pathways of a model whose weights are recorded (``record.pathways``;
    all without it): name → (weight array, post names, pre names)."""
    out = {}
    for l in range(1, model.n_layers + 1):
        out[f"forward_{l}"] = (model.forward[l].weight, model.names[l], model.names[l - 1])
        if model.feedback[l] is not None:
            out[f"feedback_{l}"] = (model.feedback[l].weight, model.names[l - 1], model.names[l])
    chosen = record_spec.pathways if record_spec is not None else ()
    return {k: v for k, v in out.items() if not chosen or k in chosen}


def _declare(recorder, data, engine, record_spec=None):
    """Create every group the run will write to, before the file enters SWMR mode."""
    task = data.task
    train = {"loss": {"units": "1", "long_name": "mean training loss"},
             "wall_time": {"units": "s", "long_name": "wall-clock time of the epoch"},
             "samples_per_second": {"units": "1/s", "long_name": "training throughput"}}
    evaluation = {"loss": {"units": "1", "long_name": "mean test loss"}}
    if task == "classification":
        train["accuracy"] = {"units": "1", "long_name": "training accuracy"}
        evaluation["accuracy"] = {"units": "1", "long_name": "test accuracy"}
    recorder.declare("train", train, dims=("epoch",))
    recorder.declare("eval", evaluation, dims=("epoch",))
    from .analysis import DIAGNOSTICS

    layers = engine.model.names[1:]
    recorder.declare("metrics", {name: {"units": units, "long_name": long_name}
                                 for name, (units, long_name) in DIAGNOSTICS.items()},
                     dims=("epoch", "layer"), coords={"layer": layers})
    if record_spec is not None and record_spec.weights_every:
        for name, (weight, post, pre) in _pathways(engine.model, record_spec).items():
            recorder.declare(f"pathways/{name}", {"weight": {
                "units": "1", "long_name": f"weights from {pre} to {post}"}},
                dims=("epoch", "post", "pre"),
                coords={"post": np.arange(weight.shape[0]), "pre": np.arange(weight.shape[1])})
    if engine.rule.target == "iterative":
        recorder.declare("iterative", {"residual": {
            "units": "1", "long_name": "‖f_{l+1}(x^k) − ĥ_{l+1}‖ of layer l's k-th iterate"}},
            dims=("epoch", "layer", "iteration"),
            coords={"layer": layers, "iteration": np.arange(engine.rule.iterations + 1)})
    if record_spec is not None and record_spec.activity_every:
        _declare_activity(recorder, data, engine, record_spec)


def _train(engine, data, training, rng, recorder, show_progress, path, probe, done=0,
           record_spec=None):
    """Train the epochs after `done`; returns the per-epoch rows and the summed training time.

    A checkpoint is written after every epoch (and after epoch 0: pre-training and the
    first diagnostics), once the epoch's figures are flushed to the run file.
    """
    from tqdm.auto import tqdm

    from .checkpoint import save_checkpoint

    n = (len(data.x_train) // training.batch_size) * training.batch_size
    history = []
    pretrain = engine.rule.feedback_pretrain_epochs if engine.trains_feedback and not done else 0
    bar = tqdm(total=(pretrain + training.epochs - done) * n, unit="sample",
               disable=not show_progress, desc=f"{engine.name} {data.name}")
    # Overflow on the way to divergence is expected; it is reported once, below.
    with bar, np.errstate(over="ignore", invalid="ignore"):
        if not done:
            for _ in range(pretrain):  # the feedback pathway alone, before forward learning
                engine.train_epoch(data.x_train, data.y_train, rng, progress=bar.update,
                                   learn_forward=False)
            _diagnose(engine, probe, recorder, 0)
            _snapshot(engine, recorder, record_spec, 0)
            _record_activity(engine, data, recorder, record_spec, 0)
            save_checkpoint(path, engine, 0, rng)
        for epoch in range(done + 1, training.epochs + 1):
            row = _epoch(engine, data, rng, bar, epoch, n, recorder, record_spec)
            if not _finite(engine, row):
                recorder.set_attrs(status="diverged")
                raise DivergenceError(
                    f"training diverged in epoch {epoch} (loss = {row['loss']}); the "
                    f"{epoch - 1} finished epoch(s) are in {path}. Try a smaller learning rate "
                    f"(optimizer.forward.lr, optimizer.feedback.lr) or rule.target_step.")
            _record(recorder, row)
            row["diagnostics_time"] = _diagnose(engine, probe, recorder, epoch)
            _snapshot(engine, recorder, record_spec, epoch)
            _record_activity(engine, data, recorder, record_spec, epoch)
            save_checkpoint(path, engine, epoch, rng)
            history.append(row)
    return history, sum(row["wall_time"] for row in history)


def _epoch(engine, data, rng, bar, epoch, n, recorder=None, record_spec=None):
    start = time.perf_counter()
    if _records_batches(record_spec, epoch):
        metrics, recording = _train_recording_batches(engine, data, rng, bar.update, recorder,
                                                      record_spec, epoch)
    else:
        metrics, recording = engine.train_epoch(data.x_train, data.y_train, rng,
                                                progress=bar.update), 0.0
    elapsed = time.perf_counter() - start - recording
    test = engine.evaluate(data.x_test, data.y_test)
    bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics.get('accuracy', float('nan')):.3f}",
                    test=f"{test.get('accuracy', test['loss']):.3f}")
    row = {"epoch": epoch, "loss": metrics["loss"], "test_loss": test["loss"],
           "wall_time": elapsed, "n_samples": n, "samples_per_second": n / elapsed}
    if "accuracy" in test:
        row.update(accuracy=metrics["accuracy"], test_accuracy=test["accuracy"])
    return row


def _records_batches(record_spec, epoch) -> bool:
    """Does `epoch` record the activity of training batches (a recorded epoch ≥ 1)?"""
    return bool(record_spec is not None and record_spec.activity_batch_every and epoch
                and not epoch % record_spec.activity_every)


def _train_recording_batches(engine, data, rng, progress, recorder, record_spec, epoch):
    """One epoch, batch by batch, recording every k-th batch's activity just before it learns.

    The batches are those ``engine.train_epoch`` would draw from `rng`, trained in the
    same order with the same noise, so the epoch's learning is the same; and
    ``record_activity`` learns nothing and restores the engine's state. Returns the
    epoch's figures and the seconds spent recording (left out of its wall time).
    """
    every = record_spec.activity_batch_every
    groups = _activity_groups(recorder, "batches")
    for group in groups:
        recorder.grow(group)
    spent = [0.0]

    def record(j, x, y):
        if j % every == 0:
            start = time.perf_counter()
            _write_activity(recorder, "batches", _recording(engine, x, y, record_spec), epoch,
                            batch=j)
            spent[0] += time.perf_counter() - start

    metrics = engine.train_batchwise(data.x_train, data.y_train, rng, progress,
                                     before_batch=record)
    for group in groups:
        recorder.commit(group, epoch)
    recorder.flush()
    return metrics, spent[0]


def _diagnose(engine, probe, recorder, epoch) -> float:
    """Per-layer diagnostics on the probe batch, appended at `epoch` (0: before training)."""
    from .analysis import layer_diagnostics

    if probe is None:
        return 0.0
    start = time.perf_counter()
    values = layer_diagnostics(engine, *probe)
    residuals = values.pop("residuals", None)
    recorder.append("metrics", epoch, values)
    if residuals is not None:
        recorder.append("iterative", epoch, {"residual": residuals})
    recorder.flush()
    return time.perf_counter() - start


def _snapshot(engine, recorder, record_spec, epoch):
    """The pathways' weights at `epoch`, every `weights_every` epochs."""
    if record_spec is None or not record_spec.weights_every or epoch % record_spec.weights_every:
        return
    for name, (weight, _, _) in _pathways(engine.model, record_spec).items():
        recorder.append(f"pathways/{name}", epoch, {"weight": weight})
    recorder.flush()


ACTIVITY_ATTRS = {
    "rate": {"units": "1", "long_name": "firing rate r = φ(v) + nudge"},
    "potential": {"units": "1", "long_name": "somatic potential v (a at steady state)"},
    "nudge": {"units": "1", "long_name": "apical nudge of the rate"},
    "apical": {"units": "1", "long_name": "apical potential u (feedback input)"},
    "apical_current": {"units": "1", "long_name": "apical current of a spiking soma (feedback)"},
    "target": {"units": "1", "long_name": "target ĥ of the layer (steady state)"},
}


#: spike events of a layer in an engine's ``record_activity``: name → (dtype, attributes)
SPIKE_VARIABLES = {
    "spike_trial": ("i8", {"units": "1", "long_name": "trial (row of the batch) of the spike"}),
    "spike_time": ("f8", {"units": "ms", "long_name": "spike time from the start of the trial"}),
    "spike_neuron": ("i8", {"units": "1", "long_name": "neuron of the layer that spiked"}),
}


def _spike_index(kind) -> dict:
    """The variables that say which recorded entry each spike belongs to."""
    index = {"spike_epoch": ("i8", {"units": "1", "long_name": "recorded epoch of the spike"})}
    if kind == "batches":
        index["spike_batch"] = ("i8", {"units": "1",
                                       "long_name": "training batch (in its epoch) of the spike"})
    return index


def _declare_activity(recorder, data, engine, record_spec):
    """Declare ``/layers/<name>`` (and ``/batches/<name>``) from one probe recording.

    The shapes of an engine's activity (its time points, which variables, whether it
    has spikes) are known only from a recording, and everything must be declared before
    the file enters SWMR mode: so the probe batch is recorded once here, at the initial
    weights, and the result is discarded (recording learns nothing).
    """
    B = engine.batch_size
    activity = _recording(engine, data.x_train[:B], data.y_train[:B], record_spec)
    _declare_kind(recorder, "layers", activity)
    if record_spec.activity_batch_every:
        n_batches = len(data.x_train) // B
        _declare_kind(recorder, "batches", activity,
                      {"batch": np.arange(0, n_batches, record_spec.activity_batch_every)})


def _recording(engine, x, y, record_spec) -> dict:
    """The engine's activity record of one batch, thinned to ``activity_dt_factor``.

    The engine records every step and every `factor`-th time point is kept, counted
    from the trial's start. (A Brian2 monitor with a coarser dt samples on the network's
    global clock instead, so its time grid, and even its length, would shift with the
    time at which the recording starts.) Spikes are events and are kept whole.
    """
    activity = _chosen(engine.record_activity(x, y, 1), record_spec)
    factor = record_spec.activity_dt_factor
    coords = activity.get("_coords", {})
    if factor == 1 or "time" not in coords:
        return activity
    thinned = {"_coords": {k: v[::factor] for k, v in coords.items()}}
    for layer, values in _layers_of(activity).items():
        thinned[layer] = {k: v if k in SPIKE_VARIABLES else v[:, ::factor]
                          for k, v in values.items()}
    return thinned


def _chosen(activity, record_spec) -> dict:
    """The layers and variables of an activity record that the protocol asks for
    (``record.layers``, ``record.variables``; ``spikes`` stands for the spike events)."""
    layers, variables = record_spec.layers, record_spec.variables

    def keep(name):
        return not variables or name in variables or (name in SPIKE_VARIABLES
                                                      and "spikes" in variables)

    out = {k: v for k, v in activity.items() if k == "_coords"}
    for layer, values in _layers_of(activity).items():
        chosen = {k: v for k, v in values.items() if keep(k)}
        if (not layers or layer in layers) and chosen:
            out[layer] = chosen
    return out


def _declare_kind(recorder, kind, activity, lead=None):
    """Declare ``/<kind>/<layer>`` for every layer of an activity record.

    Dense variables get dims (epoch, *lead, trial, [time,] neuron); spikes become
    event lists along ``spike`` with their ``spike_epoch`` (and ``spike_<lead>``).
    """
    import json

    lead = lead or {}
    coords = activity.get("_coords", {})
    for layer, values in _layers_of(activity).items():
        group = f"{kind}/{layer}"
        dense = {k: v for k, v in values.items() if k not in SPIKE_VARIABLES}
        if dense:
            shape = np.shape(next(iter(dense.values())))
            dims = ("trial", "time", "neuron") if len(shape) == 3 else ("trial", "neuron")
            axes = {"trial": np.arange(shape[0]), "neuron": np.arange(shape[-1]), **lead}
            if "time" in dims:
                axes["time"] = coords["time"]
            recorder.declare(group, {k: ACTIVITY_ATTRS[k] for k in dense},
                             dims=("epoch", *lead, *dims), coords=axes,
                             coord_attrs={"time": {"units": "ms"}})
        if SPIKE_VARIABLES.keys() & values.keys():
            recorder.declare_events(group, {**_spike_index(kind), **SPIKE_VARIABLES})
        if "phase" in coords:  # which phase of the trial each time point belongs to
            recorder.set_group_attrs(group, phases=json.dumps(_phase_runs(coords)))


def _layers_of(activity) -> dict:
    """{layer: {variable: array}} of an activity record, without its ``_coords``."""
    return {k: v for k, v in activity.items() if k != "_coords"}


def _activity_groups(recorder, kind) -> list:
    """The declared groups of `kind` ("layers", "batches") that hold dense variables."""
    return [g for g in recorder.grown_groups() if g.startswith(f"{kind}/")]


def _write_activity(recorder, kind, activity, epoch, **at):
    """Write an activity record into the open entries of ``/<kind>/*`` (at `at`, e.g.
    ``batch=j``) and append its spikes, marked with `epoch` (and `at`)."""
    for layer, values in _layers_of(activity).items():
        group = f"{kind}/{layer}"
        dense = {k: v for k, v in values.items() if k not in SPIKE_VARIABLES}
        if dense:
            recorder.put(group, dense, **at)
        if SPIKE_VARIABLES.keys() & values.keys():
            spikes = {k: np.asarray(values[k]).ravel() for k in SPIKE_VARIABLES}
            count = len(spikes["spike_time"])
            marks = {"epoch": epoch, **at}
            recorder.append_events(group, {**spikes, **{f"spike_{k}": np.full(count, v)
                                                        for k, v in marks.items()}})


def _record_activity(engine, data, recorder, record_spec, epoch):
    """The probe batch's activity (the first B training samples), every `activity_every` epochs."""
    if record_spec is None or not record_spec.activity_every or epoch % record_spec.activity_every:
        return
    B = engine.batch_size
    activity = _recording(engine, data.x_train[:B], data.y_train[:B], record_spec)
    groups = _activity_groups(recorder, "layers")
    for group in groups:
        recorder.grow(group)
    _write_activity(recorder, "layers", activity, epoch)
    for group in groups:
        recorder.commit(group, epoch)
    recorder.flush()


def _phase_runs(coords):
    """[[phase, first time (ms), last time (ms)], ...] from a per-time-point phase list."""
    runs = []
    for t, phase in zip(coords["time"], coords["phase"]):
        if runs and runs[-1][0] == phase:
            runs[-1][2] = round(float(t), 6)
        else:
            runs.append([phase, round(float(t), 6), round(float(t), 6)])
    return runs


def _record(recorder, row):
    """Append one epoch's figures and flush, so a killed run keeps this epoch."""
    train_keys = ("loss", "accuracy", "wall_time", "samples_per_second")
    recorder.append("train", row["epoch"], {k: row[k] for k in train_keys if k in row})
    evaluation = {"loss": row["test_loss"]}
    if "test_accuracy" in row:
        evaluation["accuracy"] = row["test_accuracy"]
    recorder.append("eval", row["epoch"], evaluation)
    recorder.flush()
