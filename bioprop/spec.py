"""Typed model and protocol specs, read from TOML and validated once.

A model file says *what* network learns *how*: its layers, the learning rule and
the optimizers. A protocol file says how it is run: data, training length, the
phases of a trial in simulated time, the engine and what to record.

Every table maps onto a frozen dataclass below; the dataclass fields are the
only allowed keys, and their annotations the allowed types. An error names the
file, the dotted key, what was expected and, for a typo, the likely key::

    models/default.toml: unknown key 'rule.targte'. Expected one of: feedback, ...
    Did you mean 'target'?

Durations are strings with Brian2 units (``tau = "10 ms"``) and become Brian2
quantities. :func:`apply_overrides` implements ``--set key=value``.
"""
from __future__ import annotations

import difflib
import math
import re
import tomllib
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass, replace
from pathlib import Path

__all__ = ["SpecError", "LayerSpec", "RuleSpec", "OptimizerSpec", "ModelSpec", "DataSpec",
           "TrainingSpec", "PhasesSpec", "EngineSpec", "RecordSpec", "ProtocolSpec",
           "load_model", "load_protocol", "parse_model", "parse_protocol", "apply_overrides",
           "parse_override", "to_toml", "default_model_path", "default_protocol_path"]

PACKAGE_ROOT = Path(__file__).resolve().parent


class SpecError(ValueError):
    """A model or protocol file that cannot be used, with the file and key at fault."""


class Duration(str):
    """Marks a field given as a string with Brian2 time units, e.g. ``"10 ms"``."""


class Delay(Duration):
    """A duration that may be zero (``"0 ms"``): a synaptic delay."""


# ---------------------------------------------------------------- model tables
@dataclass(frozen=True)
class LayerSpec:
    """One population above the input."""

    name: str
    size: int
    #: population kind (populations.POPULATIONS): ``rate``, ``sign``, ``lif``, ``poisson``,
    #: ``bernoulli``
    population: str = "rate"
    #: transfer function φ of a ``rate`` population (activations.ACTIVATIONS); the other
    #: kinds fix their own
    activation: str = "tanh"
    #: membrane time constant of the basal (somatic) compartment (τ_m of ``lif``)
    tau: Duration = Duration("10 ms")
    #: time constant of the apical compartment that computes g_{l+1}
    tau_apical: Duration = Duration("10 ms")
    #: ``lif``: firing threshold and reset of v, in units of the input current
    threshold: float = 1.0
    reset: float = 0.0
    #: ``lif``: refractory period; 1 / refractory is the maximal rate, r = 1
    refractory: Duration = Duration("2 ms")
    #: ``lif``, ``poisson``: time constant of each of the spike trace's two filters
    tau_trace: Duration = Duration("20 ms")
    #: ``poisson``: the rate in Hz at which r = 1 (p = 1)
    max_rate: float = 1000.0
    #: how the Brian2 engine simulates the feedforward pathway W_l into this layer:
    #: ``dense`` (one matrix product per step, the fast default) or ``synapses`` (Brian2
    #: ``Synapses``, one per connection and trial; pathways.synaptic_projection)
    connection: str = "dense"
    #: probability that each connection of W_l exists, drawn once per model; absent
    #: connections stay zero in both engines (any ``connection``)
    p_connect: float = 1.0
    #: ``synapses`` from a spiking (``lif``, ``poisson``) layer or Poisson input only: the
    #: delay of every spike, rounded to whole time steps; "0 ms" sums w · r every step
    delay: Delay = Delay("0 ms")
    #: how W_l learns: ``dense`` (the rules update the dense W_l, copied into any synapses)
    #: or ``synaptic`` (``synapses`` pathways with SGD only: each synapse runs the local forward
    #: rule as a Brian2 statement, pathways.SynapticPlasticity)
    plasticity: str = "dense"
    #: ``synaptic`` only: a Brian2 expression for one synapse's change in its trial, in the
    #: names pathways.RULE_VARIABLES; empty: the local forward rule (pathways.LOCAL_RULE)
    plasticity_rule: str = ""
    #: multiplies optimizer.forward.lr for this layer's W_l and b_l (0 freezes them)
    lr_scale: float = 1.0
    #: multiplies optimizer.feedback.lr for g_l, the feedback pathway from this layer down to
    #: the one below (and its side input R_l); the first layer has no g_1
    feedback_lr_scale: float = 1.0


