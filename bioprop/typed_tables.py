"""TOML tables to frozen dataclasses: every key checked against the fields, every value
against the field's annotation, nested tables and arrays of tables recursively.

:mod:`bioprop.spec` declares the dataclasses; this module only converts, so that an error
names the file, the dotted key, what was expected and, for a typo, the likely key.
"""
from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields, is_dataclass

from .errors import SpecError, fail, suggest
from .specfiles import SPEC_META
from .units import Delay, Duration

__all__ = ["META", "convert_table"]

#: the fields that say where a spec came from, not what it is: never keys of a file
META = SPEC_META


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def convert_table(cls, data, source, prefix=""):
    """The dataclass `cls` built from the table `data` of the file `source`; `prefix` is
    the dotted key of the table itself, for errors."""
    if not isinstance(data, dict):
        fail(source, prefix.rstrip("."), f"expected a table, got {data!r}")
    names = [f.name for f in fields(cls) if f.name not in META]
    for key in data:
        if key not in names:
            detail = (f"unknown key {prefix + key!r}. Expected one of: {', '.join(names)}."
                      f"{suggest(key, names)}")
            raise SpecError(f"{source}: {detail}", source=source, key=prefix + key, detail=detail)
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name in META or f.name not in data:
            continue
        values[f.name] = _convert_value(hints[f.name], data[f.name], source, prefix + f.name)
    missing = [f.name for f in fields(cls) if f.name not in values
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        fail(source, prefix.rstrip("."), f"missing required key(s): {', '.join(missing)}")
    return cls(**values)


def _convert_value(tp, value, source, key):
    origin = typing.get_origin(tp)
    if origin is types.UnionType:  # an optional key (float | None): absent is None
        tp, origin = typing.get_args(tp)[0], None
    if is_dataclass(tp):
        return convert_table(tp, value, source, key + ".")
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            what = f"an array of tables ([[{key}]])" if is_dataclass(item) else "an array"
            got = "a table" if isinstance(value, dict) else f"{type(value).__name__} {value!r}"
            fail(source, key, f"expected {what}, got {got}")
        return tuple(_convert_value(item, v, source, f"{key}.{i}") for i, v in enumerate(value))
    if tp in (Duration, Delay):  # its Brian2 quantity is made when first asked for
        return tp(value, source, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        fail(source, key, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value
