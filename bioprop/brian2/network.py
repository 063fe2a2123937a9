"""Building the Brian2 network of an engine: groups, pathways and the operations between them.

Each layer is a pair of Brian2 groups (:mod:`bioprop.populations`) of B·N neurons,
B trials side by side, seen through a layer adapter (:mod:`bioprop.brian2.layers`).
Dense pathways (:mod:`bioprop.pathways`) are network operations that apply one
shared weight matrix to the (B, N) view of a group; ``synapses`` pathways are
Brian2 Synapses. Within one time step the operations run bottom-up for the
feedforward pathway, then top-down for the feedback pathway; with dt = τ (Euler)
each phase therefore settles exactly in one step.

The operations built here read the engine as it runs: its ``live`` and
``listening`` layers, the current phase ``kind`` (:mod:`bioprop.brian2.phases`), the
``latched`` quantities, ``tick`` and ``clamped_trial``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bioprop.event_pathways import EventTransmission, event_operation, spike_jump
from bioprop.pathways import (SynapticPlasticity, copy_weights, dense_operation, read_weights,
                              synaptic_current, synaptic_projection)
from bioprop.plasticity_rules import rule_expression
from bioprop.populations import SENDS_TARGET, input_kind, population_kind
from bioprop.rate_groups import apical_dendrite, clamped_input, rate_soma
from bioprop.rules import TargetContext, difference_correction
from bioprop.spiking import poisson_input

from .layers import InputLayer, RateLayer, SpikingLayer, view

__all__ = ["BuiltNetwork", "build_network", "simulate", "copy_synaptic_weights",
           "learn_synaptically"]


@dataclass
class BuiltNetwork:
    """What :func:`build_network` made."""

    clock: object
    #: layer adapters, index 0 the input
    layers: list
    network: object
    #: l → (Synapses, mask, current group) of a ``synapses`` pathway
    synaptic: dict
    #: l → SynapticPlasticity of a pathway with ``plasticity = "synaptic"``
    plastic: dict
    #: name → EventTransmission of each pathway that follows spikes (``transmission = "events"``)
    events: dict


def build_network(engine, spec, populations, *, on_step_start, on_step_end) -> BuiltNetwork:
    """The groups and operations of `engine`'s model, in one Brian2 Network.

    Parameters
    ----------
    engine : Brian2Engine
        Supplies the model, batch size, dtype, dt and rule; its operations read the
        engine's running state afterwards.
    spec : ModelSpec
    populations : list
        Each layer's SpikingPopulation, None for a rate layer (index 0 the input).
    on_step_start, on_step_end : callable
        The controller's callbacks, at the start and at the end of every step.

    Returns
    -------
    BuiltNetwork
    """
    b2, model, t = engine.brian2, engine.model, engine.top
    # One clock for every object: Brian2 then advances a single clock per step.
    clock = b2.Clock(engine.dt, name="trial_clock*")
    layers = [_input_layer(engine, spec, clock)]
    groups = [layers[0].clamp]
    for l in range(1, model.n_layers + 1):
        layer = _layer(engine, spec.layers[l - 1], l, populations[l], clock)
        groups += [g for g in (layer.apical, layer.soma) if g is not None]
        layers.append(layer)

    ops = [b2.NetworkOperation(on_step_start, clock=clock, when="start", name="controller"),
           b2.NetworkOperation(on_step_end, clock=clock, when="end", name="phase_end")]
    synaptic, plastic, events = {}, {}, {}
    for l in range(1, model.n_layers + 1):
        ops += _forward_pathway(engine, spec, l, layers, clock, synaptic, plastic, events)
        if layers[l].spiking:  # the nudge becomes an apical current before the soma's update
            ops.append(b2.NetworkOperation(layers[l].apical_current, clock=clock,
                                           when="groups", order=10 * l - 1,
                                           name=f"apical_current_{l}"))
    for l in range(1, t):
        if engine.target_rule.uses_inverse:
            side = (lambda l=l: _side_drive(engine, l + 1)) if model.side else None
            ops.append(_dense_pathway(engine, model.feedback[l + 1], layers[l + 1],
                                      layers[l].I_fb, lambda l=l: l in engine.listening, events,
                                      name=f"feedback_{l + 1}", clock=clock,
                                      order=1000 - 10 * l, extra=side))
        else:
            ops.append(b2.NetworkOperation(_difference_operation(engine, layers, l), clock=clock,
                                           when="groups", order=1000 - 10 * l,
                                           name=f"feedback_{l + 1}"))
        ops.append(b2.NetworkOperation(_nudge_operation(engine, layers[l], l), clock=clock,
                                       when="groups", order=1000 - 10 * l + 2,
                                       name=f"nudge_{l}"))
    return BuiltNetwork(clock, layers, b2.Network(*groups, *ops), synaptic, plastic, events)


def simulate(b2, network, codegen, duration):
    """Run `network` for `duration` with the codegen target `codegen`.

    The codegen target is a global Brian2 preference: it is set for this network's run.
    Brian2's own Ctrl-C handling is switched off: it would end only this run (one
    epoch) and say "Press Ctrl+C again to interrupt", and the caller would carry on
    from a half-trained epoch. A run of :func:`bioprop.run` handles SIGINT itself
    (:mod:`bioprop.stopping`); elsewhere a Ctrl-C raises ``KeyboardInterrupt``.
    """
    b2.prefs.codegen.target = codegen
    b2.prefs.core.stop_on_keyboard_interrupt = False
    with warnings.catch_warnings():
        # Brian2 checks float32 state against 1e50 before a run, which does not fit in a
        # float32: numpy warns of the cast, not of any value of ours.
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        network.run(duration, namespace={})


def _input_layer(engine, spec, clock):
    B, n, net = engine.batch_size, engine.model.sizes[0], spec.network
    if input_kind(net).spikes:
        group = poisson_input("input", B * n, max_rate=net.input_rate * engine.brian2.Hz,
                              tau_trace=net.input_tau_trace.quantity, clock=clock,
                              dtype=engine.dtype)
        return InputLayer(group, B, poisson=True)
    return InputLayer(clamped_input("input", B * n, clock=clock, dtype=engine.dtype), B)


def _layer(engine, ls, l, population, clock):
    """The groups of layer l (spec `ls`): a soma of the layer's kind and, below the top
    target, a rate dendrite computing the feedback pathway's reconstruction."""
    B, n = engine.batch_size, engine.batch_size * engine.model.sizes[l]
    act, psi = engine.model.activations[l], engine.model.feedback_activations[l]
    apical = None
    if l < engine.top:  # layers below the top target receive feedback
        apical = apical_dendrite(f"{ls.name}_apical", n, ls.tau_apical.quantity, psi,
                                 clock=clock, order=1000 - 10 * l + 1, dtype=engine.dtype)
    if population is not None:
        soma = population.build(f"{ls.name}_soma", n, clock, 10 * l, engine.dtype)
        above = engine.spec.layers[l] if l < engine.model.n_layers else None
        # Synapses out of the layer read its trace, held or not: keep it simulated for them
        return SpikingLayer(soma, apical, B, population, psi,
                            sends_target=engine.rule.spiking_target == SENDS_TARGET,
                            freezable=above is None or above.connection == "dense")
    kind = population_kind(ls)
    soma = rate_soma(f"{ls.name}_soma", n, ls.tau.quantity, act, clock=clock,
                     order=10 * l, dtype=engine.dtype, **kind.soma_options(ls))
    return RateLayer(soma, apical, B, act, psi, clock=lambda: engine.tick,
                     state_variables=kind.state_variables)


