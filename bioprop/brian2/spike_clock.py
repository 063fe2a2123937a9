"""Spike times across a change of the network's clock.

Brian2 keeps a refractory neuron's ``lastspike`` as an absolute time on the network's
clock. Two things move the clock under it: a checkpoint loaded into a new network, whose
clock starts at 0, and the probe trials run inside :meth:`Learner.state_kept`, after which
the clock has gone on while the state is put back. In both cases what must carry over is
how long ago each neuron fired, so a checkpoint holds that age (``…/since_lastspike``), and
the kept state is shifted by the time that passed.
"""
from __future__ import annotations

__all__ = ["SPIKE_TIME", "SPIKE_AGE", "spike_ages", "restore_spike_times", "shift_spike_times"]

#: the suffix of a refractory layer's spike times in :meth:`dynamic_state`
SPIKE_TIME = "/lastspike"
#: the suffix of the same, as ages, in a checkpoint
SPIKE_AGE = "/since_lastspike"


def spike_ages(arrays: dict, t: float) -> dict:
    """`arrays` with every ``…/lastspike`` (s) replaced by ``…/since_lastspike`` = t − it."""
    out = {}
    for key, value in arrays.items():
        if key.endswith(SPIKE_TIME):
            out[key[:-len(SPIKE_TIME)] + SPIKE_AGE] = t - value
        else:
            out[key] = value
    return out


def restore_spike_times(state: dict, arrays: dict, t: float):
    """Set every ``…/lastspike`` view of `state` to t minus its age in `arrays`."""
    for key, value in state.items():
        if key.endswith(SPIKE_TIME):
            value[...] = t - arrays[key[:-len(SPIKE_TIME)] + SPIKE_AGE]


def shift_spike_times(state: dict, elapsed: float):
    """Move every ``…/lastspike`` view of `state` on by `elapsed` seconds."""
    for key, value in state.items():
        if key.endswith(SPIKE_TIME):
            value += elapsed
