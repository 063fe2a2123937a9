"""The checks of a model against the protocol it runs under, and against the protocol's data.

:mod:`bioprop.validation` checks each file on its own; what needs both files is here:

* :func:`check_compatible` — the recorded names, the time constants against the time
  step, the spiking layers' parameters at that step, and the memory the weights need;
  with the data's shapes, also :func:`check_data`. It runs before any data is loaded.
* :func:`check_data` — the model's input and output sizes, and the batch, against the
  data set.

Both are plain arithmetic on the specs, so that a bad pair fails at once, without
importing Brian2 (only a spiking layer's own check builds its Brian2 parameters). Each
failure is a :class:`~bioprop.errors.SpecError` naming the file, or the ``--set`` that
gave the key, and the layer by its name.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from .errors import SpecError, fail
from .overrides import blame, named_layers

__all__ = ["check_compatible", "check_data", "SettlingWarning", "SETTLING_TAUS",
           "available_memory"]

#: A phase of the Brian2 engine must let what settles in it come within e^-SETTLING_TAUS
#: of its input. With forward Euler at step dt a compartment of time constant τ needs
#: k(τ) = ⌈SETTLING_TAUS / −ln(1 − dt/τ)⌉ steps (≈ SETTLING_TAUS·τ when dt ≪ τ; one step
#: when dt = τ, where Euler settles at once). The forward phase crosses the rate somas in
#: cascade, in order within each step, so it needs 1 + Σ (k(τ_l) − 1) steps; every other
#: phase needs k of the longest τ or τ_apical of a rate layer. e⁻² ≈ 14 % flags phases whose activity
#: is far from settled, and spares the [phases] defaults (40/20/40 ms at dt = 5 ms, τ =
#: 10 ms: within 6 %); the shipped protocols settle closer still (< 1e-3).
SETTLING_TAUS = 2


class SettlingWarning(UserWarning):
    """A phase of the Brian2 engine is too short for its populations to settle."""


def check_compatible(model, protocol, n_features: int | None = None,
                     n_outputs: int | None = None, n_train: int | None = None):
    """Check that a model can run with a protocol (and, given its shapes, with its data).

    The recorded names must be the model's, every time constant must suit the protocol's
    time step, and the weights must fit in memory; with `n_features` and `n_outputs`,
    :func:`check_data` follows.

    Parameters
    ----------
    model : bioprop.spec.ModelSpec
    protocol : bioprop.spec.ProtocolSpec
    n_features, n_outputs : int, optional
        The input features and the outputs (classes) of the protocol's dataset.
    n_train : int, optional
        The training samples the protocol uses, before ``data.validation`` holds some out;
        what is left may not be empty nor smaller than a batch.

    Raises
    ------
    SpecError
        For the first mismatch, naming the file and the key at fault (a layer by its
        name), or the ``--set`` that gave the key.
    """
    if n_features is not None and n_outputs is not None:
        check_data(model, protocol, n_features, n_outputs, n_train)
    with blame(dict(model.origins + protocol.origins)), named_layers(model.layers):
        _check_recorded_names(model, protocol)
        _check_timing(model, protocol)
        _check_memory(model, protocol)
        _check_averaging(model, protocol)
        _check_brian2_forms(model, protocol)
        _check_synaptic_rules(model, protocol)
    if protocol.engine.name == "brian2":  # the reference engine has no time
        _warn_unsettled(model, protocol)


def _check_brian2_forms(model, protocol):
    """In the Brian2 engine every rate layer's φ and ψ need a Brian2 form, which an
    activation a user registered without one lacks (:mod:`bioprop.extensions`)."""
    from .populations import population_kind

    if protocol.engine.name != "brian2":
        return
    for i, layer in enumerate(model.layers):
        kind = population_kind(layer)
        if kind.spiking:  # a rate twin always has its Brian2 form
            continue
        for activation in (kind.transfer(layer), kind.dendrite(layer)):
            if activation.brian2_expr is None:
                key = "population" if kind.fixes_activation or activation.name != \
                    layer.activation else "activation"
                fail(model.source, f"layers.{i}.{key}", f"activation {activation.name!r} has no "
                     "Brian2 form, so it runs in the reference engine only: set engine.name = "
                     "\"reference\", or register it with brian2=\"...\"")


def _check_synaptic_rules(model, protocol):
    """A plasticity rule runs in Brian2's synapses: the reference engine, which has none,
    learns every W_l by the local rule, so it refuses any other."""
    from .pathways import LOCAL_RULE
    from .plasticity_rules import rule_expression

    if protocol.engine.name != "reference":
        return
    for i, layer in enumerate(model.layers):
        if layer.plasticity == "synaptic" and rule_expression(layer) != LOCAL_RULE:
            fail(model.source, f"layers.{i}.plasticity_rule", f"{layer.plasticity_rule!r} runs "
                 "in the synapses of the Brian2 engine only; the reference engine learns by the "
                 "local rule: set engine.name = \"brian2\", or leave the rule out")


def _check_averaging(model, protocol):
    """Averaged weights need every forward weight in the optimizer's hands."""
    synaptic = [layer.name for layer in model.layers if layer.plasticity == "synaptic"]
    if protocol.training.average_weights and synaptic:
        fail(protocol.source, "training.average_weights", f"layer {synaptic[0]!r} learns in its "
             "synapses (plasticity = \"synaptic\"), whose weights are not averaged: leave it out")


