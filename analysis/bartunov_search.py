"""Bartunov 2018's MNIST table, tuned per rule: a random search with successive halving
for every rule on a 55k/5k validation split, then the chosen configuration with 5 seeds.

Usage::

    python analysis/bartunov_search.py --dry-run          # every configuration and rung
    python analysis/bartunov_search.py [--rules bp,fa] [--seeds 5] [--workers 2]
    python analysis/bartunov_search.py --table            # the table, from the run files

Each rule is one ``bioprop sweep --sample ...`` (the command is printed) into
``results/bartunov2018/search/<rule>/``: 20 configurations trained for 2 epochs, the
best third of them for 8, the best third of those for 30, ranked on validation error;
then the best of the last rung with seeds 1-5. The test set is read only for the
table. A search stopped at any point goes on from its run files when run again; with
``--seeds 1`` every rule's search runs without the final seeds, which a later run with
``--seeds 5`` adds.

Before it starts, the script prints how long it expects to take on this machine: the
epochs it still has to train times the seconds per epoch of the runs already in
``results/bartunov2018`` (the untuned rows, trained here), divided by the workers.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

MODEL, PROTOCOL = "models/bartunov2018.toml", "protocols/bartunov2018.toml"
RESULTS = Path("results/bartunov2018")
#: every search's fixed settings: a 5k validation split (as Bartunov's and Meulemans'), and run
#: files of figures only (no weights or activity: 60 kB a run, not 19 MB)
FIXED = ("data.validation=5000", "record.first_and_last=false")
RUNGS, ETA, CONFIGS = "2,8,30", 4, 20

_LR = "log-uniform:1e-5:1e-2"
#: rule → (its settings against the model file, the space searched). The ranges are
#: ours: a decade or more around the values that train at all in a first run, for
#: every rate and scale the rule has.
RULES = {
    "dtp": ((), (f"optimizer.forward.lr={_LR}", f"optimizer.feedback.lr={_LR}",
                 "rule.target_step=log-uniform:0.01:1", "rule.noise=log-uniform:0.01:1")),
    "dtp-parallel": (("rule.schedule=parallel",),
                     (f"optimizer.forward.lr={_LR}", f"optimizer.feedback.lr={_LR}",
                      "rule.target_step=log-uniform:0.01:1", "rule.noise=log-uniform:0.01:1")),
    "fa": (("rule.target=fa",), (f"optimizer.forward.lr={_LR}",
                                 "network.feedback_init_gain=log-uniform:0.1:10")),
    "dfa": (("rule.target=dfa",), (f"optimizer.forward.lr={_LR}",
                                   "network.feedback_init_gain=log-uniform:0.1:10")),
    "bp": (("rule.target=bp",), (f"optimizer.forward.lr={_LR}",)),
}
#: the untuned run whose seconds per epoch estimate each rule's (same network, 60k)
TIMED_BY = {"dtp": "rule.target-dtp_seed1.h5", "dtp-parallel": "rule.schedule-parallel_seed1.h5",
            "fa": "rule.target-fa_seed1.h5", "dfa": "rule.target-dfa_seed1.h5",
            "bp": "rule.target-bp_seed1.h5"}


def command(rule: str, seeds: int, workers: int, dry_run=False) -> list[str]:
    """The ``bioprop sweep`` command line of one rule's search."""
    fixed, space = RULES[rule]
    argv = ["bioprop", "sweep", MODEL, PROTOCOL, "--configs", str(CONFIGS), "--rungs", RUNGS,
            "--eta", str(ETA), "--seeds", str(seeds), "--workers", str(workers),
            "--scheduler", "local", "-o", str(RESULTS / "search" / rule), "-q"]
    for item in FIXED + fixed:
        argv += ["--set", item]
    for item in space:
        argv += ["--sample", item]
    return argv + (["--dry-run"] if dry_run else [])


def plan(rule: str, seeds: int):
    """The rule's checked search (bioprop.sweep.halving.SearchPlan)."""
    from bioprop.sweep.halving import checked_search

    fixed, space = RULES[rule]
    return checked_search(MODEL, PROTOCOL, space=space, configs=CONFIGS,
                          rungs=[int(e) for e in RUNGS.split(",")], eta=ETA, seeds=seeds,
                          overrides=list(FIXED + fixed))


def seconds_per_epoch(rule: str) -> float:
    """Measured on this machine: the untuned run's training time per epoch, scaled from
    60k to 55k training samples."""
    import h5py
    import numpy as np

    with h5py.File(RESULTS / TIMED_BY[rule], "r") as f:
        times = np.asarray(f["train/wall_time"][:])
    return float(np.median(times)) * 55 / 60


def epochs_left(rule: str, seeds: int) -> int:
    """Epochs not yet in a finished run file: an upper bound (the rungs' survivors are
    not known in advance, so every rung counts in full)."""
    from bioprop.sweep.runfiles import FINISHED, recorded

    done = 0
    folder = RESULTS / "search" / rule
    for path in folder.glob("config*_epochs*_seed*.h5"):
        if recorded(path).get("status") in FINISHED:
            done += int(path.stem.split("_epochs")[1].split("_")[0])
    return max(plan(rule, seeds).epochs - done, 0)