@dataclass(frozen=True)
class RuleSpec:
    """The learning rule: a target rule combined with a feedback objective."""

    #: target rule (rules.TARGET_RULES): tp, dtp, iterative, or a baseline bp, fa, dfa, gn
    target: str = "dtp"
    #: feedback objective (rules.FEEDBACK_OBJECTIVES)
    feedback: str = "dtp"
    #: the layer that takes the loss-gradient step: ``output`` or ``penultimate``
    top: str = "output"
    #: η̂, the size of the top target step
    target_step: float = 0.3
    #: σ, the standard deviation of the noise injected to train the inverses
    noise: float = 0.36
    #: ``alternating`` (after Lee 2015: on each batch the inverses learn first, then the forward
    #: weights from targets through the updated inverses; Lee's code alternates whole epochs)
    #: or ``parallel`` (both from the inverses as they were at the batch's start)
    schedule: str = "alternating"
    #: K, the refinement steps of the ``iterative`` rule (K = 1 is ``dtp``)
    iterations: int = 1
    #: scale each layer's change by its influence on the top (rules.updates.normalise_layers)
    layer_norm: bool = False
    #: λ, the damping of the ``gn`` target
    damping: float = 1e-3
    #: feedback-weight updates per batch, each on fresh noise
    feedback_iterations: int = 1
    #: epochs that train only the feedback pathway before forward learning starts
    feedback_pretrain_epochs: int = 0
    #: extra input s of every g_l (Bengio 2014): ``none``, ``label`` (the target y) or
    #: ``activity`` (the lower layer's own forward activity h_{l-1})
    side_information: str = "none"
    #: a spiking layer's target for its forward update: ``trace`` (its spike trace at the end
    #: of the target phase) or ``apical`` (its forward trace plus the change its apical
    #: dendrite asked for; less noisy for stochastic units). Rate layers: the same either way.
    spiking_target: str = "trace"

@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "rmsprop"
    lr: float = 1e-3


@dataclass(frozen=True)
class OptimizersSpec:
    forward: OptimizerSpec = OptimizerSpec()
    feedback: OptimizerSpec = OptimizerSpec()


@dataclass(frozen=True)
class NetworkSpec:
    name: str = "model"
    #: size of the clamped input population
    input_size: int = 64
    #: output loss (rules.LOSSES)
    loss: str = "softmax_cross_entropy"
    #: initial weights: ``orthogonal`` or ``glorot``
    init: str = "orthogonal"
    #: ``rate`` (the input layer fires the data) or ``poisson`` (Poisson spike trains of
    #: rate x · input_rate, the rules seeing their spike trace)
    input_encoding: str = "rate"
    #: ``poisson`` encoding: the rate in Hz of an input of value 1
    input_rate: float = 1000.0
    #: ``poisson`` encoding: time constant of each filter of the input's spike trace
    input_tau_trace: Duration = Duration("20 ms")


@dataclass(frozen=True)
class ModelSpec:
    """A whole model file."""

    network: NetworkSpec
    layers: tuple[LayerSpec, ...]
    rule: RuleSpec = RuleSpec()
    optimizer: OptimizersSpec = OptimizersSpec()
    source: str = "<string>"

    @property
    def sizes(self):
        return [self.network.input_size] + [layer.size for layer in self.layers]

    @property
    def names(self):
        return ["input"] + [layer.name for layer in self.layers]


# ------------------------------------------------------------- protocol tables
@dataclass(frozen=True)
class DataSpec:
    #: datasets.DATASETS name
    dataset: str = "digits"
    #: use only the first n training / test samples (0: all)
    n_train: int = 0
    n_test: int = 0


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 10
    batch_size: int = 32
    seed: int = 1


@dataclass(frozen=True)
class PhasesSpec:
    """The phases of one trial in simulated time (DESIGN.md, "One model, two executions")."""

    #: simulation time step
    dt: Duration = Duration("5 ms")
    #: forward settling, input clamped
    forward: Duration = Duration("40 ms")
    #: each of the two noise-injection half-phases that train the inverses
    feedback: Duration = Duration("20 ms")
    #: target delivery through the apical input
    target: Duration = Duration("40 ms")


