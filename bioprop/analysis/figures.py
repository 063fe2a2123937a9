"""Figures of run files, each a function of opened runs that returns a matplotlib Figure.

Every axis names its quantity and, unless it counts something (epochs, iterations,
neurons, weights), its units in parentheses; "dimensionless" says a ratio has none.

Every function takes a dict ``{label: DataTree}`` (from :func:`bioprop.open_run`) and
overlays the runs on the same axes, so rules can be compared on one footing.

* :func:`learning_curves` — loss and accuracy per epoch, training, validation and test.
* :func:`per_layer` — one diagnostic of ``/metrics`` per layer over epochs.
* :func:`iteration_residuals` — the ``iterative`` rule's residual against k.

and, for one run, :func:`probe_rates` and :func:`spike_raster` of a recorded probe trial.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: reports are written on machines without a screen
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from ..runlog.vocabulary import (PHASES, RATE, RESIDUALS, SPIKE_TIME,  # noqa: E402
                                  spike_mark)

__all__ = ["learning_curves", "per_layer", "iteration_residuals", "weight_histograms",
           "probe_rates", "spike_raster", "active_neurons", "COUNTS"]

#: axis labels of counts, which have no units
COUNTS = ("epoch", "iteration k", "neuron", "number of weights")

#: the short name of a /metrics quantity on an axis (others: the variable's name)
_QUANTITY = {"angle_to_bp": "angle to BP's update", "activity_angle_to_bp": "angle to −∂ℒ/∂h",
             "angle_to_gn": "angle to Gauss–Newton", "reconstruction_error": "‖g(f(h)) − h‖ / ‖h‖",
             "lipschitz": "Lip(g∘f − I)", "angle_w_q": "angle(Wᵀ, Q)",
             "distance_w_q": "‖Wᵀ − Q‖ / ‖Wᵀ‖"}


def _with_units(quantity: str, units) -> str:
    """``quantity (units)``; a recorded unit "1" is written "dimensionless"."""
    units = str(units or "1")
    return f"{quantity} ({'dimensionless' if units == '1' else units})"


def learning_curves(runs: dict):
    """Training and test loss and accuracy against epoch, one colour per run."""
    has_accuracy = any("accuracy" in tree["test"] for tree in runs.values())
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(11 if has_accuracy else 6, 4.6),
                             squeeze=False, layout="constrained")
    for i, (label, tree) in enumerate(runs.items()):
        colour = f"C{i}"
        for group, style in (("train", "--"), ("validation", ":"), ("test", "-")):
            for ax, var in zip(axes[0], ("loss", "accuracy")):
                if group in tree.children and var in tree[group]:
                    data = tree[group][var]
                    ax.plot(data["epoch"], data, style, color=colour,
                            label=f"{label} ({group})")
    first = next(iter(runs.values()))
    for ax, var in zip(axes[0], ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        units = first["test"][var].attrs.get("units") if var in first["test"] else None
        ax.set_ylabel(_with_units(f"mean {var}" if var == "loss" else var, units))
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0][0])
    fig.suptitle("learning curves (dashed: training, dotted: validation, solid: test)")
    return fig


def _legend_below(fig, ax):
    """One legend under the panels, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(handles)),
                   fontsize=8, frameon=False)


