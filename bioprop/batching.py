"""How an epoch is cut into batches: the one place that decides it.

By default both engines train on whole batches only: the B trials of a batch run side
by side, so the samples left over after the last whole batch of a shuffled epoch are
not trained on in that epoch (a different remainder each epoch, as the order is drawn
anew). With ``training.keep_partial_batch`` the remainder is trained on as a last,
smaller batch, as PyTorch's ``DataLoader`` does by default (reference engine only:
the Brian2 engine simulates exactly B trials). The run log counts the batches the same way.
"""
from __future__ import annotations

import numpy as np

__all__ = ["epoch_batches", "whole_batches", "epoch_samples"]


def whole_batches(n: int, batch_size: int) -> int:
    """The number of whole batches of `batch_size` in `n` samples."""
    return n // batch_size


def epoch_samples(n: int, batch_size: int, keep_partial: bool = False) -> int:
    """The samples an epoch of `n` trains on: every one with `keep_partial`, else those of
    its whole batches."""
    return n if keep_partial else whole_batches(n, batch_size) * batch_size


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator | None,
                  keep_partial: bool = False) -> list:
    """Index arrays of the batches of one epoch, shuffled when `rng` is given.

    Parameters
    ----------
    n : int
        Samples in the epoch.
    batch_size : int
    rng : numpy.random.Generator or None
        Draws the epoch's order; None keeps the samples in order.
    keep_partial : bool, optional
        Also return the last n mod `batch_size` samples of the order, as a smaller batch.

    Returns
    -------
    list of ndarray
        :func:`whole_batches` index arrays of `batch_size` each, and with `keep_partial`
        the remainder's (if any).
    """
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = epoch_samples(n, batch_size, keep_partial)
    return [order[i:min(i + batch_size, stop)] for i in range(0, stop, batch_size)]
