"""Why the tuned DTP, FA and BP stay 0.7-0.9 points above Bartunov 2018: how much of the
gap is the constant learning rate, how much every rule shares with BP, and how much the
held-out images cost.

Usage::

    python analysis/bartunov_gap.py --dry-run    # the runs and the time expected
    python analysis/bartunov_gap.py --run        # train them (finished ones are skipped)
    python analysis/bartunov_gap.py              # the three tables, from the run files

Each rule's configuration is the one its search chose (``analysis/bartunov_search.py``,
read from its run files), trained again on the same 55k/5k split with seeds 1-5, with one
change: the forward learning rate falls along a cosine from the chosen value to 0 at
the run's end (``optimizer.forward.schedule = "cosine"``), over the protocol's 30 epochs.

- The first table sets seed 1 beside the search's own seed-1 run at a constant rate, and
  beside that run's lowest test error over its epochs (a bound no protocol that chooses on
  validation error can reach), with the mean over the 5 seeds.
- The second splits each rule's gap above the paper into BP's gap, which the setting gives
  every rule, and the rule's own, seed by seed.
- The third trains BP's choice on all 60k training images as well, to measure what the
  5k held out for validation cost.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

import bartunov_search as search
from bioprop.analysis import reproduce

RESULTS = Path("results")
RULES = ("bp", "dtp", "fa")
#: seeds of the cosine-schedule runs; seed 1 is set beside the search's own seed-1 run
SEEDS = 5


def chosen(rule: str) -> list[tuple[str, float]]:
    """The configuration the rule's search chose, from its run files."""
    from bioprop.sweep.halving import search_table

    _, values = search_table(search.plan(rule, 5), search.RESULTS / "search" / rule)
    return list(values)


def command(rule: str, split: bool = True) -> str:
    """The ``bioprop sweep`` command of one rule's cosine-schedule runs: on the search's
    55k/5k split, or (``split=False``) on all 60k training images, in ``<rule>-60k``."""
    fixed, _ = search.RULES[rule]
    words = ["bioprop", "sweep", "--seeds", str(SEEDS), "--workers", "1", search.MODEL,
             search.PROTOCOL]
    shared = [item for item in search.FIXED if split or not item.startswith("data.validation=")]
    for item in (*shared, *fixed, *(f"{k}={v:.3g}" for k, v in chosen(rule)),
                 "optimizer.forward.schedule=cosine"):
        words += ["--set", item]
    folder = RESULTS / "bartunov2018" / "gap" / (rule if split else f"{rule}-60k")
    words += ["--grid", "training.epochs=30", "-o", str(folder)]
    return shlex.join(words)


def commands() -> list[str]:
    """Every command of the script: each rule on the split, then BP on all 60k images."""
    return [command(r) for r in RULES] + [command("bp", split=False)]


def test_errors(path: Path) -> np.ndarray:
    """Test error (%) after every epoch of one run."""
    import h5py

    with h5py.File(path, "r") as f:
        return 100 * (1 - np.asarray(f["test/accuracy"][:], dtype=float))


def cosine_errors(rule: str, results: Path, folder: str | None = None) -> list[np.ndarray | None]:
    """Test error (%) after every epoch of each seed's cosine-schedule run (in the folder
    `folder`, default the rule's), None for a seed whose run is missing or unfinished."""
    from bioprop.sweep.runfiles import FINISHED, recorded

    folder = results / "bartunov2018" / "gap" / (folder or rule)
    paths = [folder / f"training.epochs-30_seed{s}.h5" for s in range(1, SEEDS + 1)]
    return [test_errors(p) if recorded(p).get("status") in FINISHED else None for p in paths]


def final_errors(runs: list[np.ndarray | None]) -> np.ndarray | None:
    """Each seed's test error (%) at epoch 30, from :func:`cosine_errors`; None until every
    seed is finished, since the seeds that finish first would bias a mean."""
    return None if any(r is None for r in runs) else np.array([r[-1] for r in runs])


