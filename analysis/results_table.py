"""The docs' results table: the papers' experiments, our numbers beside theirs.

Usage::

    python analysis/results_table.py [--results results] [--figures results]
    python analysis/results_table.py --commands    # the commands that write results/
    python analysis/results_table.py --dry-run --into fresh   # what they would train, how long
    python analysis/results_table.py --run --into fresh       # train them again, into fresh/

Every experiment is a folder of run files under ``results/`` that one ``bioprop sweep``
command wrote (the commands are in docs/reproducing.md and in :data:`EXPERIMENTS`). The table is
read back from the run files alone: each row groups the runs of one rule in one engine,
named from the model recorded in the files, and gives the final-epoch test error as
mean ± std over seeds, the epochs, the median training time per run, and the angle
between the hidden layers' activity changes and the Gauss-Newton target at the last
epoch. The papers' numbers are the only figures typed here, each with its source.
Beside the table, one PNG per experiment shows test error against epoch for every run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis import reproduce
from bioprop.analysis.tables import architecture, duration, mean_std_interval, recorded_specs


@dataclass(frozen=True)
class Experiment:
    """One published experiment: where its run files are, and what the paper reported."""

    folder: str
    title: str
    #: published test error (%) by row label, with the source in `source`
    paper: dict = field(default_factory=dict)
    source: str = ""
    #: the ``bioprop sweep`` commands that write its run files
    commands: tuple = ()


_SWEEP = "bioprop sweep --seeds 1 --workers 1"
EXPERIMENTS = [
    Experiment("lee2015", "Lee 2015, continuous: MNIST 784-7×240 tanh-10",
               {"DTP": "≈ 1.9", "BP": "≈ 1.9"},
               "Lee et al. 2015 (docs/algorithms.md, \"Published numbers\")",
               (f"{_SWEEP} models/lee2015_dtp.toml protocols/lee2015.toml "
                "--grid rule.target=dtp -o results/lee2015",
                "bioprop sweep --seed-list 2 --workers 1 models/lee2015_dtp.toml protocols/lee2015.toml "
                "--grid rule.target=dtp -o results/lee2015 --table results/lee2015/dtp-seed-2.csv",
                "bioprop sweep --seed-list 3,4,5 --workers 1 models/lee2015_dtp.toml "
                "protocols/lee2015.toml --grid rule.target=dtp -o results/lee2015 "
                "--table results/lee2015/dtp-seeds-3-5.csv",
                f"{_SWEEP} models/lee2015_dtp.toml protocols/lee2015.toml --grid rule.target=tp "
                "--set training.epochs=20 -o results/lee2015 --table results/lee2015/tp.csv",
                f"{_SWEEP} models/lee2015_dtp.toml protocols/lee2015.toml --grid rule.target=bp "
                "--set rule.target_step=1 --set optimizer.forward.lr=0.000804 -o results/lee2015 "
                "--table results/lee2015/bp.csv",
                "bioprop sweep --seed-list 2 --workers 1 models/lee2015_dtp.toml protocols/lee2015.toml "
                "--grid rule.target=bp --set rule.target_step=1 --set optimizer.forward.lr=0.000804 "
                "-o results/lee2015 --table results/lee2015/bp-seed-2.csv",
                f"{_SWEEP} models/lee2015_dtp.toml protocols/lee2015.toml --grid engine.name=brian2 "
                "--set training.epochs=20 -o results/lee2015 --table results/lee2015/brian2.csv")),
    Experiment("lee2015-discrete", "Lee 2015, discrete and stochastic: MNIST", {},
               "Lee et al. 2015",
               (f"{_SWEEP} models/lee2015_discrete.toml protocols/lee2015_discrete.toml "
                "-o results/lee2015-discrete/sign",
                f"{_SWEEP} models/lee2015_stochastic.toml protocols/lee2015_discrete.toml "
                "-o results/lee2015-discrete/bernoulli",
                # the Brian2 engine at one Euler step of dt = tau per phase, which settles the
                # sign and tanh layers exactly, as protocols/bartunov2018.toml's phases do
                f"{_SWEEP} models/lee2015_discrete.toml protocols/lee2015_discrete.toml "
                "--grid engine.name=brian2 --set 'phases.dt=10 ms' --set 'phases.forward=10 ms' "
                "--set 'phases.feedback=10 ms' --set 'phases.target=10 ms' "
                "--set record.first_and_last=false -o results/lee2015-discrete/sign "
                "--table results/lee2015-discrete/sign/brian2.csv",
                # the stochastic units redrawn every 1 ms step in the Brian2 engine, beside the
                # reference's rate twins: 20 epochs would take ~11 h here, so 3 epochs of 10k
                f"{_SWEEP} models/lee2015_stochastic.toml protocols/lee2015_discrete.toml "
                "--grid engine.name=reference,brian2 --set 'phases.dt=1 ms' "
                "--set 'phases.forward=250 ms' --set 'phases.feedback=80 ms' "
                "--set 'phases.target=250 ms' --set data.n_train=10000 --set data.n_test=2000 "
                "--set training.epochs=3 --set record.first_and_last=false "
                "-o results/lee2015-discrete/bernoulli "
                "--table results/lee2015-discrete/bernoulli/engines.csv")),
    Experiment("bartunov2018", "Bartunov 2018: MNIST 784-5×256 tanh-10",
               {"DTP": "1.83", "DTP, parallel": "2.86", "FA": "1.85", "DFA": "2.75",
                "BP": "1.48"}, "Bartunov et al. 2018, as quoted in issue 6",
               (f"{_SWEEP} models/bartunov2018.toml protocols/bartunov2018.toml "
                "--grid rule.target=dtp,fa,dfa,bp -o results/bartunov2018",
                f"{_SWEEP} models/bartunov2018.toml protocols/bartunov2018.toml "
                "--grid rule.schedule=parallel -o results/bartunov2018 "
                "--table results/bartunov2018/parallel.csv",
                f"{_SWEEP} models/bartunov2018.toml protocols/bartunov2018.toml --grid engine.name=brian2 "
                "--set training.epochs=10 -o results/bartunov2018 --table results/bartunov2018/brian2.csv",
                "bioprop sweep --seed-list 2 --workers 1 models/bartunov2018.toml protocols/bartunov2018.toml "
                "--grid rule.target=dtp,fa,dfa,bp -o results/bartunov2018 "
                "--table results/bartunov2018/seed-2.csv",
                "bioprop sweep --seed-list 2 --workers 1 models/bartunov2018.toml protocols/bartunov2018.toml "
                "--grid rule.schedule=parallel -o results/bartunov2018 "
                "--table results/bartunov2018/parallel-seed-2.csv")),
    Experiment("iterative", "Iterative inverses (Bengio 2020): MNIST 784-5×256 tanh-10", {},
               "no published number",
               (f"{_SWEEP} models/bartunov2018.toml protocols/iterative.toml "
                "--set rule.target=iterative --grid rule.iterations=1,2,5,10 "
                "--grid rule.layer_norm=false,true -o results/iterative",
                f"{_SWEEP} models/bartunov2018.toml protocols/iterative.toml --set rule.target=iterative "
                "--set rule.iterations=5 --grid engine.name=brian2 -o results/iterative "
                "--table results/iterative/brian2.csv",
                f"{_SWEEP} models/bartunov2018.toml protocols/iterative.toml --set rule.target=iterative "
                "--set rule.feedback_pretrain_epochs=3 --set record.first_and_last=false "
                "--grid rule.iterations=1,2,5,10 --grid rule.iteration_step=1.0,0.5,0.25 "
                "-o results/iterative/pretrained",
                f"{_SWEEP} models/bartunov2018.toml protocols/iterative.toml --set rule.target=iterative "
                "--set rule.feedback_pretrain_epochs=3 --set record.first_and_last=false "
                "--set rule.layer_norm=true --grid rule.iterations=5,10 "
                "-o results/iterative/pretrained --table results/iterative/pretrained/layer-norm.csv")),
    Experiment("fashion", "Fashion-MNIST: 784-5×256 tanh-10", {}, "no published number",
               (f"{_SWEEP} models/bartunov2018.toml protocols/fashion_mnist.toml "
                "--grid rule.target=dtp,fa,dfa,bp -o results/fashion",
                f"{_SWEEP} models/bartunov2018.toml protocols/fashion_mnist.toml "
                "--grid rule.schedule=parallel -o results/fashion --table results/fashion/parallel.csv",
                f"{_SWEEP} models/bartunov2018.toml protocols/fashion_mnist.toml --grid engine.name=brian2 "
                "-o results/fashion --table results/fashion/brian2.csv",
                "bioprop sweep --seed-list 2 --workers 1 models/bartunov2018.toml protocols/fashion_mnist.toml "
                "--grid engine.name=brian2 -o results/fashion --table results/fashion/brian2-seed-2.csv",
                "bioprop sweep --seed-list 2,3 --workers 1 models/bartunov2018.toml "
                "protocols/fashion_mnist.toml --grid rule.target=dtp,fa,dfa,bp -o results/fashion "
                "--table results/fashion/seeds-2-3.csv",
                "bioprop sweep --seed-list 2,3 --workers 1 models/bartunov2018.toml "
                "protocols/fashion_mnist.toml --grid rule.schedule=parallel -o results/fashion "
                "--table results/fashion/parallel-seeds-2-3.csv",
                "bioprop sweep --seed-list 3,4,5 --workers 1 models/bartunov2018.toml "
                "protocols/fashion_mnist.toml --grid engine.name=brian2 --set record.first_and_last=false "
                "-o results/fashion --table results/fashion/brian2-seeds-3-5.csv",
                "bioprop sweep --seed-list 4,5 --workers 1 models/bartunov2018.toml "
                "protocols/fashion_mnist.toml --grid rule.target=dtp --set record.first_and_last=false "
                "-o results/fashion --table results/fashion/dtp-seeds-4-5.csv")),
]

#: the order of rows within an experiment
RULE_ORDER = ["DTP", "DTP, parallel", "iterative", "TP", "FA", "DFA", "BP"]

#: rules whose feedback pathway learns, so that the schedule matters
LEARNED_FEEDBACK = {"tp", "dtp", "iterative"}


#: sub-folders whose runs other scripts table: a hyper-parameter search's
#: (analysis/bartunov_search.py) and the probes of its gap (analysis/bartunov_gap.py)
OTHER_TABLES = {"search", "gap"}


def experiment_files(results: Path, experiment: Experiment) -> list[Path]:
    """The run files of one experiment's rows: every file under its folder but those in
    :data:`OTHER_TABLES`."""
    return sorted(p for p in (results / experiment.folder).rglob("*.h5")
                  if not OTHER_TABLES & set(p.relative_to(results / experiment.folder).parts))


def rule_label(model: dict) -> str:
    """A row label from a recorded model: ``DTP``, ``DTP, parallel``, ``iterative, K = 5,
    layer norm``, ``BP`` ..."""
    rule = model["rule"]
    target = rule.get("target", "dtp")
    label = f"iterative, K = {rule.get('iterations', 1)}" if target == "iterative" else target.upper()
    if target in LEARNED_FEEDBACK and rule.get("schedule", "alternating") == "parallel":
        label += ", parallel"
    if rule.get("layer_norm"):
        label += ", layer norm"
    if rule.get("iteration_step", 1) != 1:
        label += f", α = {rule['iteration_step']:g}"
    if rule.get("feedback_pretrain_epochs"):
        label += f", inverses pre-trained {rule['feedback_pretrain_epochs']} epochs"
    return label


@dataclass
class RunSummary:
    """What the table needs of one run file."""

    path: Path
    network: str
    rule: str
    engine: str
    dataset: str
    seed: int
    epochs: int
    test_error: np.ndarray      # per epoch, in %
    training_time: float        # s, summed over epochs
    angle_to_gn: float          # degrees, mean over hidden layers with a value, last epoch
    status: str


def dataset_label(data: dict) -> str:
    """The data set's name, with the number of training images when a run used fewer: a
    short run on part of the data is a different row, compared only with its like."""
    if data.get("n_train"):
        return f"{data['dataset']}, {data['n_train']:,} training images"
    return data["dataset"]


def summarise_run(path) -> RunSummary:
    """Read one run file into a :class:`RunSummary`."""
    tree = bioprop.open_run(path)
    model, protocol = recorded_specs(tree)
    engine = tree.attrs["engine"]
    if protocol["engine"].get("dtype") == "float32":
        engine += " (float32)"
    accuracy = np.asarray(tree["test"]["accuracy"].values, dtype=float)
    angle = np.nan
    if "metrics" in tree and "angle_to_gn" in tree["metrics"]:
        last = np.asarray(tree["metrics"]["angle_to_gn"].values[-1], dtype=float)[:-1]
        angle = float(np.nanmean(last)) if np.isfinite(last).any() else np.nan
    return RunSummary(Path(path), architecture(model, collapse=True), rule_label(model), engine,
                      dataset_label(protocol["data"]), int(tree.attrs["seed"]), len(accuracy),
                      100 * (1 - accuracy), float(tree["train"]["wall_time"].values.sum()),
                      angle, str(tree.attrs["status"]))


def group_runs(runs):
    """Runs grouped by (network, rule, engine, dataset, epochs), in order of appearance."""
    groups = {}
    for run in runs:
        groups.setdefault((run.network, run.rule, run.engine, run.dataset, run.epochs), []).append(run)
    return groups


def reference_at(run: RunSummary, runs) -> float | None:
    """The test error (%) of the reference-engine run with `run`'s network, rule, data and
    seed at `run`'s last epoch, or None if there is none that long."""
    for other in runs:
        if (other.engine.startswith("reference") and other.epochs >= run.epochs
                and (other.network, other.rule, other.dataset, other.seed)
                == (run.network, run.rule, run.dataset, run.seed)):
            return float(other.test_error[run.epochs - 1])
    return None


