"""The docs' table of every target rule against every feedback objective, on digits.

Usage::

    python analysis/rules_table.py [--seeds 3] [--engine reference] [--runs runs/rules-table]

Each cell trains ``models/<rule>.toml`` under the default protocol with the
objective set by ``rule.feedback``, over the seeds, and writes one run file per
point (existing files are reused). The table is then read back from the run files
alone: final-epoch test accuracy, mean ± std (ddof 1) and the 95% t interval over seeds. Difference rules (bp,
fa, dfa, gn) use no learned inverse, so the objective does not change them: they
get one cell, and the others state why they are empty.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis.tables import mean_std_interval
from bioprop.rules import FEEDBACK_OBJECTIVES, TARGET_RULES

MODELS = Path(__file__).resolve().parent.parent / "models"
INVERSE_RULES = {"tp": "tp", "dtp": "dtp", "iterative": "iterative (K = 5)"}
DIFFERENCE_RULES = {"bp": "bp", "fa": "fa", "dfa": "dfa", "gn": "gn"}


def _run(folder, rule, objective, seed, engine):
    path = folder / f"{rule}-{objective}-{engine}-seed{seed}.h5"
    if not path.exists():
        bioprop.run(MODELS / f"{rule}.toml", None, output=path, progress=False,
                    overrides=[f"rule.feedback={objective}", f"training.seed={seed}",
                               f"engine.name={engine}"])
    tree = bioprop.open_run(path)
    return float(tree["test"]["accuracy"].values[-1])


def _cell(accuracies):
    return mean_std_interval(100 * np.asarray(accuracies), digits=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--engine", default="reference", choices=["reference", "brian2"])
    parser.add_argument("--runs", type=Path, default=Path("runs/rules-table"))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    seeds = range(1, args.seeds + 1)
    objectives = list(FEEDBACK_OBJECTIVES)
    assert set(INVERSE_RULES) | set(DIFFERENCE_RULES) == set(TARGET_RULES)
    lines = ["| rule \\ objective | " + " | ".join(f"`{o}`" for o in objectives) + " |",
             "|---" * (len(objectives) + 1) + "|"]
    for rule, label in INVERSE_RULES.items():
        cells = [_cell([_run(args.runs, rule, o, s, args.engine) for s in seeds]) for o in objectives]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    for rule, label in DIFFERENCE_RULES.items():
        cell = _cell([_run(args.runs, rule, "dtp", s, args.engine) for s in seeds])
        lines.append(f"| `{label}` | {cell} | " + " | ".join(["uses no inverse"] * (len(objectives) - 1))
                     + " |")
    print(f"test accuracy (%) on digits: mean ± std (ddof 1), Student's t 95% interval, over "
          f"{args.seeds} seeds, {args.engine} engine")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
