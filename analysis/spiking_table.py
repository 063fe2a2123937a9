"""The README's spiking table: LIF networks in the Brian2 engine beside their rate twins.

Usage::

    python analysis/spiking_table.py [--results results] [--figure results/spiking.png]
    python analysis/spiking_table.py --commands    # the commands that write the run files
    python analysis/spiking_table.py --dry-run --into fresh   # what they would train, how long
    python analysis/spiking_table.py runs/a.h5 runs/b.h5 ...   # one row per run file

Every row of :data:`ROWS` is a folder of run files under ``results/`` that one ``bioprop
sweep`` command wrote: the same model and seeds trained twice, by the Brian2 engine with
spiking LIF hidden layers and by the reference engine on their rate twins. The table is
read back from the run files alone: the final-epoch test error of each engine over seeds,
the gap between them for the same seeds, the mean firing rate of each LIF layer in the
forward phase of the probe trials at the last epoch, the training time per run and the
Brian2 engine's samples per second. Beside it, one figure holds the learning curves of
every row.

Given run files instead, it prints the older one-row-per-file table of docs/spiking.md.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis import reproduce
from bioprop.analysis.firing import mean_firing_rates
from bioprop.analysis.tables import architecture, duration, mean_std_interval, recorded_specs

sys.path.insert(0, str(Path(__file__).parent))
from results_table import summarise_run  # noqa: E402  (a sibling script, not a package)


@dataclass(frozen=True)
class Row:
    """One row of the table: where its run files are and the command that wrote them."""

    folder: str
    data: str
    command: str


_SWEEP = "bioprop sweep --workers 1 --grid engine.name=reference,brian2 --set record.activity_trials=10"
ROWS = (
    Row("lif_digits", "digits",
        f"{_SWEEP} --seeds 2 models/lif.toml --set 'record.variables=[\"rate\", \"spikes\"]' "
        "--set record.activity_dt_factor=5 -o results/lif_digits"),
    Row("lif_mnist_small", "MNIST",
        f"{_SWEEP} --seeds 1 models/lif_mnist_small.toml "
        "--set 'record.pathways=[\"hidden1_to_output\"]' -o results/lif_mnist_small"),
    Row("lif_mnist", "MNIST",
        f"{_SWEEP} --seeds 2 models/lif_mnist.toml "
        "--set 'record.pathways=[\"hidden2_to_output\"]' -o results/lif_mnist"),
    Row("lif_fashion", "Fashion-MNIST",
        f"{_SWEEP} --seeds 1 models/lif_mnist.toml --set data.dataset=fashion_mnist "
        "--set 'record.pathways=[\"hidden2_to_output\"]' -o results/lif_fashion"),
)

HEADER = ["| data | network | epochs | LIF layers, Brian2 engine: test error (%) | rate twin, "
          "reference engine: test error (%) | Brian2 − twin, same seeds (points) | mean firing "
          "rate, forward phase, last epoch (Hz) | training time per run: Brian2; twin | Brian2 "
          "samples/s (median epoch) |",
          "|---|---|---|---|---|---|---|---|---|"]


def errors(values) -> str:
    """``2.13 (n = 1)`` for one seed; for several the mean, the sample std, Student's t 95%
    interval and each seed's value: ``2.17 ± 0.05, 95% CI 1.73–2.62 (n = 2): 2.14, 2.21``."""
    values = np.asarray(values, dtype=float)
    text = mean_std_interval(values)
    return text if len(values) == 1 else text + ": " + ", ".join(f"{v:.2f}" for v in values)


def firing(paths) -> str:
    """The mean forward-phase rate of each LIF layer at the last epoch, averaged over runs."""
    rates = {}
    for path in paths:
        for name, value in mean_firing_rates(bioprop.open_run(path)).data_vars.items():
            rates.setdefault(name, []).append(float(value))
    return ", ".join(f"{name} {np.mean(v):.0f}" for name, v in rates.items()) or "—"


def samples_per_second(paths) -> float:
    """The median over epochs and runs of the printed samples/s."""
    return float(np.median(np.concatenate([
        bioprop.open_run(path)["train"]["samples_per_second"].values for path in paths])))