def rule_rank(rule: str, engine: str) -> tuple:
    """Where a row goes: the rules in RULE_ORDER, K in numeric order, the reference before
    Brian2."""
    first = rule.split(",")[0] if rule.startswith("iterative") else rule
    rank = RULE_ORDER.index(first) if first in RULE_ORDER else len(RULE_ORDER)
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", rule)]
    return (rank, natural, engine.startswith("brian2"))


def table(experiment: Experiment, runs) -> list[str]:
    """The markdown rows of one experiment. A Brian2-engine row also gives the reference
    engine's error for the same seeds at the same epoch, the comparison the engines owe."""
    def order(item):
        (network, rule, engine, dataset, epochs), _ = item
        return rule_rank(rule, engine) + (network, epochs)

    rows = []
    for (network, rule, engine, dataset, epochs), group in sorted(group_runs(runs).items(), key=order):
        errors = [run.test_error[-1] for run in group]
        if engine.startswith("brian2"):
            matches = [reference_at(run, runs) for run in group]
            if all(m is not None for m in matches):
                note = f"; reference {np.mean(matches):.2f} at the same epoch and seeds"
            else:
                note = "; no reference run to compare at the same epoch and seeds"
        else:
            note = ""
        angles = [run.angle_to_gn for run in group if np.isfinite(run.angle_to_gn)]
        angle = f"{np.mean(angles):.1f}" if angles else "—"
        unfinished = sum(run.status != "complete" for run in group)
        note += f" ({unfinished} not complete)" if unfinished else ""
        rows.append(f"| {experiment.title.split(':')[0]} | {network} ({dataset}) | {rule} | "
                    f"{experiment.paper.get(rule, '—')} | {mean_std_interval(errors)}{note} | {engine} | "
                    f"{epochs} | {duration(np.median([run.training_time for run in group]))} | "
                    f"{angle} |")
    return rows


