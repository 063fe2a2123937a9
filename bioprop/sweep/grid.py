"""A sweep's points: the grid axes (``--grid key=v1,v2``) times the seeds.

Values are read as ``--set`` reads them. Each point has a stable, filesystem-safe
name, which is the stem of its run file.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

from ..errors import SpecError
from ..overrides import check_key as check_override_key
from ..overrides import parse_override
from ..spec import SPEC_TABLES

__all__ = ["Point", "value_text", "check_key", "parse_grid", "seed_values", "expand"]

# characters kept as they are in a point's file name; others become "_"
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]")
_MAX_NAME = 180


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the grid settings and the seed."""

    #: ((key, value), ...) in the grid's order; values as parsed from ``--grid``
    settings: tuple
    seed: int

    @property
    def overrides(self) -> list:
        """The point's ``--set`` overrides, the seed included, as (key, value) pairs."""
        return list(self.settings) + [("training.seed", self.seed)]

    @property
    def name(self) -> str:
        """A stable, filesystem-safe file stem, e.g. ``rule.target-tp_seed3``.

        Values that had to be changed to be safe (``"10 ms"`` → ``10_ms``), and names
        longer than 180 characters, get a hash of the exact settings, so that two
        points never share a name.
        """
        texts = [f"{key}-{value_text(value)}" for key, value in self.settings] + [f"seed{self.seed}"]
        readable = "_".join(texts)
        safe = _UNSAFE.sub("_", readable)
        if safe == readable and len(safe) <= _MAX_NAME:
            return safe
        digest = hashlib.sha1(repr(self.overrides).encode()).hexdigest()[:10]
        return f"{safe[:_MAX_NAME]}_{digest}"

    def label(self) -> str:
        """The settings as ``key=value`` text, for summaries and messages."""
        return " ".join(f"{key}={value_text(value)}" for key, value in self.settings) or "(no grid)"


def value_text(value) -> str:
    """A grid value as text, for point names, labels and summaries.

    Parameters
    ----------
    value : object
        A value as parsed from ``--grid``.

    Returns
    -------
    str
        Booleans as TOML writes them (which is how ``--set`` reads them back),
        anything else as ``str`` gives it.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_key(key: str, option: str):
    """A SpecError for a key that names no table of a model or protocol file: the check
    :func:`bioprop.overrides.check_key` that every loader makes, made here before any
    point runs.

    Parameters
    ----------
    key : str
        A dotted key, e.g. ``rule.target``.
    option : str
        The option that gave it (``--grid``, ``--set``), for the message.

    Raises
    ------
    SpecError
        The key's first part is not a table of a model or protocol.
    """
    check_override_key(key, SPEC_TABLES, option)


def parse_grid(items) -> list[tuple[str, list]]:
    """``["rule.target=tp,dtp", ...]`` → ``[("rule.target", ["tp", "dtp"]), ...]``.

    Each value is read as ``--set`` reads one (TOML, else a string). A grid key may
    appear once, must name a table of the model or protocol, and may not be
    ``training.seed`` (the seeds are their own axis).

    Raises
    ------
    SpecError
        An item without ``=``, an empty value, a repeated key or value, an unknown table.
    """
    axes: dict[str, list] = {}
    for item in items:
        key, _, raw = (s.strip() for s in item.partition("="))
        texts = [t.strip() for t in raw.split(",")]
        if not key or "=" not in item or "" in texts:
            raise SpecError(f"--grid {item!r}: expected key=v1,v2,... with no empty value, "
                            f"e.g. --grid rule.target=tp,dtp")
        if key == "training.seed":
            raise SpecError("--grid training.seed: give the seeds with --seeds N or --seed-list")
        if key in axes:
            raise SpecError(f"--grid {key}: given twice; list all its values in one --grid")
        check_key(key, "--grid")
        values = [parse_override(f"{key}={t}")[1] for t in texts]
        if len({value_text(v) for v in values}) < len(values):
            raise SpecError(f"--grid {item!r}: a value is repeated")
        axes[key] = values
    return list(axes.items())


def seed_values(seeds) -> list[int]:
    """``N`` → seeds 1..N; a sequence → those seeds.

    Raises
    ------
    SpecError
        No seed, a negative seed or a repeated one.
    """
    values = list(range(1, seeds + 1)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not values or len(set(values)) < len(values) or min(values) < 0:
        raise SpecError(f"seeds: expected at least one seed, none negative and no repeats, "
                        f"got {seeds!r}")
    return values


def expand(grid, seeds=1) -> list[Point]:
    """Every point of a sweep: the grid's cartesian product times the seeds.

    Parameters
    ----------
    grid : sequence of str or of (key, values)
        ``--grid`` items (``"key=v1,v2"``) or already parsed axes.
    seeds : int or sequence of int
        ``N`` for seeds 1..N, or the seeds themselves.

    Returns
    -------
    list of Point
        In the grid's order, the first axis slowest, seeds fastest.
    """
    axes = parse_grid(grid) if all(isinstance(g, str) for g in grid) else list(grid)
    keys, seeds = [key for key, _ in axes], seed_values(seeds)
    return [Point(tuple(zip(keys, combo)), seed)
            for combo in itertools.product(*(values for _, values in axes)) for seed in seeds]
