"""
A run file, analysed with xarray alone
======================================

Every run writes one HDF5 file that xarray opens as it is: named dims, coordinates and units,
no bioprop needed to read it. Here we train a network once, then read its angles to
back-propagation, the quality of its learned inverses and the representational similarity
of its hidden layers with nothing but xarray and NumPy. Runs in about 3 s on a 2-core machine.

The layout of the file is in :doc:`../run-file` and, variable by variable, in
:doc:`../reference/run-file-schema`.
"""

# %%
# A run file to read
# ------------------
# DTP on the digits in the reference engine, 10 epochs. ``record`` asks for every pathway's
# weights and the probe batch's activity (its first 32 training samples) at every epoch,
# before training (epoch 0) included. This is the last use of bioprop on this page.
import shutil
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import bioprop

folder = tempfile.mkdtemp(prefix="bioprop-run-")
path = folder + "/dtp.h5"
net = bioprop.build("default", engine="reference", epochs=10)
net.fit(record={"path": path, "weights_every": 1, "activity_every": 1})

# %%
# Open it
# -------
# One ``DataTree``: a group per kind of record. ``/train`` and ``/test`` hold one value per
# epoch, ``/metrics`` the probe diagnostics per epoch and layer, ``/pathways`` the weights
# with dims (epoch, post, pre), ``/layers`` the probe trials' activity and ``/probe`` what
# those trials were.
tree = xr.open_datatree(path, engine="h5netcdf")
print(sorted(tree.children))
accuracy = tree["test"]["accuracy"]
print("test accuracy (%), epoch by epoch:", np.round(100 * accuracy.values, 1))

# %%
# Angles to back-propagation
# --------------------------
# ``angle_to_bp`` is the angle between the update DTP made to each layer's weights and the one
# back-propagation would have made from the same batch, in degrees. 0° would be BP itself,
# 90° an update unrelated to the gradient. The output layer's target comes from the loss, so
# its update is BP's.
metrics = tree["metrics"].to_dataset().load()     # small: read it now
print(metrics["angle_to_bp"].attrs)
fig, ax = plt.subplots(figsize=(6, 3.3))
metrics["angle_to_bp"].plot.line(x="epoch", hue="layer", ax=ax, marker="o", ms=3)
ax.set(title="Angle of DTP's update to BP's", ylabel="angle (degree)")
fig.tight_layout()

# %%
# The learned inverses
# --------------------
# The feedback pathway :math:`g_l` of layer l learns to undo its forward pathway :math:`f_l`:
# ``reconstruction_error`` is :math:`\lVert g_l(f_l(h_{l-1})) - h_{l-1} \rVert / \lVert h_{l-1}
# \rVert` on the probe batch, indexed by the upper layer l (the first hidden layer has no
# inverse: nothing below it to send targets to).
fig, ax = plt.subplots(figsize=(6, 3.3))
(metrics["reconstruction_error"].sel(layer=["hidden2", "output"])
 .plot.line(x="epoch", hue="layer", ax=ax, marker="o", ms=3))
ax.set(title="Reconstruction error of g_l", ylabel="‖g(f(h)) − h‖ / ‖h‖ (dimensionless)")
fig.tight_layout()

# %%
# The same file holds the weights, so a diagnostic bioprop did not compute is a few lines of
# xarray. Does the feedback weight :math:`Q_2` (``hidden2_to_hidden1``) align with the transpose
# of the forward weight :math:`W_2` (``hidden1_to_hidden2``), as it would if the inverse were
# the weights' transpose? Renaming ``post`` and ``pre`` transposes a pathway; ``xr.dot`` sums
# over the dims it is given, for every epoch at once.
W = tree["pathways"]["hidden1_to_hidden2"]["weight"]
Q = tree["pathways"]["hidden2_to_hidden1"]["weight"]
W_T = W.rename(post="pre", pre="post")
cosine = xr.dot(W_T, Q, dim=["post", "pre"]) / np.sqrt(
    xr.dot(W_T, W_T, dim=["post", "pre"]) * xr.dot(Q, Q, dim=["post", "pre"]))
alignment = np.degrees(np.arccos(cosine))
print("angle(W_2ᵀ, Q_2) by epoch (degree):", np.round(alignment.values, 1))
# bioprop computed the same angle at every epoch as ``angle_w_q``: the two readings agree
alignment_gap = float(abs(alignment - metrics["angle_w_q"].sel(layer="hidden2")).max())
print(f"largest difference from /metrics angle_w_q: {alignment_gap:.1e} degree")

# %%
# Representational similarity
# ---------------------------
# How alike are the hidden layer's responses to two images? The correlation, over neurons,
# of the rates two probe trials evoke, for every pair of trials, with the trials sorted by
# their digit (``/probe``'s ``label``). Before training any two trials evoke much the same
# pattern (all correlations are high); as the network learns, trials of different digits come
# apart while those of one digit stay alike: the blocks on the diagonal are the digits.
label = tree["probe"]["label"]
rate = tree["layers"]["hidden2"]["rate"].assign_coords(label=label).sortby("label")
z = (rate - rate.mean("neuron")) / rate.std("neuron")
similarity = xr.dot(z, z.rename(trial="other"), dim="neuron") / rate.sizes["neuron"]

same = (label.sortby(label).values[:, None] == label.sortby(label).values[None, :])
off_diagonal = ~np.eye(len(same), dtype=bool)
# mean similarity of two trials of one digit, less that of two trials of different digits
class_structure = (similarity.where(xr.DataArray(same & off_diagonal, dims=("trial", "other")))
                   .mean(["trial", "other"])
                   - similarity.where(xr.DataArray(~same, dims=("trial", "other")))
                   .mean(["trial", "other"]))
print("within- less between-class similarity, by epoch:", np.round(class_structure.values, 3))

last = int(rate.epoch[-1])
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), width_ratios=(1, 1, 1.2))
for ax, epoch in zip(axes, (0, last)):
    image = ax.imshow(similarity.sel(epoch=epoch), vmin=-1, vmax=1, cmap="RdBu_r")
    digits = label.sortby(label).values
    ticks = [np.flatnonzero(digits == d)[0] for d in np.unique(digits)]
    ax.set(title=f"hidden2, epoch {epoch}", xticks=ticks, yticks=ticks,
           xticklabels=np.unique(digits), yticklabels=np.unique(digits),
           xlabel="probe trial (by digit)")
fig.colorbar(image, ax=axes[1], label="correlation")
class_structure.plot(ax=axes[2], marker="o", ms=3)
axes[2].set(title="Class structure of hidden2", ylabel="within − between (correlation)")
fig.tight_layout()
tree.close()
shutil.rmtree(folder)   # the run files were scratch
