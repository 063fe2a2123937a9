"""An exponential moving average of the forward weights, for evaluation only.

Stochastic training leaves the weights wandering around a good point: the spiking digits
run's test accuracy moves by about a point from one epoch to the next. Averaging the
iterates (Polyak & Juditsky 1992; here with exponential weights, so that the early
iterates fade) evaluates the centre of that wandering instead. Training never sees the average: the
protocol's ``training.average_weights`` only changes which weights the test figures are
measured with (:meth:`bioprop.learner.Learner.evaluate`).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

__all__ = ["WeightAverage"]


class WeightAverage:
    """The exponential moving average of some parameter arrays, one update per step.

    m ← d m + (1 − d) p after every optimizer step, from m = 0; the average is
    m / (1 − d^t) after t steps, the bias correction of Adam's first moment (Kingma & Ba
    2015), so that the initial weights do not linger in it: it is the mean of the t
    iterates weighted by d^(t − k).

    Parameters
    ----------
    params : list of numpy.ndarray
        The arrays averaged (the model's own, which the optimizer updates in place).
    decay : float
        d in (0, 1): the average spans about 1 / (1 − d) steps.
    """

    def __init__(self, params, decay: float):
        self.params, self.decay = params, decay
        self.sums = [np.zeros_like(p) for p in params]
        self.t = 0

    def update(self):
        """Take the parameters as they are now into the average."""
        self.t += 1
        for p, m in zip(self.params, self.sums):
            m *= self.decay
            m += (1 - self.decay) * p

    def averaged(self) -> list:
        """The bias-corrected averages, one array per parameter."""
        correction = 1 - self.decay ** self.t
        return [m / correction for m in self.sums]

    @contextmanager
    def swapped_in(self):
        """Within the block the parameters hold their averages; then exactly what they held.

        Before the first step there is nothing to average, and the parameters are left as
        they are.
        """
        if not self.t:
            yield
            return
        saved = [p.copy() for p in self.params]
        for p, a in zip(self.params, self.averaged()):
            p[...] = a
        try:
            yield
        finally:
            for p, s in zip(self.params, saved):
                p[...] = s
