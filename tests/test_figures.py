"""The report's figures say what they show: read from their matplotlib artists, not images."""
import gzip
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import bioprop
from bioprop.analysis import figures
from bioprop.analysis.report import PER_LAYER

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A Brian2 run with activity (format 1, read as format 2) and an iterative reference run."""
    folder = tmp_path_factory.mktemp("figures")
    brian2 = folder / "brian2.h5"
    with gzip.open(DATA / "format1-brian2.h5.gz") as packed, open(brian2, "wb") as out:
        shutil.copyfileobj(packed, out)
    iterative = folder / "iterative.h5"
    bioprop.run(output=iterative, progress=False, overrides=[
        "engine.name=reference", "data.n_train=64", "data.n_test=32", "training.epochs=1",
        "record.weights_every=1", "rule.target=iterative", "rule.iterations=3"])
    trees = {"brian2": bioprop.open_run(brian2), "iterative": bioprop.open_run(iterative)}
    yield trees
    for tree in trees.values():
        tree.close()


def _axes_labels(fig):
    """Every non-empty axis label of a figure, last line only (panels put the layer first)."""
    labels = []
    for ax in fig.axes:
        labels += [label.splitlines()[-1] for label in (ax.get_xlabel(), ax.get_ylabel()) if label]
    return labels


def _all_figures(runs):
    out = {"learning_curves": figures.learning_curves(runs),
           "iteration_residuals": figures.iteration_residuals(runs),
           "weight_histograms": figures.weight_histograms(runs),
           "probe_rates": figures.probe_rates(runs["brian2"])}
    for stem, (variable, title, pathway) in PER_LAYER.items():
        out[stem] = figures.per_layer(runs, variable, title, pathway)
    return out


def test_every_axis_names_its_quantity_and_units(runs):
    made = _all_figures(runs)
    assert all(fig is not None for fig in made.values()), made
    for stem, fig in made.items():
        labels = _axes_labels(fig)
        assert labels, stem
        for label in labels:  # a count, or "quantity (units)"
            assert label in figures.COUNTS or (label.endswith(")") and " (" in label), (stem, label)
        plt.close(fig)
    curves = figures.learning_curves(runs)
    assert {ax.get_ylabel() for ax in curves.axes} == {"mean loss (dimensionless)",
                                                        "accuracy (dimensionless)"}
    angles = figures.per_layer(runs, "angle_to_bp")
    assert angles.axes[0].get_ylabel() == "angle to BP's update (degree)"
    rates = figures.probe_rates(runs["brian2"])
    assert rates.axes[-1].get_xlabel() == "time in trial (ms)"
    assert rates.axes[0].get_ylabel() == "hidden1\nrate (dimensionless)"
    plt.close("all")


def test_lipschitz_panels_draw_the_line_at_one(runs):
    fig = figures.per_layer(runs, "lipschitz")
    for ax in fig.axes:
        flat = [line for line in ax.get_lines() if np.ptp(line.get_ydata()) == 0]
        assert [line.get_ydata()[0] for line in flat] == [1.0]
    other = figures.per_layer(runs, "reconstruction_error")
    assert not [line for ax in other.axes for line in ax.get_lines()
                if np.ptp(line.get_ydata()) == 0 and line.get_ydata()[0] == 1.0]
    plt.close("all")


def test_weight_histograms_are_named_by_the_layers_they_join(runs):
    fig = figures.weight_histograms(runs)
    assert [ax.get_title() for ax in fig.axes] == [  # up the forward pathways, down the feedback
        "input → hidden1", "hidden1 → hidden2", "hidden2 → output", "output → hidden2",
        "hidden2 → hidden1"]
    plt.close(fig)


def test_probe_rates_show_the_most_active_neurons(runs):
    tree = runs["brian2"]
    fig = figures.probe_rates(tree, neurons=3)
    for ax, name in zip(fig.axes, ["hidden1", "hidden2", "output"]):
        rate = tree["layers"][name]["rate"].isel(epoch=-1, trial=0).transpose("time", "neuron")
        activity = np.abs(rate.values).mean(axis=0)
        drawn = [int(line.get_label().split()[-1]) for line in ax.get_lines()]
        assert len(drawn) == 3
        # none left out is more active than one drawn
        assert activity[drawn].min() >= np.delete(activity, drawn).max(), name
        for line, neuron in zip(ax.get_lines(), drawn):
            np.testing.assert_array_equal(line.get_ydata(), rate.values[:, neuron])
    plt.close(fig)


def test_active_neurons_skip_silent_ones():
    import xarray as xr

    values = np.zeros((4, 5))
    values[:, 3], values[:, 1], values[2, 4] = 1.0, -0.5, 0.1  # neuron 0, 2 silent
    rate = xr.DataArray(values, dims=("time", "neuron"))
    assert list(figures.active_neurons(rate, 3)) == [1, 3, 4]
    assert list(figures.active_neurons(rate.T, 2)) == [1, 3]
