"""``--set key=value``: changes to a model or protocol file's tables before they are read.

An override names a dotted key, ``rule.target=tp``; its value is read as TOML (so
``5`` is an integer and ``"10 ms"`` a string) or, failing that, taken as the bare
string (``engine.name=reference``). Layers are addressed by index or by name:
``layers.0.size=64`` and ``layers.hidden1.size=64`` are the same key of the
default model.

One list of overrides serves both files: each file takes the keys whose first part
is one of its own tables (:data:`bioprop.spec.MODEL_TABLES`,
:data:`bioprop.spec.PROTOCOL_TABLES`) and leaves the others to the other file. So
that no key is left by both, every key is first checked against the tables of
either file (:func:`check_key`, the one check that ``run``, ``sweep`` and the
Python loaders share): a misspelt table is an error, never a silently default run.

Each applied override remembers the text it came from, and :func:`blame` rewrites
an error about a key an override set so that it names the override, as typed,
rather than the file the key would otherwise come from::

    --set layers.hidden1.size=0: must be positive, got 0
"""
from __future__ import annotations

import copy
import re
import tomllib
from contextlib import contextmanager

from .errors import SpecError, suggest

__all__ = ["parse_override", "check_key", "apply_overrides", "blame", "named_layers",
           "HIDDEN_KEY", "hidden_layers"]

#: the shorthand override that replaces every hidden layer (:func:`hidden_layers`)
HIDDEN_KEY = "network.hidden"
# one group of the shorthand: "5x256 tanh", "256 relu", "2x100"
_HIDDEN_GROUP = re.compile(r"(?:(\d+)\s*[x×]\s*)?(\d+)(?:\s+([A-Za-z_][\w]*))?")

# one part of a dotted key: printable ASCII, no space, dot or "="
_PART = re.compile(r"[!-~]+")


def parse_override(text: str, option: str = "--set") -> tuple[str, object]:
    """Split one ``key=value`` override into its key and its value.

    Parameters
    ----------
    text : str
        E.g. ``"rule.target=tp"`` or ``'phases.dt="1 ms"'``.
    option : str, optional
        The option that gave it, named in an error.

    Returns
    -------
    tuple of (str, object)
        ``("rule.target", "tp")``: the value read as TOML, else the bare string.

    Raises
    ------
    SpecError
        For text with no ``=`` (with a hint when a space stands in for it).
    """
    if "=" not in text:
        words = text.split()
        hint = f" Did you mean {words[0]}={words[1]}?" if len(words) == 2 else ""
        raise SpecError(f"{option} {text!r}: expected key=value, e.g. {option} rule.target=tp."
                        f"{hint}")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def check_key(key: str, tables, option: str = "--set") -> None:
    """Check that an override's key is well formed and names a table of a spec file.

    Parameters
    ----------
    key : str
        A dotted key, e.g. ``rule.target``.
    tables : collection of str
        The top-level tables of a model file and of a protocol file together.
    option : str, optional
        The option that gave it (``--set``, ``--grid``), for the message.

    Raises
    ------
    SpecError
        An empty key or part, a part with a space or a character outside ASCII, or a
        first part that is no table of either file.
    """
    parts = key.split(".")
    bad = next((p for p in parts if not (_PART.fullmatch(p) and "=" not in p)), None)
    if bad is not None:
        raise SpecError(f"{option} {key!r}: {bad!r} is not a key: a key is ASCII words without "
                        f"spaces joined by dots, e.g. {option} layers.hidden1.size=64")
    if parts[0] not in tables:
        names = sorted(tables)
        raise SpecError(f"{option} {key}: unknown table {parts[0]!r}. Expected one of: "
                        f"{', '.join(names)}.{suggest(parts[0], names)}")


