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
batch), ``forward, target`` for difference rules, and ``forward, (noise_a,
noise_b) × n`` while the feedback pathway is pre-trained.

Each name is a :class:`PhaseKind` in :data:`PHASE_KINDS`: which somas integrate and
which dendrites listen, the nudges set when it begins and what is latched when it
ends. The engine consults the kind; phase names are spelt in this module only. A
kind's functions take the engine and the phase; they read and write the engine's
``layers``, ``latched`` (:class:`~bioprop.brian2.latches.Latches`) and ``noisy``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from bioprop.rules import teach
from bioprop.rules.updates import normalised_change
from bioprop.spec import parse_duration

from .rule_calls import dtp_target, iterations

__all__ = ["Phase", "PhaseKind", "PHASE_KINDS", "phase_kind", "trial_phases", "learner_phases",
           "step_schedule", "nudge_to", "latch_point"]


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

    @property
    def kind(self) -> PhaseKind:
        """The registry's record of this phase's name (:func:`phase_kind`)."""
        return phase_kind(self.name)


def trial_phases(phases_spec, dt, *, schedule: str, trains_feedback: bool,
                 feedback_iterations: int = 1, learn_forward: bool = True,
                 settle_each_iteration: bool = False, iterations: int = 0,
                 layer_norm: bool = False, top: int = 0, drl: bool = False,
                 noise_phases: bool = True) -> list[Phase]:
    """The phases of one training trial, each as a whole number of time steps.

    Parameters
    ----------
    phases_spec : PhasesSpec
        The protocol's ``[phases]``: the durations of ``forward``, ``feedback`` and
        ``target`` phases.
    dt : Quantity
        The time step.
    schedule : {"alternating", "parallel"}
        Whether the targets follow the feedback iterations or precede them.
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

    Returns
    -------
    list of Phase
    """
    def phase(name, key, layer=None):
        steps = max(1, int(round(float(parse_duration(getattr(phases_spec, key)) / dt))))
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
    per_iteration[-1] = replace(per_iteration[-1], ends_iteration=True)
    feedback = per_iteration * feedback_iterations
    if not trains_feedback:
        feedback = []
    if not learn_forward:
        return [phase("forward", "forward"), *feedback]
    if schedule == "parallel" or not feedback:
        return [phase("forward", "forward"), *targets, *feedback]
    return [phase("forward", "forward"), *feedback, phase("settle", "feedback"), *targets]


def learner_phases(learner, phases_spec, dt):
    """The training and the pre-training trial of `learner`'s rule and objective.

    Parameters
    ----------
    learner : Learner
        Supplies the rule, the feedback objective and the top layer.
    phases_spec : PhasesSpec
    dt : Quantity

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
    options = dict(schedule=rule.schedule, trains_feedback=learner.trains_feedback,
                   feedback_iterations=rule.feedback_iterations,
                   settle_each_iteration="clean" in points, iterations=iterations(rule),
                   layer_norm=rule.layer_norm, top=learner.top, drl="drl" in points,
                   noise_phases=bool({"noisy", "upper_noisy"} & set(points)))
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
    nudge : {"target", "drl", None}
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


# ------------------------------------------------------------ shared latches
def nudge_to(engine, l, rate):
    """Nudge held layer l so that it fires `rate`."""
    np.subtract(rate, engine.latched.h[l], out=engine.layers[l].I_nudge)


def latch_point(engine, name, l):
    """Record g_l's input, the dendrite of layer l−1 and its reconstruction, as they are."""
    dendrite = engine.layers[l - 1]
    engine.latched.trace.points[l][name] = (engine.layers[l].read_rate().copy(),
                                            dendrite.u.copy(), dendrite.g().copy())


def _latch_g_forward(engine):
    if engine.training and engine.trains_feedback:
        engine.latched.g_forward = [None] + [engine.layers[l].g().copy()
                                             for l in range(1, engine.top)]


def _target_of(engine, l):
    """Layer l's target for its forward update, read at the end of the target phase.

    A rate layer fires h + nudge exactly. A spiking layer's target is its spike
    trace (``rule.spiking_target = "trace"``), or its forward trace plus the change
    its apical dendrite asked for (``"apical"``), which leaves out the trace's own
    noise: for stochastic units the difference of two noisy traces swamps the change.
    """
    layer = engine.layers[l]
    if layer.spiking and engine.rule.spiking_target == "apical":
        return engine.latched.h[l] + layer.I_nudge
    return layer.read_rate().copy()


# ------------------------------------------------------------------ forward
def _forward_roles(engine, phase):  # dendrites are needed only to learn
    L, t = engine.model.n_layers, engine.top
    return set(range(1, L + 1)), set(range(1, t)) if engine.training else set()


def _forward_end(engine, phase):
    layers, t, L, s = engine.layers, engine.top, engine.model.n_layers, engine.latched
    rows = engine.rows()
    s.a = [None] + [layers[l].drive() for l in range(1, L + 1)]
    s.h = [layers[l].read_rate().copy() for l in range(L + 1)]
    engine.outputs[rows] = s.h[L]
    if engine.training:
        s.teaching = teach(engine.model, engine.loss_fn, s.ytarget, s.a, s.h,
                           engine.rule.top, engine.rule.target_step)
        s.targets = [None] * t + [s.teaching.target]
        s.trace.targets = list(s.targets)
        s.trace.residuals = [None] * (t + 1)
        for plasticity in engine.plastic.values():  # the presynaptic forward rate h_{l-1}
            plasticity.latch()
    _latch_g_forward(engine)


