"""Learning rules as small functions on arrays, shared by both engines.

A variant is a target rule (:data:`TARGET_RULES`) combined with a feedback
objective (:data:`FEEDBACK_OBJECTIVES`), never a subclass of another variant.
Code outside this package asks the records what they need (``rule.uses_inverse``,
``rule.iterates``, ``objective.round_trip``) and never compares their names.
"""
from .baselines import backprop_deltas, bp_grads, gauss_newton_changes, output_jacobians
from .feedback import DEFAULT_OBJECTIVE, FEEDBACK_OBJECTIVES, POINTS, ROUND_TRIP, sample_noise
from .inverse import difference_correction
from .losses import LOSSES, one_hot
from .optimizers import OPTIMIZERS, make_optimizer
from .targets import (DEFAULT_TARGET_RULE, TARGET_RULES, TargetContext,
                      TargetRule, top_target)
from .updates import (TARGET_STEP_LOSSES, feedback_grads, forward_grads, gauss_newton_targets,
                      normalise_layers, normalised_change, per_sample_step, propagate_targets,
                      teach, top_layer)

__all__ = ["TARGET_RULES", "TargetRule", "TargetContext",
           "DEFAULT_TARGET_RULE", "FEEDBACK_OBJECTIVES", "DEFAULT_OBJECTIVE", "ROUND_TRIP", "POINTS", "LOSSES", "OPTIMIZERS", "make_optimizer",
           "sample_noise", "one_hot", "top_target", "teach", "top_layer", "propagate_targets",
           "gauss_newton_targets", "normalise_layers", "normalised_change", "forward_grads",
           "feedback_grads", "difference_correction", "bp_grads", "backprop_deltas",
           "output_jacobians", "gauss_newton_changes", "TARGET_STEP_LOSSES", "per_sample_step"]
