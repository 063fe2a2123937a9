"""
Your first network in Python
============================

Build a network, ask it for targets, step it through one epoch of the digits and watch what
difference target propagation (DTP) asks of each layer. Runs in about 4 s on a 2-core machine.

Everything here is the public API of :doc:`../python-api`: ``bioprop.build``, ``net.targets``,
``net.step`` and ``net.predict``.
"""

# %%
# Build the network
# -----------------
# ``"default"`` is the shipped model: 64 pixels → 128 tanh → 128 tanh → 10 linear outputs,
# trained by DTP with learned inverses. The reference engine computes every layer at its
# steady state in NumPy; the Brian2 engine would simulate the same populations in time and
# settle on the same rates, but slower, and time is not the point here.
import matplotlib.pyplot as plt
import numpy as np

import bioprop

data = bioprop.load_dataset("digits")
net = bioprop.build("default", engine="reference", seed=1)
print(net)
print("training samples:", data.x_train.shape, " test samples:", data.x_test.shape)

# %%
# Targets before anything is learned
# -----------------------------------
# ``net.targets(x, y)`` runs one batch without learning. The output layer's target is its rate
# nudged down the gradient of the loss; each layer below gets its target from the feedback
# pathway. Every array is an xarray DataArray with named dims: ``sample`` and one per layer.
x, y = data.x_train[:32], data.y_train[:32]
asked = net.targets(x, y)
print(asked["target_output"].dims, asked["target_hidden1"].sizes)

fig, ax = plt.subplots(figsize=(6, 3))
digits = np.arange(10)
ax.bar(digits - 0.2, asked["rate_output"][0], width=0.4, label="rate $h_3$")
ax.bar(digits + 0.2, asked["target_output"][0], width=0.4, label="target $\\hat h_3$")
ax.axvline(y[0], color="k", ls=":", label=f"label ({y[0]})")
ax.set(xlabel="output neuron (digit)", ylabel="rate (dimensionless)", xticks=digits,
       title="The top target nudges the output towards the label")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# How far is each target from its layer's rate? DTP's targets are the rates plus a small
# change; the size of that change is the "error" each layer learns from, with no gradient sent
# down the network.
layers = ["hidden1", "hidden2", "output"]
for name in layers:
    change = asked[f"target_{name}"] - asked[f"rate_{name}"]
    print(f"{name:8s} mean |target - rate| = {float(abs(change).mean()):.2e}")

# %%
# One epoch, one batch at a time
# ------------------------------
# ``net.step(x, y)`` learns from one batch and returns everything the batch did as a Dataset.
# We draw the batches in a random order of our own and keep, for each batch, its mean loss and
# how far each layer's target was from its rate.
accuracy_before = float((net.predict(data.x_test).argmax("output") == data.y_test).mean())

order = np.random.default_rng(0).permutation(len(data.x_train))
losses, changes = [], {name: [] for name in layers}
for start in range(0, len(order) - 31, 32):
    rows = order[start:start + 32]
    trace = net.step(data.x_train[rows], data.y_train[rows])
    losses.append(float(trace["loss"].mean()))
    for name in layers:
        changes[name].append(float(abs(trace[f"target_{name}"] - trace[f"rate_{name}"]).mean()))

accuracy_after = float((net.predict(data.x_test).argmax("output") == data.y_test).mean())
print(f"test accuracy: {accuracy_before:.1%} before, {accuracy_after:.1%} after "
      f"{len(losses)} batches")

# %%
# As the network learns, the loss falls and the targets come closer to the rates: there is
# less left to correct. One epoch is far from enough: the default run trains 30 (``net.fit()``
# would, and write them to a run file, as tutorial 5 shows).
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
left.plot(losses)
left.set(xlabel="batch", ylabel="loss (nats)", title="Training loss")
for name in layers:
    right.semilogy(changes[name], label=name)
right.set(xlabel="batch", ylabel="mean |target − rate|",
          title="What each layer is asked to change")
right.legend(fontsize="small")
fig.tight_layout()

# %%
# The weights
# -----------
# ``net.weights`` holds every pathway by the layers it joins, with dims (post, pre):
# ``input_to_hidden1`` is the forward weight :math:`W_1`, ``hidden2_to_hidden1`` the feedback
# weight :math:`Q_2` that the inverse :math:`g_2` learns. Here are the incoming weights of
# four hidden neurons, shown as images of the 8 × 8 pixels they read.
w = net.weights["input_to_hidden1"]
print(w.dims, w.shape)
fig, axes = plt.subplots(1, 4, figsize=(7, 2))
for neuron, ax in enumerate(axes):
    ax.imshow(w.isel(hidden1=neuron).values.reshape(8, 8), cmap="RdBu_r")
    ax.set(title=f"hidden1 #{neuron}", xticks=[], yticks=[])
fig.tight_layout()
