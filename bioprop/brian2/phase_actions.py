"""What each kind of phase does to the engine: its roles, its nudges, its latches.

:data:`bioprop.brian2.phases.PHASE_KINDS` assembles these into one record per kind.
Every function takes the engine and the phase (a :class:`~bioprop.brian2.phases.Phase`)
and reads or writes the engine's ``layers``, ``latched``
(:class:`~bioprop.brian2.latches.Latches`) and ``noisy``:

* ``*_roles`` return (live, listening): the layers whose somas integrate their input
  (the others are held at their forward state) and whose dendrites integrate their
  feedback;
* ``*_begin`` set the nudges, after every nudge was zeroed and the somas held or
  released;
* ``*_end`` latch what the phase settled on.

A sub-phase's ``phase.layer`` is m, the layer it is about.
"""
from __future__ import annotations

import numpy as np

from bioprop.populations import APICAL_TARGETS
from bioprop.rules import ROUND_TRIP, teach
from bioprop.rules.inverse import damped
from bioprop.rules.updates import normalised_change


__all__ = ["nudge_to", "latch_point",
           "forward_roles", "forward_end", "noise_roles", "noise_begin", "noise_end",
           "dendrites_listen", "settle_end", "target_begin", "target_end",
           "clamp_roles", "clamp_begin", "clamp_end", "predict_roles", "predict_begin",
           "predict_end", "influence_roles", "influence_begin", "influence_end",
           "drl_up_roles", "drl_up_begin", "drl_up_end", "drl_down_roles", "drl_down_begin",
           "drl_down_end"]


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
    if engine.training and engine.target_rule.uses_inverse:  # trained or fixed feedback
        engine.latched.g_forward = [None] + [engine.layers[l].g().copy()
                                             for l in range(1, engine.top)]


def _target_of(engine, l):
    """Layer l's target for its forward update, read at the end of the target phase.

    A rate layer fires h + nudge exactly. A spiking layer's target is its spike
    trace (``rule.spiking_target = "trace"``), or its forward trace plus the change
    its apical dendrite asked for (``"apical"``, ``"rate"``), which leaves out the trace's
    own noise: for stochastic units the difference of two noisy traces swamps the change.
    """
    layer = engine.layers[l]
    if layer.spiking and engine.rule.spiking_target in APICAL_TARGETS:
        return engine.latched.h[l] + layer.I_nudge
    return layer.read_rate().copy()


# ------------------------------------------------------------------ forward
def forward_roles(engine, phase):
    """Every soma settles; the dendrites listen only when the trial learns, and not when the
    feedback pathway learns on the twin as the phase ends (``phase.twin_feedback``): that
    sets every dendrite below the top target to g_l(h_l) itself, so what they integrated
    in the phase would be thrown away (for a spiking layer above, a product every step)."""
    L, t = engine.model.n_layers, engine.top
    listen = engine.training and not phase.twin_feedback
    return set(range(1, L + 1)), set(range(1, t)) if listen else set()


def forward_end(engine, phase):
    """Latch a_l, h_l and the output; teach; latch the synapses' h_{l−1}, then g_l(h_l)."""
    layers, t, L, s = engine.layers, engine.top, engine.model.n_layers, engine.latched
    rows = engine.rows()
    s.a = [None] + [layers[l].drive() for l in range(1, L + 1)]
    s.h = [layers[l].read_rate().copy() for l in range(L + 1)]
    engine.outputs[rows] = s.h[L]
    if engine.training:
        s.teaching = teach(engine.model, engine.loss_fn, s.ytarget, s.a, s.h,
                           engine.rule.top, engine.top_step(len(s.ytarget)))
        s.targets = [None] * t + [s.teaching.target]
        s.trace.targets = list(s.targets)
        s.trace.residuals = [None] * (t + 1)
        for plasticity in engine.plastic.values():  # the presynaptic forward rate h_{l-1}
            plasticity.latch()
    _latch_g_forward(engine)


# -------------------------------------------------------------------- noise
def noise_roles(engine, phase):
    """A layer above a noisy one integrates f(h + ε); the noisy layer's dendrite
    listens, and so does the one below it when the objective uses h_l + δ."""
    noisy = engine.noisy
    upper = {l - 1 for l in noisy} if engine.objective.needs_upper_noise else set()
    return {l + 1 for l in noisy}, noisy | upper


def noise_begin(engine, phase):
    """The noisy layers fire h + ε of the iteration under way."""
    s = engine.latched
    for l in engine.noisy:
        engine.layers[l].I_nudge[...] = s.noises[s.iteration][l]


