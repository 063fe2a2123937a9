"""Learning rules as small functions on arrays, shared by both engines.

A variant is a target rule (:data:`TARGET_RULES`) combined with a feedback
objective (:data:`FEEDBACK_OBJECTIVES`), never a subclass of another variant.
"""
from .baselines import bp_grads, gauss_newton_target, output_jacobian
from .feedback import FEEDBACK_OBJECTIVES, sample_noise
from .losses import LOSSES, one_hot
from .optimizers import OPTIMIZERS, make_optimizer
from .targets import TARGET_RULES, DifferenceContext, TargetRule, output_jacobians, top_target
from .updates import (feedback_grads, forward_grads, normalise_layers, propagate_targets, teach,
                      top_layer)

__all__ = ["TARGET_RULES", "TargetRule", "DifferenceContext", "FEEDBACK_OBJECTIVES", "LOSSES",
           "OPTIMIZERS", "make_optimizer", "sample_noise", "one_hot", "top_target", "teach",
           "top_layer", "propagate_targets", "normalise_layers", "forward_grads",
           "feedback_grads", "bp_grads", "gauss_newton_target", "output_jacobian",
           "output_jacobians"]
