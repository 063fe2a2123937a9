"""The range of each number key of a spec, declared beside its field and checked in one place.

A spec dataclass declares what a number key may take where it declares the key::

    lr: float = ranged(1e-3, gt=0)

and :func:`check_ranges` (called by :mod:`bioprop.validation` on every model and
protocol) checks every leaf of a spec against its field's :class:`Range`, naming the
file, the key, the value and the range. Every float must also be finite: NaN and
infinity are never a setting, range or not.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields, is_dataclass

from .errors import fail

__all__ = ["Range", "ranged", "check_ranges", "walk"]


@dataclass(frozen=True)
class Range:
    """The values a number key may take, declared beside its field (:func:`ranged`).

    Bounds left at None are open-ended; ``gt``/``lt`` exclude the bound, ``ge``/``le``
    include it. Every float key must also be finite, whether or not it has a range.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    #: what the message says the value must be, when the bounds alone read badly
    text: str = ""

    def holds(self, value) -> bool:
        """Whether `value` lies in the range."""
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def __str__(self):
        if self.text:
            return self.text
        low = f"> {self.gt}" if self.gt is not None else f"≥ {self.ge}" if self.ge is not None else ""
        high = f"< {self.lt}" if self.lt is not None else f"≤ {self.le}" if self.le is not None else ""
        if low == "> 0" and not high:
            return "positive"
        if low and high:
            return (f"in {'(' if self.gt is not None else '['}{self.gt if self.gt is not None else self.ge}"
                    f", {self.lt if self.lt is not None else self.le}"
                    f"{')' if self.lt is not None else ']'}")
        return low or high


def ranged(default=MISSING, *, what: str = "", written: str = "always", before=MISSING,
           **bounds):
    """A dataclass field whose value must lie in ``Range(**bounds)``.

    Parameters
    ----------
    default : optional
        The field's default (none: a required key).
    what : str, optional
        What the value is, to open the message (``"a connection probability"``).
    written : str, optional
        ``"always"``, or ``"when set"``: :func:`bioprop.spec.to_toml` leaves the key out
        at its default, so that a key added later leaves the recorded TOML of every run
        that does not set it as it was.
    before : optional
        For a key added later whose default changes what a run does: the value that runs
        recorded before the key existed ran with. A recorded spec without the key reads as
        this (:func:`recorded_as_before`), so that ``--resume`` goes on as the run began.
    **bounds
        The :class:`Range`'s ``gt``, ``ge``, ``lt``, ``le`` and ``text``.
    """
    return field(default=default, metadata={"range": Range(**bounds), "what": what,
                                            "written": written, "before": before})


def recorded_as_before(table: dict, cls) -> dict:
    """`table` (a spec recorded in a run file, as TOML tables) with every key it lacks
    that has a ``before`` value (:func:`ranged`) set to that value: how that run ran."""
    from dataclasses import fields, is_dataclass
    from typing import get_type_hints

    out, types = dict(table), get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get("before", MISSING) is not MISSING and f.name not in out:
            out[f.name] = f.metadata["before"]
        elif isinstance(out.get(f.name), dict) and is_dataclass(types[f.name]):
            out[f.name] = recorded_as_before(out[f.name], types[f.name])
    return out


def check_ranges(spec):
    """Check every number of a spec against its field's declared :class:`Range`, and every
    float for being finite (NaN and infinity are never a setting).

    Raises
    ------
    SpecError
        Naming the file, the key, the value and the range.
    """
    for key, f, value in walk(spec):
        if isinstance(value, float) and not math.isfinite(value):
            fail(spec.source, key, f"must be a finite number, got {value!r}")
        limits = f.metadata.get("range")
        if limits is not None and value is not None and not limits.holds(value):  # None: unset
            what = f.metadata.get("what")
            verb = "lie" if str(limits).startswith("in ") else "be"
            fail(spec.source, key, f"{what + ' ' if what else ''}must {verb} {limits}, got {value!r}")


def walk(obj, prefix=""):
    """(dotted key, field, value) of every leaf of a spec, layers by index.

    Parameters
    ----------
    obj : dataclass instance
        A spec or one of its tables; ``source`` and ``origins`` are left out.
    prefix : str, optional
        The dotted key of `obj` itself, with its trailing dot.

    Yields
    ------
    tuple of (str, dataclasses.Field, object)
    """
    for f in fields(obj):
        if f.name in ("source", "origins"):
            continue
        value, key = getattr(obj, f.name), prefix + f.name
        if is_dataclass(value):
            yield from walk(value, key + ".")
        elif isinstance(value, tuple) and value and all(is_dataclass(v) for v in value):
            for i, item in enumerate(value):
                yield from walk(item, f"{key}.{i}.")
        else:
            yield key, f, value
