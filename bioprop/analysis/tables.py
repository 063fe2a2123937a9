"""Helpers for the tables that the scripts in ``analysis/`` read from run files."""
from __future__ import annotations

import tomllib

__all__ = ["recorded_specs", "architecture", "duration", "mean_std_interval"]


def recorded_specs(tree) -> tuple[dict, dict]:
    """The resolved model and protocol a run recorded, as the dicts of their TOML."""
    return tuple(tomllib.loads(tree.attrs[key]) for key in ("model_toml", "protocol_toml"))


def architecture(model: dict, collapse: bool = False) -> str:
    """``784-500 sign-500 tanh-10``: sizes with the kind of every hidden layer.

    With `collapse`, identical hidden layers are written once with their count:
    ``784-7×240 tanh-10``.
    """
    from dataclasses import fields

    from ..populations import POPULATION_KINDS
    from ..spec import LayerSpec

    default = {f.name: f.default for f in fields(LayerSpec)}
    hidden = []
    for layer in model["layers"][:-1]:
        kind = POPULATION_KINDS[layer.get("population", default["population"])]
        # a kind whose φ is the layer's own activation is named by that activation
        own_activation = kind.activation is None and kind.twin is None
        label = layer.get("activation", default["activation"]) if own_activation else kind.name
        hidden.append(f"{layer['size']} {label}")
    if collapse and len(hidden) > 1 and len(set(hidden)) == 1:
        hidden = [f"{len(hidden)}×{hidden[0]}"]
    return "-".join([str(model["network"]["input_size"]), *hidden, str(model["layers"][-1]["size"])])


def duration(seconds: float) -> str:
    """Tenths of a second below 10 s, seconds below two minutes, minutes above."""
    if seconds < 10:  # a reference-engine digits run takes well under a second
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def mean_std_interval(values, digits: int = 2) -> str:
    """``3.54 (n = 1)``, or ``2.17 ± 0.05, 95% CI 1.75–2.59 (n = 2)`` for several values: the
    mean, the sample standard deviation (ddof = 1) and Student's t interval of the mean.

    With two seeds the interval is wide (t = 12.7): that is what two seeds can say.
    """
    import numpy as np
    from scipy.stats import t as student

    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values))
    if n == 1:
        return f"{mean:.{digits}f} (n = 1)"
    std = float(np.std(values, ddof=1))
    half = float(student.ppf(0.975, n - 1)) * std / np.sqrt(n)
    # + 0.0 after rounding: a bound that rounds to zero is written 0.0, never -0.0
    low, high = (round(b, digits) + 0.0 for b in (mean - half, mean + half))
    return (f"{mean:.{digits}f} ± {std:.{digits}f}, 95% CI {low:.{digits}f}–"
            f"{high:.{digits}f} (n = {n})")
