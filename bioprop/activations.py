"""Transfer functions φ of rate populations, each in two forms.

Every activation exists once, as an :class:`Activation` record holding

* ``fn`` / ``derivative``: NumPy functions on arrays, used by the learning rules and
  the reference engine;
* ``brian2_expr``: the same function as a Brian2 expression template in ``{x}``, used by
  :mod:`bioprop.rate_groups` to write the population's equations (None: the activation
  runs in the reference engine only);
* ``inverse``: φ⁻¹ on the range of φ, where φ has one (None otherwise), for rules that
  invert a layer exactly (a user's rule, :mod:`bioprop.extensions`).

The registry :data:`ACTIVATIONS` maps the names used in model files to the records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "BUILTIN_ACTIVATIONS", "CHECK_POINTS", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """A transfer function r = φ(v) with its derivative and Brian2 form."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    brian2_expr: str | None  # a template: brian2_expr.format(x='v'); None: no Brian2 form
    inverse: Callable[[np.ndarray], np.ndarray] | None = None


def _logistic(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # tanh form never overflows


def _logistic_derivative(v):
    s = _logistic(v)
    return s * (1.0 - s)


def _logit(r):
    return np.log(r) - np.log1p(-r)


def _tanh_derivative(v):
    return 1.0 - np.tanh(v) ** 2


def _straight_through(v):
    """The derivative used for sign units: 1 where |v| ≤ 1, else 0 (hard-tanh's).

    sign has no useful derivative; the local forward update needs one factor per
    unit, and the straight-through choice (Bengio et al. 2013) passes the target
    difference where the unit is near its threshold.
    """
    return (np.abs(v) <= 1.0).astype(v.dtype)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("tanh", np.tanh, _tanh_derivative, "tanh({x})", np.arctanh),
        Activation("logistic", _logistic, _logistic_derivative, "0.5*(1 + tanh(0.5*{x}))",
                   _logit),
        Activation("relu", lambda v: np.maximum(v, 0.0), lambda v: (v > 0).astype(v.dtype),
                   "clip({x}, 0, inf)"),
        Activation("linear", lambda v: v, np.ones_like, "{x}", lambda r: r),
        # discrete units of Lee 2015's discrete network: r = sign(v) ∈ {−1, 0, 1}
        Activation("sign", np.sign, _straight_through, "sign({x})"),
    )
}


#: the activations bioprop ships; the others in :data:`ACTIVATIONS` are a user's
#: (:mod:`bioprop.extensions`), whose forms are checked against each other where first used
BUILTIN_ACTIVATIONS = frozenset(ACTIVATIONS)

#: where a user's activation is checked: its derivative, inverse and Brian2 form against its
#: function (points off 0, where relu and sign have their kinks)
CHECK_POINTS = np.linspace(-2.95, 2.95, 60)


def get_activation(name: str) -> Activation:
    """Return the activation called `name`, or raise a ValueError naming the choices."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"Unknown activation {name!r}. Expected one of: "
                         f"{', '.join(sorted(ACTIVATIONS))}") from None
