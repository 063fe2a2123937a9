"""Firing rates in Hz of a run's spiking layers, from its recorded activity.

A spiking layer's ``rate`` is stored as its trace, a fraction of the layer's maximal
rate (:mod:`bioprop.spiking`), with that rate as its ``scale_factor``: read with
:func:`bioprop.open_run` (or any netCDF reader) it is in Hz, in every format version.
The maximal rate is its population kind's
(:attr:`bioprop.populations.PopulationKind.max_rate`), for the model recorded in the
run file itself, so any old run file can be read without the model file.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..runlog import formats
from ..runlog.vocabulary import HZ, PHASES, RATE

__all__ = ["max_rates", "mean_firing_rates", "phase_mask"]


def max_rates(tree) -> dict:
    """The maximal rate of each spiking layer of a run.

    Parameters
    ----------
    tree : DataTree
        An opened run (:func:`bioprop.open_run`).

    Returns
    -------
    dict
        {layer name: the rate in Hz at which its stored rate is 1}, for the layers whose
        population kind has a maximal rate (:func:`bioprop.runlog.formats.max_rates`).
    """
    return formats.max_rates(tree.attrs["model_toml"], tree.attrs["protocol_toml"])


def mean_firing_rates(tree, *, phase: str = "forward", epoch=-1) -> xr.Dataset:
    """Mean firing rate (Hz) of each spiking layer over one phase of the recorded probe trial.

    Parameters
    ----------
    tree : DataTree
        An opened run (:func:`bioprop.open_run`) that recorded activity
        (``record.activity_every`` > 0).
    phase : str
        The phase of the trial to average over (a name in ``/phases``).
    epoch : int
        Position along the ``epoch`` dim (default: the last recorded epoch).

    Returns
    -------
    Dataset
        One variable per spiking layer, in Hz: the mean over trials, neurons and the
        phase's time points; each also holds ``silent_fraction`` as an attribute.
    """
    if "layers" not in tree.children:
        raise ValueError("the run recorded no activity: set record.activity_every > 0")
    out = {}
    for name, top in max_rates(tree).items():
        group = tree["layers"][name]
        rate = group[RATE].isel(epoch=epoch)
        if "time" in rate.dims:
            rate = rate.isel(time=phase_mask(tree, rate["time"].values, phase))
        # open_run gives Hz; a tree opened without CF decoding has the stored fractions
        hz = rate if rate.attrs.get("units") == HZ else rate * top
        per_neuron = hz.mean([d for d in hz.dims if d != "neuron"])
        out[name] = xr.DataArray(float(hz.mean()), attrs={
            "units": "Hz", "silent_fraction": float((per_neuron < 1.0).mean()),
            "long_name": f"mean firing rate in the {phase} phase"})
    return xr.Dataset(out, attrs={"epoch": int(tree["layers"][next(iter(out))]["epoch"]
                                               .values[epoch]) if out else -1})


def phase_mask(tree, time, phase: str):
    """Which of the recorded times `time` (ms) lie in a phase named `phase` (``/phases``)."""
    table = tree[PHASES]
    inside = np.zeros(len(time), dtype=bool)
    for name, start, duration in zip(table["name"].values, table["start"].values,
                                     table["duration"].values):
        if name == phase:
            inside |= (time >= start) & (time < start + duration)
    return inside
