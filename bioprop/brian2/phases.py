"""The phases of a trial: the schedule, and a registry of what each kind of phase does.

The phases of one training trial (durations from the protocol's ``[phases]``):

``forward``
    the input is clamped to the sample; somas settle on h_l = f_l(h_{l-1}) and each
    apical dendrite on g_{l+1}(h_{l+1}). At the end a_l, h_l and g(h) are latched.
``noise_a``, ``noise_b`` (once per feedback iteration)
    noise ε is injected as a nudge into the odd (then the even) layers below the
    top target, whose somas are held at their forward state, so each of them fires
    h + ε. The layer above integrates it, f(h + ε), and the noisy layer's dendrite
    settles on the reconstruction g(f(h + ε)). Alternating the parity keeps every
    auto-encoder local to its own pair of layers (docs/algorithms.md, feedback
    objectives). The feedback weights are updated at the end of ``noise_b``.
``settle`` (``alternating`` schedule only)
    after the feedback weights changed, the dendrites settle again on g(h).
``target``
    somas are held at their forward state; the top layer is nudged onto the top
    target. With an inverse rule (tp, dtp) each dendrite integrates the feedback
    pathway and nudges its rate by rule(h, g(ĥ), g(h)) − h; with a difference rule
    (bp, fa, dfa, gn) each dendrite integrates the rule's map of the nudges above
    and the nudge is the dendrite's potential. The rates settle top-down on ĥ_l.

Sub-phases replace or extend these for some rules: ``clamp`` and ``predict`` (the
``iterative`` rule, layer by layer), ``influence`` (layer normalisation: a layer
fires its target and the layers above carry it to the top), ``drl_up`` and
``drl_down`` (the ``drl`` objective: noisy activity sent to the top and its DTP
difference sent back down, through every layer above: not local).

Phase order: ``forward, (noise_a, noise_b) × n, settle, target`` for the
``alternating`` schedule, ``forward, target, (noise_a, noise_b) × n`` for
``parallel`` (targets from the feedback weights as they were at the start of the
batch), ``forward, target`` for difference rules and for fixed feedback weights,
and ``forward, (noise_a, noise_b) × n`` while the feedback pathway is pre-trained.

With ``rule.feedback_from = "twin"`` there are no feedback phases: the feedback
weights learn on the rate twin when a phase marked ``twin_feedback`` ends, the
``forward`` phase (``alternating``, and pre-training) or the last target phase
(``parallel``). Trial: ``forward, target``.

Each name is a :class:`PhaseKind` in :data:`PHASE_KINDS`: which somas integrate and
which dendrites listen, the nudges set when it begins and what is latched when it
ends (:mod:`bioprop.brian2.phase_actions`). The engine consults the kind; phase names
are spelt in this module only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable


from .phase_actions import (clamp_begin, clamp_end, clamp_roles, dendrites_listen, drl_down_begin,
                            drl_down_end, drl_down_roles, drl_up_begin, drl_up_end, drl_up_roles,
                            forward_end, forward_roles, influence_begin, influence_end,
                            influence_roles, noise_begin, noise_end, noise_roles, predict_begin,
                            predict_end, predict_roles, settle_end, target_begin, target_end)

__all__ = ["Phase", "PhaseKind", "PHASE_KINDS", "phase_kind", "trial_phases", "learner_phases",
           "step_schedule"]


@dataclass(frozen=True)
class Phase:
    """One phase of a trial: a kind of phase (by name) lasting a whole number of steps."""

    name: str
    steps: int
    #: the layer a sub-phase is about (``clamp``, ``predict``, ``influence``, ``drl_*``)
    layer: int | None = None
    #: the feedback weights are updated when this phase ends
    ends_iteration: bool = False
    #: g_l(h_l) is recorded when this phase ends (the settle that opens an iteration)
    opens_iteration: bool = False
    #: every feedback iteration of the trial runs on the rate twin when this phase ends
    #: (``rule.feedback_from = "twin"``)
    twin_feedback: bool = False

    @property
    def kind(self) -> PhaseKind:
        """The registry's record of this phase's name (:func:`phase_kind`)."""
        return phase_kind(self.name)


def trial_phases(phases_spec, dt, *, schedule: str, trains_feedback: bool,
                 feedback_iterations: int = 1, learn_forward: bool = True,
                 settle_each_iteration: bool = False, iterations: int = 0,
                 layer_norm: bool = False, top: int = 0, drl: bool = False,
                 noise_phases: bool = True, twin: bool = False) -> list[Phase]:
    """The phases of one training trial, each as a whole number of time steps.

    Parameters
    ----------
    phases_spec : PhasesSpec
        The protocol's ``[phases]``: the durations of ``forward``, ``feedback`` and
        ``target`` phases.
    dt : Quantity
        The time step.
    schedule : {"alternating", "epochs", "parallel"}
        Whether the targets follow the feedback iterations or precede them (``epochs``
        orders a trial as ``alternating``; its passes train one pathway each).
    trains_feedback : bool
        Whether there are feedback iterations at all.
    feedback_iterations : int
        How many times the per-iteration phases repeat.
    learn_forward : bool
        False while the feedback pathway is pre-trained: no target phases.
    settle_each_iteration : bool
        A ``settle`` phase before every feedback iteration, for objectives that need
        g_l(h_l) at the current feedback weights.
    iterations : int
        K > 0 (the ``iterative`` rule): the target phase becomes, for each layer
        m = t−1..1, a ``clamp`` sub-phase and K ``predict`` sub-phases.
    layer_norm : bool
        An ``influence`` sub-phase per layer follows the targets.
    top : int
        t, the layer of the top target (for the sub-phases' layers).
    drl : bool
        Each feedback iteration also sends the noisy activity of every layer l−1 up
        to the top (``drl_up``) and back down to layer l (``drl_down``).
    noise_phases : bool
        Whether the objective needs the ``noise_a``/``noise_b`` phases.
    twin : bool
        The feedback pathway learns on the rate twin: no feedback phases; the phase
        after which the targets (or, pre-training, nothing) follow is marked
        ``twin_feedback``.

    Returns
    -------
    list of Phase
    """
    def phase(name, key, layer=None):
        steps = max(1, int(round(float(getattr(phases_spec, key).quantity / dt))))
        return Phase(name, steps, layer)

    targets = [phase("target", "target")]
    if iterations:
        targets = [p for m in range(top - 1, 0, -1)
                   for p in [phase("clamp", "target", m)] + [phase("predict", "target", m)] * iterations]
    if layer_norm:
        targets += [phase("influence", "forward", l) for l in range(1, top)]

    per_iteration = []
    if settle_each_iteration:
        per_iteration.append(replace(phase("settle", "feedback"), opens_iteration=True))
    if noise_phases:
        per_iteration += [phase("noise_a", "feedback"), phase("noise_b", "feedback")]
    if drl:  # the difference reconstruction point of every g_l, l = 2..t (Meulemans 2020)
        per_iteration += [p for l in range(2, top + 1)
                          for p in (phase("drl_up", "forward", l), phase("drl_down", "target", l))]
    if per_iteration:
        per_iteration[-1] = replace(per_iteration[-1], ends_iteration=True)
    feedback = per_iteration * feedback_iterations
    if not trains_feedback or twin:
        feedback = []
    forward = phase("forward", "forward")
    if twin and trains_feedback:
        # alternating: the targets come from the new feedback weights; parallel: from
        # the weights as the trial found them, so the update waits for the last target phase
        if schedule == "parallel" and learn_forward:
            targets[-1] = replace(targets[-1], twin_feedback=True)
        else:
            forward = replace(forward, twin_feedback=True)
    if not learn_forward:
        return [forward, *feedback]
    if schedule == "parallel" or not feedback:
        return [forward, *targets, *feedback]
    return [forward, *feedback, phase("settle", "feedback"), *targets]


def learner_phases(learner, phases_spec, dt, learn_feedback: bool = True):
    """The training and the pre-training trial of `learner`'s rule and objective.

    Parameters
    ----------
    learner : Learner
        Supplies the rule, the feedback objective and the top layer.
    phases_spec : PhasesSpec
    dt : Quantity
    learn_feedback : bool
        False: the training trial leaves the feedback pathway alone (no feedback phases;
        the forward pass of the ``epochs`` schedule).

    Returns
    -------
    (list of Phase, list of Phase)
        The phases of a trial that trains both pathways, and of one that trains only
        the feedback pathway.

    Raises
    ------
    ValueError
        If a phase has no kind in :data:`PHASE_KINDS`.
    """
    rule, points = learner.rule, learner.objective.points
    options = dict(schedule=rule.schedule, trains_feedback=learner.trains_feedback and learn_feedback,
                   feedback_iterations=rule.feedback_iterations,
                   settle_each_iteration="clean" in points,
                   iterations=rule.iterations if learner.target_rule.iterates else 0,
                   layer_norm=rule.layer_norm, top=learner.top, drl=learner.objective.round_trip,
                   noise_phases=bool({"noisy", "upper_noisy"} & set(points)),
                   twin=rule.feedback_from == "twin")
    train = trial_phases(phases_spec, dt, **options)
    pretrain = trial_phases(phases_spec, dt, learn_forward=False, **options)
    for phase in train + pretrain:  # fail at construction, not in the middle of a run
        phase_kind(phase.name)
    return train, pretrain


def step_schedule(phases):
    """The phase of every step of a trial, and the steps where phases start and end.

    Returns
    -------
    (list of Phase, set of int, set of int)
    """
    steps, starts, ends = [], set(), set()
    for phase in phases:
        starts.add(len(steps))
        steps.extend([phase] * phase.steps)
        ends.add(len(steps) - 1)
    return steps, starts, ends


def _nothing(engine, phase):
    """A phase that sets no nudge, or latches nothing of its own."""


@dataclass(frozen=True)
class PhaseKind:
    """What one kind of phase does.

    Attributes
    ----------
    roles : callable (engine, phase) -> (set, set)
        The layers whose somas integrate their input (live; the others are held at
        their forward state) and the layers whose dendrites integrate their feedback.
    begin : callable (engine, phase)
        The nudges, set after every nudge was zeroed and the somas held or released.
    end : callable (engine, phase)
        What this kind latches, before the latches of the feedback iteration a phase
        opens or ends (``Phase.opens_iteration``, ``Phase.ends_iteration``).
    nudge : {"target", "round_trip", None}
        What the dendrites' nudge operations do: the rule's target (``target``),
        DTP's difference from the top (``drl``), or nothing.
    noise_parity : int or None
        The noisy layers are those of :meth:`Learner.noisy_layers` with l % 2 equal
        to it; None: no layer is noisy.
    settles_forward : bool
        The somas settle on the input: side information is the activity as it is,
        not the latched forward activity.
    """

    roles: Callable
    begin: Callable = _nothing
    end: Callable = _nothing
    nudge: str | None = None
    noise_parity: int | None = None
    settles_forward: bool = False


#: phase name → what that kind of phase does
PHASE_KINDS: dict[str, PhaseKind] = {
    "forward": PhaseKind(forward_roles, end=forward_end, settles_forward=True),
    "noise_a": PhaseKind(noise_roles, noise_begin, noise_end, noise_parity=1),
    "noise_b": PhaseKind(noise_roles, noise_begin, noise_end, noise_parity=0),
    "settle": PhaseKind(dendrites_listen, end=settle_end),
    "target": PhaseKind(dendrites_listen, target_begin, target_end, nudge="target"),
    "clamp": PhaseKind(clamp_roles, clamp_begin, clamp_end),
    "predict": PhaseKind(predict_roles, predict_begin, predict_end),
    "influence": PhaseKind(influence_roles, influence_begin, influence_end),
    "drl_up": PhaseKind(drl_up_roles, drl_up_begin, drl_up_end),
    "drl_down": PhaseKind(drl_down_roles, drl_down_begin, drl_down_end, nudge="round_trip"),
}


def phase_kind(name: str) -> PhaseKind:
    """The :class:`PhaseKind` of phase `name`.

    Raises
    ------
    ValueError
        If no kind of phase has that name.
    """
    try:
        return PHASE_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown phase {name!r}; the kinds of phase are "
                         f"{', '.join(PHASE_KINDS)}") from None
