"""The docs' digits table: DTP (Brian2 and reference engines) against BP, over seeds.

Usage::

    python analysis/digits_table.py [--seeds 5] [--runs runs/digits-table]

Each (rule, engine, seed) trains the default model under the default protocol and
writes its own run file; existing run files are reused, not recomputed. The table
is then read back from the run files alone (final-epoch test accuracy, training
time), so it can be rebuilt from the files on any machine.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis.tables import mean_std_interval

VARIANTS = {
    "DTP (Brian2 engine)": ["rule.target=dtp", "engine.name=brian2"],
    "DTP (reference engine)": ["rule.target=dtp", "engine.name=reference"],
    "TP (reference engine)": ["rule.target=tp", "engine.name=reference"],
    "BP (reference engine)": ["rule.target=bp", "engine.name=reference"],
}


def run_all(folder: Path, seeds: int):
    paths = {}
    for name, overrides in VARIANTS.items():
        for seed in range(1, seeds + 1):
            tag = overrides[0].split("=")[1] + "-" + overrides[1].split("=")[1]
            path = folder / f"{tag}-seed{seed}.h5"
            if not path.exists():
                bioprop.run(output=path, progress=False,
                            overrides=overrides + [f"training.seed={seed}"])
            paths.setdefault(name, []).append(path)
    return paths


def summarise(paths) -> str:
    rows = ["| rule | engine | test accuracy (%), mean ± std, 95% t interval, n seeds | min "
            "| training time per run |", "|---|---|---|---|---|"]
    for name, files in paths.items():
        acc, time = [], []
        for path in files:
            tree = bioprop.open_run(path)
            acc.append(float(tree["test"]["accuracy"].values[-1]))
            time.append(float(tree["train"]["wall_time"].values.sum()))
        rule, engine = name.split(" (")
        rows.append(f"| {rule} | {engine.rstrip(')')} | {mean_std_interval(100 * np.array(acc))} "
                    f"| {100 * min(acc):.2f} % | {np.median(time):.1f} s (median) |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path("runs/digits-table"))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    print(summarise(run_all(args.runs, args.seeds)))


if __name__ == "__main__":
    main()