def _dense_pathway(engine, projection, pre, write_post, active, events, *, name, clock, order,
                   extra=None, version=None):
    """A dense pathway from layer adapter `pre`: one product per step, or, with
    ``engine.transmission = "events"`` and a presynaptic layer that emits spikes, an
    event-driven one (:mod:`bioprop.event_pathways`), entered in `events`."""
    kind = _spike_kind(engine, pre)
    if engine.transmission != "events" or kind is None:
        return dense_operation(projection, pre.read_rate, write_post, active, name=name,
                               clock=clock, order=order, extra=extra, version=version)
    group = pre.soma if pre.soma is not None else pre.clamp
    events[name] = EventTransmission(
        projection, group, engine.batch_size, jump=spike_jump(kind.trace_jump, group),
        tau=group.variables["tau_trace"].get_value().item(), dt=float(engine.dt))
    # a held layer that sends the rate asked of it (rule.spiking_target = "rate") sends no spikes
    sent = (lambda: pre.read_rate() if pre.sends_rate else None) if pre.soma is not None else None
    return event_operation(events[name], write_post, active, lambda: engine.phases_begun,
                           name=name, clock=clock, order=order, extra=extra, sent=sent)


def _spike_kind(engine, layer):
    """The PopulationKind of a layer adapter that emits spike events, else None."""
    if not layer.spiking:
        return None
    kind = layer.population.record if layer.soma is not None else input_kind(engine.spec.network)
    return kind if kind.spikes else None