# -------------------------------------------------------------------- noise
def _noise_roles(engine, phase):
    # a layer above a noisy one integrates f(h + ε); the noisy layer's dendrite
    # listens, and so does the one below it when the objective uses h_l + δ
    noisy = engine.noisy
    upper = {l - 1 for l in noisy} if engine.objective.needs_upper_noise else set()
    return {l + 1 for l in noisy}, noisy | upper


def _noise_begin(engine, phase):
    s = engine.latched
    for l in engine.noisy:
        engine.layers[l].I_nudge[...] = s.noises[s.iteration][l]


def _noise_end(engine, phase):
    layers, t, s, points = engine.layers, engine.top, engine.latched, engine.objective.points
    for l in engine.noisy:
        if layers[l].spiking:  # the objective needs the noise the layer really fired
            s.noises[s.iteration][l] = layers[l].read_rate() - s.h[l]
        if l + 1 <= t and "noisy" in points:  # g_{l+1} reconstructs noisy layer l
            latch_point(engine, "noisy", l + 1)
        if l >= 2 and "upper_noisy" in points:  # g_l sees h_l + δ
            latch_point(engine, "upper_noisy", l)


# ------------------------------------------------------------ settle, target
def _dendrites_listen(engine, phase):
    return set(), set(range(1, engine.top))


def _settle_end(engine, phase):
    _latch_g_forward(engine)


def _target_begin(engine, phase):
    nudge_to(engine, engine.top, engine.latched.teaching.target)


def _target_end(engine, phase):
    engine.latched.trace.targets = [None] + [_target_of(engine, l)
                                             for l in range(1, engine.top + 1)]


# ------------------------------------------------- the iterative rule, per layer m
def _clamp_begin(engine, phase):  # layer m+1 fires its target; m's dendrite settles on g(ĥ)
    m = phase.layer
    nudge_to(engine, m + 1, engine.latched.targets[m + 1])


def _clamp_end(engine, phase):
    m, s = phase.layer, engine.latched
    s.g_hat, s.iterate = engine.layers[m].g().copy(), s.h[m]
    s.trace.residuals[m] = []


def _predict_begin(engine, phase):  # layer m fires x^k; m+1 integrates it: g(f(x^k))
    nudge_to(engine, phase.layer, engine.latched.iterate)


def _predict_end(engine, phase):
    """x^{k+1} = x^k + g(ĥ_{m+1}) − g(f(x^k)), from the settled dendrite (Bengio 2020)."""
    m, s = phase.layer, engine.latched
    upper = engine.layers[m + 1].read_rate()
    s.trace.residuals[m].append(np.linalg.norm(upper - s.targets[m + 1]))
    s.iterate = dtp_target(s.iterate, s.g_hat, engine.layers[m].g())
    if len(s.trace.residuals[m]) == engine.rule.iterations:
        s.targets[m] = s.trace.targets[m] = s.iterate
        s.trace.residuals[m] = np.array(s.trace.residuals[m])


# ------------------------------------------------------------ layer normalisation
def _influence_begin(engine, phase):  # layer l fires ĥ_l; the layers above carry it to the top
    nudge_to(engine, phase.layer, engine.latched.trace.targets[phase.layer])


def _influence_end(engine, phase):
    l, t, s = phase.layer, engine.top, engine.latched
    change = normalised_change(s.trace.targets[l] - s.h[l], engine.layers[t].read_rate(), s.h[t])
    s.normalised[l] = s.h[l] + change
    if l == t - 1:
        s.trace.targets[1:t] = s.normalised[1:t]


# ---------------------------------------------------------------- drl, per layer m
def _drl_up_begin(engine, phase):
    m, s = phase.layer, engine.latched
    engine.layers[m - 1].I_nudge[...] = s.noises[s.iteration][m - 1]


def _drl_up_end(engine, phase):
    engine.latched.drl_top = engine.layers[engine.top].read_rate().copy()


def _drl_down_begin(engine, phase):
    # layers l..t−1 carry the difference; layer l−1 only listens (its rate is h)
    nudge_to(engine, engine.top, engine.latched.drl_top)
    engine.latched.drl_floor = phase.layer


def _drl_down_end(engine, phase):
    latch_point(engine, "drl", phase.layer)


#: phase name → what that kind of phase does
PHASE_KINDS: dict[str, PhaseKind] = {
    "forward": PhaseKind(_forward_roles, end=_forward_end, settles_forward=True),
    "noise_a": PhaseKind(_noise_roles, _noise_begin, _noise_end, noise_parity=1),
    "noise_b": PhaseKind(_noise_roles, _noise_begin, _noise_end, noise_parity=0),
    "settle": PhaseKind(_dendrites_listen, end=_settle_end),
    "target": PhaseKind(_dendrites_listen, _target_begin, _target_end, nudge="target"),
    "clamp": PhaseKind(lambda engine, phase: (set(), {phase.layer}), _clamp_begin, _clamp_end),
    "predict": PhaseKind(lambda engine, phase: ({phase.layer + 1}, {phase.layer}),
                         _predict_begin, _predict_end),
    "influence": PhaseKind(
        lambda engine, phase: (set(range(phase.layer + 1, engine.model.n_layers + 1)), set()),
        _influence_begin, _influence_end),
    # layer m−1 fires h + ε; the layers from m up integrate it
    "drl_up": PhaseKind(
        lambda engine, phase: (set(range(phase.layer, engine.model.n_layers + 1)), set()),
        _drl_up_begin, _drl_up_end),
    # DTP differences from the top down to the dendrite of m−1
    "drl_down": PhaseKind(lambda engine, phase: (set(), set(range(phase.layer - 1, engine.top))),
                          _drl_down_begin, _drl_down_end, nudge="drl"),
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
