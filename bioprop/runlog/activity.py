"""Writing recorded activity: ``/layers/<name>`` (the probe batch) and ``/batches/<name>``
(every k-th training batch of a recorded epoch).

An engine's ``record_activity`` returns ``{layer: {variable: array}}`` and, for a trace
through the trial, :data:`~bioprop.runlog.vocabulary.RECORD_COORDS` with the ``time``
of each point (and its ``phase``). The variables are those of
:data:`~bioprop.runlog.vocabulary.ACTIVITY`, in the steady form (trial, neuron) without
a time coordinate and in the timed form (trial, time, neuron) with one; spikes are the
event lists of :data:`~bioprop.runlog.vocabulary.SPIKE_EVENTS`.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..batching import whole_batches
from .formats import max_rates, rate_in_hz
from .vocabulary import (PHASES, RATE, RECORD_COORDS, SECTIONS, SPIKE_EVENTS, SPIKE_TIME,
                         SPIKE_TRIAL, SPIKES, STEADY, TIMED, coord_attrs, spike_mark)

__all__ = ["declare_activity", "recording", "record_probe_activity", "records_batches",
           "batch_entries", "due", "records_activity"]


def due(every: int, epoch: int, record_spec, last: int | None) -> bool:
    """Is `epoch` recorded by a schedule of every `every` epochs (0: never), or, with
    ``record.first_and_last``, as epoch 0 or the `last` one?"""
    if record_spec is None:
        return False
    if record_spec.first_and_last and epoch in (0, last):
        return True
    return bool(every) and not epoch % every


def records_activity(record_spec) -> bool:
    """Does a run under `record_spec` record the probe batch's activity at all?"""
    return record_spec is not None and bool(record_spec.activity_every
                                            or record_spec.first_and_last)


def records_batches(record_spec, epoch) -> bool:
    """Does `epoch` record the activity of training batches (a recorded epoch ≥ 1)?"""
    return bool(record_spec is not None and record_spec.activity_batch_every and epoch
                and not epoch % record_spec.activity_every)


def declare_activity(recorder, data, engine, record_spec):
    """Declare ``/layers/<name>`` (and ``/batches/<name>``) from one probe recording.

    The shapes of an engine's activity (its time points, which variables, whether it
    has spikes) are known only from a recording, and everything must be declared before
    the file enters SWMR mode: so the probe batch is recorded once here, at the initial
    weights, and the result is discarded (recording learns nothing). Its phases, the same
    in every recorded trial, become the table ``/phases``; the probe's inputs and labels go
    to ``/probe`` (:func:`_write_probe`).
    """
    B = engine.batch_size
    x, y = data.x_train[:B], data.y_train[:B]
    activity = recording(engine, x, y, record_spec)
    scales = max_rates(recorder.attrs["model_toml"], recorder.attrs["protocol_toml"])
    _declare_section(recorder, "layers", activity, scales)
    n = record_spec.activity_trials or B
    _write_probe(recorder, data, x[:n], y[:n])
    if record_spec.activity_batch_every:
        n_batches = whole_batches(len(data.x_train), B)
        _declare_section(recorder, "batches", activity, scales,
                         {"batch": np.arange(0, n_batches, record_spec.activity_batch_every)})
    table = activity.get(RECORD_COORDS, {}).get(PHASES)
    if table is not None:
        variables = SECTIONS[PHASES].variables
        recorder.write_table(PHASES, {k: (v, variables[k].attrs()) for k, v in table.items()},
                             dim="phase")


def recording(engine, x, y, record_spec) -> dict:
    """The engine's activity record of one batch, thinned to ``activity_dt_factor``.

    The engine records every step and every `factor`-th time point is kept, counted
    from the trial's start. (A Brian2 monitor with a coarser dt samples on the network's
    global clock instead, so its time grid, and even its length, would shift with the
    time at which the recording starts.) Spikes are events and are kept whole.
    """
    return _first_trials(_thinned(_chosen(engine.record_activity(x, y, 1), record_spec),
                                  record_spec.activity_dt_factor), record_spec.activity_trials)


def _first_trials(activity, n: int) -> dict:
    """An activity record of only its first `n` trials (0: all): dense variables are cut
    along ``trial``, which leads both their forms, and spikes of later trials dropped."""
    if not n:
        return activity
    out = {k: v for k, v in activity.items() if k == RECORD_COORDS}
    for layer, values in _layers_of(activity).items():
        kept = np.asarray(values[SPIKE_TRIAL]) < n if SPIKE_TRIAL in values else None
        out[layer] = {k: np.asarray(v)[kept] if k in SPIKE_EVENTS else v[:n]
                      for k, v in values.items()}
    return out


def _thinned(activity, factor) -> dict:
    """An activity record at every `factor`-th time point (spikes whole): see :func:`recording`."""
    coords = activity.get(RECORD_COORDS, {})
    if factor == 1 or "time" not in coords:
        return activity
    thinned = {RECORD_COORDS: {k: v if k == PHASES else v[::factor] for k, v in coords.items()}}
    along_time = (slice(None),) * TIMED.index("time") + (slice(None, None, factor),)
    for layer, values in _layers_of(activity).items():
        thinned[layer] = {k: v if k in SPIKE_EVENTS else v[along_time] for k, v in values.items()}
    return thinned


