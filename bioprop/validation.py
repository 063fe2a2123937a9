"""The checks a model or protocol must pass beyond the types of its keys.

:mod:`bioprop.spec` converts a file's tables into typed specs and hands them here:
:func:`validate_model` and :func:`validate_protocol` check each file on its own
(allowed values, sizes, combinations of keys); :func:`check_compatible`
(:mod:`bioprop.compatibility`) checks a model against the protocol and data it is run
with. Each failure is a :class:`~bioprop.errors.SpecError` naming the file and the key.
Nothing here imports Brian2, except the check of a synapse's own plasticity rule.
"""
from __future__ import annotations

from functools import cache

from .constraints import check_constraints
from .compatibility import SETTLING_TAUS, SettlingWarning, check_compatible, check_data
from .errors import fail, suggest
from .ranges import check_ranges, walk

from .runlog.vocabulary import ACTIVITY_VARIABLES

__all__ = ["validate_model", "validate_protocol", "check_compatible", "check_data",
           "RECORD_PATH_FIELDS", "SettlingWarning", "SETTLING_TAUS", "allowed_values"]

#: the placeholders record.path may hold, filled in by bioprop.training
RECORD_PATH_FIELDS = ("model", "seed")



# Allowed values of string keys are the registries themselves, looked up lazily so
# that the spec never duplicates a list of names; once, installed packages' extensions
# loaded first (bioprop.plugins). The registries are the dicts themselves, so the names a
# user registers later (bioprop.extensions) are allowed too; no user kind encodes input.
@cache
def _registry_choices():
    from .activations import ACTIVATIONS
    from .plugins import load_entry_points
    from .datasets import DATASETS
    from .populations import POPULATION_KINDS, SPIKING_TARGETS, input_encodings
    from .rules import FEEDBACK_OBJECTIVES, LOSSES, OPTIMIZERS, TARGET_RULES, TARGET_STEP_LOSSES
    from .projection import INITIALISATIONS
    from .rules.optimizers import SCHEDULES

    load_entry_points()
    return {
        "population": POPULATION_KINDS, "activation": ACTIVATIONS,
        "connection": ["dense", "synapses"], "plasticity": ["dense", "synaptic"],
        "rule.target": TARGET_RULES, "rule.feedback": FEEDBACK_OBJECTIVES,
        "rule.top": ["output", "penultimate"], "rule.schedule": ["alternating", "epochs", "parallel"],
        "rule.side_information": ["none", "label", "activity"],
        "rule.spiking_target": SPIKING_TARGETS, "rule.feedback_from": ["spikes", "twin"],
        "rule.target_step_loss": TARGET_STEP_LOSSES,
        "optimizer.name": OPTIMIZERS, "optimizer.schedule": SCHEDULES, "network.loss": LOSSES,
        "network.init": INITIALISATIONS,
        "network.input_encoding": input_encodings(),
        "engine.name": ["brian2", "reference"], "engine.codegen": ["numpy", "cython"],
        "engine.transmission": ["dense", "events"],
        "phases.trial_start": ["carry", "rest", "twin"],
        "engine.dtype": ["float64", "float32"], "data.dataset": DATASETS,
    }


def _choice_key(key: str) -> str | None:
    parts = key.split(".")
    if parts[0] == "layers":
        return parts[-1]
    if parts[0] == "optimizer":
        return "optimizer." + parts[-1]
    return key


def allowed_values(key: str):
    """The values a string key may take (its registry's names), or None for a free key.

    `key` is dotted as in a file, a layer's keys under any index or name
    (``layers.0.activation``); the documentation's key reference lists these."""
    return _registry_choices().get(_choice_key(key))


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
        if layer.name in names[:i] or layer.name == "input":  # the second of two is at fault
            fail(src, f"layers.{i}.name", f"layer names must be unique and not 'input': {layer.name!r}")
        _validate_population(layer, src, f"layers.{i}")
        _validate_connection(spec, i, src)
        _validate_lr_scales(spec, i, src)
    for pathway in ("forward", "feedback"):
        _validate_optimizer(getattr(spec.optimizer, pathway), src, f"optimizer.{pathway}")
    if spec.rule.top == "penultimate" and len(spec.layers) < 2:
        fail(src, "rule.top", "'penultimate' needs at least two layers")
    rules = _registry_choices()["rule.target"]
    for key, value in (("iterations", spec.rule.iterations > 1),
                       ("iteration_step", spec.rule.iteration_step != 1)):
        if value and not rules[spec.rule.target].iterates:
            iterating = ", ".join(repr(name) for name, rule in rules.items() if rule.iterates)
            fail(src, f"rule.{key}", f"only the {iterating} rule iterates; rule.target is "
                 f"{spec.rule.target!r}")
    check_constraints(spec)
    return spec


def _validate_population(layer, src, key):
    """The parameters a population kind needs, checked where no dt is needed yet."""
    from .populations import population_kind

    population_kind(layer).validate(layer, src, key)


