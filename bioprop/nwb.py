"""Export a run's recorded activity to NWB (Neurodata Without Borders), ``bioprop[nwb]``.

:func:`export_nwb` writes one NWB file holding the activity of one recorded epoch:
each layer's rates as a ``TimeSeries`` (trials laid end to end in time), one row per
probe trial in the trials table, and spikes, when a run has them, in the ``Units``
table. The run's provenance becomes the session description and notes.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from .outputs import OutputExistsError, check_new_file
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

    out_path = check_new_file(out_path, what="NWB file", example="run.nwb")
    if out_path.exists() and not force:
        raise OutputExistsError(out_path)
    tree = open_run(run_path)
    layers = [n for n in tree["layers"].children if "time" in tree["layers"][n].dims] \
        if "layers" in tree.children else []
    if not layers:
        raise ValueError(f"{run_path}: no time-resolved activity to export; record it with "
                         "--set record.activity_every=K (Brian2 engine)")
    first = tree["layers"][layers[0]]
    epochs = [int(e) for e in first["epoch"].values]
    epoch = epochs[-1] if epoch is None else epoch
    if epoch not in epochs:
        raise ValueError(f"{run_path}: no activity recorded at epoch {epoch}; recorded: "
                         f"{', '.join(map(str, epochs))}")
    try:
        created = datetime.datetime.fromisoformat(str(tree.attrs.get("created")))
    except ValueError:
        raise ValueError(f"{run_path}: its created attribute, {tree.attrs.get('created')!r}, "
                         "is not an ISO date and time") from None
    nwb = NWBFile(session_description=f"bioprop run {Path(run_path).name}, epoch {epoch}",
                  identifier=f"{Path(run_path).stem}-{tree.attrs.get('created')}-epoch{epoch}",
                  session_start_time=created, notes=str(tree.attrs.get("model_toml", "")),
                  source_script="bioprop", source_script_file_name="bioprop/nwb.py")
    times = first["time"].values / 1000.0  # ms → s
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1e-3
    trial_length = times[-1] + step
    n_trials = first.sizes["trial"]
    for trial in range(n_trials):
        nwb.add_trial(start_time=trial * trial_length, stop_time=(trial + 1) * trial_length)
    stamps = (np.arange(n_trials)[:, None] * trial_length + times[None, :]).ravel()
    module = nwb.create_processing_module("bioprop", "rates of the network's populations")
    for name in layers:
        rate = tree["layers"][name][RATE].sel(epoch=epoch).transpose(*TIMED)
        # a spiking layer's rate reads in Hz; a rate neuron's is dimensionless
        unit = rate.attrs.get("units", "1")
        module.add(TimeSeries(name=f"{name}_rate", data=rate.values.reshape(-1, rate.sizes["neuron"]),
                              unit="a.u." if unit == "1" else unit, timestamps=stamps,
                              description=f"rate r = phi(v) + nudge of layer {name}; trials "
                                          "laid end to end (see the trials table)"))
    _add_units(nwb, tree["layers"], epoch, trial_length)
    tree.close()
    with NWBHDF5IO(str(out_path), "w") as io:
        io.write(nwb)
    return out_path


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
