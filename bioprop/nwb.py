"""Export a run's recorded activity to NWB (Neurodata Without Borders), ``bioprop[nwb]``.

:func:`export_nwb` writes one NWB file holding the activity of one recorded epoch:
each layer's rates as a ``TimeSeries`` (trials laid end to end in time), one row per
probe trial in the trials table (with its label and the start and stop of each phase),
and spikes, when a run has them, in the ``Units``
table. The run's provenance becomes the session description and notes.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from .runlog.vocabulary import RATE, TIMED, spike_mark

__all__ = ["export_nwb"]


def export_nwb(run_path, out_path, *, epoch: int | None = None, force: bool = False) -> Path:
    """Write the activity of `epoch` (default: the last recorded) of a run to an NWB file.

    Rates become one ``TimeSeries`` per layer; spikes, when the run has them, the
    ``Units`` table, one unit per (layer, neuron). Both lay the probe trials end to
    end in time, one row of the trials table each.

    Raises
    ------
    ImportError
        Without pynwb, with the command that installs it.
    ValueError
        For a run without recorded time-resolved activity, or an unknown epoch.
    FileExistsError
        If `out_path` exists and `force` is false.
    """
    try:
        import pynwb
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    except ImportError:
        raise ImportError("NWB export needs pynwb: pip install 'bioprop[nwb]'") from None
    from .runlog import open_run

    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise FileExistsError(f"{out_path} exists; pass --force to overwrite it")
    tree = open_run(run_path)
    layers = [n for n in tree["layers"].children if "time" in tree["layers"][n].dims] \
        if "layers" in tree.children else []
    if not layers:
        raise ValueError(f"{run_path}: no time-resolved activity to export; record it with "
                         "--set record.activity_every=K (Brian2 engine)")
    first = tree["layers"][layers[0]]
    epochs = list(first["epoch"].values)
    epoch = epochs[-1] if epoch is None else epoch
    if epoch not in epochs:
        raise ValueError(f"{run_path}: no activity recorded at epoch {epoch}; recorded: {epochs}")
    created = datetime.datetime.fromisoformat(str(tree.attrs.get("created")))
    nwb = NWBFile(session_description=f"bioprop run {Path(run_path).name}, epoch {epoch}",
                  identifier=f"{Path(run_path).stem}-{tree.attrs.get('created')}-epoch{epoch}",
                  session_start_time=created, notes=str(tree.attrs.get("model_toml", "")),
                  source_script="bioprop", source_script_file_name="bioprop/nwb.py")
    times = first["time"].values / 1000.0  # ms → s
    n_trials = first.sizes["trial"]
    phases = _phase_intervals(tree, first, times)
    trial_length = phases[-1][2] if phases else times[-1] + _step(times)
    _add_trials(nwb, tree, n_trials, trial_length, phases)
    stamps = (np.arange(n_trials)[:, None] * trial_length + times[None, :]).ravel()
    module = nwb.create_processing_module("bioprop", "rates of the network's populations")
    for name in layers:
        rate = tree["layers"][name][RATE].sel(epoch=epoch).transpose(*TIMED)
        module.add(TimeSeries(name=f"{name}_rate", data=rate.values.reshape(-1, rate.sizes["neuron"]),
                              unit="a.u.", timestamps=stamps,
                              description=f"rate r = phi(v) + nudge of layer {name}; trials "
                                          "laid end to end (see the trials table)"))
    _add_units(nwb, tree["layers"], epoch, trial_length)
    tree.close()
    with NWBHDF5IO(str(out_path), "w") as io:
        io.write(nwb)
    return out_path


def _step(times) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1e-3


def _phase_intervals(tree, layer, times) -> list:
    """[(column prefix, start s, stop s), ...] of the phases of a trial, from its start.

    ``/probe`` holds the exact boundaries. A file from before it only has the layer's
    ``phases`` attribute, the first and last recorded time point of each phase; then a
    phase is taken to end where the next one's first point is.
    """
    if "probe" in tree.children and "phase_start" in tree["probe"].data_vars:
        probe = tree["probe"]
        runs = list(zip(probe["phase"].values, probe["phase_start"].values / 1000.0,
                        probe["phase_stop"].values / 1000.0))
    elif "phases" in layer.attrs:
        first = [(name, start / 1000.0) for name, start, _ in json.loads(layer.attrs["phases"])]
        ends = [start for _, start in first[1:]] + [times[-1] + _step(times)]
        runs = [(name, start, stop) for (name, start), stop in zip(first, ends)]
    else:
        return []
    seen, out = {}, []
    for name, start, stop in runs:  # a phase that comes back (noise_a of each iteration)
        seen[name] = seen.get(name, 0) + 1
        out.append((f"{name}_{seen[name]}" if seen[name] > 1 else str(name), float(start),
                    float(stop)))
    return out


def _add_trials(nwb, tree, n_trials, trial_length, phases):
    """One row per probe trial, the trials end to end: its label (``/probe``, when the task
    has classes) and the start and stop time of each of its phases, in seconds."""
    labels = None
    if "probe" in tree.children and "label" in tree["probe"].variables:
        labels = tree["probe"]["label"].values
        nwb.add_trial_column(name="label", description="class of the trial's input sample")
    for name, _, _ in phases:
        nwb.add_trial_column(name=f"{name}_start_time", description=f"start of the {name} phase")
        nwb.add_trial_column(name=f"{name}_stop_time", description=f"end of the {name} phase")
    for trial in range(n_trials):
        start = trial * trial_length
        columns = {"label": int(labels[trial])} if labels is not None else {}
        for name, begin, end in phases:
            columns.update({f"{name}_start_time": start + begin, f"{name}_stop_time": start + end})
        nwb.add_trial(start_time=start, stop_time=start + trial_length, **columns)


def _add_units(nwb, layers, epoch, trial_length):
    """One unit per (layer, neuron) of every layer with spikes, its times in seconds.

    Trial b's spike at t ms from the trial's start is at b·trial_length + t/1000 s,
    where the trials table puts trial b.
    """
    from .analysis import recorded_spikes

    spiking = [name for name in layers.children if spike_mark("epoch") in layers[name].variables]
    if not spiking:
        return
    nwb.add_unit_column(name="layer", description="the network layer of the unit")
    nwb.add_unit_column(name="neuron", description="the unit's neuron index in its layer")
    for name in spiking:
        node = layers[name]
        trial, time, neuron = recorded_spikes(node, epoch=epoch)
        seconds = trial * trial_length + time / 1000.0
        for i in range(node.sizes["neuron"]):
            nwb.add_unit(spike_times=np.sort(seconds[neuron == i]), layer=name, neuron=i)
