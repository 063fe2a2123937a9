"""Firing rates in Hz of a run's spiking layers, from its recorded activity.

A spiking layer's logged ``rate`` is its trace as a fraction of the layer's maximal
rate (:mod:`bioprop.spiking`). The maximal rate is its population kind's
(:attr:`bioprop.populations.PopulationKind.max_rate`), for the model recorded in the
run file itself, so any old run file can be read without the model file.
"""
from __future__ import annotations

import json
import tomllib

import numpy as np
import xarray as xr

from ..runlog.vocabulary import RATE

__all__ = ["max_rates", "mean_firing_rates"]


def max_rates(tree) -> dict:
    """The maximal rate of each spiking layer of a run.

    Parameters
    ----------
    tree : DataTree
        An opened run (:func:`bioprop.open_run`).

    Returns
    -------
    dict
        {layer name: the rate in Hz at which its recorded rate is 1}, for the layers whose
        population kind has a maximal rate.
    """
    from ..populations import population_kind
    from ..spec import parse_model
    from ..units import parse_duration

    model = parse_model(tomllib.loads(tree.attrs["model_toml"]), "model_toml")
    dt = parse_duration(tomllib.loads(tree.attrs["protocol_toml"])["phases"]["dt"])
    out = {}
    for layer in model.layers:
        max_rate = population_kind(layer).max_rate
        if max_rate is not None:
            out[layer.name] = max_rate(layer, dt)
    return out


def mean_firing_rates(tree, *, phase: str = "forward", epoch=-1) -> xr.Dataset:
    """Mean firing rate (Hz) of each spiking layer over one phase of the recorded probe trial.

    Parameters
    ----------
    tree : DataTree
        An opened run (:func:`bioprop.open_run`) that recorded activity
        (``record.activity_every`` > 0).
    phase : str
        The phase of the trial to average over (the group's ``phases`` attribute).
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
            spans = [(start, end) for p, start, end in json.loads(group.attrs["phases"])
                     if p == phase]
            inside = np.zeros(rate.sizes["time"], dtype=bool)
            for start, end in spans:
                inside |= (rate["time"].values >= start) & (rate["time"].values <= end)
            rate = rate.isel(time=inside)
        hz = rate * top
        per_neuron = hz.mean([d for d in hz.dims if d != "neuron"])
        out[name] = xr.DataArray(float(hz.mean()), attrs={
            "units": "Hz", "silent_fraction": float((per_neuron < 1.0).mean()),
            "long_name": f"mean firing rate in the {phase} phase"})
    return xr.Dataset(out, attrs={"epoch": int(tree["layers"][next(iter(out))]["epoch"]
                                               .values[epoch]) if out else -1})