def per_layer(runs: dict, variable: str, title: str | None = None, pathway: bool = False):
    """`variable` of ``/metrics`` against epoch, one panel per layer, one colour per run.

    Layers where no run has a value are left out, and with no such layer there is no
    figure (None). With `pathway`, panels are titled by the feedback pathway the value
    describes (g_l: layer l → layer l−1).
    """
    layers, below = [], {}
    for tree in runs.values():
        names = list(tree["metrics"]["layer"].values)
        data = tree["metrics"][variable]
        for i, l in enumerate(names):
            below[l] = "input" if i == 0 else names[i - 1]
            if l not in layers and np.isfinite(data.sel(layer=l)).any():
                layers.append(l)
    if not layers:  # e.g. the W/Q alignment of a network with one hidden layer and FA
        return None
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 4), squeeze=False,
                             sharey=True, layout="constrained")
    for i, (label, tree) in enumerate(runs.items()):
        data = tree["metrics"][variable]
        for ax, layer in zip(axes[0], layers):
            if layer in data["layer"].values:
                values = data.sel(layer=layer)
                if np.isfinite(values).any():
                    ax.plot(values["epoch"], values, color=f"C{i}", label=label)
    for ax, layer in zip(axes[0], layers):
        ax.set_title(f"g: {layer} → {below[layer]}" if pathway else layer)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    units = next(iter(runs.values()))["metrics"][variable].attrs.get("units")
    axes[0][0].set_ylabel(_with_units(_QUANTITY.get(variable, variable.replace("_", " ")), units))
    if variable == "lipschitz":  # below 1, the iteration x ← x − (g∘f − I)(x) converges
        for ax in axes[0]:
            ax.axhline(1.0, color="0.3", ls=":", lw=1, label="Lip = 1")
    labelled = [ax for ax in axes[0] if ax.get_legend_handles_labels()[0]]
    if labelled:
        _legend_below(fig, labelled[0])
    fig.suptitle(title or next(iter(runs.values()))["metrics"][variable].attrs.get("long_name",
                                                                                   variable))
    return fig


def iteration_residuals(runs: dict):
    """‖f(x^k) − ĥ‖ against k at the last epoch, one panel per layer; None without any."""
    runs = {k: t for k, t in runs.items() if RESIDUALS in t.children}
    if not runs:
        return None
    first = next(iter(runs.values()))[RESIDUALS]["residual"]
    layers = [l for l in first["layer"].values if np.isfinite(first.sel(layer=l)).any()]
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 4), squeeze=False,
                             layout="constrained")
    for i, (label, tree) in enumerate(runs.items()):
        residual = tree[RESIDUALS]["residual"]
        for ax, layer in zip(axes[0], layers):
            for epoch, alpha in ((residual["epoch"].values[0], 0.35), (residual["epoch"].values[-1], 1)):
                ax.semilogy(residual["iteration"], residual.sel(layer=layer, epoch=epoch), "o-",
                            color=f"C{i}", alpha=alpha, label=f"{label}, epoch {epoch}")
    for ax, layer in zip(axes[0], layers):
        ax.set_title(f"target of {layer}")
        ax.set_xlabel("iteration k")
        ax.set_ylabel(_with_units("‖f(x^k) − ĥ‖", "1"))
        ax.grid(alpha=0.3, which="both")
    _legend_below(fig, axes[0][0])
    fig.suptitle("iterative inverse: residual against k (faint: first epoch)")
    return fig


def weight_histograms(runs: dict):
    """Each pathway's weight distribution at its first (faint) and last snapshot; None if none.

    Panels run up the network's forward pathways, then down its feedback ones.
    """
    runs = {k: t for k, t in runs.items() if "pathways" in t.children}
    if not runs:
        return None
    names, order = [], ["input"]
    for tree in runs.values():
        names += [n for n in tree["pathways"].children if n not in names]
        if "metrics" in tree.children:
            order += [l for l in tree["metrics"]["layer"].values if l not in order]
    names.sort(key=lambda name: _pathway_rank(name, order))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False,
                             layout="constrained")
    for i, (label, tree) in enumerate(runs.items()):
        for ax, name in zip(axes[0], names):
            if name not in tree["pathways"].children:
                continue
            weight = tree["pathways"][name]["weight"]
            for index, alpha in ((0, 0.3), (-1, 0.9)):
                ax.hist(weight.isel(epoch=index).values.ravel(), bins=50, histtype="step",
                        color=f"C{i}", alpha=alpha,
                        label=f"{label}, epoch {int(weight['epoch'][index])}")
    for ax, name in zip(axes[0], names):
        ax.set_title(name.replace("_to_", " → "))
        ax.set_xlabel(_with_units("weight", "1"))
    axes[0][0].set_ylabel("number of weights")
    _legend_below(fig, axes[0][0])
    fig.suptitle("weights per pathway (faint: first snapshot)")
    return fig