def noise_end(engine, phase):
    """Latch the noise really fired (spiking layers) and the objective's noisy points."""
    layers, t, s, points = engine.layers, engine.top, engine.latched, engine.objective.points
    for l in engine.noisy:
        if layers[l].spiking:  # the objective needs the noise the layer really fired
            s.noises[s.iteration][l] = layers[l].read_rate() - s.h[l]
        if l + 1 <= t and "noisy" in points:  # g_{l+1} reconstructs noisy layer l
            latch_point(engine, "noisy", l + 1)
        if l >= 2 and "upper_noisy" in points:  # g_l sees h_l + δ
            latch_point(engine, "upper_noisy", l)


# ------------------------------------------------------------ settle, target
def dendrites_listen(engine, phase):
    """Every soma is held; every dendrite below the top target listens."""
    return set(), set(range(1, engine.top))


def settle_end(engine, phase):
    """Latch g_l(h_l) at the feedback weights as they are now."""
    _latch_g_forward(engine)


def target_begin(engine, phase):
    """The top layer fires the top target."""
    nudge_to(engine, engine.top, engine.latched.teaching.target)


def target_end(engine, phase):
    """Latch every layer's target for its forward update."""
    engine.latched.trace.targets = [None] + [_target_of(engine, l)
                                             for l in range(1, engine.top + 1)]


# ------------------------------------------------- the iterative rule, per layer m
def clamp_roles(engine, phase):
    """Layer m's dendrite settles on g(ĥ_{m+1}); no soma integrates."""
    return set(), {phase.layer}


def clamp_begin(engine, phase):
    """Layer m+1 fires its target."""
    m = phase.layer
    nudge_to(engine, m + 1, engine.latched.targets[m + 1])


def clamp_end(engine, phase):
    """Latch g(ĥ_{m+1}); the iterate starts from x⁰ = h_m."""
    m, s = phase.layer, engine.latched
    s.g_hat, s.iterate = engine.layers[m].g().copy(), s.h[m]
    s.trace.residuals[m] = []


def predict_roles(engine, phase):
    """Layer m+1 integrates x^k; layer m's dendrite settles on g(f(x^k))."""
    return {phase.layer + 1}, {phase.layer}


def predict_begin(engine, phase):
    """Layer m fires the iterate x^k."""
    nudge_to(engine, phase.layer, engine.latched.iterate)


def predict_end(engine, phase):
    """x^{k+1} = x^k + g(ĥ_{m+1}) − g(f(x^k)), from the settled dendrite (Bengio 2020)."""
    m, s = phase.layer, engine.latched
    upper = engine.layers[m + 1].read_rate()
    s.trace.residuals[m].append(np.linalg.norm(upper - s.targets[m + 1]))
    s.iterate = damped(s.iterate, engine.target_rule.local_target(s.iterate, s.g_hat,
                                                                  engine.layers[m].g()),
                       engine.rule.iteration_step)
    if len(s.trace.residuals[m]) == engine.rule.iterations:
        s.targets[m] = s.trace.targets[m] = s.iterate
        s.trace.residuals[m] = np.array(s.trace.residuals[m])


# ------------------------------------------------------------ layer normalisation
def influence_roles(engine, phase):
    """The layers above l carry its target to the top."""
    return set(range(phase.layer + 1, engine.model.n_layers + 1)), set()


def influence_begin(engine, phase):
    """Layer l fires its target ĥ_l."""
    nudge_to(engine, phase.layer, engine.latched.trace.targets[phase.layer])


def influence_end(engine, phase):
    """Scale layer l's change by its influence on the top; the last one sets the targets."""
    l, t, s = phase.layer, engine.top, engine.latched
    change = normalised_change(s.trace.targets[l] - s.h[l], engine.layers[t].read_rate(), s.h[t])
    s.normalised[l] = s.h[l] + change
    if l == t - 1:
        s.trace.targets[1:t] = s.normalised[1:t]


# ---------------------------------------------------------------- drl, per layer m
def drl_up_roles(engine, phase):
    """Layer m−1 fires h + ε; the layers from m up integrate it."""
    return set(range(phase.layer, engine.model.n_layers + 1)), set()


def drl_up_begin(engine, phase):
    """Layer m−1 fires h + ε."""
    m, s = phase.layer, engine.latched
    engine.layers[m - 1].I_nudge[...] = s.noises[s.iteration][m - 1]


def drl_up_end(engine, phase):
    """Latch the top layer's rate."""
    engine.latched.drl_top = engine.layers[engine.top].read_rate().copy()


def drl_down_roles(engine, phase):
    """DTP differences from the top down to the dendrite of m−1; no soma integrates."""
    return set(), set(range(phase.layer - 1, engine.top))


def drl_down_begin(engine, phase):
    """The top fires what it latched; layers m..t−1 carry the difference down."""
    # layer m−1 only listens (its rate is h)
    nudge_to(engine, engine.top, engine.latched.drl_top)
    engine.latched.drl_floor = phase.layer


def drl_down_end(engine, phase):
    """Latch the difference reconstruction point of g_m."""
    latch_point(engine, ROUND_TRIP, phase.layer)