#: the labels of the results table, and Bartunov 2018's test errors (%), as quoted in issue 6
LABELS = {"dtp": "DTP", "dtp-parallel": "DTP, parallel", "fa": "FA", "dfa": "DFA", "bp": "BP"}
PAPER = {"dtp": 1.83, "dtp-parallel": 2.86, "fa": 1.85, "dfa": 2.75, "bp": 1.48}
#: short names of the searched keys, for the table
SHORT = {"optimizer.forward.lr": "forward lr", "optimizer.feedback.lr": "feedback lr",
         "rule.target_step": "η̂", "rule.noise": "σ", "network.feedback_init_gain": "B gain"}

HEADER = ["| rule | searched (20 configurations) | runs: configurations × epochs | chosen "
          "| its validation error (%) | test error (%), mean ± std, 95% t interval, n seeds "
          "| paper (%) | ours − paper | search time (all runs) |",
          "|---|---|---|---|---|---|---|---|---|"]


def search_rows(rule: str, seeds: int = 5):
    """(markdown row, the search's table) of one rule, from its run files alone; None if
    the search has not finished its last rung."""
    import numpy as np

    from bioprop.analysis.tables import duration, mean_std_interval
    from bioprop.sweep.halving import search_table

    checked = plan(rule, seeds)
    frame, chosen = search_table(checked, RESULTS / "search" / rule)
    last = frame[frame.rung == str(len(checked.rungs) - 1)]
    if (last.status == "missing").any():
        return None, frame
    final = frame[frame.chosen & (frame.epochs == checked.rungs[-1])
                  & (frame.status == "complete")]
    errors = 100 * (1 - final.test_accuracy.to_numpy())
    winner = final[final.seed == checked.seeds[0]]
    runs = ", ".join(f"{n} × {e}" for n, e in zip(checked.counts, checked.rungs))
    values = ", ".join(f"{SHORT.get(k, k)} {v:.3g}" for k, v in chosen)
    searched = ", ".join(SHORT.get(k, k) for k, _ in chosen)
    gap = float(np.mean(errors)) - PAPER[rule]
    row = (f"| {LABELS[rule]} | {searched} | {runs} | {values} "
           f"| {100 * (1 - winner.validation_accuracy.item()):.2f} "
           f"| {mean_std_interval(errors)} | {PAPER[rule]:.2f} | {gap:+.2f} "
           f"| {duration(frame.training_time.sum())} |")
    return row, frame


def curves(frames: dict, path: Path):
    """Validation error against epoch of every run of every search, one panel per rule:
    how successive halving stopped the configurations it dropped."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(3.2 * len(frames), 3.2), sharey=True,
                             squeeze=False)
    for ax, (rule, frame) in zip(axes[0], frames.items()):
        for row in frame[frame.status != "missing"].itertuples():
            with h5py.File(row.path, "r") as f:
                error = 100 * (1 - f["validation/accuracy"][:])
            style = dict(color="C3", lw=1.6) if row.chosen else dict(color="0.5", lw=0.7)
            ax.plot(range(1, len(error) + 1), error, alpha=0.8, **style)
        ax.set(title=LABELS[rule], xlabel="epoch", yscale="log", xscale="log")
        ax.set_xticks([1, 2, 5, 10, 20, 30], ["1", "2", "5", "10", "20", "30"])
        ax.set_yticks([2, 3, 5, 10, 20, 30], ["2", "3", "5", "10", "20", "30"])
        ax.minorticks_off()
    axes[0][0].set_ylabel("validation error (%)")
    fig.suptitle("Random search with successive halving: every run (red: the chosen "
                 "configuration, every seed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(rules, seeds) -> None:
    """Print the table of the finished searches and draw their curves."""
    print("\n".join(HEADER))
    frames = {}
    for rule in rules:
        row, frame = search_rows(rule, seeds)
        if row is not None:
            print(row)
            frames[rule] = frame
    if frames:
        curves(frames, RESULTS.parent / "bartunov2018-search.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default=",".join(RULES),
                        help=f"rules to search (default: {','.join(RULES)})")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the final runs")
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster processes")
    parser.add_argument("--dry-run", action="store_true", help="list the runs; run nothing")
    parser.add_argument("--table", action="store_true",
                        help="print the table of the finished searches (and draw "
                             "results/bartunov2018-search.png); run nothing")
    args = parser.parse_args(argv)
    rules = args.rules.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        parser.error(f"--rules: unknown {', '.join(unknown)}; expected some of {', '.join(RULES)}")
    if args.table:
        print_table(rules, args.seeds)
        return 0
    total = 0.0
    for rule in rules:
        left = epochs_left(rule, args.seeds)
        seconds = left * seconds_per_epoch(rule) / args.workers
        total += seconds
        print(f"{rule}: at most {left} epochs left, about {seconds / 60:.0f} min")
    print(f"expected run time on this machine: at most {total / 3600:.1f} h "
          f"({args.workers} workers)")
    for rule in rules:
        argv = command(rule, args.seeds, args.workers, args.dry_run)
        print("$ " + shlex.join(argv), flush=True)
        status = subprocess.call(argv)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
