"""Lee 2015's code, two settings further: the alternation of whole epochs, and annealed noise.

Usage::

    python analysis/lee_options.py --dry-run    # the runs and the time expected
    python analysis/lee_options.py --run        # train them (finished ones are skipped)
    python analysis/lee_options.py              # the table, from the run files

Two questions, one sweep each (:data:`COMMANDS`), seed 1:

- Lee's continuous network with his learning rates taken exactly (both rates twice the
  model file's, and half on the output layer: his layer losses are sums of squares,
  bioprop's halves of them) diverges in its first epoch when inverses and forward weights
  alternate within each batch. Does it train when they alternate whole epochs, as his
  code does (``rule.schedule = "epochs"``)? 5 epochs each, and the model file's own
  rates with whole epochs beside them.
- His discrete network with the noise of his discrete code, σ / (1 + (e − 1)/50) in
  epoch e (``rule.noise_anneal_epochs = 50``), 20 epochs.

Each new run is set beside the committed run it changes (``results/lee2015`` and
``results/lee2015-discrete``) at the same epochs.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis import reproduce

RESULTS = Path("results")
_LEE = ("bioprop sweep --seeds 1 --workers 1 models/lee2015_dtp.toml protocols/lee2015.toml "
        "--set training.epochs=5 --set record.first_and_last=false ")
COMMANDS = (
    _LEE + "--set optimizer.forward.lr=0.02978 --set optimizer.feedback.lr=0.01002 "
    "--set layers.output.lr_scale=0.5 --grid rule.schedule=alternating,epochs "
    "-o results/lee2015-options/lee-rates",
    _LEE + "--grid rule.schedule=epochs -o results/lee2015-options/model-rates",
    "bioprop sweep --seeds 1 --workers 1 models/lee2015_discrete.toml "
    "protocols/lee2015_discrete.toml --set record.first_and_last=false "
    "--grid rule.noise_anneal_epochs=50 -o results/lee2015-options/sign",
)
#: (row label, run file under the results folder), in the table's order: each new run
#: after the committed one it changes
ROWS = (
    ("continuous, within each batch, model rates (committed)", "lee2015/rule.target-dtp_seed1.h5"),
    ("continuous, whole epochs, model rates", "lee2015-options/model-rates/rule.schedule-epochs_seed1.h5"),
    ("continuous, within each batch, Lee's rates",
     "lee2015-options/lee-rates/rule.schedule-alternating_seed1.h5"),
    ("continuous, whole epochs, Lee's rates", "lee2015-options/lee-rates/rule.schedule-epochs_seed1.h5"),
    ("discrete (sign), constant σ (committed)", "lee2015-discrete/sign/seed1.h5"),
    ("discrete (sign), σ / (1 + (e − 1)/50)",
     "lee2015-options/sign/rule.noise_anneal_epochs-50_seed1.h5"),
)
EPOCHS = (1, 5, 20)

HEADER = ["| network, alternation, rates or noise | forward lr | test error (%) after epoch 1 "
          "| epoch 5 | epoch 20 | run |", "|---|---|---|---|---|---|"]


def row(label: str, path: Path) -> str | None:
    """One run's row, or None while its file is missing or unfinished."""
    from bioprop.sweep.runfiles import FINISHED, recorded

    if not path.exists() or recorded(path).get("status") not in FINISHED:
        return None
    tree = bioprop.open_run(path)
    error = 100 * (1 - np.asarray(tree["test"]["accuracy"].values, dtype=float))
    lr = tomllib.loads(tree.attrs["model_toml"])["optimizer"]["forward"]["lr"]
    cells = [f"{error[e - 1]:.2f}" if len(error) >= e else "—" for e in EPOCHS]
    return f"| {label} | {lr:g} | {' | '.join(cells)} | {tree.attrs['status']} |"


def print_table(args) -> None:
    rows = [row(label, args.results / path) for label, path in ROWS]
    print("\n".join(HEADER + [r for r in rows if r is not None]))


def main(argv=None) -> int:
    return reproduce.main(__doc__.split("\n\n")[0], lambda: COMMANDS, print_table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