def active_neurons(rate, k: int):
    """The `k` neurons of `rate` (dims time, neuron) with the largest mean |rate| over the
    trial, in index order (ties: the lower index)."""
    activity = np.abs(rate.transpose("time", "neuron").values).mean(axis=0)
    return np.sort(np.argsort(-activity, kind="stable")[:k])


def _pathway_rank(name: str, order: list) -> tuple:
    """Sort key of a pathway ``<pre>_to_<post>`` given the layers' `order`: forward ones
    from the input up, then feedback ones from the top down; unknown layers last."""
    pre, _, post = name.partition("_to_")
    if pre not in order or post not in order:
        return (2, 0)
    i, j = order.index(pre), order.index(post)
    return (0, i) if j > i else (1, -i)


def probe_rates(tree, *, trial: int = 0, neurons: int = 6, epoch=-1):
    """Rates of the `neurons` most active neurons of every layer through one recorded trial
    (:func:`active_neurons`: the first neurons of a layer are often silent).

    One panel per layer; the phases of the trial are shaded and named. Returns None
    for a run without time-resolved activity.
    """
    if "layers" not in tree.children:
        return None
    layers = [n for n in tree["layers"].children if "time" in tree["layers"][n].dims]
    if not layers:
        return None
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 2.3 * len(layers)), sharex=True,
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes[:, 0], layers):
        rate = tree["layers"][name][RATE].isel(epoch=epoch, trial=trial)
        for i in active_neurons(rate, neurons):
            ax.plot(rate["time"], rate.isel(neuron=i), lw=1, label=f"neuron {i}")
        _shade_phases(ax, tree, named=ax is axes[0, 0])
        ax.set_ylabel(_with_units(f"{name}\nrate", rate.attrs.get("units")))
    time = tree["layers"][layers[0]]["time"]
    axes[-1, 0].set_xlabel(_with_units("time in trial", time.attrs.get("units")))
    epoch_value = int(tree["layers"][layers[0]]["epoch"].values[epoch])
    fig.suptitle(f"probe trial {trial} at epoch {epoch_value}: the {neurons} most active neurons "
                 "of each layer")
    return fig


def _shade_phases(ax, tree, named: bool):
    """Shade the phases of the recorded trial (the table ``/phases``) on `ax`; with
    `named`, write their names above the panel."""
    if PHASES not in tree.children:
        return
    table = tree[PHASES]
    for k, (phase, start, duration) in enumerate(zip(table["name"].values, table["start"].values,
                                                     table["duration"].values)):
        ax.axvspan(start, start + duration, color="0.9" if k % 2 else "0.97", zorder=0)
        if named:
            ax.text(start + duration / 2, 1.02, phase, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7)


def spike_raster(tree, *, trial: int = 0, epoch=-1):
    """Spike raster of one recorded probe trial: one panel per layer with spikes.

    Each spike is a tick at its time in the trial (x) and its neuron (y); the trial's
    phases are shaded and named as in :func:`probe_rates`. `epoch` indexes the
    recorded epochs (default: the last). Returns None for a run without spikes.
    """
    from .activity import raster, recorded_spikes

    if "layers" not in tree.children:
        return None
    layers = [n for n in tree["layers"].children
              if spike_mark("epoch") in tree["layers"][n].variables]
    if not layers:
        return None
    first = tree["layers"][layers[0]]
    epoch_value = int(first["epoch"].values[epoch])
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 2.4 * len(layers)), sharex=True,
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes[:, 0], layers):
        node = tree["layers"][name]
        times, neurons = raster(*recorded_spikes(node, epoch=epoch_value), trial=trial)
        ax.scatter(times, neurons, s=4, marker="|", linewidths=0.8, color="k")
        _shade_phases(ax, tree, named=ax is axes[0, 0])
        ax.set_ylim(-0.5, node.sizes["neuron"] - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
    axes[-1, 0].set_xlabel(_with_units("time in trial", first[SPIKE_TIME].attrs.get("units")))
    fig.suptitle(f"probe trial {trial} at epoch {epoch_value}: spikes")
    return fig
