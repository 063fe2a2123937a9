"""The Brian2 engine: layered populations that learn by target propagation in time.

Each layer is a pair of Brian2 groups (:mod:`bioprop.populations`) of B·N neurons,
B trials side by side. Dense pathways (:mod:`bioprop.pathways`) are network
operations that apply one shared weight matrix to the (B, N) view of a group.
One ``Network.run`` covers a whole epoch: a controller operation switches the
stimulus and the phase inside the run, so no Python loop calls ``run`` per trial.

A layer may also be spiking or stochastic (``lif``, ``poisson``, ``bernoulli``;
:mod:`bioprop.spiking`). The engine speaks to every layer in rates: a spiking soma
is read through its spike trace, and the rate nudge the feedback asks for reaches
it as the apical current its rate twin says will produce that change
(:class:`_SpikingLayer`). The phases are the same for every kind.

The phases of one training trial (durations from the protocol's ``[phases]``):

``forward``
    the input is clamped to the sample; somas settle on h_l = f_l(h_{l-1}) and each
    apical dendrite on g_{l+1}(h_{l+1}). At the end a_l, h_l and g(h) are latched.
``noise_a``, ``noise_b`` (once per feedback iteration)
    noise ε is injected as a nudge into the odd (then the even) layers below the
    top target, whose somas are held at their forward state, so each of them fires
    h + ε. The layer above integrates it, f(h + ε), and the noisy layer's dendrite
    settles on the reconstruction g(f(h + ε)). Alternating the parity keeps every
    auto-encoder local to its own pair of layers (ALGORITHMS.md, feedback objectives).
    The feedback weights are updated at the end of ``noise_b``.
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
noise_b) × n`` while the feedback pathway is pre-trained. At the end of the trial
the settled quantities go to the same update functions as in the reference engine
(:mod:`bioprop.rules.updates`). Within one time step the
operations run bottom-up for the feedforward pathway, then top-down for the
feedback pathway; with dt = τ (Euler) each phase therefore settles exactly in one
step, which is the engine's fastest setting.
"""
from __future__ import annotations

import gc
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .learner import BatchTrace, Learner, batches
from .pathways import (SynapticPlasticity, copy_weights, dense_operation, read_weights,
                       synaptic_current, synaptic_projection)
from .populations import apical_dendrite, clamped_input, layer_population, rate_soma
from .spiking import poisson_input, trace_jump
from .rules import TARGET_RULES, DifferenceContext, forward_grads, teach
from .rules.updates import normalised_change
from .spec import parse_duration

__all__ = ["Brian2Engine", "trial_phases"]


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    #: the layer a sub-phase is about (``clamp``, ``predict``, ``influence``, ``drl_*``)
    layer: int | None = None
    #: the feedback weights are updated when this phase ends
    ends_iteration: bool = False
    #: g_l(h_l) is recorded when this phase ends (the settle that opens an iteration)
    opens_iteration: bool = False


def trial_phases(phases_spec, dt, *, schedule: str, trains_feedback: bool,
                 feedback_iterations: int = 1, learn_forward: bool = True,
                 settle_each_iteration: bool = False, iterations: int = 0,
                 layer_norm: bool = False, top: int = 0, drl: bool = False,
                 noise_phases: bool = True) -> list[Phase]:
    """The phases of one training trial, each as a whole number of time steps.

    `settle_each_iteration` puts a ``settle`` phase before every feedback iteration,
    for objectives that need g_l(h_l) at the current feedback weights. With
    `iterations` K > 0 (the ``iterative`` rule) the target phase becomes, for each
    layer m = t−1..1, a ``clamp`` sub-phase and K ``predict`` sub-phases; with
    `layer_norm`, an ``influence`` sub-phase per layer follows the targets. With
    `drl`, each feedback iteration also sends the noisy activity of every layer l−1
    up to the top (``drl_up``) and back down to layer l (``drl_down``).
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


def _view(group, var, batch):
    """The (B, N) view of a group's state variable: writes go straight to Brian2."""
    return group.variables[var].get_value().reshape(batch, -1)


class _InputLayer:
    """The input population: clamped rates, or Poisson spike trains and their trace."""

    def __init__(self, group, batch, poisson=False):
        self.soma, self.apical, self.clamp, self.spiking = None, None, group, poisson
        self.rate = _view(group, "r", batch)
        self.data = _view(group, "x", batch) if poisson else self.rate

    def read_rate(self):
        return self.rate

    def state(self):
        if not self.spiking:
            return {"r": self.rate}
        return {"x": self.data, "z": _view(self.clamp, "z", len(self.rate)), "r": self.rate}


