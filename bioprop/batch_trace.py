"""What one training batch produced: its trace, and its algebraic forward pass.

Both engines return a :class:`BatchTrace` from every training batch (tests, diagnostics
and the Python API read it); :class:`TaughtBatch` is the reference algebra's forward
pass with what the loss asks of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .rules.updates import Teaching

__all__ = ["BatchTrace", "TaughtBatch"]


@dataclass
class BatchTrace:
    """Everything one training batch produced, for tests and diagnostics.

    Lists are indexed by layer; entries an engine does not produce are None.
    """

    a: list
    h: list
    targets: list = field(default_factory=list)
    noise: list = field(default_factory=list)
    #: points[l][name] = (input, u, recon) of the feedback objective (last iteration)
    points: list = field(default_factory=list)
    forward_grads: list = field(default_factory=list)
    feedback_grads: list = field(default_factory=list)
    feedback_losses: list = field(default_factory=list)
    loss: np.ndarray | None = None
    residuals: list = field(default_factory=list)


@dataclass
class TaughtBatch:
    """One batch's algebraic forward pass and what the loss asks of it."""

    a: list
    h: list
    y_target: np.ndarray  # the loss's target array (:meth:`Learner.targets_of`)
    teaching: Teaching
    side: list | None  # the side inputs of the feedback pathway