def _validate_optimizer(opt, src, key):
    """Only the constants the named optimizer has, and a final rate a schedule decays to."""
    from .rules.optimizers import constants

    own = constants(opt.name)
    every = {name for o in _registry_choices()["optimizer.name"] for name in constants(o)}
    for name in sorted(every - set(own)):
        if getattr(opt, name) is not None:
            fail(src, f"{key}.{name}", f"{opt.name!r} has no constant {name!r}; its constants: "
                 f"{', '.join(f'{k} (default {v:g})' for k, v in own.items())}")
    if opt.schedule == "constant" and opt.lr_final:
        decaying = [f'"{n}"' for n in _registry_choices()["optimizer.schedule"] if n != "constant"]
        fail(src, f"{key}.lr_final", f"{opt.lr_final!r} is set but {key}.schedule is "
             f"\"constant\": set a decaying one ({' or '.join(decaying)}) or leave lr_final out")
    if opt.lr_final > opt.lr:
        fail(src, f"{key}.lr_final", f"{opt.lr_final!r} is larger than {key}.lr = {opt.lr!r}: "
             "a schedule decays from lr to lr_final")


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
    if layer.delay.seconds == 0:
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
        _validate_plasticity_rule(layer, src, f"{key}_rule")
    if layer.connection != "synapses":
        fail(src, key, f"\"synaptic\" needs connection = \"synapses\" (got {layer.connection!r}): "
             "a dense pathway has no synapses to learn")
    if spec.optimizer.forward.name != "sgd":
        fail(src, key, f"\"synaptic\" needs optimizer.forward.name = \"sgd\" (got "
             f"{spec.optimizer.forward.name!r}): each synapse applies plain gradient steps, "
             "w += lr · (its change)")
    if spec.optimizer.forward.schedule != "constant" or spec.optimizer.forward.momentum:
        fail(src, key, "\"synaptic\" learns at one fixed rate without momentum (each synapse "
             "applies w += lr · (its change)): leave optimizer.forward.schedule and momentum out")
    if spec.rule.top == "penultimate" and i == len(spec.layers) - 1:
        fail(src, key, "the output layer learns from the loss gradient with rule.top = "
             "\"penultimate\", not from a target: use \"dense\" there")


def _validate_plasticity_rule(layer, src, key):
    """A synapse's rule: a registered rule's name (:mod:`bioprop.plasticity_rules`), or an
    expression :func:`check_rule_expression` accepts."""
    from .plasticity_rules import PLASTICITY_RULES, is_rule_name, rule_expression

    rule = layer.plasticity_rule
    if is_rule_name(rule) and rule not in PLASTICITY_RULES:
        fail(src, key, f"unknown rule {rule!r}. Expected a rule's name, one of: "
             f"{', '.join(PLASTICITY_RULES)}, or an expression.{suggest(rule, PLASTICITY_RULES)}")
    check_rule_expression(rule_expression(layer), src, key)


def check_rule_expression(rule: str, src, key):
    """A synapse's rule: an expression that Brian2's parser takes, in the names a synapse
    can read, calling only Brian2's functions. Brian2 is imported only for a model with a
    rule of its own.

    Raises
    ------
    SpecError
        ``"{src}: {key}: ..."``, saying what is wrong with `rule`.
    """
    import ast

    from .pathways import LOCAL_RULE, RULE_VARIABLES

    try:
        tree = ast.parse(rule, mode="eval")
    except SyntaxError:
        fail(src, key, f"{rule!r} is not an expression; e.g. {LOCAL_RULE!r}")
    from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
    from brian2.parsing.sympytools import str_to_sympy
    from brian2.utils.stringtools import get_identifiers

    unknown = get_identifiers(rule) - set(RULE_VARIABLES) - set(DEFAULT_FUNCTIONS) - set(DEFAULT_CONSTANTS)
    if unknown:
        fail(src, key, f"unknown name(s) {', '.join(sorted(map(repr, unknown)))} in {rule!r}. "
             f"A synapse's rule may use: {', '.join(RULE_VARIABLES)} and Brian2's functions")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in DEFAULT_FUNCTIONS):
            fail(src, key, f"{ast.unparse(node.func)!r} is not a function, in {rule!r}")
    try:  # what Python parses but Brian2 does not: indexing, if-else, tuples, a < b < c...
        str_to_sympy(rule)
    except Exception as err:  # Brian2 raises SyntaxError, and KeyError for some operators
        reason = (str(err).splitlines() or [""])[0] if isinstance(err, SyntaxError) \
            else f"it does not support {err}"
        fail(src, key, f"{rule!r} is not an expression Brian2 can run: {reason}")


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
    if spec.record.activity_trials > spec.training.batch_size:
        fail(src, "record.activity_trials", f"keeps the first {spec.record.activity_trials} "
             f"trials of a recorded batch, but a batch has {spec.training.batch_size} "
             "(training.batch_size); 0 keeps them all")
    unknown = set(spec.record.variables) - set(ACTIVITY_VARIABLES)
    if unknown:
        fail(src, "record.variables", f"unknown {sorted(unknown)}. Expected some of: "
             f"{', '.join(ACTIVITY_VARIABLES)}")
    dt = spec.phases.dt.seconds
    for key in ("forward", "feedback", "target"):
        if getattr(spec.phases, key).seconds < dt * 0.999:
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
    try:  # a format spec or conversion that does not fit: "{seed:q}", "{model!z}"
        path.format(model="model", seed=1)
    except (ValueError, TypeError) as err:
        fail(src, "record.path", f"{path!r} is not a valid pattern ({err})")
    if path.endswith(("/", "\\")) or not path.strip():
        fail(src, "record.path", f"{path!r} names a folder; the run file must be a file, "
             "e.g. 'runs/{model}-seed{seed}.h5'")