def row(rule: str, runs: list[np.ndarray | None]) -> str | None:
    """One rule's row from its cosine-schedule `runs`, or None until its seed-1 runs are
    finished."""
    from bioprop.analysis.tables import mean_std_interval
    from bioprop.sweep.halving import search_table

    checked = search.plan(rule, 5)
    frame, _ = search_table(checked, search.RESULTS / "search" / rule)
    constant = frame[frame.chosen & (frame.epochs == checked.rungs[-1]) & (frame.seed == 1)]
    cosine, final = runs[0], final_errors(runs)
    if len(constant) != 1 or cosine is None:
        return None
    base = test_errors(Path(constant.path.item()))
    seeds = "—" if final is None else mean_std_interval(final)
    return (f"| {search.LABELS[rule]} | {base[-1]:.2f} | {base.min():.2f} (epoch "
            f"{base.argmin() + 1}) | {cosine[-1]:.2f} | {cosine.min():.2f} (epoch "
            f"{cosine.argmin() + 1}) | {seeds} | {search.PAPER[rule]:.2f} |")


HEADER = ["| rule (seed 1) | constant lr: test error (%), epoch 30 | constant lr: lowest "
          "over the epochs | cosine to 0: epoch 30 | cosine to 0: lowest | cosine to 0, seeds 1–5: "
          "epoch 30, mean ± std, 95% t interval, n | paper |",
          "|---|---|---|---|---|---|---|"]


def split_row(rule: str, final: np.ndarray | None, bp: np.ndarray | None) -> str | None:
    """How much of a rule's gap above the paper (cosine schedule, every seed) is BP's too.

    BP's own gap (our BP − the paper's BP) is what this setting adds to every rule; the rest,
    (rule − BP) here − (rule − BP) in the paper, belongs to the rule. It is taken seed by
    seed, each rule's run beside BP's of the same seed, so its interval is that of paired
    differences. `final` and `bp` are the rule's and BP's :func:`final_errors`.
    """
    from bioprop.analysis.tables import mean_std_interval

    if final is None or bp is None:
        return None
    own = (final - bp) - (search.PAPER[rule] - search.PAPER["bp"])
    return (f"| {search.LABELS[rule]} | {final.mean() - search.PAPER[rule]:+.2f} | "
            f"{bp.mean() - search.PAPER['bp']:+.2f} | {mean_std_interval(own)} |")


SPLIT_HEADER = ["| rule (cosine to 0, seeds 1–5) | ours − paper (points) | of it, BP's: our BP − "
                "the paper's | the rule's own: (rule − BP) here − (rule − BP) in the paper, "
                "mean ± std, 95% t interval, n |", "|---|---|---|---|"]


FULL_HEADER = ["| BP, cosine to 0, seeds 1–5 | test error (%), epoch 30, mean ± std, 95% t "
               "interval, n | paper |", "|---|---|---|"]


def full_rows(split: np.ndarray | None, full: np.ndarray | None) -> list[str]:
    """BP trained on the 55k of the split and on all 60k training images (their
    :func:`final_errors`), once every seed of both is finished."""
    from bioprop.analysis.tables import mean_std_interval

    if split is None or full is None:
        return []
    return [f"| 55,000 training images (the search's split) | {mean_std_interval(split)} | "
            f"{search.PAPER['bp']:.2f} |",
            f"| all 60,000 | {mean_std_interval(full)} | {search.PAPER['bp']:.2f} |"]


def tables(results: Path) -> tuple[list[str], list[str], list[str]]:
    """The gap table, the table that splits each rule's gap, and BP's on 55k against 60k
    training images, as lines. Each run file is read once."""
    runs = {r: cosine_errors(r, results) for r in RULES}
    finals = {r: final_errors(each) for r, each in runs.items()}
    rows = [row(r, runs[r]) for r in RULES]
    split = [split_row(r, finals[r], finals["bp"]) for r in RULES if r != "bp"]
    full = final_errors(cosine_errors("bp", results, "bp-60k"))
    return (HEADER + [r for r in rows if r is not None],
            SPLIT_HEADER + [r for r in split if r is not None],
            FULL_HEADER + full_rows(finals["bp"], full))


def print_table(args) -> None:
    gap, split, full = tables(args.results)
    print("\n\n".join("\n".join(t) for t in (gap, split, full)))


def main(argv=None) -> int:
    return reproduce.main(__doc__.split("\n\n")[0], commands, print_table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
