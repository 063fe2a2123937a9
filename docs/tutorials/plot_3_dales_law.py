"""
A hypothesis test: Dale's law and sparse feedback
==================================================

Does difference target propagation still learn when every neuron is either excitatory or
inhibitory (Dale's law), or when only 10% of the feedback connections exist? Runs in about
13 s on a 2-core machine.

A brain's feedback pathway is sparse, and its synapses do not change sign. Both are options
of a model (:doc:`../constraints`), so the hypothesis is four trainings that differ in one
setting each, read back from their run files.
"""

# %%
# The conditions
# --------------
# Each condition is a set of ``overrides``, the keys ``--set`` takes. ``frozen-feedback`` is
# the control: its inverses never learn (their learning rate is scaled by 0), so the targets
# travel down the random initial feedback weights. If the constrained networks learned only as
# well as the control, their learned inverses would not be what makes them learn.
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bioprop

conditions = {
    "none": {},
    "dale-both": {"constraints.forward.excitatory": 0.8,
                  "constraints.feedback.excitatory": 0.8},
    "feedback-10": {"constraints.feedback.p_connect": 0.1},
    "frozen-feedback": {"layers.hidden2.feedback_lr_scale": 0,
                        "layers.output.feedback_lr_scale": 0},
}

# %%
# Training
# --------
# The default model (DTP, 64-128-128-10 tanh) in the reference engine, on the digits, for 8
# epochs and 2 seeds per condition: the numbers of :doc:`../constraints` come from 30 epochs
# and 5 seeds, which take minutes. Each ``net.fit`` writes a run file; we record no weights
# or activity, only the figures of every epoch and the probe diagnostics (``/metrics``).
EPOCHS, SEEDS = 8, (1, 2)
folder = Path(tempfile.mkdtemp(prefix="bioprop-dale-"))
record = {"weights_every": 0, "first_and_last": False}

nets, rows, curves = {}, [], {}
for name, overrides in conditions.items():
    for seed in SEEDS:
        net = bioprop.build("default", engine="reference", epochs=EPOCHS, seed=seed,
                            overrides=overrides)
        result = net.fit(record={**record, "path": str(folder / f"{name}-seed{seed}.h5")})
        nets[name, seed] = net
        tree = bioprop.open_run(result.path)
        metrics = tree["metrics"].to_dataset().sel(epoch=EPOCHS)
        curves[name, seed] = tree["test"]["accuracy"].values
        # the angle between hidden1's DTP update and the one BP would make, and
        # ‖g_2(f_2(h_1)) − h_1‖ / ‖h_1‖: how well the inverse of hidden2 inverts
        angle = float(metrics["angle_to_bp"].sel(layer="hidden1"))
        error = float(metrics["reconstruction_error"].sel(layer="hidden2"))
        rows.append({"condition": name, "seed": seed,
                     "test accuracy (%)": 100 * result.test_accuracy,
                     "angle to BP, hidden1 (°)": angle, "reconstruction error of g_2": error})
        tree.close()

table = pd.DataFrame(rows)
summary = table.drop(columns="seed").groupby("condition", sort=False).agg(["mean", "std"])
print(summary.round(2).to_string())

# %%
# Are the constraints obeyed?
# ---------------------------
# The run file records what was drawn: each pathway's ``sign`` (+1 for an excitatory, −1 for
# an inhibitory presynaptic neuron) and ``connected`` mask, in ``/constraints``. Every weight
# out of an excitatory hidden1 neuron must be ≥ 0 after training, every one out of an
# inhibitory neuron ≤ 0; and 10% of the feedback connections exist. The peak at 0 in the
# histogram below is the constraint at work: after every update, a weight that would have
# changed sign is set to 0.
tree = bioprop.open_run(folder / "dale-both-seed1.h5")
sign = tree["constraints"]["hidden1_to_hidden2"]["sign"].values
w = nets["dale-both", 1].weights["hidden1_to_hidden2"].values      # (hidden2, hidden1)
dale_holds = bool((w * sign >= 0).all())
print(f"excitatory hidden1 neurons: {(sign > 0).mean():.0%}; Dale's law holds: {dale_holds}")
tree.close()

tree = bioprop.open_run(folder / "feedback-10-seed1.h5")
connected = tree["constraints"]["hidden2_to_hidden1"]["connected"].values
q = nets["feedback-10", 1].weights["hidden2_to_hidden1"].values
feedback_fraction = float(connected.mean())
print(f"feedback connections that exist: {feedback_fraction:.1%}; "
      f"weights at absent ones: {np.abs(q[connected == 0]).max()}")
tree.close()

fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(-0.4, 0.4, 61)
ax.hist(w[:, sign > 0].ravel(), bins=bins, alpha=0.7, label="from excitatory neurons")
ax.hist(w[:, sign < 0].ravel(), bins=bins, alpha=0.7, label="from inhibitory neurons")
ax.set(xlabel="weight hidden1 → hidden2 (dimensionless)", ylabel="synapses",
       title="Dale's law: each neuron's outgoing weights keep one sign")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# The answer
# ----------
# Test accuracy through training, mean over the seeds, and the two diagnostics at the last
# epoch.
fig, (curve_ax, angle_ax, error_ax) = plt.subplots(1, 3, figsize=(11, 3.3))
for name in conditions:
    mean = np.mean([curves[name, seed] for seed in SEEDS], axis=0)
    curve_ax.plot(np.arange(1, EPOCHS + 1), 100 * mean, marker="o", ms=3, label=name)
curve_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Learning")
curve_ax.legend(fontsize="small")
names = list(conditions)
for ax, column in ((angle_ax, "angle to BP, hidden1 (°)"),
                   (error_ax, "reconstruction error of g_2")):
    ax.bar(names, summary[column, "mean"], yerr=summary[column, "std"], color="C0")
    ax.set(title=column)
    ax.tick_params(axis="x", rotation=30)
fig.tight_layout()
shutil.rmtree(folder)   # the run files were scratch

# %%
# What it says, in these short runs (the numbers above come from this build): with 10% of its
# feedback connections DTP learns about as fast as without constraints. Under Dale's law in
# both pathways it learns too, but more slowly: after 8 epochs it is well behind (at 30 epochs
# it comes within about 1.5 points, :doc:`../constraints`), and its update turns further from
# BP's. In every condition whose inverses learn, they reconstruct the layer below far better
# than the frozen control's, whose reconstruction error stays near 1. Yet the control learns
# the digits as well as anyone: a random feedback pathway is enough for this easy task, so
# accuracy alone does not tell whether the learned inverses matter. A harder task (MNIST,
# ``dataset="mnist"``) or a deeper network is where that would show.
