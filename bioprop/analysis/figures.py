"""Figures of run files, each a function of opened runs that returns a matplotlib Figure.

Every function takes a dict ``{label: DataTree}`` (from :func:`bioprop.open_run`) and
overlays the runs on the same axes, so rules can be compared on one footing.

* :func:`learning_curves` — loss and accuracy per epoch, training and test.
* :func:`per_layer` — one diagnostic of ``/metrics`` per layer over epochs.
* :func:`iteration_residuals` — the ``iterative`` rule's residual against k.

and, for one run, :func:`probe_rates` and :func:`spike_raster` of a recorded probe trial.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: reports are written on machines without a screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..runlog.vocabulary import RATE, RESIDUALS, SPIKE_TIME, spike_mark  # noqa: E402

__all__ = ["learning_curves", "per_layer", "iteration_residuals", "weight_histograms",
           "probe_rates", "spike_raster"]


def _label_axis(ax, variable, name=None):
    units = variable.attrs.get("units", "")
    ax.set_ylabel(f"{name or variable.name}" + (f" ({units})" if units not in ("", "1") else ""))


def learning_curves(runs: dict):
    """Training and test loss and accuracy against epoch, one colour per run."""
    has_accuracy = any("accuracy" in tree["test"] for tree in runs.values())
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(11 if has_accuracy else 6, 4.6),
                             squeeze=False, layout="constrained")
    for i, (label, tree) in enumerate(runs.items()):
        colour = f"C{i}"
        for group, style in (("train", "--"), ("test", "-")):
            for ax, var in zip(axes[0], ("loss", "accuracy")):
                if var in tree[group]:
                    data = tree[group][var]
                    ax.plot(data["epoch"], data, style, color=colour,
                            label=f"{label} ({group})")
    for ax, var in zip(axes[0], ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(var)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0][0])
    fig.suptitle("learning curves (dashed: training, solid: test)")
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
        ax.grid(alpha=0.3)
    _label_axis(axes[0][0], next(iter(runs.values()))["metrics"][variable], variable)
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
        ax.set_ylabel("‖f(x^k) − ĥ‖")
        ax.grid(alpha=0.3, which="both")
    _legend_below(fig, axes[0][0])
    fig.suptitle("iterative inverse: residual against k (faint: first epoch)")
    return fig


def weight_histograms(runs: dict):
    """Each pathway's weight distribution at its first (faint) and last snapshot; None if none."""
    runs = {k: t for k, t in runs.items() if "pathways" in t.children}
    if not runs:
        return None
    names = []
    for tree in runs.values():
        names += [n for n in tree["pathways"].children if n not in names]
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
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("weight")
    axes[0][0].set_ylabel("count")
    _legend_below(fig, axes[0][0])
    fig.suptitle("weights per pathway (faint: first snapshot)")
    return fig


def probe_rates(tree, *, trial: int = 0, neurons: int = 6, epoch=-1):
    """Rates of the first `neurons` neurons of every layer through one recorded trial.

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
        node = tree["layers"][name]
        rate = node[RATE].isel(epoch=epoch, trial=trial)
        for i in range(min(neurons, rate.sizes["neuron"])):
            ax.plot(rate["time"], rate.isel(neuron=i), lw=1)
        _shade_phases(ax, node, named=ax is axes[0, 0])
        ax.set_ylabel(f"{name}\nrate")
    axes[-1, 0].set_xlabel(f"time in trial ({tree['layers'][layers[0]]['time'].attrs.get('units', '')})")
    epoch_value = int(tree["layers"][layers[0]]["epoch"].values[epoch])
    fig.suptitle(f"probe trial {trial} at epoch {epoch_value}: rates of {neurons} neurons per layer")
    return fig


def _shade_phases(ax, node, named: bool):
    """Shade the phases of a layer group's trial (its ``phases`` attribute) on `ax`;
    with `named`, write their names above the panel.

    The attribute gives each phase's first and last recorded time point; a phase is
    shaded up to the next one's first, so thinned recordings leave no gaps.
    """
    import json

    phases = json.loads(node.attrs.get("phases", "[]"))
    for k, (phase, start, end) in enumerate(phases):
        end = phases[k + 1][1] if k + 1 < len(phases) else end
        ax.axvspan(start, end, color="0.9" if k % 2 else "0.97", zorder=0)
        if named:
            ax.text((start + end) / 2, 1.02, phase, transform=ax.get_xaxis_transform(),
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
        _shade_phases(ax, node, named=ax is axes[0, 0])
        ax.set_ylim(-0.5, node.sizes["neuron"] - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
    units = first[SPIKE_TIME].attrs.get("units", "")
    axes[-1, 0].set_xlabel(f"time in trial ({units})")
    fig.suptitle(f"probe trial {trial} at epoch {epoch_value}: spikes")
    return fig
