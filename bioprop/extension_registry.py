"""The registries' bookkeeping behind :mod:`bioprop.extensions` (``bioprop.register``).

Every decorator of ``bioprop.register`` enters its record here (:func:`enter`), which
keeps the names bioprop ships apart from the names users registered: a built-in name is
never replaced, a user's only with ``replace=True``. :func:`unregister` and
:func:`isolated` undo what users registered.
"""
from __future__ import annotations

import inspect
import re
from contextlib import contextmanager

from .errors import suggest
from .plugins import ENTRY_POINT_GROUPS, load_entry_points, registries

__all__ = ["ExtensionError", "KINDS", "enter", "check_signature", "choice", "origin",
           "unregister", "isolated"]

#: the kinds of extension, each with its registry (:func:`bioprop.plugins.registries`)
KINDS = tuple(ENTRY_POINT_GROUPS)

#: the names bioprop ships, by kind: they cannot be replaced
_BUILTIN = {kind: frozenset(registry) for kind, registry in registries().items()}

#: the names users registered, by kind
_USER: dict = {kind: set() for kind in KINDS}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class ExtensionError(ValueError):
    """An extension that cannot be registered or run; the message names it and says why."""


def _what(kind: str, name: str) -> str:
    return f"{kind.replace('_', ' ')} {name!r}"


def enter(kind: str, name: str, record, replace: bool):
    """Put `record` into the registry of `kind` under `name`, or raise ExtensionError."""
    load_entry_points()  # so that a package's name is taken before a user's can shadow it
    registry = registries()[kind]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ExtensionError(f"{kind.replace('_', ' ')} name {name!r}: a name is letters, "
                             "digits, '_' and '-', starting with a letter or '_'")
    if name in _BUILTIN[kind]:
        raise ExtensionError(f"{_what(kind, name)} is built in and cannot be replaced; "
                             "register yours under another name")
    if name in registry and not replace:
        raise ExtensionError(f"{_what(kind, name)} is already registered; pass replace=True "
                             f"to replace it, or unregister({kind!r}, {name!r}) first")
    registry[name] = record
    _USER[kind].add(name)
    return record


def check_signature(fn, what: str, arguments: tuple, **keywords):
    """The function must accept `arguments` positionally (and `keywords`)."""
    try:
        inspect.signature(fn).bind(*arguments, **keywords)
    except TypeError as err:
        raise ExtensionError(f"{what}: the function must take ({', '.join(arguments)}"
                             f"{''.join(f', {k}=' for k in keywords)}): {err}") from None
    except ValueError:  # a builtin without a signature: it is called and fails if it must
        pass


def choice(value, choices, what: str):
    if value not in choices:
        raise ExtensionError(f"{what}: unknown {value!r}. Expected one of: "
                             f"{', '.join(choices)}.{suggest(str(value), choices)}")



def origin(fn) -> str:
    return f"{getattr(fn, '__module__', None) or 'user'}.{getattr(fn, '__qualname__', fn)}"



# ---------------------------------------------------------------------- removal
def unregister(kind: str, name: str):
    """Remove the extension `name` of `kind` (one of :data:`KINDS`) that a user registered.

    Raises
    ------
    ExtensionError
        For a built-in name, or a name no user registered.
    """
    choice(kind, KINDS, "extension kind")
    if name in _BUILTIN[kind]:
        raise ExtensionError(f"{_what(kind, name)} is built in and cannot be unregistered")
    if name not in _USER[kind]:
        raise ExtensionError(f"no {_what(kind, name)} is registered"
                             f"{suggest(str(name), sorted(_USER[kind]))}")
    del registries()[kind][name]
    _USER[kind].discard(name)


@contextmanager
def isolated():
    """Inside the block, register freely: on leaving it every registry is as it was.

    Installed packages' extensions are loaded first, so they stay registered.
    """
    load_entry_points()
    saved = {kind: dict(registry) for kind, registry in registries().items()}
    users = {kind: set(names) for kind, names in _USER.items()}
    try:
        yield
    finally:
        for kind, registry in registries().items():
            registry.clear()
            registry.update(saved[kind])
            _USER[kind].clear()
            _USER[kind].update(users[kind])
