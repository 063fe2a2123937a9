"""Where a run file goes, checked before anything is loaded, trained or written.

* :func:`default_run_file` — the run file of a new run without an explicit output path:
  the protocol's ``record.path`` pattern filled in and numbered.
* :func:`check_new_file` — the checks of any file bioprop is about to create (a run
  file, an NWB export).
* :class:`OutputPathError` — a path bioprop cannot or will not write, with the reason.
* :class:`OutputExistsError` — a file that exists and may be replaced only with ``force``.

An explicit path must name a file in a folder that exists: a misspelt folder is an
error rather than a new folder (``-o reuslts/run.h5``). The default, from
``record.path``, creates its folder (``runs/``), and never collides: an existing file
is kept and the new run is numbered ``-2``, ``-3``...
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OutputPathError", "OutputExistsError", "default_run_file", "check_new_file",
           "RUN_SUFFIXES"]

#: the suffixes of an HDF5 run file (netCDF-4 files are HDF5 files)
RUN_SUFFIXES = (".h5", ".hdf5", ".he5", ".nc")


class OutputPathError(ValueError):
    """A file bioprop was asked to create at a path it cannot or will not write."""


class OutputExistsError(FileExistsError):
    """A file that exists, which a writer replaces only when told to (``force``).

    The message is the API's; the command line names its own option (``--force``).
    """

    def __init__(self, path):
        self.path = Path(path)
        super().__init__(f"{self.path} exists; pass force=True to replace it, or choose "
                         "another path")

    def __str__(self):
        return self.args[0]


def check_new_file(path, *, suffixes=(), what="run file", example="run.h5") -> Path:
    """Check that a file can be created at `path`, and return it as a Path.

    Whether an existing file may be replaced is left to the writer (``--force``).

    Parameters
    ----------
    path : str or path
        As the user gave it.
    suffixes : tuple of str
        The suffixes the file may have (lower case); empty: any.
    what : str
        What the file is, for the messages ("run file", "NWB file").
    example : str
        A file name the messages propose.

    Raises
    ------
    OutputPathError
        An empty path, a folder, a suffix not in `suffixes`, a folder that does not exist
        or is not a folder, a name longer than the file system allows, or a folder this
        process may not write in.
    """
    if not str(path).strip():
        raise OutputPathError(f"the {what}'s path is empty; name a file, e.g. {example}")
    path = Path(path)
    limit = _name_max(path.parent if path.parent.is_dir() else Path("."))
    if len(os.fsencode(path.name)) > limit:  # first: the other tests would raise on it
        raise OutputPathError(f"{path.name[:20]}...{path.suffix}: the file name is "
                              f"{len(os.fsencode(path.name))} bytes long; this file system "
                              f"allows {limit}")
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; the {what} must be a file, e.g. "
                              f"{path / example}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{path}: a {what} is HDF5; give it one of the suffixes "
                              f"{', '.join(suffixes)}, e.g. {path.with_suffix(suffixes[0])}")
    folder = path.parent
    if not folder.exists():
        raise OutputPathError(f"{path}: the folder {folder} does not exist; create it first "
                              "(or correct its name)")
    if not folder.is_dir():
        raise OutputPathError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: cannot write in the folder {folder} (permission denied)")
    return path


def _name_max(folder) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):  # not every platform says
        return 255


def default_run_file(pattern: str, *, model: str, seed: int, source=None) -> Path:
    """The run file of a new run given no output path (an explicit one is checked with
    :func:`check_new_file`).

    Parameters
    ----------
    pattern : str
        The protocol's ``record.path``, with ``{model}`` and ``{seed}`` (checked as a
        pattern by :mod:`bioprop.validation`).
    model : str
        The model's name.
    seed : int
    source : str, optional
        The protocol file, which the errors name with ``record.path``.

    Returns
    -------
    Path
        The filled-in pattern, or the first ``name-2.h5``, ``name-3.h5``... not taken; its
        folder is created.

    Raises
    ------
    SpecError
        For a path that cannot be a run file, naming ``record.path``.
    """
    from .errors import fail

    path = _free_path(Path(pattern.format(model=model, seed=seed)))
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        return check_new_file(path, suffixes=RUN_SUFFIXES)
    except (OutputPathError, OSError) as err:
        fail(source, "record.path", f"{pattern!r} gives {path}: {_reason(err, path)}")


def _reason(err, path) -> str:
    text = str(err) if isinstance(err, OutputPathError) else (err.strerror or str(err))
    return text.removeprefix(f"{path}: ")


def _free_path(path: Path) -> Path:
    """`path`, or the first ``name-2.h5``, ``name-3.h5``... not taken.

    Only an explicit output path can collide (and then needs ``force``): repeating a
    default run must neither fail nor overwrite the earlier one.
    """
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
