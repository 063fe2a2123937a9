"""``--set key=value``: changes to a model or protocol file's tables before they are read.

An override names a dotted key, ``rule.target=tp``; its value is read as TOML (so
``5`` is an integer and ``"10 ms"`` a string) or, failing that, taken as the bare
string (``engine.name=reference``). Layers are addressed by index or by name:
``layers.0.size=64`` and ``layers.hidden1.size=64`` are the same key of the
default model.

One list of overrides serves both files: each file takes the keys whose first part
is one of its own tables (:data:`bioprop.spec.MODEL_TABLES`,
:data:`bioprop.spec.PROTOCOL_TABLES`) and leaves the others to the other file.
"""
from __future__ import annotations

import copy
import tomllib

from .errors import SpecError, suggest

__all__ = ["parse_override", "apply_overrides"]


def parse_override(text: str) -> tuple[str, object]:
    """Split one ``key=value`` override into its key and its value.

    Parameters
    ----------
    text : str
        E.g. ``"rule.target=tp"`` or ``'phases.dt="1 ms"'``.

    Returns
    -------
    tuple of (str, object)
        ``("rule.target", "tp")``: the value read as TOML, else the bare string.

    Raises
    ------
    SpecError
        For text with no ``=``.
    """
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected key=value, e.g. --set rule.target=tp")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides, source, tables) -> dict:
    """A copy of a file's tables with the overrides that belong to them applied.

    Parameters
    ----------
    data : dict
        The file's tables, as TOML reads them.
    overrides : iterable of str or (key, value)
        ``"key=value"`` texts (:func:`parse_override`) or pairs already split.
    source : str
        The file, named in an error.
    tables : collection of str
        The top-level tables of this kind of file; keys whose first part is not one of
        them belong to the other file and are left alone.

    Returns
    -------
    dict
        A deep copy of `data`; `data` itself is not changed.

    Raises
    ------
    SpecError
        For a layer that is not there, or a key that names a whole layer.
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        parts = key.split(".")
        if parts[0] not in tables:
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                index = _layer_index(node, part, source, ".".join(parts[: i + 1]))
                node = node[index]
            else:
                node = node.setdefault(part, {} if part != "layers" else [])
        if isinstance(node, list):
            raise SpecError(f"--set {key}: name a key inside the layer, e.g. layers.0.size")
        node[parts[-1]] = value
    return data


def _layer_index(layers, part, source, key):
    if part.isdigit() and int(part) < len(layers):
        return int(part)
    names = [layer.get("name") for layer in layers]
    if part in names:
        return names.index(part)
    raise SpecError(f"{source}: --set {key}: no layer {part!r}. Layers are "
                    f"{', '.join(map(str, names))} (or indices 0..{len(layers) - 1})."
                    f"{suggest(part, [n for n in names if n])}")
