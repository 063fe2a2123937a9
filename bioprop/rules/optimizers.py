"""Optimizers, applied separately to the forward and the feedback pathway.

Each optimizer updates a list of parameter arrays in place from a list of
gradients of the same shapes, each parameter at its own rate (lr times the layer's
scale). Its state (:func:`optimizer_state`) is plain arrays, so a checkpoint can
store it and :func:`load_optimizer_state` restore it exactly. ``sgd`` is the
biologically plausible choice; Lee 2015 used ``rmsprop_graves`` and Bartunov 2018
``adam``.

The model file may set each optimizer's own constants (:func:`constants` lists them, with
their defaults) and a learning-rate schedule (:data:`SCHEDULES`, :func:`scheduled_lr`), which
the training loop applies at the start of every epoch through :meth:`_Optimizer.set_lr`.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

__all__ = ["SGD", "RMSprop", "GravesRMSprop", "Adam", "OPTIMIZERS", "make_optimizer",
           "optimizer_state", "load_optimizer_state", "constants", "SCHEDULES", "scheduled_lr"]

#: the state each optimizer keeps: per-parameter arrays, and scalars
_STATE = {"SGD": (("velocity",), ()), "RMSprop": (("mean_square",), ()),
          "GravesRMSprop": (("mean", "mean_square", "increment"), ()),
          "Adam": (("m", "v"), ("t",))}


class _Optimizer:
    """What every optimizer shares: its parameters, and one learning rate per parameter.

    `scales` (one number per parameter, default all 1) multiplies `lr`: the per-layer
    ``lr_scale`` and ``feedback_lr_scale`` of a model file.
    """

    def __init__(self, params, lr: float, scales=None):
        scales = [1.0] * len(params) if scales is None else list(scales)
        if len(scales) != len(params):
            raise ValueError(f"{len(scales)} learning-rate scales for {len(params)} parameters")
        self.params, self.scales = params, scales
        self.set_lr(lr)

    def set_lr(self, lr: float):
        """Learn at rate `lr` from the next step on, each parameter at lr times its scale."""
        self.lr = lr
        #: the learning rate of each parameter; lr * 1.0 is lr exactly, so unscaled
        #: runs are unchanged to the bit
        self.rates = [lr * s for s in self.scales]


class SGD(_Optimizer):
    """Plain gradient descent, with optional momentum.

    A gradient of None leaves its parameter as it is: one that learned elsewhere (the
    weights of synapses with ``plasticity = "synaptic"``).
    """

    def __init__(self, params, lr: float, scales=None, momentum: float = 0.0):
        super().__init__(params, lr, scales)
        self.momentum = momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v, lr in zip(self.params, grads, self.velocity, self.rates):
            if g is None:
                continue
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p -= lr * g


class RMSprop(_Optimizer):
    """RMSprop (Tieleman & Hinton 2012): uncentred, without momentum, eps outside the root."""

    def __init__(self, params, lr: float, scales=None, decay: float = 0.9, eps: float = 1e-8):
        super().__init__(params, lr, scales)
        self.decay, self.eps = decay, eps
        self.mean_square = [np.zeros_like(p) for p in params]
        self._scratch = [np.empty_like(p) for p in params]

    def step(self, grads):
        # In place, through one scratch array per parameter: these element-wise
        # passes over every weight cost as much as a matrix product at batch 100.
        for p, g, ms, tmp, lr in zip(self.params, grads, self.mean_square, self._scratch,
                                     self.rates):
            if g is None:
                continue
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - self.decay
            ms *= self.decay
            ms += tmp
            np.sqrt(ms, out=tmp)
            tmp += self.eps
            np.divide(g, tmp, out=tmp)
            tmp *= lr
            p -= tmp


class GravesRMSprop(_Optimizer):
    """Centred RMSprop with momentum (Graves 2013, eqs. 38-41), as in Lee 2015's code.

    n ← a n + (1 − a) g²;  ḡ ← a ḡ + (1 − a) g;
    Δ ← m Δ − lr g / sqrt(n − ḡ² + s);  p ← p + Δ

    with a = 0.95, m = 0.9 and s = 1e-3, the constants of Lee's ``util.rms_prop``
    (github.com/donghyunlee/dtp). The stabiliser s sits inside the square root, so unlike
    :class:`RMSprop` this is not invariant to the gradient's scale: gradients much smaller
    than sqrt(s) ≈ 0.03 are divided by about 0.03, and the rule acts as SGD with momentum at
    an effective rate of about 30 lr / (1 − m) = 300 lr. That is the regime of Lee's small
    layer targets.
    """

    def __init__(self, params, lr: float, scales=None, decay: float = 0.95,
                 momentum: float = 0.9, stabiliser: float = 1e-3):
        super().__init__(params, lr, scales)
        self.decay, self.momentum, self.stabiliser = decay, momentum, stabiliser
        self.mean = [np.zeros_like(p) for p in params]
        self.mean_square = [np.zeros_like(p) for p in params]
        self.increment = [np.zeros_like(p) for p in params]
        self._scratch = [(np.empty_like(p), np.empty_like(p)) for p in params]

    def step(self, grads):
        # In place through two scratch arrays per parameter, as RMSprop.step, and in the
        # order of the equations above
        a = self.decay
        for p, g, mean, ms, inc, (tmp, tmp2), lr in zip(self.params, grads, self.mean,
                                                         self.mean_square, self.increment,
                                                         self._scratch, self.rates):
            if g is None:
                continue
            np.multiply(g, 1 - a, out=tmp)
            mean *= a
            mean += tmp
            tmp *= g
            ms *= a
            ms += tmp
            np.multiply(mean, mean, out=tmp)
            np.subtract(ms, tmp, out=tmp)
            tmp += self.stabiliser
            np.sqrt(tmp, out=tmp)
            np.multiply(g, lr, out=tmp2)
            np.divide(tmp2, tmp, out=tmp)
            inc *= self.momentum
            inc -= tmp
            p += inc


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) as used by Bartunov 2018."""

    def __init__(self, params, lr: float, scales=None, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(params, lr, scales)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        correction = np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for p, g, m, v, lr in zip(self.params, grads, self.m, self.v, self.rates):
            if g is None:
                continue
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= lr * correction * m / (np.sqrt(v) + self.eps)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "rmsprop_graves": GravesRMSprop, "adam": Adam}


