"""Extensions that installed packages offer through entry points, loaded once, when first needed.

A package registers its extensions with the decorators of :mod:`bioprop.extensions` in a
module, and names each in its ``pyproject.toml`` under the group of its kind::

    [project.entry-points."bioprop.rules"]
    halfway = "mypackage.rules:halfway"

Loading the entry point imports that module, whose decorator registers the extension under
the entry point's name. :func:`load_entry_points` does it for every group, once per
process, the first time a spec is validated (:mod:`bioprop.validation`), so that the
package's names are valid in model files, in "did you mean" and in both engines. As
xarray loads its backends, a package that fails to load is reported in a warning and left
out: it does not stop bioprop.
"""
from __future__ import annotations

import warnings

__all__ = ["ENTRY_POINT_GROUPS", "load_entry_points", "PluginWarning"]

#: extension kind (:mod:`bioprop.extensions`) → the entry-point group of packages' extensions
ENTRY_POINT_GROUPS = {"target_rule": "bioprop.rules", "feedback_objective": "bioprop.objectives",
                      "activation": "bioprop.activations", "population_kind": "bioprop.populations",
                      "plasticity_rule": "bioprop.plasticity"}

_loaded = False


class PluginWarning(RuntimeWarning):
    """An installed package's extension could not be loaded; bioprop goes on without it."""


def registries() -> dict:
    """Extension kind → its registry (the dict the spec and the engines consult)."""
    from .activations import ACTIVATIONS
    from .plasticity_rules import PLASTICITY_RULES
    from .populations import POPULATION_KINDS
    from .rules import FEEDBACK_OBJECTIVES, TARGET_RULES

    return {"target_rule": TARGET_RULES, "feedback_objective": FEEDBACK_OBJECTIVES,
            "activation": ACTIVATIONS, "population_kind": POPULATION_KINDS,
            "plasticity_rule": PLASTICITY_RULES}


def load_entry_points(entry_points=None) -> list:
    """Load every installed package's extensions, the first time it is called.

    Parameters
    ----------
    entry_points : callable (group) -> iterable of EntryPoint, optional
        Where the entry points come from (tests); by default the installed packages'
        (:func:`importlib.metadata.entry_points`). Given, the entry points are loaded
        again, whether or not they were before.

    Returns
    -------
    list of str
        ``"group:name"`` of each entry point loaded by this call.
    """
    global _loaded
    if _loaded and entry_points is None:
        return []
    _loaded = True
    if entry_points is None:
        from importlib.metadata import entry_points as installed

        entry_points = lambda group: installed(group=group)  # noqa: E731
    loaded, found = [], registries()
    for kind, group in ENTRY_POINT_GROUPS.items():
        for point in entry_points(group):
            try:
                point.load()
            except Exception as err:  # a broken package must not stop bioprop
                warnings.warn(f"entry point {point.name!r} of group {group!r} ({point.value}) "
                              f"failed to load and is left out: {type(err).__name__}: {err}",
                              PluginWarning, stacklevel=2)
                continue
            if point.name not in found[kind]:
                warnings.warn(f"entry point {point.name!r} of group {group!r} ({point.value}) "
                              f"loaded, but registered no {kind.replace('_', ' ')} of that "
                              f"name: register it with @bioprop.register.{kind}"
                              f"({point.name!r})", PluginWarning, stacklevel=2)
                continue
            loaded.append(f"{group}:{point.name}")
    return loaded