@dataclass(frozen=True)
class EngineSpec:
    #: ``brian2`` (the product) or ``reference`` (plain NumPy, no time)
    name: str = "brian2"
    #: Brian2 code generation target: ``numpy`` or ``cython``
    codegen: str = "numpy"
    #: floating point type of the weights and activity
    dtype: str = "float64"
    #: BLAS threads; 1 avoids oversubscription on a shared machine (see README)
    threads: int = 1


@dataclass(frozen=True)
class RecordSpec:
    #: run file; ``{model}`` and ``{seed}`` are filled in
    path: str = "runs/{model}-seed{seed}.h5"
    #: training samples in the fixed probe batch of the per-layer diagnostics (0: none)
    probe_size: int = 64
    #: snapshot every pathway's weights every k epochs, and before training (0: never)
    weights_every: int = 10
    #: record the activity of one probe batch of B trials every k epochs (0: never)
    activity_every: int = 0
    #: the recording time step of activity, as a multiple of the simulation dt
    activity_dt_factor: int = 1
    #: in every epoch whose probe is recorded, also record every k-th training batch (0: never)
    activity_batch_every: int = 0
    #: the pathways whose weights are snapshot, e.g. ["forward_1", "feedback_2"] (empty: all)
    pathways: tuple[str, ...] = ()
    #: the layers whose activity is recorded, by name (empty: all)
    layers: tuple[str, ...] = ()
    #: the activity variables recorded (:data:`ACTIVITY_VARIABLES`; empty: all the engine has)
    variables: tuple[str, ...] = ()


#: what a layer's activity record may hold: rates, membrane state, the nudge of a rate soma,
#: the apical potential, the apical current of a spiking soma, targets (reference) and spikes
ACTIVITY_VARIABLES = ("rate", "potential", "nudge", "apical", "apical_current", "target",
                      "spikes")


@dataclass(frozen=True)
class ProtocolSpec:
    """A whole protocol file."""

    data: DataSpec = DataSpec()
    training: TrainingSpec = TrainingSpec()
    phases: PhasesSpec = PhasesSpec()
    engine: EngineSpec = EngineSpec()
    record: RecordSpec = RecordSpec()
    source: str = "<string>"


# Allowed values of string keys are the registries themselves, looked up lazily so
# that spec.py never duplicates a list of names.
def _registry_choices():
    from .activations import ACTIVATIONS
    from .populations import POPULATIONS
    from .rules import FEEDBACK_OBJECTIVES, LOSSES, OPTIMIZERS, TARGET_RULES
    return {
        "population": POPULATIONS, "activation": ACTIVATIONS,
        "connection": ["dense", "synapses"], "plasticity": ["dense", "synaptic"],
        "rule.target": TARGET_RULES, "rule.feedback": FEEDBACK_OBJECTIVES,
        "rule.top": ["output", "penultimate"], "rule.schedule": ["alternating", "parallel"],
        "rule.side_information": ["none", "label", "activity"],
        "rule.spiking_target": ["trace", "apical"],
        "optimizer.name": OPTIMIZERS, "network.loss": LOSSES,
        "network.init": ["orthogonal", "glorot"],
        "network.input_encoding": ["rate", "poisson"],
        "engine.name": ["brian2", "reference"], "engine.codegen": ["numpy", "cython"],
        "engine.dtype": ["float64", "float32"],
    }


def _choice_key(key: str) -> str | None:
    parts = key.split(".")
    if parts[0] == "layers":
        return parts[-1]
    if parts[0] == "optimizer":
        return "optimizer." + parts[-1]
    return key


# ------------------------------------------------------------------ conversion
def _fail(source, key, message):
    raise SpecError(f"{source}: {key}: {message}" if key else f"{source}: {message}")


