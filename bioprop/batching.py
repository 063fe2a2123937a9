"""How an epoch is cut into batches: the one place that decides it.

Both engines train on whole batches only: the B trials of a batch run side by side,
so the samples left over after the last whole batch of a shuffled epoch are not
trained on in that epoch (a different remainder each epoch, as the order is drawn
anew). The run log counts the batches the same way.
"""
from __future__ import annotations

import numpy as np

__all__ = ["epoch_batches", "whole_batches"]


def whole_batches(n: int, batch_size: int) -> int:
    """The number of whole batches of `batch_size` in `n` samples."""
    return n // batch_size


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list:
    """Index arrays of the whole batches of one epoch, shuffled when `rng` is given.

    Parameters
    ----------
    n : int
        Samples in the epoch.
    batch_size : int
    rng : numpy.random.Generator or None
        Draws the epoch's order; None keeps the samples in order.

    Returns
    -------
    list of ndarray
        :func:`whole_batches` index arrays of `batch_size` each.
    """
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = whole_batches(n, batch_size) * batch_size
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]