class _RateLayer:
    """The groups of one rate layer and (B, N) views of their state arrays."""

    spiking = False

    def __init__(self, soma, apical, batch, activation, feedback_activation, clock):
        self.soma, self.apical, self.clamp = soma, apical, None
        self.clock, self._stamp = clock, None
        self.held = None  # the forward rate h while the soma is held at v = a, else None
        self.activation, self.feedback_activation = activation, feedback_activation
        self.v, self.I_ff, self.I_nudge = (_view(soma, k, batch) for k in ("v", "I_ff", "I_nudge"))
        self.rate, self.phi_v = np.zeros_like(self.v), np.zeros_like(self.v)
        self._view_dendrite(apical, batch)

    def _view_dendrite(self, apical, batch):
        """(B, N) views of the apical dendrite's potential u and input I_fb, if it has one."""
        if apical is not None:
            self.u, self.I_fb = _view(apical, "u", batch), _view(apical, "I_fb", batch)

    def read_rate(self):
        """r = φ(v) + I_nudge, as it is now (a buffer, valid until the next call)."""
        if self.held is not None:  # v = a exactly, so φ(v) = h: no need to evaluate φ
            return np.add(self.held, self.I_nudge, out=self.rate)
        # Every read within a time step comes after this soma's state update, so
        # φ(v) is computed once per step however many pathways read the rate.
        if self._stamp != self.clock():
            self.phi_v[...] = self.activation.fn(self.v)
            self._stamp = self.clock()
        return np.add(self.phi_v, self.I_nudge, out=self.rate)

    def drive(self):
        """a_l, the settled basal input (v has settled on I_ff)."""
        return self.v.copy()

    def hold(self, a, h):
        """Hold the soma at its forward state: it fires h + I_nudge."""
        self.v[...] = a
        self.I_ff[...] = a
        self.held = h

    def release(self):
        self.held = None

    def g(self):
        return self.feedback_activation.fn(self.u)

    def state(self):
        names = ("v", "I_ff", "I_nudge") + (("u", "I_fb") if self.apical is not None else ())
        return {name: getattr(self, name) for name in names}


class _SpikingLayer(_RateLayer):
    """A spiking or stochastic layer (:mod:`bioprop.spiking`) with a rate dendrite.

    The engine speaks to every layer in rates: ``I_nudge`` is the change of rate the
    feedback asks for. A spiking soma cannot add it to its output, so
    :meth:`apical_current` turns it into the apical current that moves the
    population's firing by that much according to its rate twin,
    I_apical = φ⁻¹(φ(a) + I_nudge) − a, while the soma is held at its forward drive a.
    The rate the rules and the pathways read is the spike trace (or binary state).
    """

    spiking = True

    def __init__(self, soma, apical, batch, population, feedback_activation):
        self.soma, self.apical, self.clamp = soma, apical, None
        self.population = population
        self.activation, self.feedback_activation = population.activation, feedback_activation
        self.held = None
        self.I_ff, self.I_apical = _view(soma, "I_ff", batch), _view(soma, "I_apical", batch)
        self.I_nudge = np.zeros_like(self.I_ff)
        self.rate = _view(soma, population.rate_variable, batch)
        self._drive = self._rest = None
        self._batch = batch
        self._view_dendrite(apical, batch)

    def read_rate(self):
        return self.rate

    def drive(self):
        return self.I_ff.copy()

    def hold(self, a, h):
        """Keep the basal input at the forward drive a; the neurons go on firing."""
        self.I_ff[...] = a
        self.held = h
        if self._drive is not a:  # the twin's rate at a, once per latched drive
            self._drive, self._rest = a, self.activation.fn(a)

    def apical_current(self):
        """Set I_apical from I_nudge (a Brian2 operation, before the soma's update)."""
        if self.held is None:
            self.I_apical[...] = 0.0
        else:
            self.I_apical[...] = self.population.apical_current(self.I_nudge, self._drive,
                                                                self._rest)

    def state(self):
        out = {name: _view(self.soma, name, self._batch)
               for name in self.population.state_variables}
        out["I_nudge"] = self.I_nudge
        if self.apical is not None:
            out.update(u=self.u, I_fb=self.I_fb)
        return out


