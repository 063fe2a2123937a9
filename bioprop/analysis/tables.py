"""Helpers for the tables that the scripts in ``analysis/`` read from run files."""
from __future__ import annotations

import tomllib

__all__ = ["recorded_specs", "architecture", "duration"]


def recorded_specs(tree) -> tuple[dict, dict]:
    """The resolved model and protocol a run recorded, as the dicts of their TOML."""
    return tuple(tomllib.loads(tree.attrs[key]) for key in ("model_toml", "protocol_toml"))


def architecture(model: dict, collapse: bool = False) -> str:
    """``784-500 sign-500 tanh-10``: sizes with the kind of every hidden layer.

    With `collapse`, identical hidden layers are written once with their count:
    ``784-7×240 tanh-10``.
    """
    hidden = []
    for layer in model["layers"][:-1]:
        kind = layer.get("population", "rate")
        hidden.append(f"{layer['size']} {layer.get('activation', 'tanh') if kind == 'rate' else kind}")
    if collapse and len(hidden) > 1 and len(set(hidden)) == 1:
        hidden = [f"{len(hidden)}×{hidden[0]}"]
    return "-".join([str(model["network"]["input_size"]), *hidden, str(model["layers"][-1]["size"])])


def duration(seconds: float) -> str:
    """Seconds below two minutes, minutes above."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
