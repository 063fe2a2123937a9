"""The checks a model or protocol must pass beyond the types of its keys.

:mod:`bioprop.spec` converts a file's tables into typed specs and hands them here:
:func:`validate_model` and :func:`validate_protocol` check each file on its own
(allowed values, sizes, combinations of keys), :func:`check_compatible` checks a
model against the protocol and data it is run with (shapes, and every time
constant against the time step). Each failure is a :class:`~bioprop.errors.SpecError`
naming the file and the key.
"""
from __future__ import annotations

import math
import warnings

from .errors import SpecError, fail, suggest
from .overrides import blame
from .ranges import check_ranges, walk

from .runlog.vocabulary import ACTIVITY_VARIABLES

__all__ = ["validate_model", "validate_protocol", "check_compatible", "RECORD_PATH_FIELDS",
           "SettlingWarning", "SETTLING_TAUS"]

#: the placeholders record.path may hold, filled in by bioprop.training
RECORD_PATH_FIELDS = ("model", "seed")



#: A phase of the Brian2 engine must let what settles in it come within e^-SETTLING_TAUS
#: of its input. With forward Euler at step dt a compartment of time constant τ needs
#: k(τ) = ⌈SETTLING_TAUS / −ln(1 − dt/τ)⌉ steps (≈ SETTLING_TAUS·τ when dt ≪ τ; one step when dt = τ,
#: where Euler settles at once). The forward phase crosses the rate somas in cascade, in
#: order within each step, so it needs 1 + Σ (k(τ_l) − 1) steps; every other phase needs
#: k of the longest τ or τ_apical of a rate layer. e⁻² ≈ 14 % flags phases whose activity
#: is far from settled, and spares the [phases] defaults (40/20/40 ms at dt = 5 ms, τ =
#: 10 ms: within 6 %); the shipped protocols settle closer still (< 1e-3).
SETTLING_TAUS = 2


class SettlingWarning(UserWarning):
    """A phase of the Brian2 engine is too short for its populations to settle."""


# Allowed values of string keys are the registries themselves, looked up lazily so
# that the spec never duplicates a list of names.
def _registry_choices():
    from .activations import ACTIVATIONS
    from .populations import POPULATION_KINDS, input_encodings
    from .rules import FEEDBACK_OBJECTIVES, LOSSES, OPTIMIZERS, TARGET_RULES
    return {
        "population": POPULATION_KINDS, "activation": ACTIVATIONS,
        "connection": ["dense", "synapses"], "plasticity": ["dense", "synaptic"],
        "rule.target": TARGET_RULES, "rule.feedback": FEEDBACK_OBJECTIVES,
        "rule.top": ["output", "penultimate"], "rule.schedule": ["alternating", "parallel"],
        "rule.side_information": ["none", "label", "activity"],
        "rule.spiking_target": ["trace", "apical"],
        "optimizer.name": OPTIMIZERS, "network.loss": LOSSES,
        "network.init": ["orthogonal", "glorot"],
        "network.input_encoding": input_encodings(),
        "engine.name": ["brian2", "reference"], "engine.codegen": ["numpy", "cython"],
        "engine.transmission": ["dense", "events"],
        "phases.trial_start": ["carry", "rest", "twin"],
        "engine.dtype": ["float64", "float32"],
    }


def _choice_key(key: str) -> str | None:
    parts = key.split(".")
    if parts[0] == "layers":
        return parts[-1]
    if parts[0] == "optimizer":
        return "optimizer." + parts[-1]
    return key


# ------------------------------------------------------------------ validation
def _check_choices(spec_dict_items, source):
    choices = _registry_choices()
    for key, value in spec_dict_items:
        allowed = choices.get(_choice_key(key))
        if allowed is not None and value not in allowed:
            fail(source, key, f"unknown value {value!r}. Expected one of: "
                 f"{', '.join(sorted(allowed))}.{suggest(str(value), list(allowed))}")


def _flatten(obj):
    return ((key, value) for key, _, value in walk(obj))