def check_data(model, protocol, n_features: int, n_outputs: int, n_train: int | None = None,
               held_out: int | None = None):
    """Check a model's input and output sizes, and the protocol's batch, against the data.

    Parameters are those of :func:`check_compatible`; `held_out` is the number of the
    `n_train` samples a validation set takes (default: ``data.validation``; 0 for data
    already split).

    Raises
    ------
    SpecError
        Naming the file (or ``--set``) and the key at fault.
    """
    with blame(dict(model.origins + protocol.origins)), named_layers(model.layers):
        if model.network.input_size != n_features:
            fail(model.source, "network.input_size",
                 f"is {model.network.input_size}, but dataset {protocol.data.dataset!r} has "
                 f"{n_features} input features (from {protocol.source})")
        if model.layers[-1].size != n_outputs:
            fail(model.source, f"layers.{len(model.layers) - 1}.size",
                 f"the output layer has {model.layers[-1].size} neurons, but dataset "
                 f"{protocol.data.dataset!r} has {n_outputs} outputs")
        if n_train is not None:
            _check_training_set(protocol, n_train, protocol.data.validation
                                if held_out is None else held_out)


def _check_training_set(protocol, n_train, held):
    """The samples left to train on once `held` of `n_train` are held out for validation:
    some, at least a batch, and whole batches for the Brian2 engine."""
    given = f"(data.n_train = {protocol.data.n_train}, 0: all)"
    if held and held >= n_train:
        fail(protocol.source, "data.validation", f"{held} would leave none of the {n_train} "
             f"training samples of dataset {protocol.data.dataset!r} to train on {given}")
    left, batch = n_train - held, protocol.training.batch_size
    if protocol.training.keep_partial_batch and left % batch and protocol.engine.name == "brian2":
        fail(protocol.source, "training.keep_partial_batch", "the brian2 engine simulates "
             f"exactly training.batch_size = {batch} trials side by side, and the {left} "
             f"training samples of dataset {protocol.data.dataset!r} leave a batch of "
             f"{left % batch}: use engine.name = "
             "\"reference\", or a batch size that divides the training set")
    if batch > left:
        held_text = f", {held} of them held out for validation" if held else ""
        fail(protocol.source, "training.batch_size",
             f"{batch} is larger than the training set: dataset {protocol.data.dataset!r} has "
             f"{n_train} training samples here{held_text} {given}")


