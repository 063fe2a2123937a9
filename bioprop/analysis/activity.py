"""Statistics of logged activity, as functions of xarray DataArrays with named dims.

Each works on any old run file's arrays (``/layers/<name>/rate``) and keeps the
dimensions it does not reduce, so ``rate.sel(epoch=5)`` or a whole run go in alike.

* :func:`rate_statistics` — mean, coefficient of variation, sparseness and silent
  fraction of a population.
* :func:`population_rate` — the mean rate over neurons: the population time course.
* :func:`spike_rates` — firing rates from spike times (``spike_trial``, ``spike_time``,
  ``spike_neuron``).
* :func:`raster` — spike times and neuron indices of one trial, for a raster plot.
* :func:`recorded_spikes` — the spike arrays of one recorded epoch (and batch) of a run.
* :func:`representational_similarity` — how alike two layers represent the same trials.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..runlog.vocabulary import SPIKE_EVENTS, STEADY, spike_mark

__all__ = ["rate_statistics", "population_rate", "spike_rates", "raster", "recorded_spikes",
           "representational_similarity"]


def _reduce_dims(rate, keep):
    return [d for d in rate.dims if d not in keep]


def rate_statistics(rate: xr.DataArray, *, silent_threshold: float = 1e-3,
                    keep=("epoch",)) -> xr.Dataset:
    """Population statistics of rates.

    Parameters
    ----------
    rate : DataArray with a ``neuron`` dim (and any of epoch, trial, time)
    silent_threshold : float
        A neuron whose mean absolute rate is below it counts as silent.
    keep : dims not to reduce (default: epoch, when present)

    Returns
    -------
    Dataset
        ``mean`` (mean rate over everything), ``cv`` (std / mean of the neurons' mean
        absolute rates), ``sparseness`` (Treves–Rolls population sparseness of the mean
        absolute rates, (Σr/n)² / (Σr²/n): 1 when all neurons are equally active, 1/n when
        one is), and ``silent_fraction``. Rate models may have negative rates (tanh): the
        last three use the absolute rate.
    """
    keep = [d for d in keep if d in rate.dims]
    per_neuron = abs(rate).mean(dim=_reduce_dims(rate, keep + ["neuron"]))
    mean_rate = rate.mean(dim=_reduce_dims(rate, keep))
    m1, m2 = per_neuron.mean("neuron"), (per_neuron ** 2).mean("neuron")
    return xr.Dataset({
        "mean": mean_rate,
        "cv": per_neuron.std("neuron") / m1,
        "sparseness": m1 ** 2 / m2,
        "silent_fraction": (per_neuron < silent_threshold).mean("neuron"),
    })


def population_rate(rate: xr.DataArray) -> xr.DataArray:
    """The mean rate over neurons, keeping every other dim (e.g. epoch, trial, time)."""
    return rate.mean("neuron")


def spike_rates(spike_trial, spike_time, spike_neuron, *, n_trials: int, n_neurons: int,
                duration: float) -> xr.DataArray:
    """Firing rates (spikes per unit of `duration`) per trial and neuron, from spike events."""
    counts = np.zeros((n_trials, n_neurons))
    np.add.at(counts, (np.asarray(spike_trial), np.asarray(spike_neuron)), 1)
    return xr.DataArray(counts / duration, dims=STEADY)


def raster(spike_trial, spike_time, spike_neuron, trial: int):
    """(times, neurons) of the spikes of one trial, ordered by time."""
    spike_trial, spike_time, spike_neuron = map(np.asarray, (spike_trial, spike_time, spike_neuron))
    chosen = spike_trial == trial
    order = np.argsort(spike_time[chosen], kind="stable")
    return spike_time[chosen][order], spike_neuron[chosen][order]


def recorded_spikes(node, epoch=None, **at):
    """The spikes of one recorded entry of a layer, as ``(spike_trial, spike_time, spike_neuron)``.

    Parameters
    ----------
    node : DataTree node or Dataset
        A layer group of a run file: ``tree["layers"]["hidden1"]`` (probe trials) or
        ``tree["batches"]["hidden1"]`` (training batches).
    epoch : int, optional
        The recorded epoch; by default the last one the group holds.
    **at
        Further entry coordinates, e.g. ``batch=4`` for ``/batches``.

    Returns
    -------
    tuple of three 1-D arrays
        Trial (int), time from the start of the trial (in ``spike_time``'s units, ms)
        and neuron (int) of every spike, in recording order; what :func:`spike_rates`
        and :func:`raster` take. Empty arrays for a layer without spikes.
    """
    if spike_mark("epoch") not in node.variables:
        return tuple(np.zeros(0, dtype) for dtype in (int, float, int))
    if epoch is None:
        epoch = int(node["epoch"].values[-1]) if "epoch" in node.variables else \
            int(node[spike_mark("epoch")].values.max(initial=0))
    chosen = node[spike_mark("epoch")].values == epoch
    for dim, value in at.items():
        chosen &= node[spike_mark(dim)].values == value
    # the order of the vocabulary's spike events, (trial, time, neuron), is the order
    # spike_rates and raster take them in
    return tuple(node[name].values[chosen] for name in SPIKE_EVENTS)


def _dissimilarities(patterns):
    """Upper triangle of the Euclidean distance matrix between rows (trials)."""
    patterns = np.asarray(patterns, dtype=float)
    squared = (patterns ** 2).sum(axis=1)
    distance = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * patterns @ patterns.T, 0))
    return distance[np.triu_indices(len(patterns), k=1)]


def representational_similarity(a: xr.DataArray, b: xr.DataArray) -> float:
    """Representational similarity of two layers over the same trials.

    Each layer's representational dissimilarity matrix holds the Euclidean distances
    between its activity patterns (over ``neuron``) for every pair of trials; the
    result is the Pearson correlation of the two matrices' upper triangles (1: the
    layers arrange the trials alike; unchanged by rotations and shifts of either
    layer's activity). Inputs need dims (trial, neuron); select an epoch and time first.
    """
    for x in (a, b):
        if set(x.dims) != {"trial", "neuron"}:
            raise ValueError(f"representational_similarity needs dims (trial, neuron), got "
                             f"{x.dims}; select an epoch and a time first")
    da = _dissimilarities(a.transpose("trial", "neuron").values)
    db = _dissimilarities(b.transpose("trial", "neuron").values)
    return float(np.corrcoef(da, db)[0, 1])
