"""One hostile input: a mistake a user can make, and the one line bioprop must answer it with.

The cases live in :mod:`configs` (model and protocol files, ``--set``, the command line) and
:mod:`files` (data sets, run files, checkpoints, output paths, signals). ``tests/test_hostile.py``
runs every case; ``python tests/hostile/table.py`` writes the table in ``docs/bad-input.md``
from the same cases, so the table lists exactly what is tested.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

#: the areas of the table, in its order
AREAS = ("command line", "override", "model or protocol file", "data set", "output path",
         "run file", "checkpoint", "signal")

#: bioprop's arguments, or a function that makes the files it needs in a fresh directory (the
#: current directory while it runs) and returns the arguments
Argv = Union[Sequence[str], Callable[[Path], Sequence[str]]]


@dataclass(frozen=True)
class Hostile:
    """A mistake and the error it must get.

    Attributes
    ----------
    area : str
        One of :data:`AREAS`.
    what : str
        The mistake as the table shows it (Markdown, short).
    argv : sequence of str or callable
        The ``bioprop`` arguments that make the mistake (see :data:`Argv`). ``None`` when the
        case needs a process of its own (a signal); then `tested_in` names the test.
    expect : str
        A fragment of the one-line message: it must name what the user typed.
    tested_in : str, optional
        ``"tests/test_x.py::test_name"`` for a case run by another test instead.
    env : dict, optional
        Environment variables set while the case runs; ``{here}`` in a value is the case's
        directory (e.g. ``{"BIOPROP_DATA": "{here}/data"}``).
    """

    area: str
    what: str
    argv: Argv | None
    expect: str
    tested_in: str | None = None
    env: dict | None = None

    def __post_init__(self):
        if self.area not in AREAS:
            raise ValueError(f"unknown area {self.area!r}; one of {AREAS}")
        if (self.argv is None) == (self.tested_in is None):
            raise ValueError(f"{self.what}: give either argv or tested_in")