def make_optimizer(name: str, params, lr: float, scales=None, **options):
    """Build the optimizer called `name` over `params`, each at rate lr × its scale; `options`
    are some of its :func:`constants`."""
    return OPTIMIZERS[name](params, lr, scales, **options)


def constants(name: str) -> dict:
    """The constants the optimizer called `name` takes beyond lr, with their defaults.

    Read from its constructor, so that the model file's keys (``optimizer.forward.beta1``...)
    and their documented defaults can never drift from the code that uses them.
    """
    skip = ("self", "params", "lr", "scales")
    return {p.name: p.default for p in inspect.signature(OPTIMIZERS[name]).parameters.values()
            if p.name not in skip}


# Learning-rate schedules: the rate of an epoch from the initial rate lr, the final rate
# lr_final and the fraction p in [0, 1) of the run's epochs done before it.
def _constant(lr, lr_final, p):
    """lr throughout (lr_final is not used)."""
    return lr


def _linear(lr, lr_final, p):
    """A straight line from lr to lr_final."""
    return lr + (lr_final - lr) * p


def _cosine(lr, lr_final, p):
    """Half a cosine from lr to lr_final (Loshchilov & Hutter 2017, SGDR, without restarts):
    slow at first and at the end."""
    return lr_final + (lr - lr_final) * (1 + math.cos(math.pi * p)) / 2


#: schedule name → rate(lr, lr_final, p)
SCHEDULES = {"constant": _constant, "linear": _linear, "cosine": _cosine}


def scheduled_lr(schedule: str, lr: float, lr_final: float, epoch: int, epochs: int) -> float:
    """The learning rate of training epoch `epoch` (1 to `epochs`) under `schedule`.

    The rate changes once per epoch, at its start, and is a function of the epoch's number
    alone: a run resumed from its checkpoint (which holds the last finished epoch) goes on at
    exactly the rates of an uninterrupted one. Epoch 1 learns at lr; the schedule would reach
    lr_final where an epoch ``epochs + 1`` would start, so with lr_final = 0 the last epoch
    still learns (at lr / epochs, linear). Feedback pre-training epochs learn at lr.

    Parameters
    ----------
    schedule : str
        A :data:`SCHEDULES` name.
    lr, lr_final : float
        The rates at the start and at the end of the run.
    epoch, epochs : int
        This epoch, counted from 1, and the run's number of training epochs.
    """
    return SCHEDULES[schedule](lr, lr_final, (epoch - 1) / epochs)


def optimizer_state(optimizer) -> dict:
    """The optimizer's state as a flat dict of arrays (for a checkpoint)."""
    arrays, scalars = _STATE[type(optimizer).__name__]
    state = {f"{name}/{i}": a for name in arrays for i, a in enumerate(getattr(optimizer, name))}
    state.update({name: np.asarray(getattr(optimizer, name)) for name in scalars})
    return state


def load_optimizer_state(optimizer, state: dict):
    """Restore what :func:`optimizer_state` returned, in place."""
    arrays, scalars = _STATE[type(optimizer).__name__]
    for name in arrays:
        for i, a in enumerate(getattr(optimizer, name)):
            a[...] = state[f"{name}/{i}"]
    for name in scalars:
        setattr(optimizer, name, int(state[name]))