def apply_overrides(data: dict, overrides, source, tables, known) -> tuple[dict, dict]:
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
    known : collection of str
        The tables of both kinds of file: every key is checked against them
        (:func:`check_key`), whichever file it belongs to.

    Returns
    -------
    tuple of (dict, dict)
        A deep copy of `data` (`data` itself is not changed), and the origins: each key
        set, with layers by index (``layers.0.size``), → the override as typed
        (``--set layers.hidden1.size=0``), for :func:`blame`.

    Raises
    ------
    SpecError
        For a key that :func:`check_key` rejects, a layer that is not there, a key
        that names a whole layer, or a key inside a value that is not a table.

    Notes
    -----
    ``network.hidden="5x256 tanh"`` (:data:`HIDDEN_KEY`) is a shorthand rather than a key:
    it replaces every layer but the output one by those :func:`hidden_layers` reads, and
    the overrides after it address the new layers.
    """
    data = copy.deepcopy(data)
    items = []
    for item in overrides:
        if isinstance(item, str):
            key, value = parse_override(item)
            text = f"--set {item.strip()}"
        else:
            key, value = item
            text = f"--set {key}={_value_text(value)}"
        check_key(key, known)
        items.append((key, value, text))
    origins = {}
    for key, value, text in items:
        parts = key.split(".")
        if parts[0] not in tables:
            continue
        if key == HIDDEN_KEY:  # a shorthand, not a key of the file: it rewrites the layers
            origins.update(_replace_hidden(data, value, source, text))
            continue
        node, path = data, []
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                index = _layer_index(node, part, source, text)
                node, part = node[index], str(index)
            else:
                node = node.setdefault(part, {} if part != "layers" else [])
            path.append(part)
            if not isinstance(node, (dict, list)):
                raise SpecError(f"{text}: {'.'.join(path)} is {node!r}, not a table, so it has "
                                f"no key {parts[i + 1]!r}")
        if isinstance(node, list):
            raise SpecError(f"{text}: name a key inside the layer, e.g. layers.0.size")
        node[parts[-1]] = value
        origins[".".join(path + [parts[-1]])] = text
    return data, origins


@contextmanager
def blame(origins: dict):
    """Name the override, not the file, in an error about a key an override set.

    Parameters
    ----------
    origins : dict
        Key → override text, as :func:`apply_overrides` returns them.

    Raises
    ------
    SpecError
        A :class:`~bioprop.errors.SpecError` raised inside the block about a key (or a key
        inside a table) that an override set, as ``"{override}: {what is wrong}"``; any
        other error unchanged.
    """
    try:
        yield
    except SpecError as err:
        if err.key is None or err.detail is None:
            raise
        owners = [k for k in origins if err.key == k or err.key.startswith(k + ".")]
        if not owners:
            raise
        raise SpecError(f"{origins[max(owners, key=len)]}: {err.detail}", key=err.key,
                        detail=err.detail) from None


@contextmanager
def named_layers(layers):
    """Name a layer by its name, not its index, in an error about a key of a file's layer.

    Parameters
    ----------
    layers : list or None
        The layers, as the file's tables (dicts, not yet checked) or as
        :class:`~bioprop.spec.LayerSpec`.

    Raises
    ------
    SpecError
        An error raised inside the block as ``"{file}: layers.3.size: ..."`` again as
        ``"{file}: layers.hidden1.size: ..."``, its :attr:`~bioprop.errors.SpecError.key`
        still by index (for :func:`blame`); an error about a layer whose name is missing,
        not a key, a number or not unique keeps the index, and any other error is unchanged.
    """
    names = [layer.get("name") if isinstance(layer, dict) else getattr(layer, "name", None)
             for layer in (layers if isinstance(layers, (list, tuple)) else [])]
    try:
        yield
    except SpecError as err:
        match = re.fullmatch(r"layers\.(\d+)((?:\..*)?)", err.key or "")
        if match is None or err.detail is None:
            raise
        i = int(match.group(1))
        name = names[i] if i < len(names) else None
        if not (isinstance(name, str) and _PART.fullmatch(name) and "." not in name
                and not name.isdigit() and names.count(name) == 1):
            raise
        named = f"layers.{name}{match.group(2)}"
        if str(err) == f"{err.source}: {err.key}: {err.detail}":
            message = f"{err.source}: {named}: {err.detail}"
        elif str(err) == f"{err.source}: {err.detail}":  # the key inside the sentence
            message = f"{err.source}: {err.detail.replace(repr(err.key), repr(named), 1)}"
        else:
            raise
        raise SpecError(message, source=err.source, key=err.key, detail=err.detail) from None


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _layer_index(layers, part, source, text):
    if part.isdigit() and int(part) < len(layers):
        return int(part)
    names = [layer.get("name") if isinstance(layer, dict) else None for layer in layers]
    if part in names:
        return names.index(part)
    raise SpecError(f"{text}: no layer {part!r} in {source}. Layers are "
                    f"{', '.join(map(str, names))} (or indices 0..{len(layers) - 1})."
                    f"{suggest(part, [n for n in names if n])}")


def hidden_layers(value, text: str = HIDDEN_KEY) -> list:
    """The hidden layers a ``network.hidden`` shorthand describes, as layer tables.

    Parameters
    ----------
    value : str or int
        Groups joined by commas, each ``[Nx]SIZE [ACTIVATION]``: N layers (default 1) of
        SIZE ``rate`` neurons with that transfer function (default: the layer's default,
        tanh). ``"5x256 tanh"`` is Meulemans et al.'s 5 × 256 tanh; ``"2x500 tanh, 100 relu"``
        three layers. A bare number is one layer.
    text : str, optional
        The override as typed, to open an error.

    Returns
    -------
    list of dict
        One table a layer, named ``hidden1``, ``hidden2``, … in order.

    Raises
    ------
    SpecError
        For a value that is not such text, or a count or size of 0.
    """
    example = ('expected groups "[Nx]SIZE [ACTIVATION]" joined by commas, e.g. '
               'network.hidden="5x256 tanh" or "2x500 tanh, 100 relu"')
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{text}: {example}; got {value!r}")
    layers = []
    for group in value.split(","):
        match = _HIDDEN_GROUP.fullmatch(group.strip())
        if match is None:
            raise SpecError(f"{text}: {group.strip()!r} is not a group of layers: {example}")
        count, size, activation = int(match.group(1) or 1), int(match.group(2)), match.group(3)
        if not count or not size:
            raise SpecError(f"{text}: {group.strip()!r}: a group needs at least one layer of at "
                            "least one neuron")
        layers += [{"size": size, "population": "rate",
                    **({"activation": activation} if activation else {})}] * count
    return [{"name": f"hidden{i}", **layer} for i, layer in enumerate(layers, start=1)]


def _replace_hidden(data, value, source, text) -> dict:
    """Replace every layer of `data` but the last (the output) by :func:`hidden_layers`;
    returns the origins of the new layers, so that an error about one names the override."""
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{text}: {source} has no [[layers]] whose output layer it could keep")
    new = hidden_layers(value, text)
    clash = [layer.get("name") for layer in new if layer["name"] == layers[-1].get("name")]
    if clash:
        raise SpecError(f"{text}: the output layer is named {clash[0]!r}, as a new hidden layer "
                        "would be: rename the output layer")
    data["layers"] = new + [layers[-1]]
    return {f"layers.{i}": text for i in range(len(new))}