class Brian2Engine(Learner):
    """Train a LayeredModel as Brian2 populations simulated in time.

    Parameters
    ----------
    model : LayeredModel
    spec : ModelSpec
    protocol : ProtocolSpec
        Supplies the phase durations, dt and the codegen target.
    batch_size : int
        B, the number of trials simulated side by side.
    """

    name = "brian2"

    def __init__(self, model, spec, protocol, batch_size: int):
        super().__init__(model, spec, batch_size)
        import brian2

        # Divergence is detected (and reported once) by the training loop.
        brian2.BrianLogger.suppress_name("invalid_values")
        self.brian2 = brian2
        self.codegen = protocol.engine.codegen
        self.dt = parse_duration(protocol.phases.dt)
        options = dict(schedule=self.rule.schedule, trains_feedback=self.trains_feedback,
                       feedback_iterations=self.rule.feedback_iterations,
                       settle_each_iteration="clean" in self.objective.points,
                       iterations=self.rule.iterations if self.rule.target == "iterative" else 0,
                       layer_norm=self.rule.layer_norm, top=self.top,
                       drl="drl" in self.objective.points,
                       noise_phases=bool({"noisy", "upper_noisy"} & set(self.objective.points)))
        self.train_phases = trial_phases(protocol.phases, self.dt, **options)
        self.pretrain_phases = trial_phases(protocol.phases, self.dt, learn_forward=False, **options)
        self.eval_phases = self.train_phases[:1]
        #: each layer's SpikingPopulation (None for a rate layer), index 0 the input
        self._populations = [None] + [layer_population(ls, self.dt) for ls in spec.layers]
        self.stochastic = spec.network.input_encoding == "poisson" or any(
            p.stochastic for p in self._populations if p is not None)
        if self.stochastic:  # Brian2's rand() draws from its own generator: seed it
            brian2.seed(protocol.training.seed)
        self._build(spec)

    # ------------------------------------------------------------------ build
    def _build(self, spec):
        b2, model, t = self.brian2, self.model, self.top
        # One clock for every object: Brian2 then advances a single clock per step.
        self.clock = b2.Clock(self.dt, name="trial_clock*")
        layers = [self._input_layer(spec)]
        groups = [layers[0].clamp]
        for l in range(1, model.n_layers + 1):
            layer = self._layer(spec.layers[l - 1], l)
            groups += [g for g in (layer.apical, layer.soma) if g is not None]
            layers.append(layer)
        self.layers = layers
        self.phase = None
        self._noisy: set[int] = set()
        self._live: set[int] = set()  # somas that integrate their input in this phase
        self._listening: set[int] = set()  # dendrites that integrate their feedback
        self._tick = 0  # time steps ever simulated: never reset, so caches never go stale
        self._clamped_trial = 0  # trials ever begun: the clamped input's version

        ops = [b2.NetworkOperation(self._on_step_start, clock=self.clock, when="start",
                                   name="controller"),
               b2.NetworkOperation(self._on_step_end, clock=self.clock, when="end",
                                   name="phase_end")]
        self._synaptic = {}  # l → (Synapses, mask, current group) of a `synapses` pathway
        self._plastic = {}  # l → SynapticPlasticity of a pathway with plasticity = "synaptic"
        for l in range(1, model.n_layers + 1):
            ops += self._forward_pathway(spec, l)
            if layers[l].spiking:  # the nudge becomes an apical current before the soma's update
                ops.append(b2.NetworkOperation(layers[l].apical_current, clock=self.clock,
                                               when="groups", order=10 * l - 1,
                                               name=f"apical_current_{l}"))
        for l in range(1, t):
            if self.target_rule.uses_inverse:
                side = (lambda l=l: self._side_drive(l + 1)) if model.side else None
                ops.append(dense_operation(model.feedback[l + 1], layers[l + 1].read_rate,
                                           layers[l].I_fb, self._gate_feedback(l),
                                           name=f"feedback_{l + 1}", clock=self.clock,
                                           order=1000 - 10 * l, extra=side))
            else:
                ops.append(b2.NetworkOperation(self._difference_operation(l), clock=self.clock,
                                               when="groups", order=1000 - 10 * l,
                                               name=f"feedback_{l + 1}"))
            ops.append(b2.NetworkOperation(self._nudge_operation(l), clock=self.clock,
                                           when="groups", order=1000 - 10 * l + 2,
                                           name=f"nudge_{l}"))
        self.network = b2.Network(*groups, *ops)
        self._simulate(0 * b2.ms)  # prepare the code objects before gc.freeze
        for plasticity in self._plastic.values():  # not in the network: prepared here
            plasticity.prepare()
        # Network.run calls gc.collect(); freezing the long-lived objects makes that cheap.
        gc.collect()
        gc.freeze()

    def _input_layer(self, spec):
        B, n, net = self.batch_size, self.model.sizes[0], spec.network
        if net.input_encoding == "poisson":
            group = poisson_input("input", B * n, max_rate=net.input_rate * self.brian2.Hz,
                                  tau_trace=parse_duration(net.input_tau_trace), clock=self.clock,
                                  dtype=self.dtype)
            return _InputLayer(group, B, poisson=True)
        return _InputLayer(clamped_input("input", B * n, clock=self.clock, dtype=self.dtype), B)

    def _layer(self, ls, l):
        """The groups of layer l (spec `ls`): a soma of the layer's kind and, below the top
        target, a rate dendrite computing the feedback pathway's reconstruction."""
        B, n = self.batch_size, self.batch_size * self.model.sizes[l]
        act, psi = self.model.activations[l], self.model.feedback_activations[l]
        apical = None
        if l < self.top:  # layers below the top target receive feedback
            apical = apical_dendrite(f"{ls.name}_apical", n, parse_duration(ls.tau_apical), psi,
                                     clock=self.clock, order=1000 - 10 * l + 1, dtype=self.dtype)
        population = self._populations[l]
        if population is not None:
            soma = population.build(f"{ls.name}_soma", n, self.clock, 10 * l, self.dtype)
            return _SpikingLayer(soma, apical, B, population, psi)
        soma = rate_soma(f"{ls.name}_soma", n, parse_duration(ls.tau), act, clock=self.clock,
                         order=10 * l, dtype=self.dtype)
        return _RateLayer(soma, apical, B, act, psi, clock=lambda: self._tick)

    def _forward_pathway(self, spec, l):
        """The Brian2 objects of feedforward pathway l.

        ``dense``: one operation, I_ff = W r + b while layer l is live. ``synapses``:
        Brian2 Synapses into a current group (pathways.synaptic_current) and a gate that
        copies I_ff_syn + b into I_ff while the layer is live, so that held layers keep
        their latched drive exactly as on the dense path. With ``plasticity = "synaptic"``
        the synapses also carry the forward rule (pathways.SynapticPlasticity). Orders
        within a step: the layer below (10(l−1)), the summed synaptic input (10l − 4,
        Brian2 puts it just before its target group at 10l − 3), the gate (10l − 2), the
        soma (10l).
        """
        b2, B, ls, W = self.brian2, self.batch_size, spec.layers[l - 1], self.model.forward[l]
        layers, gate = self.layers, self._gate_forward(l)
        if ls.connection == "dense":
            # a clamped input changes only between trials, and W_1 only after them
            version = (lambda: self._clamped_trial) if l == 1 and not layers[0].spiking else None
            return [dense_operation(W, layers[l - 1].read_rate, layers[l].I_ff, gate,
                                    name=f"forward_{l}", clock=self.clock, order=10 * l - 2,
                                    version=version)]
        mask = self.model.fixed.get("mask", {}).get(l)
        mask = np.ones(W.shape, W.weight.dtype) if mask is None else mask
        pre = layers[l - 1].soma if l > 1 else layers[0].clamp
        delay = parse_duration(ls.delay, allow_zero=True)
        spikes = {}
        if delay > 0 * b2.ms:  # spec validation: the layer below spikes (lif or poisson)
            kind = layers[l - 1].population.kind if l > 1 else "poisson"
            spikes = dict(on_spike=trace_jump(kind, "_pre"), delay=delay)
        plastic = ls.plasticity == "synaptic"
        current = synaptic_current(
            f"{ls.name}_ff_syn", B * self.model.sizes[l], clock=self.clock, order=10 * l - 3,
            dtype=self.dtype, plastic=plastic,
            tau_syn=pre.variables["tau_trace"].get_value().item() * b2.second if spikes else None)
        synapses = synaptic_projection(W, pre, current, B, mask=mask, name=f"forward_{l}_synapses",
                                       clock=self.clock, order=10 * l - 3, plastic=plastic,
                                       **spikes)
        # a copy: the synapses stay as built even if a checkpoint brought another mask
        self._synaptic[l] = (synapses, mask.copy(), current)
        if plastic:  # spec validation: the forward optimizer is SGD
            self._plastic[l] = SynapticPlasticity(synapses, B, self.forward_optimizer.lr * ls.lr_scale,
                                                  ls.plasticity_rule)
        I_syn, I_ff = _view(current, "I_ff_syn", B), layers[l].I_ff

        def copy_when_live():
            if gate():
                np.add(I_syn, W.bias, out=I_ff)
        return [current, synapses, b2.NetworkOperation(copy_when_live, clock=self.clock,
                                                       when="groups", order=10 * l - 2,
                                                       name=f"forward_{l}")]

    def _copy_synaptic_weights(self, skip=()):
        """Synaptic weights ← the dense W_l (masked: only existing synapses), except in the
        pathways of `skip`."""
        for l, (synapses, mask, _) in self._synaptic.items():
            if l not in skip:
                copy_weights(synapses, self.model.forward[l].weight, mask, self.batch_size)

    def _learn_synaptically(self, l):
        """The synapses of pathway l apply the local forward rule themselves; W_l reads them back.

        The postsynaptic signals are the quantities forward_grads uses (h_l, ĥ_l, φ'(a_l)).
        Returns the gradient that was applied, W_l −= lr · gradient, as the dense path's
        trace holds it.
        """
        synapses, mask, _ = self._synaptic[l]
        change = self._plastic[l].learn(self._h[l], self._trace.targets[l],
                                        self.model.activations[l].derivative(self._a[l]))
        weight = self.model.forward[l].weight
        read_weights(synapses, weight, mask, self.batch_size)
        gradient = np.zeros_like(weight)
        gradient[np.nonzero(mask)] = -change
        return gradient

    def _gate_forward(self, l):
        return lambda: l in self._live

    def _gate_feedback(self, l):
        return lambda: l in self._listening

    def _nudge_operation(self, l):
        layer, rule = self.layers[l], self.target_rule

        def nudge():
            if self.phase == "drl_down":  # DRL sends differences down DTP's way, whatever the rule
                if l >= self._drl_floor:
                    target, _ = TARGET_RULES["dtp"].fn(self._h[l], layer.g(), self._g_forward[l])
                    np.subtract(target, self._h[l], out=layer.I_nudge)
                return
            if self.phase != "target":
                return
            if rule.uses_inverse:
                target, _ = rule.fn(self._h[l], layer.g(), self._g_forward[l])
                np.subtract(target, self._h[l], out=layer.I_nudge)
            else:  # the dendrite carries the change itself
                layer.I_nudge[...] = layer.u
        return nudge

    def _side_drive(self, l):
        """R_l s: the side information of pathway l, into the dendrite of layer l−1."""
        if self.rule.side_information == "label":
            s = self._ytarget
        elif self.phase == "forward":  # the layer's own activity, as it settles
            s = self.layers[l - 1].read_rate()
        else:  # the layer's own forward activity, latched
            s = self._h[l - 1]
        return s @ self.model.side[l].T

    def _difference_operation(self, l):
        """The dendrite of layer l integrates rule(e_{l+1}) where e_k is layer k's nudge."""
        layer = self.layers[l]

        def feedback():
            if self.phase == "target":
                ctx = DifferenceContext(self.model, self._a, self.top,
                                        [None] + [lay.I_nudge for lay in self.layers[1:]],
                                        self.rule.damping, self.model.fixed)
                layer.I_fb[...] = self.target_rule.fn(ctx, l + 1)
        return feedback

    # --------------------------------------------------------------- running
    def _schedule(self, phases):
        """The phase of every step of a trial, and the steps where phases start and end."""
        steps, starts, ends = [], set(), set()
        for phase in phases:
            starts.add(len(steps))
            steps.extend([phase] * phase.steps)
            ends.add(len(steps) - 1)
        return steps, starts, ends

    def _run(self, x, y, phases, train: bool, rng, progress, learn_forward=True, learn=True):
        """Simulate len(x) / B trials with one Network.run.

        With ``learn=False`` every phase runs and every update is computed, but no
        weight changes (the probe trials of activity recording).
        """
        self._x, self._y, self._rng, self._train, self._progress = x, y, rng, train, progress
        self._learn_forward, self._learn = learn_forward, learn
        self._names, self._starts, self._ends = self._schedule(phases)
        self._step, self._trial = -1, 0
        n_steps = len(self._names) * (len(x) // self.batch_size)
        self._outputs = np.empty((len(x), self.model.sizes[-1]), self.dtype)
        self._loss_sum, self._correct = 0.0, 0
        self._simulate(n_steps * self.dt)
        return self._outputs

    def _simulate(self, duration):
        # The codegen target is a global Brian2 preference: set it for this network's run.
        self.brian2.prefs.codegen.target = self.codegen
        with warnings.catch_warnings():
            # Brian2 checks float32 state against 1e50 before a run, which does not fit in a
            # float32: numpy warns of the cast, not of any value of ours.
            warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
            self.network.run(duration, namespace={})

    def _on_step_start(self):
        self._step += 1
        self._tick += 1
        s = self._step % len(self._names)
        if s == 0:
            self._begin_trial()
        if s in self._starts:
            self._begin_phase(self._names[s])

    def _on_step_end(self):
        s = self._step % len(self._names)
        if s in self._ends:
            self._end_phase(self._names[s])
        if s == len(self._names) - 1:
            if self._train and self._learn_forward and self._learn:
                self._forward_update()
            self._finish_trial()
            self._trial += 1

    def _rows(self):
        """The rows of the current trial's batch in the run's data."""
        return slice(self._trial * self.batch_size, (self._trial + 1) * self.batch_size)

    def _begin_trial(self):
        B, rows = self.batch_size, self._rows()
        self.layers[0].data[...] = self._x[rows]
        self._clamped_trial += 1
        for layer in self.layers[1:]:
            layer.I_nudge[...] = 0.0
        if self._train:
            self._ytarget = self.targets_of(self._y[rows])
            self._noises, self._iteration = self.draw_noise(self._rng, B), 0
            self._normalised = [None] * (self.top + 1)
            self._trace = BatchTrace(a=[None], h=[self._x[rows]],
                                     noise=self._noises[-1] if self._noises else [],
                                     points=[None, None] + [{} for _ in range(2, self.top + 1)])

    def _hold_forward_state(self, l):
        self.layers[l].hold(self._a[l], self._h[l])

    def _roles(self, phase):
        """Which somas integrate (live) and which dendrites listen in `phase`."""
        L, t, m = self.model.n_layers, self.top, phase.layer
        match phase.name:
            case "forward":  # dendrites are needed only to learn
                return set(range(1, L + 1)), set(range(1, t)) if self._train else set()
            case "noise_a" | "noise_b":
                # a layer above a noisy one integrates f(h + ε); the noisy layer's dendrite
                # listens, and so does the one below it when the objective uses h_l + δ
                upper = {l - 1 for l in self._noisy} if self.objective.needs_upper_noise else set()
                return {l + 1 for l in self._noisy}, self._noisy | upper
            case "settle" | "target":
                return set(), set(range(1, t))
            case "clamp":
                return set(), {m}
            case "predict":
                return {m + 1}, {m}
            case "influence":
                return set(range(m + 1, L + 1)), set()
            case "drl_up":  # layer m−1 fires h + ε; the layers from m up integrate it
                return set(range(m, L + 1)), set()
            case "drl_down":  # DTP differences from the top down to the dendrite of m−1
                return set(), set(range(m - 1, t))
        raise ValueError(f"unknown phase {phase.name!r}")

    def _begin_phase(self, phase):
        t, name = self.top, phase.name
        self.phase = name
        self._noisy = set()
        if name in ("noise_a", "noise_b"):
            parity = 1 if name == "noise_a" else 0
            self._noisy = {l for l in self.noisy_layers() if l % 2 == parity}
        self._live, self._listening = self._roles(phase)
        for l in range(1, self.model.n_layers + 1):
            self.layers[l].I_nudge[...] = 0.0
            if l in self._live:
                self.layers[l].release()
            else:  # a soma that does not integrate is held at its forward state
                self._hold_forward_state(l)
        for l in self._noisy:
            self.layers[l].I_nudge[...] = self._noises[self._iteration][l]
        if name == "target":
            self._nudge_to(t, self._teaching.target)
        elif name == "clamp":  # layer m+1 fires its target; m's dendrite settles on g(ĥ)
            self._nudge_to(phase.layer + 1, self._targets[phase.layer + 1])
        elif name == "predict":  # layer m fires x^k; m+1 integrates it: g(f(x^k))
            self._nudge_to(phase.layer, self._iterate)
        elif name == "influence":  # layer l fires ĥ_l; the layers above carry it to the top
            self._nudge_to(phase.layer, self._trace.targets[phase.layer])
        elif name == "drl_up":
            m = phase.layer
            self.layers[m - 1].I_nudge[...] = self._noises[self._iteration][m - 1]
        elif name == "drl_down":
            # layers l..t−1 carry the difference; layer l−1 only listens (its rate is h)
            self._nudge_to(t, self._drl_top)
            self._drl_floor = phase.layer

    def _nudge_to(self, l, rate):
        """Nudge held layer l so that it fires `rate`."""
        np.subtract(rate, self._h[l], out=self.layers[l].I_nudge)

    def _end_phase(self, phase):
        layers, t, L, name = self.layers, self.top, self.model.n_layers, phase.name
        if name == "forward":
            rows = self._rows()
            self._a = [None] + [layers[l].drive() for l in range(1, L + 1)]
            self._h = [layers[l].read_rate().copy() for l in range(L + 1)]
            self._outputs[rows] = self._h[L]
            if self._train:
                self._teaching = teach(self.model, self.loss_fn, self._ytarget, self._a, self._h,
                                       self.rule.top, self.rule.target_step)
                self._targets = [None] * t + [self._teaching.target]
                self._trace.targets = list(self._targets)
                self._trace.residuals = [None] * (t + 1)
        if name == "forward" and self._train:  # the synapses' presynaptic forward rate h_{l-1}
            for plasticity in self._plastic.values():
                plasticity.latch()
        if name in ("forward", "settle") and self._train and self.trains_feedback:
            self._g_forward = [None] + [layers[l].g().copy() for l in range(1, t)]
        if name in ("noise_a", "noise_b"):
            points = self.objective.points
            for l in self._noisy:
                if layers[l].spiking:  # the objective needs the noise the layer really fired
                    self._noises[self._iteration][l] = layers[l].read_rate() - self._h[l]
                if l + 1 <= t and "noisy" in points:  # g_{l+1} reconstructs noisy layer l
                    self._latch_point("noisy", l + 1)
                if l >= 2 and "upper_noisy" in points:  # g_l sees h_l + δ
                    self._latch_point("upper_noisy", l)
        if name == "target":
            self._trace.targets = [None] + [self._target_of(l) for l in range(1, t + 1)]
        if name == "drl_up":
            self._drl_top = layers[t].read_rate().copy()
        if name == "drl_down":
            self._latch_point("drl", phase.layer)
        if phase.opens_iteration:  # g_l(h_l) at the weights this iteration starts from
            for l in range(2, t + 1):
                self._latch_point("clean", l)
        if phase.ends_iteration:
            self._feedback_update()
        if name == "clamp":
            m = phase.layer
            self._g_hat, self._iterate = layers[m].g().copy(), self._h[m]
            self._trace.residuals[m] = []
        if name == "predict":
            self._iterate_once(phase.layer)
        if name == "influence":
            l = phase.layer
            change = normalised_change(self._trace.targets[l] - self._h[l],
                                       layers[t].read_rate(), self._h[t])
            self._normalised[l] = self._h[l] + change
            if l == t - 1:
                self._trace.targets[1:t] = self._normalised[1:t]

    def _target_of(self, l):
        """Layer l's target for its forward update, read at the end of the target phase.

        A rate layer fires h + nudge exactly. A spiking layer's target is its spike
        trace (``rule.spiking_target = "trace"``), or its forward trace plus the change
        its apical dendrite asked for (``"apical"``), which leaves out the trace's own
        noise: for stochastic units the difference of two noisy traces swamps the change.
        """
        layer = self.layers[l]
        if layer.spiking and self.rule.spiking_target == "apical":
            return self._h[l] + layer.I_nudge
        return layer.read_rate().copy()

    def _iterate_once(self, m):
        """x^{k+1} = x^k + g(ĥ_{m+1}) − g(f(x^k)), from the settled dendrite (Bengio 2020)."""
        upper = self.layers[m + 1].read_rate()
        self._trace.residuals[m].append(np.linalg.norm(upper - self._targets[m + 1]))
        self._iterate, _ = TARGET_RULES["dtp"].fn(self._iterate, self._g_hat, self.layers[m].g())
        if len(self._trace.residuals[m]) == self.rule.iterations:
            self._targets[m] = self._trace.targets[m] = self._iterate
            self._trace.residuals[m] = np.array(self._trace.residuals[m])

    def _latch_point(self, name, l):
        """Record g_l's input, the dendrite of layer l−1 and its reconstruction, as they are."""
        dendrite = self.layers[l - 1]
        self._trace.points[l][name] = (self.layers[l].read_rate().copy(), dendrite.u.copy(),
                                       dendrite.g().copy())

    def _feedback_update(self):
        trace, eps = self._trace, self._noises[self._iteration]
        trace.feedback_grads, trace.feedback_losses = self.feedback_update(
            self._h, eps, trace.points, self.side_for(self._h, self._ytarget), apply=self._learn)
        self._iteration += 1

    def _forward_update(self):
        trace = self._trace
        grads = forward_grads(self.model, self._a, self._h, trace.targets, self.top,
                              bias_only=self._plastic)
        if self._teaching.output_grads is not None:
            grads.append(self._teaching.output_grads)
        for l in self._plastic:  # these weights learn in their synapses, not in the optimizer
            grads[l][0] = self._learn_synaptically(l)
        self.apply_forward(grads, applied=self._plastic)
        self._copy_synaptic_weights(skip=self._plastic)
        trace.forward_grads = grads

    def _finish_trial(self):
        if self._train:
            self._trace.a, self._trace.h, self._trace.loss = self._a, self._h, self._teaching.loss
            batch_loss, correct = self.score(self._h[-1], self._y[self._rows()], self._teaching.loss)
            self._loss_sum += batch_loss
            self._correct += correct
            self.last_trace = self._trace
        if self._progress is not None:
            self._progress(self.batch_size)

    def dynamic_state(self) -> dict:
        """The populations' state variables, as (B, N) views of Brian2's own arrays.

        Each trial starts from the state the last one left, so a checkpoint needs them.
        """
        out = {f"brian2/input/{name}": value for name, value in self.layers[0].state().items()}
        for l, layer in enumerate(self.layers[1:], start=1):
            out.update({f"brian2/{l}/{name}": value for name, value in layer.state().items()})
        for l, (_, _, current) in self._synaptic.items():  # a delayed pathway's filter state
            out.update({f"brian2/{l}/{name}": _view(current, name, self.batch_size)
                        for name in ("z_I_ff_syn", "I_ff_syn") if name in current.variables})
        if self.stochastic:  # the generator behind Brian2's rand()
            out["brian2/rng"] = self._rng_state
        return out

    @property
    def _rng_state(self):
        _, keys, pos, has_gauss, gauss = np.random.get_state()
        return np.concatenate([keys.astype(np.float64), [pos, has_gauss, gauss]])

    def load_state_arrays(self, arrays: dict):
        super().load_state_arrays(arrays)
        for l, (_, mask, _) in self._synaptic.items():
            if not np.array_equal(self.model.fixed.get("mask", {}).get(l, mask), mask):
                raise ValueError(f"the checkpoint's connection mask of pathway {l} is not the "
                                 "one this engine's synapses were built with")
        self._copy_synaptic_weights()
        if self.stochastic:
            state = arrays["brian2/rng"]
            np.random.set_state(("MT19937", state[:624].astype(np.uint32), int(state[624]),
                                 int(state[625]), float(state[626])))

    def record_activity(self, x, y, every: int = 1) -> dict:
        """One training trial of the probe batch x (B samples), recorded, learning nothing.

        Brian2 StateMonitors record every `every` steps the somas' rate r, potential v
        and nudge (rate layers) or apical current (spiking layers), and the
        dendrites' potential u; SpikeMonitors record the spikes of spiking layers as
        ``spike_trial``, ``spike_time`` (ms from the trial's start), ``spike_neuron``.
        The monitors are removed afterwards, and the populations' state, Brian2's
        generator and the training generator are left as they were.
        """
        b2 = self.brian2
        if len(x) != self.batch_size:
            raise ValueError(f"the activity probe needs {self.batch_size} samples, got {len(x)}")
        saved = {k: v.copy() for k, v in self.dynamic_state().items()}
        rng_state = np.random.get_state()
        monitors, spikes = {}, {}
        for l, layer in enumerate(self.layers[1:], start=1):
            monitors[(l, "soma")] = b2.StateMonitor(layer.soma, list(self._soma_records(layer)),
                                                   record=True, dt=self.dt * every, when="end",
                                                   order=100)
            if layer.apical is not None:
                monitors[(l, "apical")] = b2.StateMonitor(layer.apical, ["u"], record=True,
                                                         dt=self.dt * every, when="end",
                                                         order=100)
            if layer.spiking and layer.population.kind != "bernoulli":
                spikes[l] = b2.SpikeMonitor(layer.soma)
        self.network.add(*monitors.values(), *spikes.values())
        start = self.network.t
        try:
            self._run(np.ascontiguousarray(x, dtype=self.dtype), y, self.train_phases, True,
                      np.random.default_rng(0), None, learn=False)
        finally:
            self.network.remove(*monitors.values(), *spikes.values())
            for key, value in self.dynamic_state().items():
                value[...] = saved[key]
            np.random.set_state(rng_state)
        B, out = self.batch_size, {}
        for (l, kind), mon in monitors.items():
            record = out.setdefault(self.model.names[l], {})
            names = self._soma_records(self.layers[l]) if kind == "soma" else {"u": "apical"}
            for var, name in names.items():  # monitor (B·N, T) → (trial, time, neuron)
                values = np.asarray(getattr(mon, var))
                record[name] = values.reshape(B, -1, values.shape[1]).transpose(0, 2, 1)
        for l, mon in spikes.items():
            n = self.model.sizes[l]
            index = np.asarray(mon.i)
            out[self.model.names[l]].update(
                spike_trial=index // n, spike_neuron=index % n,
                spike_time=np.asarray((mon.t - start) / b2.ms))
        times = np.asarray((monitors[(1, "soma")].t - start) / b2.ms)
        phases = [self._names[i].name for i in range(0, len(self._names), every)][:len(times)]
        out["_coords"] = {"time": times, "phase": phases}
        return out

    @staticmethod
    def _soma_records(layer):
        """The soma's recorded variables → their names in the run file."""
        if not layer.spiking:
            return {"r": "rate", "v": "potential", "I_nudge": "nudge"}
        records = {layer.population.rate_variable: "rate", "I_apical": "apical_current"}
        if "v" in layer.population.state_variables:
            records["v"] = "potential"
        return records

    # ---------------------------------------------------------------- public
    def train_epoch(self, x, y, rng, progress=None, learn_forward=True) -> dict:
        order = np.concatenate(batches(len(x), self.batch_size, rng, drop_last=True))
        xs = np.ascontiguousarray(x[order], dtype=self.dtype)
        ys = y[order]
        phases = self.train_phases if learn_forward else self.pretrain_phases
        self._run(xs, ys, phases, True, rng, progress, learn_forward)
        n = len(order)
        return {"loss": self._loss_sum / n, "accuracy": self._correct / n}

    def train_batch(self, x, y, rng, learn_forward=True) -> BatchTrace:
        """Train on exactly one batch of B samples; returns its trace."""
        if len(x) != self.batch_size:
            raise ValueError(f"train_batch needs exactly {self.batch_size} samples, got {len(x)}")
        phases = self.train_phases if learn_forward else self.pretrain_phases
        self._run(np.ascontiguousarray(x, dtype=self.dtype), y, phases, True, rng, None,
                  learn_forward)
        return self.last_trace

    def predict(self, x):
        B = self.batch_size
        n = len(x)
        padded = np.zeros((-(-n // B) * B, x.shape[1]), self.dtype)
        padded[:n] = x
        return self._run(padded, None, self.eval_phases, False, None, None)[:n].copy()