def validate_model(spec):
    """Check a model spec on its own: allowed values, sizes and combinations of keys.

    Parameters
    ----------
    spec : bioprop.spec.ModelSpec
        A model whose keys have their types already.

    Returns
    -------
    bioprop.spec.ModelSpec
        `spec` itself.

    Raises
    ------
    SpecError
        For the first key at fault, naming ``spec.source`` and the key.
    """
    src = spec.source
    _check_choices(_flatten(spec), src)
    if not spec.layers:
        fail(src, "layers", "a model needs at least one layer above the input")
    check_ranges(spec)
    names = [layer.name for layer in spec.layers]
    for i, layer in enumerate(spec.layers):
        if names.count(layer.name) > 1 or layer.name == "input":
            fail(src, f"layers.{i}.name", f"layer names must be unique and not 'input': {layer.name!r}")
        _validate_population(layer, src, f"layers.{i}")
        _validate_connection(spec, i, src)
        _validate_lr_scales(spec, i, src)
    if spec.rule.top == "penultimate" and len(spec.layers) < 2:
        fail(src, "rule.top", "'penultimate' needs at least two layers")
    rules = _registry_choices()["rule.target"]
    if spec.rule.iterations > 1 and not rules[spec.rule.target].iterates:
        iterating = ", ".join(repr(name) for name, rule in rules.items() if rule.iterates)
        fail(src, "rule.iterations", f"only the {iterating} rule iterates; rule.target is "
             f"{spec.rule.target!r}")
    return spec


def _validate_population(layer, src, key):
    """The parameters a population kind needs, checked where no dt is needed yet."""
    from .populations import population_kind

    population_kind(layer).validate(layer, src, key)


def _validate_lr_scales(spec, i: int, src):
    layer, key = spec.layers[i], f"layers.{i}"
    if i == 0 and layer.feedback_lr_scale != 1:
        fail(src, f"{key}.feedback_lr_scale", "the first layer has no feedback pathway g_1 "
             "(g_l sends layer l's target to layer l − 1): set it on the layer above")


def _validate_connection(spec, i: int, src):
    """The feedforward pathway into layer i: its connection probability and its delay."""
    from .populations import POPULATION_KINDS, input_kind, population_kind

    layer, key = spec.layers[i], f"layers.{i}"
    _validate_plasticity(spec, i, src)
    if float(layer.delay.quantity) == 0:
        return
    if layer.connection != "synapses":
        fail(src, f"{key}.delay", f"a delay needs connection = \"synapses\" (got "
             f"{layer.connection!r}): the dense pathway has no spikes to delay")
    # the delayed pathway filters the spikes it carries as the presynaptic trace does
    if i > 0:
        below, name = population_kind(spec.layers[i - 1]), spec.layers[i - 1].population
    else:
        below, name = input_kind(spec.network), f"{spec.network.input_encoding} input"
    if not below.spikes:
        spiking = [kind.name for kind in POPULATION_KINDS.values() if kind.spikes]
        fail(src, f"{key}.delay", f"only spikes can be delayed: the layer below is {name!r}; "
             f"a delay needs a {' or '.join(spiking)} layer below (or "
             f"network.input_encoding = \"poisson\" for the first layer), or delay = \"0 ms\"")


def _validate_plasticity(spec, i: int, src):
    """Synaptic plasticity needs synapses, a local target and the optimizer a synapse can run."""
    layer, key = spec.layers[i], f"layers.{i}.plasticity"
    if layer.plasticity != "synaptic":
        if layer.plasticity_rule:
            fail(src, f"{key}_rule", f"a rule needs plasticity = \"synaptic\" (got "
                 f"{layer.plasticity!r}): only synapses that learn run it")
        return
    if layer.plasticity_rule:
        _validate_plasticity_rule(layer.plasticity_rule, src, f"{key}_rule")
    if layer.connection != "synapses":
        fail(src, key, f"\"synaptic\" needs connection = \"synapses\" (got {layer.connection!r}): "
             "a dense pathway has no synapses to learn")
    if spec.optimizer.forward.name != "sgd":
        fail(src, key, f"\"synaptic\" needs optimizer.forward.name = \"sgd\" (got "
             f"{spec.optimizer.forward.name!r}): each synapse applies plain gradient steps, "
             "w += lr · (its change)")
    if spec.rule.top == "penultimate" and i == len(spec.layers) - 1:
        fail(src, key, "the output layer learns from the loss gradient with rule.top = "
             "\"penultimate\", not from a target: use \"dense\" there")