def _check_timing(model, protocol):
    """The time step against every time constant, delay and rate it must resolve."""
    from .populations import input_kind, population_kind

    dt = protocol.phases.dt.seconds
    if input_kind(model.network).spikes and model.network.input_rate * dt > 1:
        fail(model.source, "network.input_rate",
             f"{model.network.input_rate} Hz × dt = {model.network.input_rate * dt:.3g} > 1: "
             f"a Poisson input fires at most once per step (phases.dt in {protocol.source})")
    for i, layer in enumerate(model.layers):
        kind = population_kind(layer)
        if kind.spiking:  # its own checks, on the Brian2 parameters it is built from
            try:
                kind.population(layer, protocol.phases.dt.quantity,
                                where=f"{model.source}: layers.{layer.name}")
            except ValueError as err:
                raise SpecError(f"{err} (phases.dt in {protocol.source})") from None
        if 0 < layer.delay.seconds < dt * 0.999:
            fail(model.source, f"layers.{i}.delay", f"{layer.delay} is shorter than one time "
                 f"step (dt = {protocol.phases.dt} in {protocol.source}); spikes move by whole "
                 "steps")
        # a spiking soma is integrated exactly; only rate compartments need dt ≤ τ
        for key in ("tau_apical",) if kind.spiking else ("tau", "tau_apical"):
            if dt > getattr(layer, key).seconds * 1.000001:
                fail(protocol.source, "phases.dt",
                     f"dt = {protocol.phases.dt} is longer than layers.{layer.name}.{key} = "
                     f"{getattr(layer, key)} in {model.source}; forward Euler needs dt ≤ τ "
                     f"(dt = τ is the one-step-per-phase setting)")


