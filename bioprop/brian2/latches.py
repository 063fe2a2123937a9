"""What the phases of a trial latch, for the phases after them and the updates at its end."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Latches"]


@dataclass
class Latches:
    """The quantities one trial carries from phase to phase.

    The engine owns one instance for its whole life and the network's operations
    read it every step, so it is changed in place, never replaced. Lists are indexed
    by layer. ``a`` and ``h`` outlive the trial: :meth:`Brian2Engine.predict` leaves
    the last batch's forward activity there.
    """

    #: a_l, the settled basal drive (index 0 None), latched when ``forward`` ends
    a: list | None = None
    #: h_l, the forward rates (index 0 the input), latched when ``forward`` ends
    h: list | None = None
    #: the loss's target array of the batch (one-hot labels or regression targets)
    ytarget: object = None
    #: the loss and the top target (:func:`bioprop.rules.teach`)
    teaching: object = None
    #: the targets the phases form: the top target, then the ``iterative`` rule's
    targets: list | None = None
    #: the batch's BatchTrace, filled as the phases end
    trace: object = None
    #: the noise of every feedback iteration (a list by layer per iteration)
    noises: list | None = None
    #: the feedback iteration under way
    iteration: int = 0
    #: g_l(h_l), each dendrite's reconstruction at the forward state
    g_forward: list | None = None
    #: g_m(ĥ_{m+1}) of the layer the ``iterative`` rule is working on
    g_hat: object = None
    #: x^k, the ``iterative`` rule's current iterate
    iterate: object = None
    #: the layer-normalised targets, by layer
    normalised: list | None = None
    #: the top layer's rate after a ``drl_up`` phase
    drl_top: object = None
    #: the lowest layer that carries the difference down in ``drl_down``
    drl_floor: int | None = None
