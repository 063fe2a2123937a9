"""Spec files on disk: the shipped defaults, reading a file together with its base, and
writing a resolved spec back as TOML (:func:`to_toml`).

A model or protocol file may build on another with a top-level ``extends`` key, a
path relative to the file itself::

    # models/tp.toml: the default model, trained by vanilla target propagation
    extends = "default.toml"

    [network]
    name = "tp-digits"

    [rule]
    target = "tp"

The base is read first (it may extend a file of its own) and the extending file is
merged onto it:

* tables merge key by key, recursively, and the extending file's keys win;
* every other value, arrays included, is replaced whole. So ``[[layers]]`` in an
  extending file gives the whole stack of layers: merging layers one by one would
  leave it unclear what a file with fewer layers than its base means.

The result is what the file would say with its base's keys written out; ``--set``
overrides then apply to it, and errors name the extending file. A chain that comes
back to a file it has read, or a base that is not there, is a :class:`SpecError`.
"""
from __future__ import annotations

import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

from .errors import SpecError, fail, suggest
from .units import Duration

__all__ = ["read_spec_file", "merge_tables", "check_file_kind", "default_model_path", "default_protocol_path",
           "EXTENDS", "to_toml"]

#: the top-level key that names a file's base
EXTENDS = "extends"

_PACKAGE_ROOT = Path(__file__).resolve().parent


def read_spec_file(path) -> tuple[dict, str]:
    """The tables of a spec file, with the tables of the file it extends merged in.

    Parameters
    ----------
    path : str or path
        A model or protocol file.

    Returns
    -------
    tuple of (dict, str)
        The merged tables (without the ``extends`` key) and the file's name as given,
        which errors name.

    Raises
    ------
    SpecError
        For a file (or base) that is missing or not valid TOML, an ``extends`` that is
        not a file name, or a chain of bases that comes back to a file.
    """
    path = Path(path)
    return _read_chain(path, ()), str(path)


def merge_tables(base: dict, top: dict) -> dict:
    """`top` merged onto `base`: tables key by key, any other value replaced whole.

    Parameters
    ----------
    base, top : dict
        Tables as TOML reads them; neither is changed.

    Returns
    -------
    dict
        A new dict holding every key of both, `top`'s value where both have one.
    """
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_file_kind(data: dict, source, tables, known, kind: str) -> None:
    """Check that a file read as a model (or protocol) is not the other kind of file.

    Parameters
    ----------
    data : dict
        The file's tables.
    source : str
        The file, named in the error.
    tables, known : collection of str
        The top-level tables of this kind of file, and of both kinds.
    kind : str
        ``"model"`` or ``"protocol"``.

    Raises
    ------
    SpecError
        When every top-level table of the file belongs to the other kind
        (``bioprop run PROTOCOL MODEL``): it says so, rather than list the tables as
        unknown keys.
    """
    other = "protocol" if kind == "model" else "model"
    theirs = set(known) - set(tables)
    if data and set(data) <= theirs:
        raise SpecError(f"{source}: this looks like a {other} file (its tables: "
                        f"{', '.join(sorted(data))}), not a {kind} file: give the model first, "
                        f"then the protocol (bioprop run MODEL PROTOCOL)")
    stray = sorted(set(data) & theirs)
    if stray:  # one table in the wrong file: say whose it is
        detail = (f"unknown key {stray[0]!r} (a table of a {other} file). Expected one of: "
                  f"{', '.join(sorted(tables))}.")
        raise SpecError(f"{source}: {detail}", source=source, key=stray[0], detail=detail)


def _read_chain(path: Path, chain: tuple[Path, ...]) -> dict:
    data = _read_toml(path)
    if EXTENDS not in data:
        return data
    base_name = data.pop(EXTENDS)
    if not isinstance(base_name, str) or not base_name:
        fail(path, EXTENDS, f"expected the name of a base file, e.g. \"default.toml\", got "
             f"{base_name!r}")
    base = path.parent / base_name
    here = path.resolve()
    seen = chain + (here,)
    if base.resolve() in seen:
        loop = " → ".join(p.name for p in seen + (base.resolve(),))
        fail(path, EXTENDS, f"{base_name!r} leads back to a file already read ({loop})")
    if not base.is_file():
        siblings = sorted(p.name for p in path.parent.glob("*.toml"))
        fail(path, EXTENDS, f"no such file {str(base)!r} (the path is relative to {path.name})."
             f"{suggest(base.name, siblings)}")
    return merge_tables(_read_chain(base, seen), data)


def _read_toml(path: Path) -> dict:
    if path.is_dir():
        raise SpecError(f"{path}: a folder, not a file: give a .toml file")
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise SpecError(f"{path}: not a TOML text file: {'it is UTF-16; ' if utf16 else ''}"
                        f"byte {err.start} (0x{raw[err.start]:02x}) is not UTF-8, and TOML "
                        f"files must be UTF-8 text") from None
    if "\x00" in text:
        raise SpecError(f"{path}: not a TOML text file: it holds a NUL byte (a binary file?)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None


def _shipped(package: str, name: str) -> Path:
    from importlib.resources import files
    try:
        return Path(str(files(package) / name))
    except ModuleNotFoundError:
        # Run from a source checkout that shadows the install: models/ and
        # protocols/ sit beside the bioprop/ folder.
        return _PACKAGE_ROOT.parent / package.split(".")[-1] / name


def default_model_path() -> Path:
    """models/default.toml, shipped inside the package as ``bioprop.models``."""
    return _shipped("bioprop.models", "default.toml")


def default_protocol_path() -> Path:
    """protocols/default.toml, shipped inside the package as ``bioprop.protocols``."""
    return _shipped("bioprop.protocols", "default.toml")


def to_toml(spec) -> str:
    """The resolved spec as TOML text, for the run file's provenance.

    Parameters
    ----------
    spec : ModelSpec or ProtocolSpec

    Returns
    -------
    str
        Every key, defaults included (but for a key declared ``written="when set"``,
        :func:`bioprop.ranges.ranged`), durations as their text; ``source`` is left out.
    """
    import tomli_w

    def as_dict(obj):
        out = {}
        for f in fields(obj):
            if f.name in ("source", "origins"):  # where it came from, not what it is
                continue
            value = getattr(obj, f.name)
            if f.metadata.get("written") == "when set" and value == f.default:
                continue  # a key added later: run files without it read the same
            if is_dataclass(value):
                value = as_dict(value)
            elif isinstance(value, tuple):
                value = [as_dict(v) if is_dataclass(v) else v for v in value]
            elif isinstance(value, Duration):
                value = value.text
            out[f.name] = value
        return out

    return tomli_w.dumps(as_dict(spec))
