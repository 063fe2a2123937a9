"""The docs' table of spiking, stochastic and discrete networks, read from run files.

Usage::

    python analysis/spiking_table.py runs/lif-digits-seed1.h5 runs/lee2015-discrete-brian2.h5 ...

Each row comes from one run file alone: the model and data recorded in it, the engine,
epochs and training samples, the final test accuracy and error, the training time, and
(where the run recorded activity) the mean firing rate of each spiking layer in the
forward phase of the last recorded probe trial (:func:`bioprop.analysis.firing.mean_firing_rates`).
"""
from __future__ import annotations

import argparse

import bioprop
from bioprop.analysis.firing import mean_firing_rates
from bioprop.analysis.tables import architecture, duration, recorded_specs


def settings(model: dict, protocol: dict) -> str:
    """The settings that tell apart runs of one architecture: LIF parameters, how a spiking
    layer's target is read, and the forward phase's length."""
    parts = []
    for layer in model["layers"]:
        if layer.get("population") == "lif":
            parts.append(f"θ = {layer.get('threshold', 1.0)}, t_ref = {layer.get('refractory', '2 ms')}")
    kinds = {layer.get("population", "rate") for layer in model["layers"]}
    if kinds & {"lif", "poisson", "bernoulli"}:
        parts.append(f"target: {model['rule'].get('spiking_target', 'trace')}")
        parts.append(f"forward {protocol['phases']['forward']}")
    return "; ".join(dict.fromkeys(parts)) or "—"


def row(path) -> str:
    tree = bioprop.open_run(path)
    model, protocol = recorded_specs(tree)
    data = protocol["data"]
    train = tree["train"]
    samples = f"{round(float(train['samples_per_second'][-1] * train['wall_time'][-1])):,}"
    accuracy = float(tree["test"]["accuracy"].values[-1])
    seconds = float(tree["train"]["wall_time"].values.sum())
    try:
        rates = mean_firing_rates(tree)
        firing = ", ".join(f"{name} {float(rates[name]):.0f} Hz" for name in rates.data_vars)
    except (ValueError, KeyError):
        firing = "not recorded"
    return (f"| {architecture(model)} | {settings(model, protocol)} | {data['dataset']} ({samples} per epoch) | "
            f"{tree.attrs['engine']} | {len(tree['train']['epoch'])} | {100 * accuracy:.2f} % | "
            f"{100 * (1 - accuracy):.2f} % | {duration(seconds)} | {firing or '—'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run files (.h5)")
    args = parser.parse_args()
    print("| network | settings | data | engine | epochs | test accuracy | test error | "
          "training time | mean firing rate (forward phase) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.runs:
        print(row(path))


if __name__ == "__main__":
    main()
