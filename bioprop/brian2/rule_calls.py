"""The seam between the Brian2 engine and the rules: every question it asks a rule by name.

The engine's dendrites and phases need a few things from the target rule: whether it
forms targets through the learned inverses, its target for one layer, how many
iterations the ``iterative`` rule takes, and DTP's step, which the ``drl`` objective
and the ``iterative`` rule borrow whatever the model's rule is. Each of these is
asked here and nowhere else in :mod:`bioprop.brian2`, so that a change of how rules
describe themselves touches this module only.
"""
from __future__ import annotations

from bioprop.rules import TARGET_RULES, DifferenceContext

__all__ = ["uses_inverse", "inverse_target", "difference_change", "dtp_target", "iterations"]


def uses_inverse(target_rule) -> bool:
    """Whether `target_rule` forms targets through the learned feedback pathway g_l."""
    return target_rule.uses_inverse


def inverse_target(target_rule, h_lower, g_target, g_forward):
    """An inverse rule's target for layer l−1.

    Parameters
    ----------
    target_rule : TargetRule
        An inverse rule (``uses_inverse``).
    h_lower : ndarray (B, N)
        h_{l−1}, the layer's forward rate.
    g_target, g_forward : ndarray (B, N)
        g_l(ĥ_l) and g_l(h_l), the dendrite's reconstruction of the upper target and
        of the upper forward rate.

    Returns
    -------
    ndarray (B, N)
        ĥ_{l−1}.
    """
    target, _ = target_rule.fn(h_lower, g_target, g_forward)
    return target


def dtp_target(h_lower, g_target, g_forward):
    """DTP's target ĥ_{l−1} = h_{l−1} + g_l(ĥ_l) − g_l(h_l), whatever the model's rule.

    The ``drl`` objective sends its differences down this way, and one step of the
    ``iterative`` rule is this step from its current iterate. Arguments as in
    :func:`inverse_target`.
    """
    target, _ = TARGET_RULES["dtp"].fn(h_lower, g_target, g_forward)
    return target


def difference_change(target_rule, model, a, top, nudges, rule_spec, l):
    """A difference rule's change for layer l−1 from the nudges of the layers above.

    Parameters
    ----------
    target_rule : TargetRule
        A difference rule (not ``uses_inverse``).
    model : LayeredModel
    a : list of ndarray
        The latched forward drives a_l, by layer.
    top : int
        t, the layer of the top target.
    nudges : list of ndarray
        e_l, every layer's nudge now, by layer (index 0 None).
    rule_spec : RuleSpec
        Supplies the Gauss–Newton damping.
    l : int
        The upper layer of the pathway.

    Returns
    -------
    ndarray (B, N_{l−1})
    """
    ctx = DifferenceContext(model, a, top, nudges, rule_spec.damping, model.fixed)
    return target_rule.fn(ctx, l)


def iterations(rule_spec) -> int:
    """K, the ``iterative`` rule's steps per layer; 0 for every other rule."""
    return rule_spec.iterations if rule_spec.target == "iterative" else 0
