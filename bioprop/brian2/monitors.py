"""The monitors of an activity probe, and their arrays as (trial, time, neuron).

Brian2 StateMonitors record every few steps the somas' rate r, potential v and nudge
(rate layers) or apical current (spiking layers), and the dendrites' potential u;
SpikeMonitors record the spikes of spiking layers. A monitor of a group of B·N
neurons holds (B·N, T); the run file wants (trial, time, neuron).
"""
from __future__ import annotations

import numpy as np

from bioprop.runlog.vocabulary import (APICAL, APICAL_CURRENT, NUDGE, POTENTIAL, RATE,
                                       SPIKE_NEURON, SPIKE_TIME, SPIKE_TRIAL)

__all__ = ["ActivityMonitors", "soma_records"]


def soma_records(layer):
    """The soma's recorded variables → their names in the run file.

    Parameters
    ----------
    layer : RateLayer or SpikingLayer

    Returns
    -------
    dict
        Brian2 variable name → run-file variable name.
    """
    if not layer.spiking:
        return {"r": RATE, "v": POTENTIAL, "I_nudge": NUDGE}
    records = {layer.population.rate_variable: RATE, "I_apical": APICAL_CURRENT}
    if "v" in layer.population.state_variables:
        records["v"] = POTENTIAL
    return records


class ActivityMonitors:
    """The monitors of every layer above the input, recording every `dt`.

    Parameters
    ----------
    b2 : module
        Brian2.
    layers : list
        The engine's layer adapters, index 0 the input (not recorded).
    dt : Quantity
        The recording interval.
    """

    def __init__(self, b2, layers, dt):
        self.b2, self.layers = b2, layers
        self.states, self.spikes = {}, {}
        for l, layer in enumerate(layers[1:], start=1):
            self.states[(l, "soma")] = b2.StateMonitor(layer.soma, list(soma_records(layer)),
                                                       record=True, dt=dt, when="end", order=100)
            if layer.apical is not None:
                self.states[(l, "apical")] = b2.StateMonitor(layer.apical, ["u"], record=True,
                                                             dt=dt, when="end", order=100)
            if layer.spiking and layer.population.record.spikes:
                self.spikes[l] = b2.SpikeMonitor(layer.soma)

    @property
    def objects(self) -> list:
        """Every monitor, to add to the network and remove from it."""
        return [*self.states.values(), *self.spikes.values()]

    def read(self, names, sizes, batch_size, start) -> dict:
        """The recorded arrays by layer name.

        Parameters
        ----------
        names, sizes : sequence
            The model's layer names and sizes, index 0 the input.
        batch_size : int
            B.
        start : Quantity
            The network's time when the recording began.

        Returns
        -------
        dict
            {layer name: {variable: array}}: state variables as (trial, time, neuron);
            ``spike_trial``, ``spike_time`` (ms from the start), ``spike_neuron``.
        """
        out = {}
        for (l, kind), mon in self.states.items():
            record = out.setdefault(names[l], {})
            recorded = soma_records(self.layers[l]) if kind == "soma" else {"u": APICAL}
            for var, name in recorded.items():  # monitor (B·N, T) → (trial, time, neuron)
                values = np.asarray(getattr(mon, var))
                record[name] = values.reshape(batch_size, -1, values.shape[1]).transpose(0, 2, 1)
        for l, mon in self.spikes.items():
            n = sizes[l]
            index = np.asarray(mon.i)
            out[names[l]].update({
                SPIKE_TRIAL: index // n, SPIKE_NEURON: index % n,
                SPIKE_TIME: np.asarray((mon.t - start) / self.b2.ms)})
        return out

    def times(self, start):
        """The recorded times, ms from `start`."""
        return np.asarray((self.states[(1, "soma")].t - start) / self.b2.ms)
