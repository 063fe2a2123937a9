"""
Spiking layers: rasters, rates in Hz, and targets reaching LIF neurons
=======================================================================

A layer of leaky integrate-and-fire neurons, simulated by Brian2, trained by difference target
propagation: its spikes, the firing rates the learning rules read from them, and the targets
the feedback pathway sends down to them. Runs in about 13 s on a 2-core machine.

How a target reaches a spiking neuron is explained in :doc:`../spiking`; here we look at it.
"""

# %%
# A tiny spiking network
# ----------------------
# The shipped model ``lif`` is 64 pixels → 128 LIF neurons → 10 rate outputs. We shrink the
# hidden layer to 32 neurons and train on 256 digits for 2 epochs, in the Brian2 engine with
# NumPy code generation (no compiler needed, and quick to start for a network this small).
# Its protocol ``spiking`` simulates at dt = 1 ms, in phases of 75–90 ms, and starts every trial
# where the layers' rate twins settle for its input.
import shutil
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from brian2 import Hz, ms

import bioprop
from bioprop.analysis import raster, recorded_spikes, spike_rates

small = {"epochs": 2, "n_train": 256, "n_test": 64, "batch_size": 16,
         "overrides": {"layers.hidden1.size": 32, "engine.codegen": "numpy"}}
net = bioprop.build("lif", engine="brian2", **small)
print(net)

# A LIF neuron fires at most once per refractory period: that is its maximal rate, and the
# rules read its rate as a fraction of it.
lif = net.model_spec.layers[0]
max_rate = 1 / lif.refractory.quantity
print(f"refractory {lif.refractory.text}: maximal rate {max_rate}; threshold {lif.threshold}, "
      f"membrane time constant {lif.tau.text}")

# %%
# Train, recording the probe trials
# ---------------------------------
# ``record`` asks for the activity of 4 probe trials (the first training samples) before
# training and after the last epoch: the spike trace ``rate``, the dendrite's current into the
# soma ``apical_current``, and every spike.
folder = tempfile.mkdtemp(prefix="bioprop-lif-")
path = folder + "/lif.h5"
result = net.fit(record={"path": path, "activity_trials": 4, "weights_every": 0,
                         "variables": ["rate", "apical_current", "spikes"]})
tree = bioprop.open_run(result.path)
hidden = tree["layers"]["hidden1"]
phases = tree["phases"].to_dataset().to_dataframe()
print(phases[["name", "start", "duration"]].to_string(index=False))


def shade_phases(ax):
    """Shade every other phase of the trial and name each at the top."""
    for i, phase in phases.iterrows():
        if i % 2 == 0:
            ax.axvspan(phase.start, phase.start + phase.duration, color="0.92", zorder=0)
        ax.text(phase.start + 2, 1.01, phase["name"], transform=ax.get_xaxis_transform(),
                fontsize="x-small")


# %%
# A raster
# --------
# ``recorded_spikes`` reads one recorded epoch's spikes as three arrays (trial, time in ms,
# neuron); ``raster`` picks one trial's. In the forward phase the image drives the layer; in
# the first noise phase a noise current perturbs it, and the feedback pathway learns to undo
# what the layer above makes of that; in the target phase the apical dendrites push each
# neuron towards its target.
trial, time, neuron = recorded_spikes(hidden)          # the last recorded epoch
times, neurons = raster(trial, time, neuron, trial=0)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(times, neurons, "|k", ms=4)
shade_phases(ax)
ax.set(xlabel="time (ms)", ylabel="hidden1 neuron", title="Spikes of probe trial 0, after training")
fig.tight_layout()

# %%
# Rates in Hz
# -----------
# The run file stores a LIF layer's ``rate`` (its spike train filtered twice) as a fraction of
# the maximal rate, with the maximal rate as netCDF's ``scale_factor``: xarray reads it in Hz.
# Counting the spikes of the second half of the forward phase gives the same rates.
rate = hidden["rate"].isel(epoch=-1).load()
print("units:", rate.attrs["units"])
forward_end = float(phases.start[1])                   # ms: where the forward phase ends
late = (time >= forward_end / 2) & (time < forward_end)
counted = spike_rates(trial[late], time[late], neuron[late], n_trials=hidden.sizes["trial"],
                      n_neurons=hidden.sizes["neuron"], duration=forward_end / 2)  # per ms
