"""Feedback alignment on Bartunov's MNIST network: why its test error rises after epoch 10
at Adam's lr 1e-3, and whether a smaller rate removes it.

Usage::

    python analysis/fa_instability.py --dry-run    # the runs and the time they took here
    python analysis/fa_instability.py --run        # train them (finished ones are skipped)
    python analysis/fa_instability.py              # the table and results/fa-instability.png

One sweep (:data:`COMMAND`) trains FA with the model file's settings (Adam, lr 1e-3, the
feedback matrices B_l at gain 1) and with lr 3e-4 and 1e-4, seed 1, 30 epochs. Read back
from the run files: per learning rate, the training loss and error, the test error, and the
angle between FA's update of each hidden layer and BP's (``/metrics/angle_to_bp`` on the
probe batch), at their best and at the last epoch.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

import bioprop
from bioprop.analysis import reproduce

COMMAND = ("bioprop sweep --seeds 1 --workers 1 models/bartunov2018.toml "
           "protocols/bartunov2018.toml --set rule.target=fa --set record.first_and_last=false "
           "--grid optimizer.forward.lr=0.001,0.0003,0.0001 -o results/fa-instability")


def summarise(path: Path) -> dict:
    """Per-epoch curves of one run, and its forward learning rate."""
    tree = bioprop.open_run(path)
    model = tomllib.loads(tree.attrs["model_toml"])
    metrics = tree["metrics"]
    hidden = [i for i, name in enumerate(metrics["layer"].values) if str(name).startswith("hidden")]
    angle = np.asarray(metrics["angle_to_bp"].values, dtype=float)[1:, hidden]  # epochs 1..
    return {"lr": model["optimizer"]["forward"]["lr"],
            "train_loss": np.asarray(tree["train"]["loss"].values, dtype=float),
            "train_error": 100 * (1 - np.asarray(tree["train"]["accuracy"].values, dtype=float)),
            "test_error": 100 * (1 - np.asarray(tree["test"]["accuracy"].values, dtype=float)),
            "angle": np.nanmean(angle[:, :2], axis=1)}  # the two lowest hidden layers


def table(runs) -> list[str]:
    lines = ["| forward lr | training loss: lowest (epoch) → epoch 30 | test error (%): lowest "
             "(epoch) → epoch 30 | angle to BP, hidden1–2 (°): epoch 2 → epoch 30 |",
             "|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: -r["lr"]):
        loss, error = r["train_loss"], r["test_error"]
        lines.append(f"| {r['lr']:g} | {loss.min():.3f} ({loss.argmin() + 1}) → {loss[-1]:.3f} "
                     f"| {error.min():.2f} ({error.argmin() + 1}) → {error[-1]:.2f} "
                     f"| {r['angle'][1]:.0f} → {r['angle'][-1]:.0f} |")
    return lines


def figure(runs, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for r in sorted(runs, key=lambda r: -r["lr"]):
        epochs = np.arange(1, len(r["train_loss"]) + 1)
        for ax, key in zip(axes, ("train_loss", "test_error", "angle")):
            ax.plot(epochs, r[key], label=f"lr {r['lr']:g}")
    for ax, label in zip(axes, ("training loss", "test error (%)", "angle to BP, hidden1–2 (°)")):
        ax.set(xlabel="epoch", ylabel=label)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("Feedback alignment, Bartunov's MNIST network, Adam, seed 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def show(args) -> None:
    runs = [summarise(p) for p in sorted((args.results / "fa-instability").glob("*.h5"))]
    print("\n".join(table(runs)))
    figure(runs, args.figure or args.results / "fa-instability.png")


def main(argv=None) -> int:
    def options(parser):
        parser.add_argument("--figure", type=Path,
                            help="where to draw the figure (default: RESULTS/fa-instability.png)")

    return reproduce.main(__doc__.splitlines()[0], lambda: [COMMAND], show, argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