def _validate_plasticity_rule(rule: str, src, key):
    """A synapse's rule: an expression (Python syntax, as Brian2 parses it) in the names a
    synapse can read and Brian2's functions and constants."""
    import ast

    from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
    from brian2.utils.stringtools import get_identifiers

    from .pathways import LOCAL_RULE, RULE_VARIABLES

    try:
        ast.parse(rule, mode="eval")
    except SyntaxError:
        fail(src, key, f"{rule!r} is not an expression; e.g. {LOCAL_RULE!r}")
    unknown = get_identifiers(rule) - set(RULE_VARIABLES) - set(DEFAULT_FUNCTIONS) - set(DEFAULT_CONSTANTS)
    if unknown:
        fail(src, key, f"unknown name(s) {', '.join(sorted(map(repr, unknown)))} in {rule!r}. "
             f"A synapse's rule may use: {', '.join(RULE_VARIABLES)} and Brian2's functions")


def validate_protocol(spec):
    """Check a protocol spec on its own, as :func:`validate_model` does a model: allowed
    values, counts, and every phase at least one time step long."""
    src = spec.source
    _check_choices(_flatten(spec), src)
    check_ranges(spec)
    _check_record_path(spec.record.path, src)
    if spec.record.activity_batch_every and not spec.record.activity_every:
        fail(src, "record.activity_batch_every", "records batches in the epochs whose activity "
             "is recorded; set record.activity_every ≥ 1 too")
    unknown = set(spec.record.variables) - set(ACTIVITY_VARIABLES)
    if unknown:
        fail(src, "record.variables", f"unknown {sorted(unknown)}. Expected some of: "
             f"{', '.join(ACTIVITY_VARIABLES)}")
    dt = spec.phases.dt.quantity
    for key in ("forward", "feedback", "target"):
        if getattr(spec.phases, key).quantity < dt * 0.999:
            fail(src, f"phases.{key}", f"a phase must last at least one time step (dt = {spec.phases.dt})")
    return spec


def _check_record_path(path: str, src):
    """record.path may hold only the placeholders training fills in, each closed."""
    import string

    try:
        names = [name for _, name, _, _ in string.Formatter().parse(path) if name is not None]
    except ValueError as err:  # an unclosed "{" or a lone "}"
        fail(src, "record.path", f"{path!r} is not a valid pattern ({err}); write {{{{ and }}}} "
             f"for a literal brace")
    unknown = [name for name in names if name not in RECORD_PATH_FIELDS]
    if unknown:
        fail(src, "record.path", f"unknown placeholder {{{unknown[0]}}} in {path!r}. Expected "
             f"some of: {', '.join('{' + n + '}' for n in RECORD_PATH_FIELDS)}."
             f"{suggest(unknown[0], RECORD_PATH_FIELDS)}")


def check_compatible(model, protocol, n_features: int, n_outputs: int, n_train: int | None = None):
    """Check that a model can run with a protocol and its data.

    The model's input and output sizes must match the data, the recorded names must be
    the model's, and every time constant must suit the protocol's time step.

    Parameters
    ----------
    model : bioprop.spec.ModelSpec
    protocol : bioprop.spec.ProtocolSpec
    n_features, n_outputs : int
        The input features and the outputs (classes) of the protocol's dataset.
    n_train : int, optional
        The training samples the protocol uses; a batch may not be larger.

    Raises
    ------
    SpecError
        For the first mismatch, naming the file and the key at fault, or the ``--set``
        that gave the key.
    """
    with blame(dict(model.origins + protocol.origins)):
        _check_compatible(model, protocol, n_features, n_outputs, n_train)