def available_memory() -> int | None:
    """The bytes of memory this machine can still give (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(model, protocol):
    """Refuse, before anything is built, a model whose weights alone cannot fit in memory.

    The count is a floor: every W_l and Q_l once, in the protocol's dtype; the optimizers'
    state, the engine's groups and the data come on top.
    """
    free = available_memory()
    if free is None:
        return
    sizes = model.sizes
    itemsize = np.dtype(protocol.engine.dtype).itemsize
    # W_l (l ≥ 1) and Q_l (l ≥ 2) each hold N_{l-1} · N_l numbers
    numbers = sum(sizes[l - 1] * sizes[l] * (1 if l == 1 else 2) for l in range(1, len(sizes)))
    need = numbers * itemsize
    if need <= free:
        return
    i = max(range(len(model.layers)), key=lambda j: model.layers[j].size)
    fail(model.source, f"layers.{i}.size",
         f"{model.layers[i].size} neurons: the model's weights alone would take "
         f"{_bytes(need)} ({protocol.engine.dtype}), more than the {_bytes(free)} of memory "
         "available")


def _bytes(n: float) -> str:
    """`n` bytes in the largest decimal unit it fills, to three digits (``"2.62 TB"``)."""
    units = ("B", "KB", "MB", "GB", "TB")
    i = min(int(math.log10(max(n, 1)) // 3), len(units) - 1)
    return f"{n / 1000 ** i:.3g} {units[i]}"


def _warn_unsettled(model, protocol):
    """Warn (:class:`SettlingWarning`) of each phase too short to settle (:data:`SETTLING_TAUS`)."""
    dt = protocol.phases.dt.seconds

    def steps(duration, exact):  # ≥ 1: dt ≤ τ is checked above
        ratio = dt / duration.seconds
        # per step, exact integration decays by e^(−dt/τ), forward Euler by 1 − dt/τ
        rate = ratio if exact else (-math.log(1 - ratio) if ratio < 1 else math.inf)
        return math.ceil(SETTLING_TAUS / rate - 1e-9)

    def cascade(filters):  # filters in series: the first step is shared
        return 1 + sum(steps(tau, exact) - 1 for _, tau, exact in filters)

    def named(filters):  # a trace's two filters are one name, "(two filters)"
        names = [name for name, _, _ in filters]
        return ", ".join(f"{name} = {tau}" + (" (two filters)" if names.count(name) == 2 else "")
                         for i, (name, tau, _) in enumerate(filters) if name not in names[:i])

    chains = _settling_chains(model)
    needs = {"forward": (cascade(sum(chains, [])),
                         "the populations, in cascade: " + named(sum(chains, [])))}
    # every other phase: the slowest single compartment, a soma, trace filter or dendrite
    single = [f for chain in chains for f in chain if not f[0].startswith("network.")]
    single += [(f"{layer.name}.tau_apical", layer.tau_apical, False) for layer in model.layers]
    for phase, compartments in (("feedback", single), ("target", _target_settles(model, single))):
        if not compartments:  # no dendrite below the top target: nothing moves
            continue
        slowest = max(compartments, key=lambda f: steps(f[1], f[2]))
        needs[phase] = steps(slowest[1], slowest[2]), f"the longest τ, {named([slowest])}"
    if protocol.phases.trial_start == "twin":  # every layer starts at its twin's settled state:
        needs["forward"] = needs["feedback"]  # the traces correct its error, no cascade to cross
    for phase, (n_steps, what) in needs.items():
        length = getattr(protocol.phases, phase)
        if length.seconds < n_steps * dt * 0.999999:
            warnings.warn(f"{protocol.source}: phases.{phase} = {length} is too short for the "
                          f"populations to settle: it needs at least {_seconds(n_steps * dt)} "
                          f"({n_steps} steps of dt = {protocol.phases.dt} for {what}, in "
                          f"{model.source})", SettlingWarning, stacklevel=3)


def _target_settles(model, single):
    """What must settle in a target phase: every compartment of `single`, except with
    ``rule.spiking_target = "rate"``, where every soma is held and sends its rate (a
    spiking soma's trace is not read) and only the dendrites below the top target move."""
    from .populations import SENDS_TARGET
    from .rules.updates import top_layer

    if model.rule.spiking_target != SENDS_TARGET:
        return single
    below_top = model.layers[:top_layer(len(model.layers), model.rule.top) - 1]
    return [(f"{layer.name}.tau_apical", layer.tau_apical, False) for layer in below_top]


def _settling_chains(model) -> list:
    """Per layer (a spiking input first), the (key, τ, integrated exactly) of the filters a
    signal crosses in series before the layer's rate is read: a rate soma's τ (forward
    Euler); a spiking layer's membrane and its trace's two τ_trace filters (exact)."""
    from .populations import input_kind, population_kind

    chains = []
    encoding = input_kind(model.network)
    if encoding.spikes:
        chains.append([(f"network.input_{key}", getattr(model.network, f"input_{key}"), True)
                       for key in encoding.time_constants])
    for layer in model.layers:
        kind = population_kind(layer)
        chains.append([(f"{layer.name}.{key}", getattr(layer, key), kind.spiking)
                       for key in kind.time_constants])
    return chains


def _seconds(value: float) -> str:
    return f"{value:.4g} s" if value >= 1 else f"{value * 1e3:.4g} ms"


def _check_recorded_names(model, protocol):
    """record.layers and record.pathways must name layers and pathways of the model."""
    from .errors import suggest
    from .runlog.vocabulary import FORMAT1_PATHWAY

    L, names = len(model.layers), model.names
    pathways = {FORMAT1_PATHWAY[kind](names, l): f"{kind}_{l}" for kind, first in
                (("forward", 1), ("feedback", 2)) for l in range(first, L + 1)}
    known = {"layers": model.names[1:], "pathways": list(pathways)}
    for key, names in known.items():
        for name in getattr(protocol.record, key):
            # a run file of format 1 (resumed) names pathways forward_l, feedback_l
            if name not in names and not (key == "pathways" and name in pathways.values()):
                fail(protocol.source, f"record.{key}", f"{name!r} is not one of the model's "
                     f"{key} ({', '.join(names)}, from {model.source}).{suggest(name, names)}")