def record_probe_activity(engine, data, recorder, record_spec, epoch, last=None):
    """The probe batch's activity (the first B training samples), every `activity_every`
    epochs and, with ``record.first_and_last``, at epoch 0 and the `last` epoch."""
    if not due(record_spec and record_spec.activity_every, epoch, record_spec, last):
        return
    B = engine.batch_size
    activity = recording(engine, data.x_train[:B], data.y_train[:B], record_spec)
    groups = _dense_groups(recorder, "layers")
    for group in groups:
        recorder.grow(group)
    _write(recorder, "layers", activity, epoch)
    for group in groups:
        recorder.commit(group, epoch)
    recorder.flush()


@contextmanager
def batch_entries(recorder, epoch):
    """Open the `epoch` entries of ``/batches/*`` and yield ``write(activity, batch)``,
    which writes one training batch's record (:func:`recording`) into them.

    The entries are committed and flushed when the block ends; a block left by an
    exception leaves them open, so that ``--resume`` cuts them.
    """
    groups = _dense_groups(recorder, "batches")
    for group in groups:
        recorder.grow(group)

    def write(activity, batch):
        _write(recorder, "batches", activity, epoch, batch=batch)

    yield write
    for group in groups:
        recorder.commit(group, epoch)
    recorder.flush()


def _chosen(activity, record_spec) -> dict:
    """The layers and variables of an activity record that the protocol asks for
    (``record.layers``, ``record.variables``; ``spikes`` stands for the spike events)."""
    layers, variables = record_spec.layers, record_spec.variables

    def keep(name):
        return not variables or name in variables or (name in SPIKE_EVENTS
                                                      and SPIKES in variables)

    out = {k: v for k, v in activity.items() if k == RECORD_COORDS}
    for layer, values in _layers_of(activity).items():
        chosen = {k: v for k, v in values.items() if keep(k)}
        if (not layers or layer in layers) and chosen:
            out[layer] = chosen
    return out


def _declare_section(recorder, section, activity, scales, lead=None):
    """Declare ``/<section>/<layer>`` for every layer of an activity record.

    Dense variables get the section's entry dims then their form: timed when the
    record has a time coordinate, steady otherwise. Spikes become event lists along
    ``spike`` marked with their entry. The rate of a layer in `scales` (its maximal
    rate in Hz) reads in Hz (:func:`~bioprop.runlog.formats.rate_in_hz`).
    """
    lead = lead or {}
    coords = activity.get(RECORD_COORDS, {})
    form = TIMED if "time" in coords else STEADY
    schema = SECTIONS[section]
    for layer, values in _layers_of(activity).items():
        group = f"{section}/{layer}"
        dense = {k: v for k, v in values.items() if k not in SPIKE_EVENTS}
        if dense:
            dims, attrs = schema.declaration(list(dense), form)
            if RATE in attrs and layer in scales:
                attrs[RATE] = rate_in_hz(attrs[RATE], scales[layer])
            sizes = _sizes(group, dense, form)
            axes = {"trial": np.arange(sizes["trial"]), "neuron": np.arange(sizes["neuron"]),
                    **lead}
            if "time" in form:
                axes["time"] = coords["time"]
            recorder.declare(group, attrs, dims=dims, coords=axes,
                             coord_attrs=coord_attrs(dims))
        if SPIKE_EVENTS.keys() & values.keys():
            recorder.declare_events(group, schema.event_declaration())


def _sizes(group, dense, form) -> dict:
    """{dim: size} of a layer's dense variables, which must all have the dims `form`."""
    shapes = {name: np.shape(value) for name, value in dense.items()}
    first = next(iter(shapes.values()))
    for name, shape in shapes.items():
        if len(shape) != len(form) or shape != first:
            raise ValueError(f"{group}: the activity variables have dims {form}, but {name!r} "
                             f"has shape {shape} (the layer's first: {first})")
    return dict(zip(form, first))


def _layers_of(activity) -> dict:
    """{layer: {variable: array}} of an activity record, without its coordinates."""
    return {k: v for k, v in activity.items() if k != RECORD_COORDS}


def _dense_groups(recorder, section) -> list:
    """The declared groups of `section` ("layers", "batches") that hold dense variables."""
    return [g for g in recorder.grown_groups() if g.startswith(f"{section}/")]


def _write(recorder, section, activity, epoch, **at):
    """Write an activity record into the open entries of ``/<section>/*`` (at `at`, e.g.
    ``batch=j``) and append its spikes, marked with `epoch` (and `at`)."""
    for layer, values in _layers_of(activity).items():
        group = f"{section}/{layer}"
        dense = {k: v for k, v in values.items() if k not in SPIKE_EVENTS}
        if dense:
            recorder.put(group, dense, **at)
        if SPIKE_EVENTS.keys() & values.keys():
            spikes = {k: np.asarray(values[k]).ravel() for k in SPIKE_EVENTS}
            count = len(spikes[SPIKE_TIME])
            marks = {"epoch": epoch, **at}
            recorder.append_events(group, {**spikes, **{spike_mark(k): np.full(count, v)
                                                        for k, v in marks.items()}})



def _write_probe(recorder, data, x, y):
    """``/probe``: the probe trials' inputs (trial, input_neuron) and, for a classification
    task, their labels (trial), which are a coordinate of the inputs."""
    probe = SECTIONS["probe"].variables
    axes = {"trial": np.arange(len(x)), "input_neuron": np.arange(x.shape[1])}
    variables = {"input": (x, ("trial", "input_neuron"), probe["input"].attrs())}
    if data.task == "classification":
        variables["input"][2]["coordinates"] = "label"  # xarray: a coordinate along trial
        variables["label"] = (np.asarray(y, dtype=np.int64), ("trial",), probe["label"].attrs())
    recorder.write_fixed("probe", variables, coords=axes, coord_attrs=coord_attrs(list(axes)))
