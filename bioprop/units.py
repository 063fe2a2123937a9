"""Durations: the times of a model or protocol file, read once, checked, and kept as text.

A spec file writes every time as text with a unit, ``tau = "10 ms"``. A
:class:`Duration` reads that text once, when the spec is built, and from then on
offers three forms: :attr:`Duration.text`, which :func:`bioprop.spec.to_toml` writes
back into the run file unchanged; :attr:`Duration.seconds`, a float, which the spec's
checks compare without importing Brian2; and :attr:`Duration.quantity`, the Brian2 time
the engines use, made when first asked for. No caller parses a duration string again.
:class:`Delay` is the one kind of duration that may be zero.

The units a file may use are ``s``/``second``, ``ms``/``msecond`` and
``us``/``usecond``; a number and its unit may be joined by ``*`` (``"2*ms"``).
"""
from __future__ import annotations

import math
import re

from .errors import fail

__all__ = ["Duration", "Delay", "parse_duration"]

_PATTERN = re.compile(r"^\s*([-+0-9.eE]+)\s*\*?\s*(ms|us|second|s|msecond|usecond)\s*$")
#: the unit as written → the name of the Brian2 unit it stands for
_UNITS = {"ms": "ms", "msecond": "ms", "us": "us", "usecond": "us", "s": "second",
          "second": "second"}
#: the Brian2 unit → its length in seconds, for the checks that need no Brian2
_SCALE = {"ms": 1e-3, "us": 1e-6, "second": 1.0}
_EXPECTED = ('expected a duration with units such as "10 ms" (a number, then one of the units '
             f'{", ".join(_UNITS)})')


class Duration:
    """A positive time, given as text with a Brian2 unit, e.g. ``Duration("10 ms")``.

    Parameters
    ----------
    text : str
        The time as the file writes it.
    source : str, optional
        The file it comes from, named in an error.
    key : str, optional
        The dotted key it was given for, named in an error.

    Raises
    ------
    SpecError
        For text that is not a number with one of the units (the message lists them), or a
        time that is not positive and finite (a :class:`Delay` may also be zero).

    Notes
    -----
    The text is read and checked here, at once. The Brian2 quantity is made from it the
    first time :attr:`quantity` is asked for and then kept (read-only, since every
    caller shares it): Brian2 takes seconds to import, and the defaults of the spec
    classes are built whenever :mod:`bioprop.spec` is imported. The quantity is
    ``float(number) * unit``, the product the engines have always been given.

    Two durations are equal when they are of the same kind and their texts are equal, so
    ``"10 ms"`` and ``"10.0 ms"`` differ, as they differ in the run file.
    """

    __slots__ = ("text", "_number", "_unit", "_quantity")
    #: whether zero is a valid value (a delay); a plain duration must be positive
    allow_zero = False

    def __init__(self, text: str, source="<string>", key: str = ""):
        if not isinstance(text, str):
            fail(source, key, f"{_EXPECTED}, got {text!r}")
        match = _PATTERN.match(text)
        try:
            number = float(match.group(1)) if match else None
        except ValueError:  # the pattern lets through e.g. "1.2.3" and "e"
            number = None
        if number is None:
            fail(source, key, f"{_EXPECTED}, got {text!r}")
        if not math.isfinite(number):
            fail(source, key, f"a duration must be finite, got {text!r}")
        if number < 0 or (number == 0 and not self.allow_zero):
            fail(source, key, f"a duration must be {'≥ 0' if self.allow_zero else 'positive'}, "
                 f"got {text!r}")
        self.text = text
        self._number = number
        self._unit = _UNITS[match.group(2)]
        self._quantity = None

    @property
    def seconds(self) -> float:
        """The time in seconds, as a float: what the spec's checks compare, without
        importing Brian2 (the number times the unit's scale, as Brian2 multiplies them)."""
        return self._number * _SCALE[self._unit]

    @property
    def quantity(self):
        """The time as a Brian2 quantity (dimension: second)."""
        if self._quantity is None:
            import brian2

            quantity = self._number * getattr(brian2, self._unit)
            quantity.flags.writeable = False
            self._quantity = quantity
        return self._quantity

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"{type(self).__name__}({self.text!r})"

    def __eq__(self, other):
        return type(other) is type(self) and other.text == self.text

    def __hash__(self):
        return hash((type(self).__name__, self.text))

    def __reduce__(self):
        return type(self), (self.text,)

    def __setattr__(self, name, value):
        if name != "_quantity" and hasattr(self, name):
            raise AttributeError(f"a {type(self).__name__} cannot be changed")
        object.__setattr__(self, name, value)


class Delay(Duration):
    """A duration that may be zero (``"0 ms"``): the delay of a synaptic pathway."""

    __slots__ = ()
    allow_zero = True


def parse_duration(value, source="<string>", key: str = "", allow_zero: bool = False):
    """A Brian2 time from the text of a duration, or from a value already read.

    Parameters
    ----------
    value : str, Duration or Brian2 quantity
        ``"10 ms"``; a :class:`Duration` (its :attr:`~Duration.quantity` is returned); or
        a quantity, returned unchanged.
    source, key : str, optional
        The file and key named in an error.
    allow_zero : bool, optional
        Whether zero is valid (a delay); otherwise the time must be positive.

    Returns
    -------
    brian2.Quantity
        The time, ``float(number) * unit``.

    Raises
    ------
    SpecError
        For text that is not a valid duration.

    Notes
    -----
    The spec holds :class:`Duration` values already, so code that has a spec reads
    ``spec.phases.dt.quantity``; this function is for text that comes from elsewhere
    (a run file's recorded TOML) and for callers not yet moved to the spec's values.
    """
    if isinstance(value, Duration):
        return value.quantity
    if isinstance(value, str):
        return (Delay if allow_zero else Duration)(value, source, key).quantity
    return value
