"""Named plasticity rules: what one learning synapse adds to its weight, by name.

A layer whose synapses learn (``plasticity = "synaptic"``) runs, on each synapse and in
each trial, the Brian2 expression of its change (:class:`bioprop.pathways.SynapticPlasticity`).
``layers.N.plasticity_rule`` gives it as a name of :data:`PLASTICITY_RULES` or as the
expression itself, in the names of :data:`bioprop.pathways.RULE_VARIABLES`; empty, the
local forward rule. A user registers a rule under a name with
:func:`bioprop.register.plasticity_rule <bioprop.extensions.plasticity_rule>` (or a package
through the entry point group ``bioprop.plasticity``); it then runs exactly as the same
expression written in the model file would. Rules run in Brian2 synapses only: the
reference engine, which has none, refuses a rule other than the local one
(:mod:`bioprop.compatibility`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .pathways import LOCAL_RULE, RULE_VARIABLES

__all__ = ["PlasticityRule", "PLASTICITY_RULES", "DEFAULT_PLASTICITY_RULE", "rule_expression",
           "is_rule_name"]


@dataclass(frozen=True)
class PlasticityRule:
    """A named synaptic rule.

    Attributes
    ----------
    name : str
        Its name in a model file (``layers.N.plasticity_rule``).
    expression : callable (layer) -> str
        One synapse's change in its trial, a Brian2 expression, written for the layer
        (:class:`bioprop.spec.LayerSpec`) whose synapses run it.
    source : str
        Where it comes from.
    """

    name: str
    expression: Callable
    source: str = ""


def _fixed(expression: str) -> Callable:
    return lambda layer: expression


#: the rule of a layer that names none (an empty ``plasticity_rule``)
DEFAULT_PLASTICITY_RULE = "local"

#: rule name → its record; the built-in ones, and the users' once registered
PLASTICITY_RULES = {rule.name: rule for rule in (
    # the local forward rule ΔW_ij ∝ (ĥ_i − h_i) φ'(a_i) h_j, pathways.LOCAL_RULE
    PlasticityRule(DEFAULT_PLASTICITY_RULE, _fixed(LOCAL_RULE), "docs/algorithms.md"),
    # the same without φ': the straight-through factor of the spiking layers' twins
    PlasticityRule("straight_through", _fixed("(r_target_post - r_forward_post) * r_in"),
                   "docs/brian2-engine.md"),
)}

#: a value of ``plasticity_rule`` that is a name, not an expression
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def is_rule_name(value: str) -> bool:
    """Whether a ``plasticity_rule`` value is meant as a rule's name: a registered name, or
    a single word that no synapse can read (an expression of one variable, such as ``w``,
    stays an expression)."""
    return value in PLASTICITY_RULES or (_NAME.fullmatch(value) is not None
                                         and value not in RULE_VARIABLES)


def rule_expression(layer) -> str:
    """The Brian2 expression `layer`'s synapses run: its named rule's, its own, or the
    local rule's for an empty ``plasticity_rule``.

    Raises
    ------
    KeyError
        For a name no rule has (the spec's validation names it first, with a suggestion).
    """
    value = layer.plasticity_rule or DEFAULT_PLASTICITY_RULE
    if is_rule_name(value):
        return PLASTICITY_RULES[value].expression(layer)
    return value