HEADER = ["| experiment | network (data) | rule | paper: test error (%) | ours: test error (%), "
          "mean ± std (ddof 1), 95% t interval, n seeds | engine | epochs | training time per run (median) | "
          "angle to GN (°, hidden layers, last epoch) |",
          "|---|---|---|---|---|---|---|---|---|"]


def learning_curves(experiment: Experiment, runs, path: Path):
    """Test error against epoch, one line per run, coloured by rule and engine."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    colours = {}
    for run in sorted(runs, key=lambda run: rule_rank(run.rule, run.engine)):
        key = f"{run.rule}; {run.engine}"
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        ax.plot(np.arange(1, run.epochs + 1), run.test_error, color=colour,
                label=key if key not in ax.get_legend_handles_labels()[1] else None)
    published = {}
    for rule, number in experiment.paper.items():
        published.setdefault(float(number.replace("≈", "").strip()), []).append(rule)
    for i, (value, rules) in enumerate(sorted(published.items())):
        ax.axhline(value, color="0.6", lw=0.8, ls=":")
        # alternate above and below the line, so that close published values stay legible
        ax.annotate(f"paper: {', '.join(rules)}", (0.99, value), xycoords=("axes fraction", "data"),
                    fontsize=7, color="0.4", ha="right", va="top" if i % 2 else "bottom")
    ax.set(xlabel="epoch", ylabel="test error (%)", yscale="log", title=experiment.title)
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def commands_block(experiments) -> list[str]:
    """Every experiment's sweep commands as one bash block for docs/reproducing.md, so that the
    commands printed there are the ones this script knows (and the test loads)."""
    lines = ["```bash"]
    for experiment in experiments:
        lines.append(f"# {experiment.title}")
        lines.extend(experiment.commands)
    return lines + ["```"]


def show(args) -> None:
    """Print the sweep commands (``--commands``), or the table, drawing its figures."""
    if args.commands:
        print("\n".join(commands_block(EXPERIMENTS)))
        return
    figures = args.figures or args.results
    figures.mkdir(parents=True, exist_ok=True)
    print("\n".join(HEADER))
    for experiment in EXPERIMENTS:
        files = experiment_files(args.results, experiment)
        if not files:
            continue
        runs = [summarise_run(path) for path in files]
        print("\n".join(table(experiment, runs)))
        learning_curves(experiment, runs, figures / f"{experiment.folder}.png")


def main(argv=None) -> int:
    def options(parser):
        parser.add_argument("--commands", action="store_true",
                            help="print the sweep commands of every experiment and stop")
        parser.add_argument("--figures", type=Path, default=None,
                            help="where to write the learning-curve PNGs (default: --results)")

    return reproduce.main(__doc__.splitlines()[0],
                          lambda: [c for e in EXPERIMENTS for c in e.commands], show, argv,
                          options)


if __name__ == "__main__":
    raise SystemExit(main())