counted_hz = counted.values * 1000                                                    # in Hz
# the trace at the phase's last step, where the phase latches it
traced_hz = rate.where(rate.time < forward_end, drop=True).isel(time=-1).values
agreement = np.corrcoef(counted_hz.ravel(), traced_hz.ravel())[0, 1]
print(f"spike count vs spike trace: correlation {agreement:.3f}")

busiest = rate.isel(trial=0).mean("time").argsort().values[-3:]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2), width_ratios=(2, 1))
for n in busiest:
    left.plot(rate.time, rate.isel(trial=0, neuron=n), label=f"neuron {n}")
shade_phases(left)
left.set(xlabel="time (ms)", ylabel="rate (Hz)", title="The spike trace of three neurons")
left.legend(fontsize="x-small")
right.plot(counted_hz.ravel(), traced_hz.ravel(), ".", alpha=0.6)
right.plot([0, float(max_rate / Hz)], [0, float(max_rate / Hz)], "k:", lw=1)
right.set(xlabel=f"spikes counted, {forward_end / 2:g}–{forward_end:g} ms (Hz)",
          ylabel="trace at the end of the forward phase (Hz)",
          title="Two readings of one rate")
fig.tight_layout()

# %%
# Targets reaching LIF neurons
# ----------------------------
# ``net.targets`` runs one batch without learning and returns what the phases latched: the
# rates :math:`h_1` at the end of the forward phase and, at the end of the target phase, the
# rates :math:`\hat h_1` the neurons reached when their dendrites had turned the change DTP
# asks for into a current. The reference engine computes the same targets from the LIF
# neurons' f-I curve (their rate twin), with no spikes and no time. Given the same weights, the
# two should ask the same changes of each neuron, up to the noise of counting spikes.
data = bioprop.load_dataset("digits")
x, y = data.x_train[:16], data.y_train[:16]
twin = bioprop.build("lif", engine="reference", **small)
twin.weights, twin.biases = net.weights, net.biases
spiking, steady = net.targets(x, y), twin.targets(x, y)
hz = float(max_rate / Hz)                               # fractions of the maximal rate → Hz
asked_spiking = hz * (spiking["target_hidden1"] - spiking["rate_hidden1"]).values.ravel()
asked_twin = hz * (steady["target_hidden1"] - steady["rate_hidden1"]).values.ravel()
target_agreement = np.corrcoef(asked_spiking, asked_twin)[0, 1]
print(f"changes asked of hidden1: correlation {target_agreement:.2f} between the engines; "
      f"mean |change| {np.abs(asked_spiking).mean():.1f} Hz (spiking), "
      f"{np.abs(asked_twin).mean():.1f} Hz (rate twin)")

current = hidden["apical_current"].isel(epoch=-1, trial=0).load()
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2), width_ratios=(2, 1))
for n in busiest:
    left.plot(current.time, current.sel(neuron=n), label=f"neuron {n}")
shade_phases(left)
left.set(xlabel="time (ms)", ylabel="apical current (input units)",
         title="The dendrite's current into the soma")
left.legend(fontsize="x-small")
lim = np.abs(asked_twin).max() * 1.1
right.plot(asked_twin, asked_spiking, ".", alpha=0.5)
right.plot([-lim, lim], [-lim, lim], "k:", lw=1)
right.set(xlabel="rate twin: ĥ − h (Hz)", ylabel="LIF neurons: ĥ − h (Hz)",
          title="The change each neuron reached")
fig.tight_layout()
tree.close()
shutil.rmtree(folder)   # the run files were scratch

# %%
# Left: the apical current is zero in the forward phase; in ``noise_a`` it carries the noise
# the inverse learns from; in the target phase it rises to the current that makes the neuron
# fire at its target: the difference between what the feedback pathway makes of the target
# above and of the rate above, turned into a current through the f-I curve. Right: the spiking
# neurons reach about the changes the rate twin computes. The exceptions lie on the horizontal
# line through 0: silent neurons, below threshold, which a change of their input current
# leaves silent while the twin still asks them to change. This agreement is why the reference
# engine stands in for the Brian2 engine wherever time and spikes are not the point.