def _forward_pathway(engine, spec, l, layers, clock, synaptic, plastic, events):
    """The Brian2 objects of feedforward pathway l.

    ``dense``: one operation, I_ff = W r + b while layer l is live. ``synapses``:
    Brian2 Synapses into a current group (pathways.synaptic_current) and a gate that
    copies I_ff_syn + b into I_ff while the layer is live, so that held layers keep
    their latched drive exactly as on the dense path. With ``plasticity = "synaptic"``
    the synapses also carry the forward rule (pathways.SynapticPlasticity), entered in
    `plastic`; every synaptic pathway is entered in `synaptic`. Orders within a step:
    the layer below (10(l−1)), the summed synaptic input (10l − 4, Brian2 puts it just
    before its target group at 10l − 3), the gate (10l − 2), the soma (10l).
    """
    b2, B, ls, W = engine.brian2, engine.batch_size, spec.layers[l - 1], engine.model.forward[l]

    def gate():
        return l in engine.live

    if ls.connection == "dense":
        # a clamped input changes only between trials, and W_1 only after them
        version = (lambda: engine.clamped_trial) if l == 1 and not layers[0].spiking else None
        return [_dense_pathway(engine, W, layers[l - 1], layers[l].I_ff, gate, events,
                               name=f"forward_{l}", clock=clock, order=10 * l - 2,
                               version=version)]
    mask = engine.model.fixed.get("mask", {}).get(l)
    mask = np.ones(W.shape, W.weight.dtype) if mask is None else mask
    pre = layers[l - 1].soma if l > 1 else layers[0].clamp
    delay = ls.delay.quantity
    spikes = {}
    if delay > 0 * b2.ms:  # spec validation: the layer below spikes (lif or poisson)
        kind = layers[l - 1].population.record if l > 1 else input_kind(spec.network)
        spikes = dict(on_spike=kind.jump("_pre"), delay=delay)
    is_plastic = ls.plasticity == "synaptic"
    current = synaptic_current(
        f"{ls.name}_ff_syn", B * engine.model.sizes[l], clock=clock, order=10 * l - 3,
        dtype=engine.dtype, plastic=is_plastic,
        tau_syn=pre.variables["tau_trace"].get_value().item() * b2.second if spikes else None)
    synapses = synaptic_projection(W, pre, current, B, mask=mask, name=f"forward_{l}_synapses",
                                   clock=clock, order=10 * l - 3, plastic=is_plastic, **spikes)
    # a copy: the synapses stay as built even if a checkpoint brought another mask
    synaptic[l] = (synapses, mask.copy(), current)
    if is_plastic:  # spec validation: the forward optimizer is SGD
        plastic[l] = SynapticPlasticity(synapses, B, engine.forward_optimizer.lr * ls.lr_scale,
                                        rule_expression(ls))
    I_syn, I_ff = view(current, "I_ff_syn", B), layers[l].I_ff

    def copy_when_live():
        if gate():
            np.add(I_syn, W.bias, out=I_ff)
    return [current, synapses, b2.NetworkOperation(copy_when_live, clock=clock,
                                                   when="groups", order=10 * l - 2,
                                                   name=f"forward_{l}")]


