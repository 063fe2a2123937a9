"""The table of docs/constraints.md: does DTP still learn under Dale's law, or with 10%
feedback connectivity?

Usage::

    python analysis/constraints_table.py [--seeds 5] [--runs runs/constraints]

Each (condition, seed) trains the default model (DTP, 64-128-128-10 tanh) under the default
protocol (digits, 30 epochs) in the reference engine (one condition in the Brian2 engine),
with the condition's constraints, and writes its own run file,
``RUNS/<condition>/seed<seed>.h5`` (the layout of ``bioprop sweep --seeds N -o
RUNS/<condition>``, whose files are reused, not recomputed).
The table is read back from the run files alone: the last epoch's test accuracy, the angle
of the first layer's update to BP's, and the inverse quality of g_2.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis.tables import mean_std_interval

#: condition → the settings that make it (every run: the reference engine)
CONDITIONS = {
    "none": [],
    "dale-forward": ["constraints.forward.excitatory=0.8"],
    "dale-both": ["constraints.forward.excitatory=0.8", "constraints.feedback.excitatory=0.8"],
    "feedback-10": ["constraints.feedback.p_connect=0.1"],
    "dale-both-feedback-10": ["constraints.forward.excitatory=0.8",
                              "constraints.feedback.excitatory=0.8",
                              "constraints.feedback.p_connect=0.1"],
    # the control: inverses that never learn, so the targets go down random feedback
    "frozen-feedback": ["layers.hidden2.feedback_lr_scale=0", "layers.output.feedback_lr_scale=0"],
    # the same constraints in the Brian2 engine, the product
    "dale-both-feedback-10-brian2": ["constraints.forward.excitatory=0.8",
                                     "constraints.feedback.excitatory=0.8",
                                     "constraints.feedback.p_connect=0.1", "engine.name=brian2"],
}
#: the engine of every condition that does not name its own
ENGINE = ["engine.name=reference"]


def run_all(folder: Path, seeds: int, conditions=CONDITIONS) -> dict:
    """{condition: [run file of each seed]}, training the runs whose file is missing."""
    paths = {}
    for name, overrides in conditions.items():
        for seed in range(1, seeds + 1):
            path = folder / name / f"seed{seed}.h5"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                engine = [] if any(o.startswith("engine.name=") for o in overrides) else ENGINE
                bioprop.run(output=path, progress=False,
                            overrides=engine + overrides + [f"training.seed={seed}"])
            paths.setdefault(name, []).append(path)
    return paths


def _cell(values, scale=1.0, digits=2) -> str:
    """Mean ± sample std (ddof 1); the value alone for one run."""
    values = scale * np.asarray(values)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def summarise(paths) -> str:
    """The markdown table of `paths` ({condition: run files}): mean ± std over the files."""
    rows = ["| constraints | settings | test accuracy (%), mean ± std, 95% t interval "
            "| angle to BP, hidden1 (°) "
            "| reconstruction error of g_2 | n |", "|---|---|---|---|---|---|"]
    for name, files in paths.items():
        accuracy, angle, error = [], [], []
        for path in files:
            tree = bioprop.open_run(path)
            accuracy.append(float(tree["test"]["accuracy"].values[-1]))
            metrics = tree["metrics"].to_dataset().isel(epoch=-1)
            layers = list(metrics["layer"].values)
            angle.append(float(metrics["angle_to_bp"].values[layers.index("hidden1")]))
            error.append(float(metrics["reconstruction_error"].values[layers.index("hidden2")]))
        settings = ", ".join(f"`{s}`" for s in CONDITIONS.get(name, [])) or "—"
        rows.append(f"| {name} | {settings} | {mean_std_interval(100 * np.asarray(accuracy))} "
                    f"| {_cell(angle, digits=1)} "
                    f"| {_cell(error, digits=3)} | {len(files)} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path("runs/constraints"))
    args = parser.parse_args()
    print(summarise(run_all(args.runs, args.seeds)))


if __name__ == "__main__":
    main()
