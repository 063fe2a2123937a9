"""What a Brian2 engine's checkpoint holds of its populations, and spike times across a
change of the network's clock.

Brian2 keeps a refractory neuron's ``lastspike`` as an absolute time on the network's
clock. Two things move the clock under it: a checkpoint loaded into a new network, whose
clock starts at 0, and the probe trials run inside :meth:`Learner.state_kept`, after which
the clock has gone on while the state is put back. In both cases what must carry over is
how long ago each neuron fired, so a checkpoint holds that age (``…/since_lastspike``), and
the kept state is shifted by the time that passed.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .layers import view

__all__ = ["EngineState", "SPIKE_TIME", "SPIKE_AGE", "spike_ages", "restore_spike_times", "shift_spike_times"]

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


class EngineState:
    """The Brian2 engine's dynamic state: what a checkpoint holds of its populations, and
    how :meth:`Learner.state_kept` puts it back (a mixin of
    :class:`~bioprop.brian2.engine.Brian2Engine`)."""

    def dynamic_state(self) -> dict:
        """The populations' state variables, as (B, N) views of Brian2's own arrays.

        Each trial starts from the state the last one left, so a checkpoint needs them.
        """
        out = {f"brian2/input/{name}": value for name, value in self.layers[0].state().items()}
        for l, layer in enumerate(self.layers[1:], start=1):
            out.update({f"brian2/{l}/{name}": value for name, value in layer.state().items()})
        for l, (_, _, current) in self._synaptic.items():  # a delayed pathway's filter state
            out.update({f"brian2/{l}/{name}": view(current, name, self.batch_size)
                        for name in ("z_I_ff_syn", "I_ff_syn") if name in current.variables})
        if self.stochastic:  # the generator behind Brian2's rand()
            _, keys, pos, has_gauss, gauss = np.random.get_state()
            out["brian2/rng"] = np.concatenate([keys.astype(np.float64), [pos, has_gauss, gauss]])
        return out

    def state_arrays(self) -> dict:
        # spike times as ages: a loaded network's clock starts again at 0 (engine_state)
        return spike_ages(super().state_arrays(), float(self.network.t_))

    @contextmanager
    def state_kept(self):
        start = float(self.network.t_)
        try:
            with super().state_kept():
                yield
        finally:  # the clock went on while the spike times were put back
            shift_spike_times(self.dynamic_state(), float(self.network.t_) - start)

    def load_state_arrays(self, arrays: dict):
        super().load_state_arrays(arrays)  # its weights, copied into the synapses
        restore_spike_times(self.dynamic_state(), arrays, float(self.network.t_))
        for l, (_, mask, _) in self._synaptic.items():
            if not np.array_equal(self.model.fixed.get("mask", {}).get(l, mask), mask):
                raise ValueError(f"the checkpoint's connection mask of pathway {l} is not the "
                                 "one this engine's synapses were built with")
        if self.stochastic:
            state = arrays["brian2/rng"]
            np.random.set_state(("MT19937", state[:624].astype(np.uint32), int(state[624]),
                                 int(state[625]), float(state[626])))
