"""A random search's space: one distribution per setting (``--sample key=dist``), and
the configurations drawn from it with a seeded generator.

Three distributions are written as text:

* ``log-uniform:LOW:HIGH``: uniform in log(value), for rates and scales that span
  decades (LOW > 0);
* ``uniform:LOW:HIGH``;
* ``choice:A,B,...``: one of the values, each read as ``--set`` reads it.

Drawn numbers are rounded to three significant digits, so that a configuration reads
and writes as the TOML of its run files does, and the same search seed always gives
the same configurations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from ..overrides import parse_override
from .grid import check_key

__all__ = ["Distribution", "parse_space", "sample_configs", "KINDS"]

#: the distributions a ``--sample`` may name
KINDS = ("log-uniform", "uniform", "choice")

_EXAMPLE = "e.g. --sample optimizer.forward.lr=log-uniform:1e-4:1e-2"


@dataclass(frozen=True)
class Distribution:
    """Where one setting's values are drawn from."""

    kind: str
    #: (low, high) for the uniform kinds; the values for ``choice``
    values: tuple

    def draw(self, rng):
        """One value, drawn with `rng` (a :class:`numpy.random.Generator`)."""
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        low, high = self.values
        if self.kind == "log-uniform":
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            value = rng.uniform(low, high)
        return float(f"{value:.3g}")

    def text(self) -> str:
        """The distribution as ``--sample`` writes it."""
        return f"{self.kind}:" + (",".join(map(str, self.values)) if self.kind == "choice"
                                  else ":".join(map(str, self.values)))


def _distribution(key: str, text: str) -> Distribution:
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise SpecError(f"--sample {key}={text}: unknown distribution {kind!r}; expected one "
                        f"of {', '.join(KINDS)}, {_EXAMPLE}")
    if kind == "choice":
        items = [t.strip() for t in rest.split(",")]
        if len(items) < 2 or "" in items:
            raise SpecError(f"--sample {key}={text}: a choice needs two or more values, "
                            f"e.g. choice:dtp,tp")
        return Distribution(kind, tuple(parse_override(f"{key}={t}")[1] for t in items))
    try:
        low, high = (float(t) for t in rest.split(":"))
    except ValueError:
        raise SpecError(f"--sample {key}={text}: expected {kind}:LOW:HIGH, {_EXAMPLE}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise SpecError(f"--sample {key}={text}: LOW must be less than HIGH, both finite")
    if kind == "log-uniform" and low <= 0:
        raise SpecError(f"--sample {key}={text}: a log-uniform range must be above 0")
    return Distribution(kind, (low, high))


def parse_space(items) -> list[tuple[str, Distribution]]:
    """``["optimizer.forward.lr=log-uniform:1e-4:1e-2", ...]`` → [(key, Distribution)].

    Parameters
    ----------
    items : sequence of str
        ``key=distribution`` texts, one per setting.

    Returns
    -------
    list of (str, Distribution)
        In the order given, which is the order values are drawn in.

    Raises
    ------
    SpecError
        No item, an item without ``=``, a key given twice or naming no table, the seed
        or the epochs (the search sets both), or a distribution that cannot be read.
    """
    if not items:
        raise SpecError(f"a random search needs at least one --sample KEY=DIST, {_EXAMPLE}")
    space: dict[str, Distribution] = {}
    for item in items:
        key, sep, text = (s.strip() for s in item.partition("="))
        if not sep or not key or not text:
            raise SpecError(f"--sample {item!r}: expected KEY=DIST, {_EXAMPLE}")
        if key in ("training.seed", "training.epochs"):
            raise SpecError(f"--sample {key}: the search sets it (--seeds, --rungs)")
        if key in space:
            raise SpecError(f"--sample {key}: given twice")
        check_key(key, "--sample")
        space[key] = _distribution(key, text)
    return list(space.items())


def sample_configs(space, n: int, seed: int) -> list[tuple]:
    """`n` configurations drawn from `space` with a generator seeded by `seed`.

    Parameters
    ----------
    space : sequence of (str, Distribution)
        As :func:`parse_space` returns it.
    n : int
        Configurations to draw (≥ 1).
    seed : int
        The search's own seed, apart from the training seeds.

    Returns
    -------
    list of tuple
        One ``((key, value), ...)`` per configuration, keys in the space's order.
        No two are alike (a repeat is drawn again, up to a limit).

    Raises
    ------
    SpecError
        The space cannot give `n` different configurations (a small ``choice``).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    configs, seen = [], set()
    for _ in range(100 * n):
        config = tuple((key, dist.draw(rng)) for key, dist in space)
        if repr(config) not in seen:
            seen.add(repr(config))
            configs.append(config)
        if len(configs) == n:
            return configs
    raise SpecError(f"--configs {n}: the space gives only {len(configs)} different "
                    f"configurations")