def _suggest(name, options):
    close = difflib.get_close_matches(name, options, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def _convert(cls, data, source, prefix=""):
    if not isinstance(data, dict):
        _fail(source, prefix.rstrip("."), f"expected a table, got {data!r}")
    names = [f.name for f in fields(cls) if f.name != "source"]
    for key in data:
        if key not in names:
            raise SpecError(f"{source}: unknown key {prefix + key!r}. Expected one of: "
                            f"{', '.join(names)}.{_suggest(key, names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name == "source" or f.name not in data:
            continue
        values[f.name] = _convert_value(hints[f.name], data[f.name], source, prefix + f.name)
    missing = [f.name for f in fields(cls) if f.name not in values
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        where = prefix.rstrip(".") or "top level"
        _fail(source, where, f"missing required key(s): {', '.join(missing)}")
    return cls(**values)


def _convert_value(tp, value, source, key):
    origin = typing.get_origin(tp)
    if is_dataclass(tp):
        return _convert(tp, value, source, key + ".")
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            _fail(source, key, f"expected an array of tables, got {type(value).__name__}")
        return tuple(_convert_value(item, v, source, f"{key}.{i}") for i, v in enumerate(value))
    if tp in (Duration, Delay):
        if not isinstance(value, str):
            _fail(source, key, f"expected a duration with units such as \"10 ms\", got {value!r}")
        parse_duration(value, source, key, allow_zero=tp is Delay)
        return tp(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        _fail(source, key, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


_DURATION = re.compile(r"^\s*([-+0-9.eE]+)\s*\*?\s*(ms|us|second|s|msecond|usecond)\s*$")


def parse_duration(text: str, source="<string>", key="", allow_zero: bool = False):
    """``"10 ms"`` → ``10*ms``, a Brian2 quantity; anything else is a SpecError.

    A duration must be positive; with `allow_zero` (a delay) it may also be zero.
    """
    import brian2

    match = _DURATION.match(text)
    if not match:
        _fail(source, key, f"expected a duration with units such as \"10 ms\", got {text!r}")
    unit = {"ms": brian2.ms, "msecond": brian2.ms, "us": brian2.us, "usecond": brian2.us,
            "s": brian2.second, "second": brian2.second}[match.group(2)]
    value = float(match.group(1)) * unit
    if value < 0 * brian2.second or (value == 0 * brian2.second and not allow_zero):
        _fail(source, key, f"a duration must be {'≥ 0' if allow_zero else 'positive'}, "
              f"got {text!r}")
    return value


# ------------------------------------------------------------------ validation
def _check_choices(spec_dict_items, source):
    choices = _registry_choices()
    for key, value in spec_dict_items:
        allowed = choices.get(_choice_key(key))
        if allowed is not None and value not in allowed:
            raise SpecError(f"{source}: {key}: unknown value {value!r}. Expected one of: "
                            f"{', '.join(sorted(allowed))}.{_suggest(str(value), list(allowed))}")


def _flatten(obj, prefix=""):
    for f in fields(obj):
        if f.name == "source":
            continue
        value = getattr(obj, f.name)
        key = prefix + f.name
        if is_dataclass(value):
            yield from _flatten(value, key + ".")
        elif isinstance(value, tuple) and all(is_dataclass(item) for item in value):
            for i, item in enumerate(value):
                yield from _flatten(item, f"{key}.{i}.")
        else:
            yield key, value


def _validate_model(spec: ModelSpec):
    src = spec.source
    _check_choices(_flatten(spec), src)
    if not spec.layers:
        _fail(src, "layers", "a model needs at least one layer above the input")
    if spec.network.input_size < 1:
        _fail(src, "network.input_size", f"must be positive, got {spec.network.input_size}")
    names = [layer.name for layer in spec.layers]
    for i, layer in enumerate(spec.layers):
        if layer.size < 1:
            _fail(src, f"layers.{i}.size", f"must be positive, got {layer.size}")
        if names.count(layer.name) > 1 or layer.name == "input":
            _fail(src, f"layers.{i}.name", f"layer names must be unique and not 'input': {layer.name!r}")
        _validate_population(layer, src, f"layers.{i}")
        _validate_connection(spec, i, src)
        _validate_lr_scales(spec, i, src)
    if spec.rule.top == "penultimate" and len(spec.layers) < 2:
        _fail(src, "rule.top", "'penultimate' needs at least two layers")
    if not spec.rule.noise >= 0:
        _fail(src, "rule.noise", f"must be ≥ 0, got {spec.rule.noise}")
    for key in ("iterations", "feedback_iterations"):
        if getattr(spec.rule, key) < 1:
            _fail(src, f"rule.{key}", f"must be ≥ 1, got {getattr(spec.rule, key)}")
    if spec.rule.feedback_pretrain_epochs < 0:
        _fail(src, "rule.feedback_pretrain_epochs", "must be ≥ 0")
    if spec.rule.iterations > 1 and spec.rule.target != "iterative":
        _fail(src, "rule.iterations", f"only the 'iterative' rule iterates; rule.target is "
              f"{spec.rule.target!r}")
    return spec


def _validate_population(layer: LayerSpec, src, key):
    """The parameters a population kind needs, checked where no dt is needed yet."""
    from .populations import population_kind

    population_kind(layer).validate(layer, src, key)


def _validate_lr_scales(spec: ModelSpec, i: int, src):
    layer, key = spec.layers[i], f"layers.{i}"
    for name in ("lr_scale", "feedback_lr_scale"):
        value = getattr(layer, name)
        if not (math.isfinite(value) and value >= 0):  # _convert_value made it a float
            _fail(src, f"{key}.{name}", f"a learning-rate scale must be a finite number ≥ 0, "
                  f"got {value!r}")
    if i == 0 and layer.feedback_lr_scale != 1:
        _fail(src, f"{key}.feedback_lr_scale", "the first layer has no feedback pathway g_1 "
              "(g_l sends layer l's target to layer l − 1): set it on the layer above")


def _validate_connection(spec: ModelSpec, i: int, src):
    """The feedforward pathway into layer i: its connection probability and its delay."""
    from .populations import POPULATION_KINDS, input_kind, population_kind

    layer, key = spec.layers[i], f"layers.{i}"
    if not 0 < layer.p_connect <= 1:
        _fail(src, f"{key}.p_connect", f"a connection probability must lie in (0, 1], got "
              f"{layer.p_connect}")
    _validate_plasticity(spec, i, src)
    if float(parse_duration(layer.delay, allow_zero=True)) == 0:
        return
    if layer.connection != "synapses":
        _fail(src, f"{key}.delay", f"a delay needs connection = \"synapses\" (got "
              f"{layer.connection!r}): the dense pathway has no spikes to delay")
    # the delayed pathway filters the spikes it carries as the presynaptic trace does
    if i > 0:
        below, name = population_kind(spec.layers[i - 1]), spec.layers[i - 1].population
    else:
        below, name = input_kind(spec.network), f"{spec.network.input_encoding} input"
    if not below.spikes:
        spiking = [kind.name for kind in POPULATION_KINDS.values() if kind.spikes]
        _fail(src, f"{key}.delay", f"only spikes can be delayed: the layer below is {name!r}; "
              f"a delay needs a {' or '.join(spiking)} layer below (or "
              f"network.input_encoding = \"poisson\" for the first layer), or delay = \"0 ms\"")


def _validate_plasticity(spec: ModelSpec, i: int, src):
    """Synaptic plasticity needs synapses, a local target and the optimizer a synapse can run."""
    layer, key = spec.layers[i], f"layers.{i}.plasticity"
    if layer.plasticity != "synaptic":
        if layer.plasticity_rule:
            _fail(src, f"{key}_rule", f"a rule needs plasticity = \"synaptic\" (got "
                  f"{layer.plasticity!r}): only synapses that learn run it")
        return
    if layer.plasticity_rule:
        _validate_plasticity_rule(layer.plasticity_rule, src, f"{key}_rule")
    if layer.connection != "synapses":
        _fail(src, key, f"\"synaptic\" needs connection = \"synapses\" (got {layer.connection!r}): "
              "a dense pathway has no synapses to learn")
    if spec.optimizer.forward.name != "sgd":
        _fail(src, key, f"\"synaptic\" needs optimizer.forward.name = \"sgd\" (got "
              f"{spec.optimizer.forward.name!r}): each synapse applies plain gradient steps, "
              "w += lr · (its change)")
    if spec.rule.top == "penultimate" and i == len(spec.layers) - 1:
        _fail(src, key, "the output layer learns from the loss gradient with rule.top = "
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
        _fail(src, key, f"{rule!r} is not an expression; e.g. {LOCAL_RULE!r}")
    unknown = get_identifiers(rule) - set(RULE_VARIABLES) - set(DEFAULT_FUNCTIONS) - set(DEFAULT_CONSTANTS)
    if unknown:
        _fail(src, key, f"unknown name(s) {', '.join(sorted(map(repr, unknown)))} in {rule!r}. "
              f"A synapse's rule may use: {', '.join(RULE_VARIABLES)} and Brian2's functions")


def _validate_protocol(spec: ProtocolSpec):
    src = spec.source
    _check_choices(_flatten(spec), src)
    for key in ("probe_size", "weights_every", "activity_every", "activity_batch_every"):
        if getattr(spec.record, key) < 0:
            _fail(src, f"record.{key}", f"must be ≥ 0, got {getattr(spec.record, key)}")
    if spec.record.activity_batch_every and not spec.record.activity_every:
        _fail(src, "record.activity_batch_every", "records batches in the epochs whose activity "
              "is recorded; set record.activity_every ≥ 1 too")
    unknown = set(spec.record.variables) - set(ACTIVITY_VARIABLES)
    if unknown:
        _fail(src, "record.variables", f"unknown {sorted(unknown)}. Expected some of: "
              f"{', '.join(ACTIVITY_VARIABLES)}")
    if spec.record.activity_dt_factor < 1:
        _fail(src, "record.activity_dt_factor", "must be ≥ 1")
    for key in ("epochs", "batch_size"):
        if getattr(spec.training, key) < 1:
            _fail(src, f"training.{key}", f"must be positive, got {getattr(spec.training, key)}")
    for key in ("dt", "forward", "feedback", "target"):
        parse_duration(getattr(spec.phases, key), src, f"phases.{key}")
    dt = parse_duration(spec.phases.dt)
    for key in ("forward", "feedback", "target"):
        if parse_duration(getattr(spec.phases, key)) < dt * 0.999:
            _fail(src, f"phases.{key}", f"a phase must last at least one time step (dt = {spec.phases.dt})")
    return spec


def check_compatible(model: ModelSpec, protocol: ProtocolSpec, n_features: int, n_outputs: int):
    """Errors for a model whose shapes do not fit the data, or whose τ does not fit dt."""
    if model.network.input_size != n_features:
        _fail(model.source, "network.input_size",
              f"is {model.network.input_size}, but dataset {protocol.data.dataset!r} has "
              f"{n_features} input features (from {protocol.source})")
    if model.layers[-1].size != n_outputs:
        _fail(model.source, f"layers.{len(model.layers) - 1}.size",
              f"the output layer {model.layers[-1].name!r} has {model.layers[-1].size} neurons, "
              f"but dataset {protocol.data.dataset!r} has {n_outputs} outputs")
    _check_recorded_names(model, protocol)
    dt = parse_duration(protocol.phases.dt)
    from .populations import input_kind, population_kind

    if input_kind(model.network).spikes and model.network.input_rate * float(dt) > 1:
        _fail(model.source, "network.input_rate",
              f"{model.network.input_rate} Hz × dt = {model.network.input_rate * float(dt):.3g} > 1: "
              f"a Poisson input fires at most once per step (phases.dt in {protocol.source})")
    for i, layer in enumerate(model.layers):
        kind = population_kind(layer)
        try:
            kind.population(layer, dt, where=f"{model.source}: layers.{i} ({layer.name})")
        except ValueError as err:
            raise SpecError(f"{err} (phases.dt in {protocol.source})") from None
        delay = parse_duration(layer.delay, allow_zero=True)
        if 0 * dt < delay < dt * 0.999:
            _fail(model.source, f"layers.{i}.delay", f"{layer.delay} is shorter than one time step "
                  f"(dt = {protocol.phases.dt} in {protocol.source}); spikes move by whole steps")
        # a spiking soma is integrated exactly; only rate compartments need dt ≤ τ
        for key in ("tau_apical",) if kind.spiking else ("tau", "tau_apical"):
            tau = parse_duration(getattr(layer, key), model.source, f"layers.{i}.{key}")
            if dt > tau * 1.000001:
                _fail(protocol.source, "phases.dt",
                      f"dt = {protocol.phases.dt} is longer than layers.{i}.{key} = "
                      f"{getattr(layer, key)} in {model.source}; forward Euler needs dt ≤ τ "
                      f"(dt = τ is the one-step-per-phase setting)")


def _check_recorded_names(model: ModelSpec, protocol: ProtocolSpec):
    """record.layers and record.pathways must name layers and pathways of the model."""
    L = len(model.layers)
    known = {"layers": model.names[1:],
             "pathways": [f"forward_{l}" for l in range(1, L + 1)]
             + [f"feedback_{l}" for l in range(2, L + 1)]}
    for key, names in known.items():
        for name in getattr(protocol.record, key):
            if name not in names:
                _fail(protocol.source, f"record.{key}", f"{name!r} is not one of the model's "
                      f"{key} ({', '.join(names)}, from {model.source}).{_suggest(name, names)}")


# ------------------------------------------------------------------- loading
def _read_toml(path) -> tuple[dict, str]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    text = path.read_text()
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None


def parse_model(data: dict, source="<string>") -> ModelSpec:
    """Build a validated ModelSpec from a dict of TOML tables."""
    return _validate_model(replace(_convert(ModelSpec, data, source), source=source))


def parse_protocol(data: dict, source="<string>") -> ProtocolSpec:
    """Build a validated ProtocolSpec from a dict of TOML tables."""
    return _validate_protocol(replace(_convert(ProtocolSpec, data, source), source=source))


def _shipped(package: str, name: str) -> Path:
    from importlib.resources import files
    try:
        return Path(str(files(package) / name))
    except ModuleNotFoundError:
        # Run from a source checkout that shadows the install: models/ and
        # protocols/ sit beside the bioprop/ folder.
        return PACKAGE_ROOT.parent / package.split(".")[-1] / name


def default_model_path() -> Path:
    """models/default.toml, shipped inside the package as ``bioprop.models``."""
    return _shipped("bioprop.models", "default.toml")


def default_protocol_path() -> Path:
    """protocols/default.toml, shipped inside the package as ``bioprop.protocols``."""
    return _shipped("bioprop.protocols", "default.toml")


def load_model(path=None, overrides=()) -> ModelSpec:
    """Read, override and validate a model file (the embedded default when `path` is None)."""
    data, source = _read_toml(path or default_model_path())
    return parse_model(apply_overrides(data, overrides, source, _MODEL_TABLES), source)


def load_protocol(path=None, overrides=()) -> ProtocolSpec:
    """Read, override and validate a protocol file (the embedded default when `path` is None)."""
    data, source = _read_toml(path or default_protocol_path())
    return parse_protocol(apply_overrides(data, overrides, source, _PROTOCOL_TABLES), source)


_MODEL_TABLES = {f.name for f in fields(ModelSpec)} - {"source"}
_PROTOCOL_TABLES = {f.name for f in fields(ProtocolSpec)} - {"source"}


# ----------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[str, object]:
    """``"rule.target=tp"`` → ``("rule.target", "tp")``; the value is read as TOML, else as a string."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected key=value, e.g. --set rule.target=tp")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides, source, tables) -> dict:
    """Apply the ``key=value`` overrides that belong to this file's tables.

    Keys whose first part is not one of `tables` belong to the other file and are
    left alone. Layers are addressed by index or by name: ``layers.hidden1.size``.
    """
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        parts = key.split(".")
        if parts[0] not in tables:
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                index = _layer_index(node, part, source, ".".join(parts[: i + 1]))
                node = node[index]
            else:
                node = node.setdefault(part, {} if part != "layers" else [])
        if isinstance(node, list):
            raise SpecError(f"--set {key}: name a key inside the layer, e.g. layers.0.size")
        node[parts[-1]] = value
    return data


def _layer_index(layers, part, source, key):
    if part.isdigit() and int(part) < len(layers):
        return int(part)
    names = [layer.get("name") for layer in layers]
    if part in names:
        return names.index(part)
    raise SpecError(f"{source}: --set {key}: no layer {part!r}. Layers are "
                    f"{', '.join(map(str, names))} (or indices 0..{len(layers) - 1})."
                    f"{_suggest(part, [n for n in names if n])}")


def to_toml(spec) -> str:
    """The resolved spec as TOML text, for the run file's provenance."""
    import tomli_w

    def as_dict(obj):
        out = {}
        for f in fields(obj):
            if f.name == "source":
                continue
            value = getattr(obj, f.name)
            if is_dataclass(value):
                value = as_dict(value)
            elif isinstance(value, tuple):
                value = [as_dict(v) if is_dataclass(v) else v for v in value]
            elif isinstance(value, Duration):
                value = str(value)
            out[f.name] = value
        return out

    return tomli_w.dumps(as_dict(spec))
