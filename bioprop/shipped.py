"""The models and protocols that ship with bioprop, found by name from any directory.

``models/`` and ``protocols/`` of the source tree are installed as the packages
``bioprop.models`` and ``bioprop.protocols``. A file there is known by its name without
``.toml``: ``bioprop run lif`` runs ``models/lif.toml``.

* :func:`find_spec_file` -- a model or protocol argument as the user typed it: a path that
  exists wins, then a shipped name, else one error listing the shipped names;
* :func:`usual_protocol` -- the shipped protocol a model file names in its top-level
  ``protocol`` key, so that ``bioprop run lif`` runs at the spiking time step;
* :func:`shipped` and :func:`description` -- what ``bioprop list`` prints: each file's
  top-level ``description``, a one-line string, which is the only place it is said.

``description`` and ``protocol`` describe a file rather than the network or the run, so
neither reaches the resolved TOML recorded in a run file.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import SpecError, fail, suggest

__all__ = ["KINDS", "DESCRIPTION", "PROTOCOL", "shipped", "find_spec_file", "usual_protocol",
           "description", "check_description", "listing", "default_model_path",
           "default_protocol_path"]

#: kind of spec file → the package its shipped files are installed as
KINDS = {"model": "bioprop.models", "protocol": "bioprop.protocols"}
#: the top-level key of a file's one-line description (not inherited through ``extends``)
DESCRIPTION = "description"
#: the top-level key of a model file naming its usual shipped protocol (inherited)
PROTOCOL = "protocol"

_PACKAGE_ROOT = Path(__file__).resolve().parent


def _folder(kind: str) -> Path:
    from importlib.resources import files

    package = KINDS[kind]
    try:
        return Path(str(files(package)))
    except ModuleNotFoundError:
        # a source checkout that shadows the install: models/ and protocols/ sit beside
        # the bioprop/ folder
        return _PACKAGE_ROOT.parent / package.split(".")[-1]


def shipped(kind: str) -> dict:
    """The shipped files of a kind: name (the file name without ``.toml``) → path, sorted.

    Parameters
    ----------
    kind : {"model", "protocol"}
    """
    return {p.stem: p for p in sorted(_folder(kind).glob("*.toml"))}


def default_model_path() -> Path:
    """models/default.toml, shipped inside the package as ``bioprop.models``."""
    return _folder("model") / "default.toml"


def default_protocol_path() -> Path:
    """protocols/default.toml, shipped inside the package as ``bioprop.protocols``."""
    return _folder("protocol") / "default.toml"


def find_spec_file(name, kind: str) -> Path:
    """The file a model or protocol argument means.

    Parameters
    ----------
    name : str or path
        As typed: a path, or a shipped name (``lif``, or ``lif.toml``).
    kind : {"model", "protocol"}

    Returns
    -------
    Path
        `name` itself when a file of that path exists (so a local ``lif.toml`` wins over
        the shipped one), else the shipped file.

    Raises
    ------
    SpecError
        ``no file or shipped model 'x'. Shipped: ...``, with the closest name.
    """
    path = Path(name)
    if path.exists():
        return path
    files = shipped(kind)
    stem = path.name[:-len(".toml")] if path.name.endswith(".toml") else path.name
    if path.parent == Path(".") and stem in files:
        return files[stem]
    raise SpecError(f"no file or shipped {kind} {str(name)!r}. Shipped: {', '.join(files)}."
                    f"{suggest(stem, files)}")


def usual_protocol(value, source) -> str:
    """Check a model file's ``protocol`` key and return the shipped protocol's path.

    Parameters
    ----------
    value : object
        The key's value, as TOML read it.
    source : str
        The model file, named in the error.

    Raises
    ------
    SpecError
        For a value that is not the name of a shipped protocol, with the closest one.
    """
    files = shipped("protocol")
    if not isinstance(value, str) or value not in files:
        fail(source, PROTOCOL, f"expected the name of a shipped protocol ({', '.join(files)}), "
             f"got {value!r}.{suggest(str(value), files)}")
    return str(files[value])


def check_description(value, source) -> None:
    """Raise a :class:`SpecError` unless `value` is a one-line string."""
    if not isinstance(value, str) or "\n" in value:
        fail(source, DESCRIPTION, f"expected one line of text, got {value!r}")


def _top_level(path) -> dict:
    """A spec file's own keys and tables, without its base (``extends``)."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


def description(path) -> str:
    """A spec file's own one-line ``description`` ("" without one)."""
    return str(_top_level(path).get(DESCRIPTION, ""))


def listing() -> str:
    """The text of ``bioprop list``: every shipped model (with its usual protocol) and
    protocol, one line each with its description."""
    lines = []
    for kind in KINDS:
        files = shipped(kind)
        width = max(map(len, files))
        lines.append("models (bioprop run NAME):" if kind == "model"
                     else "protocols (bioprop run MODEL NAME):")
        for name, path in files.items():
            data = _top_level(path)
            usual = f" [protocol: {data[PROTOCOL]}]" if PROTOCOL in data else ""
            lines.append(f"  {name:<{width}}  {data.get(DESCRIPTION, '')}{usual}")
        lines.append("")
    return "\n".join(lines).rstrip()