def summarise(row: Row, results: Path):
    """The markdown row of `row` and the runs it read, {engine: [RunSummary]}."""
    files = sorted((results / row.folder).glob("*.h5"))
    runs = {}
    for path in files:
        run = summarise_run(path)
        runs.setdefault(run.engine.split()[0], []).append(run)
    brian2, twin = runs.get("brian2", []), runs.get("reference", [])
    if not brian2 or not twin:
        raise ValueError(f"{results / row.folder}: the row needs runs of both engines, found "
                         f"{sorted(runs) or 'none'}")
    for run in brian2 + twin:
        if run.status != "complete":
            raise ValueError(f"{run.path}: the run is {run.status!r}, not complete")
    by_seed = {run.seed: run.test_error[-1] for run in twin}
    gaps = [run.test_error[-1] - by_seed[run.seed] for run in brian2 if run.seed in by_seed]
    paths = [run.path for run in brian2]
    model, _ = recorded_specs(bioprop.open_run(paths[0]))
    epochs = sorted({run.epochs for run in brian2 + twin})
    times = [duration(np.median([r.training_time for r in group])) for group in (brian2, twin)]
    line = (f"| {row.data} | {architecture(model)} | {', '.join(map(str, epochs))} | "
            f"{errors([r.test_error[-1] for r in brian2])} | {errors([r.test_error[-1] for r in twin])} | "
            f"{np.mean(gaps):+.2f} | {firing(paths)} | {times[0]}; {times[1]} | "
            f"{samples_per_second(paths):,.0f} |")
    return line, runs


def table(results: Path) -> list[str]:
    """The whole table, header first, one line per row of :data:`ROWS`."""
    return HEADER + [summarise(row, results)[0] for row in ROWS]


def learning_curves(results: Path, path: Path):
    """One panel per row: test error against epoch, Brian2 solid and the twin dashed, a colour
    per seed."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ROWS), figsize=(3.2 * len(ROWS), 3.2), squeeze=False)
    for ax, row in zip(axes[0], ROWS):
        _, runs = summarise(row, results)
        for engine, style in (("brian2", "-"), ("reference", "--")):
            for run in sorted(runs[engine], key=lambda run: run.seed):
                label = f"{'Brian2, LIF' if engine == 'brian2' else 'rate twin'}, seed {run.seed}"
                ax.plot(np.arange(1, run.epochs + 1), run.test_error, style,
                        color=f"C{run.seed - 1}", label=label)
        model, _ = recorded_specs(bioprop.open_run(runs["brian2"][0].path))
        ax.set(xlabel="epoch", yscale="log", title=f"{row.data}, {architecture(model)}")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("test error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def commands_block() -> list[str]:
    """The sweep command of every row as one bash block, for the README."""
    return ["```bash", *(row.command for row in ROWS), "```"]


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
    """One run file's row of the older table: its network, settings, engine and accuracy."""
    tree = bioprop.open_run(path)
    model, protocol = recorded_specs(tree)
    data = protocol["data"]
    train = tree["train"]
    samples = f"{round(float(train['samples_per_second'][-1] * train['wall_time'][-1])):,}"
    accuracy = float(tree["test"]["accuracy"].values[-1])
    seconds = float(tree["train"]["wall_time"].values.sum())
    try:
        rates = mean_firing_rates(tree)
        rate_text = ", ".join(f"{name} {float(rates[name]):.0f} Hz" for name in rates.data_vars)
    except (ValueError, KeyError):
        rate_text = "not recorded"
    return (f"| {architecture(model)} | {settings(model, protocol)} | {data['dataset']} ({samples} per epoch) | "
            f"{tree.attrs['engine']} | {len(tree['train']['epoch'])} | {100 * accuracy:.2f} % | "
            f"{100 * (1 - accuracy):.2f} % | {duration(seconds)} | {rate_text or '—'} |")


def show(args) -> None:
    """Print the sweep commands (``--commands``), the rows of given run files, or the table
    with its figure."""
    if args.commands:
        print("\n".join(commands_block()))
    elif args.runs:
        print("| network | settings | data | engine | epochs | test accuracy | test error | "
              "training time | mean firing rate (forward phase) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for path in args.runs:
            print(row(path))
    else:
        print("\n".join(table(args.results)))
        learning_curves(args.results, args.figure or args.results / "spiking.png")


def main(argv=None) -> int:
    def options(parser):
        parser.add_argument("runs", nargs="*",
                            help="run files (.h5): one row each, the older table")
        parser.add_argument("--commands", action="store_true",
                            help="print the sweep commands and stop")
        parser.add_argument("--figure", type=Path, default=None,
                            help="where to write the learning curves (default: RESULTS/spiking.png)")

    return reproduce.main(__doc__.splitlines()[0], lambda: [row.command for row in ROWS], show,
                          argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
