"""Hooks: a user's functions called at the end of each phase and of each batch, with the
layers' state as named arrays, to record it or to perturb it.

An engine holds one :class:`Hooks` (``learner.hooks``; ``Network.add_hook`` in the Python
API) and calls :meth:`Hooks.fire` at the points :data:`HOOK_EVENTS` names, in the batches
that learn (``step``, ``fit``; not ``targets``, ``predict`` or a probe's recording):

* ``phase_end``: the Brian2 engine, at the end of every phase of a trial
  (:mod:`bioprop.brian2.phases`: ``forward``, ``noise_a``, ``noise_b``, ``settle``,
  ``target``, ...), after the phase latched what it settled on; the reference engine,
  which has no time, at its two equivalents: ``forward`` (the forward pass and the top
  target) and ``target`` (the targets of every layer), in the order of the schedule;
* ``batch_end``: after the batch's weight updates.

The hook receives a :class:`HookState`: ``state.phase``, ``state.batch`` (the batches the
engine has learned before this one), ``state.engine`` and the arrays (trial, neuron) of
every layer above the input by name: ``rate_<layer>`` and ``potential_<layer>`` (h_l and
a_l, latched at the end of the forward phase), ``target_<layer>`` (ĥ_l: the top layer's
from the end of ``forward``, the others' once the targets are latched). Changing them in
place, or by ``state["rate_hidden1"] = 0``, changes what the rest of the batch computes
from them, in both engines: rates set at the end of ``forward`` clamp (or, at zero,
silence) the layer for the noise phases, the targets and the updates, whose somas are held
at the latched rates. The Brian2 engine also offers its dendrites' live potential,
``dendrite_<layer>`` (u, below the top target), which the next phase integrates from: noise
added there perturbs the phase that follows.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import suggest

__all__ = ["HOOK_EVENTS", "REFERENCE_PHASES", "Hooks", "HookState", "HookError", "layer_arrays"]

#: the points a hook can be called at
HOOK_EVENTS = ("phase_end", "batch_end")

#: the reference engine's phase ends: the Brian2 phases (brian2/phases.py) whose latches it
#: has, the forward pass with the top target, and the targets
REFERENCE_PHASES = ("forward", "target")


class HookError(ValueError):
    """A hook that cannot be added, or that set an array it cannot set."""


class HookState(Mapping):
    """The layers' state at one hook point: a mapping of names to arrays, and where it is.

    Attributes
    ----------
    phase : str
        The phase that ended (``batch_end``: the batch's last phase).
    batch : int
        The batches the engine learned before this one.
    engine : str
        ``brian2`` or ``reference``.
    """

    def __init__(self, arrays: dict, phase: str, batch: int, engine: str):
        self._arrays, self.phase, self.batch, self.engine = arrays, phase, batch, engine

    def __getitem__(self, name):
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"no array {name!r} at the end of {self.phase!r}; the arrays: "
                           f"{', '.join(self._arrays)}.{suggest(str(name), self._arrays)}") \
                from None

    def __setitem__(self, name, value):
        """Set an array in place (a number or an array that broadcasts to its shape)."""
        array = self[name]
        value = np.asarray(value)
        try:
            fits = np.broadcast_shapes(value.shape, array.shape) == array.shape
        except ValueError:
            fits = False
        if not fits:
            raise HookError(f"{name}: a value of shape {value.shape} does not fit its "
                            f"shape {array.shape}")
        array[...] = value

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __repr__(self):
        return (f"<HookState {self.engine} batch {self.batch}, end of {self.phase!r}: "
                f"{', '.join(self._arrays)}>")


def layer_arrays(names, a, h, targets, live=None) -> dict:
    """The named arrays of layers 1..L (`names` index 0 the input) from the lists a, h and
    targets (None where unset); `live` adds an engine's own ``{prefix: [array by layer]}``."""
    out = {}
    for l in range(1, len(names)):
        for prefix, arrays in (("rate", h), ("potential", a), ("target", targets),
                               *(live or {}).items()):
            if arrays is not None and l < len(arrays) and arrays[l] is not None:
                out[f"{prefix}_{names[l]}"] = arrays[l]
    return out


class Hooks:
    """The hooks of one engine, by event, called in the order they were added.

    Attributes
    ----------
    engine : str
        The engine's name, which every :class:`HookState` carries.
    batches : int
        The batches learned so far: :meth:`fire` counts every ``batch_end``, hooks or not.
    """

    def __init__(self, engine: str):
        self._by_event = {event: [] for event in HOOK_EVENTS}
        self.engine, self.batches = engine, 0

    def add(self, event: str, fn):
        """Call `fn(state)` at every `event` (:data:`HOOK_EVENTS`); returns `fn`."""
        self._check(event)
        if not callable(fn):
            raise HookError(f"a hook is a function of one argument, the HookState; got {fn!r}")
        self._by_event[event].append(fn)
        return fn

    def remove(self, event: str, fn):
        """Stop calling `fn` at `event`."""
        self._check(event)
        try:
            self._by_event[event].remove(fn)
        except ValueError:
            raise HookError(f"{fn!r} is not a {event} hook of this network") from None

    def __bool__(self):
        return any(self._by_event.values())

    def __iter__(self):
        """(event, hook) of every hook, in order."""
        return ((event, fn) for event, fns in self._by_event.items() for fn in fns)

    @staticmethod
    def _check(event):
        if event not in HOOK_EVENTS:
            raise HookError(f"unknown hook event {event!r}. Expected one of: "
                            f"{', '.join(HOOK_EVENTS)}.{suggest(str(event), HOOK_EVENTS)}")

    def fire(self, event: str, make_arrays, phase: str):
        """Call the hooks of `event`, if any, with the arrays `make_arrays()` returns, at the
        end of `phase` of a batch that learns; after a ``batch_end``, count the batch."""
        fns = self._by_event[event]
        if fns:
            state = HookState(make_arrays(), phase, self.batches, self.engine)
            for fn in fns:
                fn(state)
        self.batches += event == "batch_end"
