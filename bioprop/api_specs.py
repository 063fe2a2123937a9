"""The model and protocol of a ``bioprop.Network``, from whatever the caller has.

A model (or protocol) may be given as

* a path or a shipped name (``"lif"``): read as ``bioprop run`` reads it
  (:func:`bioprop.spec.load_model`);
* a :class:`~bioprop.spec.ModelSpec` (:class:`~bioprop.spec.ProtocolSpec`), e.g. one that
  ``bioprop.load_model`` returned;
* a plain dict of the file's tables, ``{"network": {...}, "layers": [...], ...}``: no TOML
  at all. Its ``description`` and a model's ``protocol`` are read as in a file;
  ``extends`` is for files only.

Settings apply to either file the way ``--set`` does (:mod:`bioprop.overrides`: the same
checks, messages and "did you mean"), given as ``overrides`` (``{"training.epochs": 5}`` or
``["training.epochs=5"]``) or as keywords (:func:`keyword_overrides`): ``epochs=5`` names
the one key of either file called ``epochs``, and ``engine="reference"`` the engine.
"""
from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace

from .errors import SpecError, suggest
from .shipped import DESCRIPTION, check_description
from .spec import ModelSpec, ProtocolSpec, from_tables, load_model, load_protocol, to_toml
from .specfiles import SPEC_META

__all__ = ["KEYWORDS", "keyword_overrides", "override_items", "resolve_spec", "resolve_specs"]

#: the tables whose keys are not keywords: a layer is named, so its keys need overrides
_NOT_KEYWORDS = ("layers",)


def _leaves(cls, prefix=""):
    """(name, dotted key) of every key of a spec's tables, nested tables walked."""
    for f in fields(cls):
        if f.name in SPEC_META or f.name in _NOT_KEYWORDS:
            continue
        if is_dataclass(f.default):
            yield from _leaves(type(f.default), f"{prefix}{f.name}.")
        elif prefix:  # a table of the file, not a top-level key
            yield f.name, prefix + f.name


def _keywords() -> dict:
    """Keyword → the dotted keys of that name, in either file."""
    from .spec import NetworkSpec

    out = {}
    for cls in (ProtocolSpec, ModelSpec):
        for name, key in _leaves(cls):
            out.setdefault(name, []).append(key)
    for name, key in _leaves(NetworkSpec, "network."):  # required, so it has no default
        out.setdefault(name, []).append(key)
    return out


#: keyword → the dotted keys it may name; one key: a keyword, more: ambiguous
KEYWORDS = _keywords()
#: keywords that name a table's main key rather than a key of that name
_SHORTHANDS = {"engine": "engine.name", "dataset": "data.dataset"}


def keyword_overrides(keywords: Mapping) -> list:
    """(dotted key, value) of each keyword setting, e.g. ``epochs=5`` → ``training.epochs``.

    Raises
    ------
    SpecError
        For a keyword that names no key (with the closest keyword), or one that names a
        key of several tables (``lr``: the forward or the feedback optimizer's), which must
        then be given by its dotted key in ``overrides``.
    """
    out = []
    for name, value in keywords.items():
        keys = [_SHORTHANDS[name]] if name in _SHORTHANDS else KEYWORDS.get(name, [])
        if len(keys) > 1:
            raise SpecError(f"{name}={value!r}: {name!r} is a key of several tables "
                            f"({', '.join(sorted(keys))}): give one in overrides, e.g. "
                            f"overrides={{{sorted(keys)[0]!r}: {value!r}}}")
        if not keys:
            known = sorted(set(KEYWORDS) | set(_SHORTHANDS))
            raise SpecError(f"{name}={value!r}: no key of a model or protocol is called "
                            f"{name!r}; give a dotted key in overrides, e.g. "
                            f"overrides={{'rule.target': 'tp'}}.{suggest(name, known)}")
        out.append((keys[0], value))
    return out


def override_items(overrides) -> list:
    """Overrides as :func:`bioprop.overrides.apply_overrides` takes them: a mapping's items,
    or the ``"key=value"`` texts (or pairs) of a sequence."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, str):  # one text, not its characters
        return [overrides]
    return list(overrides)


def resolve_spec(value, kind: str, overrides=()):
    """The validated spec of kind "model" or "protocol" that `value` gives (see the module),
    with the `overrides` (:func:`override_items`) of its tables applied."""
    load, cls = {"model": (load_model, ModelSpec), "protocol": (load_protocol, ProtocolSpec)}[kind]
    if value is None or isinstance(value, (str, os.PathLike)):
        return load(value, overrides)
    usual = {}
    if isinstance(value, cls):
        if not overrides:
            return value
        # written out and read back, so the overrides are checked as a file's would be
        data, source = tomllib.loads(to_toml(value)), value.source
        usual = {"protocol": value.protocol} if kind == "model" else {}
    elif isinstance(value, Mapping):
        data, source = copy.deepcopy(dict(value)), f"<{kind} dict>"
        if DESCRIPTION in data:
            check_description(data.pop(DESCRIPTION), source)
    else:
        raise SpecError(f"{kind}: expected a path, a shipped name, a {cls.__name__} or a dict "
                        f"of its tables, got {type(value).__name__}")
    return replace(from_tables(data, source, kind, overrides), **usual)


def resolve_specs(model=None, protocol=None, overrides=None, **keywords):
    """The model and protocol specs a Network is built from.

    Parameters
    ----------
    model, protocol : path, shipped name, spec, dict or None
        None is the embedded default model; for the protocol, the one the model names
        (its ``protocol`` key), else the embedded default.
    overrides : mapping or sequence, optional
        ``{"training.epochs": 5}`` or ``["training.epochs=5"]``, as ``--set`` gives them.
    **keywords
        Settings by their key's own name (:func:`keyword_overrides`), after `overrides`.

    Returns
    -------
    tuple of (ModelSpec, ProtocolSpec)
    """
    items = override_items(overrides) + keyword_overrides(keywords)
    model_spec = resolve_spec(model, "model", items)
    if protocol is None:
        protocol = model_spec.protocol or None
    return model_spec, resolve_spec(protocol, "protocol", items)