def _check_compatible(model, protocol, n_features, n_outputs, n_train):
    if model.network.input_size != n_features:
        fail(model.source, "network.input_size",
             f"is {model.network.input_size}, but dataset {protocol.data.dataset!r} has "
             f"{n_features} input features (from {protocol.source})")
    if model.layers[-1].size != n_outputs:
        fail(model.source, f"layers.{len(model.layers) - 1}.size",
             f"the output layer {model.layers[-1].name!r} has {model.layers[-1].size} neurons, "
             f"but dataset {protocol.data.dataset!r} has {n_outputs} outputs")
    _check_recorded_names(model, protocol)
    if n_train is not None and protocol.training.batch_size > n_train:
        fail(protocol.source, "training.batch_size",
             f"{protocol.training.batch_size} is larger than the training set: dataset "
             f"{protocol.data.dataset!r} has {n_train} training samples here (data.n_train = "
             f"{protocol.data.n_train}, 0: all)")
    dt = protocol.phases.dt.quantity
    from .populations import input_kind, population_kind

    if input_kind(model.network).spikes and model.network.input_rate * float(dt) > 1:
        fail(model.source, "network.input_rate",
             f"{model.network.input_rate} Hz × dt = {model.network.input_rate * float(dt):.3g} > 1: "
             f"a Poisson input fires at most once per step (phases.dt in {protocol.source})")
    for i, layer in enumerate(model.layers):
        kind = population_kind(layer)
        try:
            kind.population(layer, dt, where=f"{model.source}: layers.{i} ({layer.name})")
        except ValueError as err:
            raise SpecError(f"{err} (phases.dt in {protocol.source})") from None
        delay = layer.delay.quantity
        if 0 * dt < delay < dt * 0.999:
            fail(model.source, f"layers.{i}.delay", f"{layer.delay} is shorter than one time step "
                 f"(dt = {protocol.phases.dt} in {protocol.source}); spikes move by whole steps")
        # a spiking soma is integrated exactly; only rate compartments need dt ≤ τ
        for key in ("tau_apical",) if kind.spiking else ("tau", "tau_apical"):
            tau = getattr(layer, key).quantity
            if dt > tau * 1.000001:
                fail(protocol.source, "phases.dt",
                     f"dt = {protocol.phases.dt} is longer than layers.{i}.{key} = "
                     f"{getattr(layer, key)} in {model.source}; forward Euler needs dt ≤ τ "
                     f"(dt = τ is the one-step-per-phase setting)")
    if protocol.engine.name == "brian2":  # the reference engine has no time
        _warn_unsettled(model, protocol)


def _warn_unsettled(model, protocol):
    """Warn (:class:`SettlingWarning`) of each phase too short to settle (:data:`SETTLING_TAUS`)."""
    from .populations import population_kind

    dt = float(protocol.phases.dt.quantity)

    def steps(duration):  # ≥ 1: dt ≤ τ is checked above
        decay = 1 - dt / float(duration.quantity)
        return 1 if decay <= 0 else math.ceil(SETTLING_TAUS / -math.log(decay) - 1e-9)

    rate = [layer for layer in model.layers if not population_kind(layer).spiking]
    taus = [(f"{layer.name}.{key}", getattr(layer, key)) for layer in model.layers
            for key in (("tau", "tau_apical") if layer in rate else ("tau_apical",))]
    needs = {"forward": (1 + sum(steps(layer.tau) - 1 for layer in rate),
                         "the rate somas, in cascade: " + ", ".join(
                             f"{layer.name}.tau = {layer.tau}" for layer in rate))}
    if taus:
        name, longest = max(taus, key=lambda item: float(item[1].quantity))
        needs.update(dict.fromkeys(("feedback", "target"),
                                   (steps(longest), f"the longest τ, {name} = {longest}")))
    for phase, (n_steps, what) in needs.items():
        length = getattr(protocol.phases, phase)
        if float(length.quantity) < n_steps * dt * 0.999999:
            warnings.warn(f"{protocol.source}: phases.{phase} = {length} is too short for the "
                          f"populations to settle: it needs at least {_seconds(n_steps * dt)} "
                          f"({n_steps} steps of dt = {protocol.phases.dt} for {what}, in "
                          f"{model.source})", SettlingWarning, stacklevel=2)


def _seconds(value: float) -> str:
    return f"{value:.4g} s" if value >= 1 else f"{value * 1e3:.4g} ms"


def _check_recorded_names(model, protocol):
    """record.layers and record.pathways must name layers and pathways of the model."""
    L = len(model.layers)
    known = {"layers": model.names[1:],
             "pathways": [f"forward_{l}" for l in range(1, L + 1)]
             + [f"feedback_{l}" for l in range(2, L + 1)]}
    for key, names in known.items():
        for name in getattr(protocol.record, key):
            if name not in names:
                fail(protocol.source, f"record.{key}", f"{name!r} is not one of the model's "
                     f"{key} ({', '.join(names)}, from {model.source}).{suggest(name, names)}")

