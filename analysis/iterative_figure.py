"""Iterative inverses with pre-trained feedback, undamped and damped: does the iteration
approach the Gauss-Newton target, does it contract, and does it help learning?

Usage::

    python analysis/iterative_figure.py [--runs results/iterative/pretrained]
        [--figure results/iterative-damped.png]

Reads the run files of ``results_table.py``'s pre-trained iterative sweep (K × α, seed 1)
and prints one row per run and draws three panels against K, one line per α: the last
epoch's test error, the angle between the hidden layers' target changes and the
Gauss-Newton target (mean over hidden layers), and how far the last refinement left the
iterate from the preimage, ‖f(x^K) − ĥ‖ / ‖f(x^0) − ĥ‖ (mean over hidden layers, last
epoch; below 1 the iteration moved toward the preimage). Beside them the table gives the
estimated Lip(g∘f − I) of every layer.
"""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np

import bioprop


def summarise(path: Path) -> dict:
    """What the figure needs of one run file."""
    tree = bioprop.open_run(path)
    rule = tomllib.loads(tree.attrs["model_toml"])["rule"]
    metrics = tree["metrics"]
    layers = list(metrics["layer"].values)
    hidden = [i for i, name in enumerate(layers) if name.startswith("hidden")]
    angle = np.asarray(metrics["angle_to_gn"].values[-1], dtype=float)[hidden]
    lipschitz = np.asarray(metrics["lipschitz"].values[-1], dtype=float)
    residual = np.asarray(tree["iterative"]["residual"].values[-1], dtype=float)
    ratio = residual[:, -1] / residual[:, 0]
    return {"K": rule.get("iterations", 1), "alpha": rule.get("iteration_step", 1.0),
            "test_error": 100 * (1 - float(tree["test"]["accuracy"].values[-1])),
            # the top layer that has a GN angle: the layer under the top target's
            "angle": float(np.nanmean(angle)), "top_angle": float(angle[np.isfinite(angle)][-1]),
            "ratio": float(np.nanmean(ratio)),
            "lipschitz": ", ".join(f"{v:.2f}" for v in lipschitz if np.isfinite(v))}


def table(rows) -> list[str]:
    lines = ["| K | α | test error (%) | angle to GN (°): hidden mean; highest hidden "
             "| ‖f(x^K) − ĥ‖ / ‖f(x⁰) − ĥ‖ | Lip(g∘f − I), layers 2..L |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['K']} | {r['alpha']:g} | {r['test_error']:.2f} | {r['angle']:.0f}; "
                     f"{r['top_angle']:.0f} | {r['ratio']:.2f} | {r['lipschitz']} |")
    return lines


def figure(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    panels = [("test_error", "test error (%), epoch 5"),
              ("angle", "angle to GN target (°)"),
              ("ratio", "‖f(x^K) − ĥ‖ / ‖f(x⁰) − ĥ‖")]
    for alpha in sorted({r["alpha"] for r in rows}, reverse=True):
        mine = sorted((r for r in rows if r["alpha"] == alpha), key=lambda r: r["K"])
        for ax, (key, label) in zip(axes, panels):
            ax.plot([r["K"] for r in mine], [r[key] for r in mine], "o-", label=f"α = {alpha:g}")
            ax.set(xlabel="K, refinements", ylabel=label, xscale="log")
    ks = sorted({r["K"] for r in rows})
    for ax in axes:
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
    axes[2].axhline(1, color="0.6", lw=0.8)
    axes[0].legend(fontsize=8)
    fig.suptitle("Iterative inverses after 3 epochs of pre-trained feedback (MNIST 784-5×256-10, "
                 "seed 1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("results/iterative/pretrained"))
    parser.add_argument("--figure", type=Path, default=Path("results/iterative-damped.png"))
    args = parser.parse_args()
    rows = sorted((summarise(p) for p in sorted(args.runs.glob("*.h5"))
                   if bioprop.open_run(p).attrs["status"] == "complete"),
                  key=lambda r: (r["K"], -r["alpha"]))
    print("\n".join(table(rows)))
    figure(rows, args.figure)


if __name__ == "__main__":
    main()
