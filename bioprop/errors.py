"""The error of a model or protocol file that cannot be used, and the helpers that raise it.

Every message names the file and the dotted key at fault, so that a user can go
straight to the line; where the fault is a misspelt name, it also offers the
closest valid one::

    models/default.toml: unknown key 'rule.targte'. Expected one of: target, ...
    Did you mean 'target'?
"""
from __future__ import annotations

import difflib
from typing import NoReturn

__all__ = ["SpecError", "fail", "suggest"]


class SpecError(ValueError):
    """A model or protocol file that cannot be used, with the file and key at fault.

    Parameters
    ----------
    message : str
        The whole message, as printed.
    source : str, optional
        The file at fault, when the error is about one key of it.
    key : str, optional
        The dotted key at fault (``layers.0.size``).
    detail : str, optional
        What is wrong with the key, without the file and key: :func:`bioprop.overrides.blame`
        uses it to name the ``--set`` that gave the key instead of the file.
    """

    def __init__(self, message: str, *, source=None, key: str | None = None,
                 detail: str | None = None):
        super().__init__(message)
        self.source, self.key, self.detail = source, key, detail


def fail(source, key: str, message: str) -> NoReturn:
    """Raise a :class:`SpecError` for `key` of the file `source`.

    Parameters
    ----------
    source : str or path
        The file at fault (``"<string>"`` for a spec built from a dict).
    key : str
        The dotted key at fault, e.g. ``"layers.0.tau"``; empty for the file as a whole.
    message : str
        What is wrong, and what would be right.

    Raises
    ------
    SpecError
        Always, as ``"{source}: {key}: {message}"``.
    """
    raise SpecError(f"{source}: {key}: {message}" if key else f"{source}: {message}",
                    source=source, key=key or None, detail=message)


def suggest(name: str, options) -> str:
    """A sentence proposing the valid name closest to a misspelt one, or ``""``.

    Parameters
    ----------
    name : str
        The name that was given.
    options : iterable of str
        The valid names.

    Returns
    -------
    str
        ``" Did you mean 'x'?"`` (with its leading space, to append to a message), or
        an empty string when no valid name is close.
    """
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