def _nudge_operation(engine, layer, l):
    """Layer l's nudge from its dendrite, in the phases whose kind asks for one."""
    rule, s = engine.target_rule, engine.latched

    def nudge():
        mode = None if engine.kind is None else engine.kind.nudge
        if mode == "round_trip":  # the round trip goes down DTP's way, whatever the rule
            if l >= s.drl_floor:
                target = difference_correction(s.h[l], layer.g(), s.g_forward[l])
                np.subtract(target, s.h[l], out=layer.I_nudge)
            return
        if mode != "target":
            return
        if rule.uses_inverse:
            target = rule.local_target(s.h[l], layer.g(), s.g_forward[l])
            np.subtract(target, s.h[l], out=layer.I_nudge)
        else:  # the dendrite carries the change itself
            layer.I_nudge[...] = layer.u
    return nudge


def _side_drive(engine, l):
    """R_l s: the side information of pathway l, into the dendrite of layer l−1."""
    if engine.rule.side_information == "label":
        s = engine.latched.ytarget
    elif engine.kind.settles_forward:  # the layer's own activity, as it settles
        s = engine.layers[l - 1].read_rate()
    else:  # the layer's own forward activity, latched
        s = engine.latched.h[l - 1]
    return s @ engine.model.side[l].T


def _difference_operation(engine, layers, l):
    """The dendrite of layer l integrates rule(e_{l+1}) where e_k is layer k's nudge."""
    layer = layers[l]

    def feedback():
        if engine.kind is not None and engine.kind.nudge == "target":
            nudges = [None] + [lay.I_nudge for lay in layers[1:]]
            ctx = TargetContext(engine.model, engine.latched.a, engine.top, nudges,
                                engine.rule.damping, engine.model.fixed, engine.latched.h)
            layer.I_fb[...] = engine.target_rule.change(ctx, l + 1)
    return feedback


def copy_synaptic_weights(synaptic, model, batch_size, skip=()):
    """Synaptic weights ← the dense W_l (masked: only existing synapses), except in the
    pathways of `skip`.

    Parameters
    ----------
    synaptic : dict
        l → (Synapses, mask, current group), as :func:`build_network` made it.
    model : LayeredModel
    batch_size : int
    skip : collection of int
    """
    for l, (synapses, mask, _) in synaptic.items():
        if l not in skip:
            copy_weights(synapses, model.forward[l].weight, mask, batch_size)


def learn_synaptically(synaptic, plasticity, model, l, h, target, a, batch_size):
    """The synapses of pathway l apply the local forward rule themselves; W_l reads them back.

    Parameters
    ----------
    synaptic : dict
        l → (Synapses, mask, current group).
    plasticity : SynapticPlasticity
        Pathway l's.
    model : LayeredModel
    l : int
    h, target, a : ndarray (B, N_l)
        h_l, ĥ_l and a_l: the postsynaptic signals forward_grads uses (with φ'(a_l)).
    batch_size : int

    Returns
    -------
    ndarray
        The gradient that was applied, W_l −= lr · gradient, as the dense path's trace
        holds it.
    """
    synapses, mask, _ = synaptic[l]
    change = plasticity.learn(h, target, model.activations[l].derivative(a))
    weight = model.forward[l].weight
    read_weights(synapses, weight, mask, batch_size)
    gradient = np.zeros_like(weight)
    gradient[np.nonzero(mask)] = -change
    return gradient
