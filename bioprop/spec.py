"""Typed model and protocol specs, read from TOML and validated once.

A model file says *what* network learns *how*: its layers, the learning rule and
the optimizers. A protocol file says how it is run: data, training length, the
phases of a trial in simulated time, the engine and what to record.

Every table maps onto a frozen dataclass below; the dataclass fields are the
only allowed keys, and their annotations the allowed types. An error names the
file, the dotted key, what was expected and, for a typo, the likely key::

    models/default.toml: unknown key 'rule.targte'. Expected one of: feedback, ...
    Did you mean 'target'?

Around this module: :mod:`bioprop.specfiles` reads a file and the base it
``extends``, :mod:`bioprop.overrides` applies ``--set key=value``,
:mod:`bioprop.units` turns each duration (``tau = "10 ms"``) into a
:class:`~bioprop.units.Duration` (its Brian2 quantity made when first used), and
:mod:`bioprop.validation` checks what the types alone cannot.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .constraints import ConstraintsSpec, PathwayConstraintsSpec
from .errors import SpecError
from .overrides import apply_overrides, blame, named_layers
from .protocol_tables import DataSpec, EngineSpec, PhasesSpec, RecordSpec, TrainingSpec
from .populations import DEFAULT_KIND
from .rules import DEFAULT_OBJECTIVE, DEFAULT_TARGET_RULE
from .shipped import PROTOCOL, find_spec_file, usual_protocol
from .specfiles import (check_file_kind, default_model_path, default_protocol_path,
                        read_spec_file, to_toml)
from .typed_tables import META as _META, convert_table as _convert
from .units import Delay, Duration
from .ranges import ranged
from .validation import check_compatible, check_data, validate_model, validate_protocol

__all__ = ["SpecError", "LayerSpec", "RuleSpec", "OptimizerSpec", "OptimizersSpec",
           "NetworkSpec", "ConstraintsSpec", "PathwayConstraintsSpec", "ModelSpec", "DataSpec",
           "TrainingSpec", "PhasesSpec", "EngineSpec", "RecordSpec", "ProtocolSpec",
           "MODEL_TABLES", "PROTOCOL_TABLES", "SPEC_TABLES", "load_model", "load_protocol",
           "from_tables", "parse_model", "parse_protocol", "check_compatible", "check_data",
           "to_toml", "default_model_path", "default_protocol_path"]


# ---------------------------------------------------------------- model tables
@dataclass(frozen=True)
class LayerSpec:
    """One population above the input."""

    #: the layer's name: its groups in the run file, ``--set layers.NAME.KEY=…``
    name: str
    #: number of neurons
    size: int = ranged(gt=0)
    #: population kind (populations.POPULATION_KINDS): ``rate``, ``sign``, ``lif``, ``poisson``,
    #: ``bernoulli``, or a user's (bioprop.register.population_kind, or spiking_kind)
    population: str = DEFAULT_KIND
    #: transfer function φ of a ``rate`` population (activations.ACTIVATIONS, or a user's:
    #: bioprop.register.activation); the other kinds fix their own
    activation: str = "tanh"
    #: membrane time constant of the basal (somatic) compartment (τ_m of ``lif``)
    tau: Duration = Duration("10 ms")
    #: time constant of the apical compartment that computes g_{l+1}
    tau_apical: Duration = Duration("10 ms")
    #: ``lif``: the firing threshold of v, in units of the input current
    threshold: float = 1.0
    #: ``lif``: the value v is reset to after a spike, in units of the input current
    reset: float = 0.0
    #: ``lif``: refractory period; 1 / refractory is the maximal rate, r = 1
    refractory: Duration = Duration("2 ms")
    #: ``lif``, ``poisson``: time constant of each of the spike trace's two filters
    tau_trace: Duration = Duration("20 ms")
    #: ``lif``: γ of the soft-LIF rate twin (in units of the input current, as ``threshold``):
    #: the excess I − θ of the f-I curve goes through a softplus of width γ, the curve under
    #: input noise (rate_twins.lif_rate; calibrated by analysis/lif_fi_curve.py); 0: the hard
    #: curve of a constant input
    twin_smoothing: float = ranged(0.0, ge=0, written="when set")
    #: ``lif``: the derivative φ' the learning rules use for this layer. 0: the straight-through
    #: 1 everywhere; w > 0: the surrogate slope of the soft-LIF curve of width w (in units of the
    #: input current, as ``threshold``; rate_twins.lif_slope), 0 well below threshold
    surrogate_width: float = ranged(0.0, ge=0, written="when set")
    #: ``poisson``: the rate in Hz at which r = 1 (p = 1)
    max_rate: float = 1000.0
    #: how the Brian2 engine simulates the feedforward pathway W_l into this layer:
    #: ``dense`` (one matrix product per step, the fast default) or ``synapses`` (Brian2
    #: ``Synapses``, one per connection and trial; pathways.synaptic_projection)
    connection: str = "dense"
    #: probability that each connection of W_l exists, drawn once per model; absent
    #: connections stay zero in both engines (any ``connection``)
    p_connect: float = ranged(1.0, gt=0, le=1, what="a connection probability")
    #: ``synapses`` from a spiking (``lif``, ``poisson``) layer or Poisson input only: the
    #: delay of every spike, rounded to whole time steps; "0 ms" sums w · r every step
    delay: Delay = Delay("0 ms")
    #: how W_l learns: ``dense`` (the rules update the dense W_l, copied into any synapses)
    #: or ``synaptic`` (``synapses`` pathways with SGD only: each synapse runs the local forward
    #: rule as a Brian2 statement, pathways.SynapticPlasticity)
    plasticity: str = "dense"
    #: ``synaptic`` only: one synapse's change in its trial, a rule's name (plasticity_rules:
    #: ``local``, pathways.LOCAL_RULE, the default; ``straight_through``; a user's) or a Brian2
    #: expression in the names pathways.RULE_VARIABLES
    plasticity_rule: str = ""
    #: multiplies optimizer.forward.lr for this layer's W_l and b_l (0 freezes them)
    lr_scale: float = ranged(1.0, ge=0, what="a learning-rate scale")
    #: multiplies optimizer.feedback.lr for g_l, the feedback pathway from this layer down to
    #: the one below (and its side input R_l); the first layer has no g_1
    feedback_lr_scale: float = ranged(1.0, ge=0, what="a learning-rate scale")


@dataclass(frozen=True)
class RuleSpec:
    """The learning rule: a target rule combined with a feedback objective."""

    #: target rule (rules.TARGET_RULES): tp, dtp, iterative, or a baseline bp, fa, dfa, gn; or a
    #: user's (bioprop.register.target_rule)
    target: str = DEFAULT_TARGET_RULE
    #: feedback objective (rules.FEEDBACK_OBJECTIVES, or a user's:
    #: bioprop.register.feedback_objective)
    feedback: str = DEFAULT_OBJECTIVE
    #: the layer that takes the loss-gradient step: ``output`` or ``penultimate``
    top: str = "output"
    #: η̂, the size of the top target step (0: the target is the forward activity, so nothing
    #: learns; a negative step would climb the loss, so it is rejected)
    target_step: float = ranged(0.3, ge=0)
    #: the loss whose gradient the top target steps on (rules.updates.TARGET_STEP_LOSSES):
    #: ``sample`` (each sample's own loss ℓ_i: its step is target_step) or ``batch_mean`` (the
    #: batch's mean loss, as Lee's and Meulemans' code: each sample's step is target_step / B)
    target_step_loss: str = ranged("sample", written="when set")
    #: σ, the standard deviation of the noise injected to train the inverses
    noise: float = ranged(0.36, ge=0)
    #: τ of annealed noise, in epochs: training epoch e draws σ / (1 + (e − 1) / τ), as Lee's
    #: discrete-network code does with τ = 50 (rules.feedback.annealed_noise); 0: σ throughout
    noise_anneal_epochs: float = ranged(0.0, ge=0, written="when set")
    #: ``alternating`` (after Lee 2015: on each batch the inverses learn first, then the forward
    #: weights from targets through the updated inverses), ``epochs`` (as Lee's code: each
    #: epoch is a pass that trains only the inverses, then one that trains only the forward
    #: weights) or ``parallel`` (both from the inverses as they were at the batch's start)
    schedule: str = "alternating"
    #: K, the refinement steps of the ``iterative`` rule (K = 1 is ``dtp``)
    iterations: int = ranged(1, ge=1)
    #: α, the step of each refinement of the ``iterative`` rule: x^{k+1} = x^k + α (g_l(ĥ_l) −
    #: g_l(f_l(x^k))); α < 1 damps the iteration, which contracts when ‖I − α J‖ < 1 for
    #: J the Jacobian of g_l∘f_l (1: Bengio 2020's undamped step)
    iteration_step: float = ranged(1.0, gt=0, le=1, written="when set")
    #: scale each layer's change by its influence on the top (rules.updates.normalise_layers)
    layer_norm: bool = False
    #: λ, the damping of the ``gn`` target
    damping: float = ranged(1e-3, gt=0)
    #: feedback-weight updates per batch, each on fresh noise
    feedback_iterations: int = ranged(1, ge=1)
    #: epochs that train only the feedback pathway before forward learning starts
    feedback_pretrain_epochs: int = ranged(0, ge=0)
    #: extra input s of every g_l (Bengio 2014): ``none``, ``label`` (the target y) or
    #: ``activity`` (the lower layer's own forward activity h_{l-1})
    side_information: str = "none"
    #: a spiking layer's target for its forward update: ``trace`` (its spike trace at the end
    #: of the target phase), ``apical`` (its forward trace plus the change its apical
    #: dendrite asked for; less noisy for stochastic units) or ``rate`` (as ``apical``, and a
    #: held spiking layer sends the rate asked of it, not its spikes, so that the targets
    #: below carry no spike noise). Rate layers: the same either way
    #: (:data:`bioprop.populations.SPIKING_TARGETS`).
    spiking_target: str = "trace"
    #: what the Brian2 engine trains g_l on: ``spikes`` (noise phases, the objective on the
    #: traces) or ``twin`` (no noise phases: the rate twin at the latched forward traces, as
    #: the reference engine always does)
    feedback_from: str = ranged("spikes", written="when set")

@dataclass(frozen=True)
class OptimizerSpec:
    #: the optimizer (rules.OPTIMIZERS)
    name: str = "rmsprop"
    #: the learning rate (a layer's lr_scale = 0 freezes one layer); with a schedule, epoch 1's
    lr: float = ranged(1e-3, gt=0)
    #: how lr changes, once per epoch (rules.optimizers.SCHEDULES): ``constant``, or ``linear`` or
    #: ``cosine`` from lr in epoch 1 to lr_final at the run's end (rules.optimizers.scheduled_lr)
    schedule: str = ranged("constant", written="when set")
    #: where a schedule arrives at the end of the run (at most lr; only with a schedule)
    lr_final: float = ranged(0.0, ge=0, written="when set")
    # The optimizer's own constants (rules.optimizers.constants): only those of `name` may be
    # set; unset (None), each keeps the optimizer's default.
    #: ``sgd`` and ``rmsprop_graves``: the momentum (default 0 and 0.9)
    momentum: float | None = ranged(None, ge=0, lt=1, written="when set")
    #: ``rmsprop`` and ``rmsprop_graves``: the running mean square's decay (default 0.9, 0.95)
    decay: float | None = ranged(None, ge=0, lt=1, written="when set")
    #: ``adam``: the first moment's decay (default 0.9)
    beta1: float | None = ranged(None, ge=0, lt=1, written="when set")
    #: ``adam``: the second moment's decay (default 0.999)
    beta2: float | None = ranged(None, ge=0, lt=1, written="when set")
    #: ``rmsprop`` and ``adam``: added to the root mean square (default 1e-8)
    eps: float | None = ranged(None, gt=0, written="when set")
    #: ``rmsprop_graves``: added under the square root (default 1e-3)
    stabiliser: float | None = ranged(None, gt=0, written="when set")


@dataclass(frozen=True)
class OptimizersSpec:
    forward: OptimizerSpec = OptimizerSpec()
    feedback: OptimizerSpec = OptimizerSpec()


@dataclass(frozen=True)
class NetworkSpec:
    #: the model's name, in the run file and its default path (record.path's ``{model}``)
    name: str = "model"
    #: size of the clamped input population
    input_size: int = ranged(64, gt=0)
    #: output loss (rules.LOSSES)
    loss: str = "softmax_cross_entropy"
    #: initial weights of every pathway (projection.INITIALISATIONS): ``orthogonal``, ``glorot``
    #: (uniform) or ``glorot_normal`` (Xavier normal, N(0, 2 / (fan_in + fan_out)))
    init: str = "orthogonal"
    #: multiplies the initial forward weights W_l (PyTorch's ``gain``)
    init_gain: float = ranged(1.0, gt=0, written="when set")
    #: multiplies the initial feedback weights: the learned Q_l, the fixed matrices of
    #: ``fa`` and ``dfa``, and the side weights R_l
    feedback_init_gain: float = ranged(1.0, gt=0, written="when set")
    #: ``rate`` (the input layer fires the data) or ``poisson`` (Poisson spike trains of
    #: rate x · input_rate, the rules seeing their spike trace)
    input_encoding: str = DEFAULT_KIND
    #: ``poisson`` encoding: the rate in Hz of an input of value 1
    input_rate: float = ranged(1000.0, gt=0)
    #: ``poisson`` encoding: time constant of each filter of the input's spike trace
    input_tau_trace: Duration = Duration("20 ms")


@dataclass(frozen=True)
class ModelSpec:
    """A whole model file."""

    network: NetworkSpec
    layers: tuple[LayerSpec, ...]
    rule: RuleSpec = RuleSpec()
    optimizer: OptimizersSpec = OptimizersSpec()
    constraints: ConstraintsSpec = field(default=ConstraintsSpec(), metadata={"written": "when set"})
    source: str = "<string>"
    #: (key, override as typed) of each key a --set gave, for errors (overrides.blame)
    origins: tuple = field(default=(), compare=False, repr=False)
    #: the path of the shipped protocol the file names (top-level ``protocol``), or ""
    protocol: str = field(default="", compare=False)

    @property
    def sizes(self):
        return [self.network.input_size] + [layer.size for layer in self.layers]

    @property
    def names(self):
        return ["input"] + [layer.name for layer in self.layers]


# ------------------------------------------------------------- protocol tables
@dataclass(frozen=True)
class ProtocolSpec:
    """A whole protocol file."""

    data: DataSpec = DataSpec()
    training: TrainingSpec = TrainingSpec()
    phases: PhasesSpec = PhasesSpec()
    engine: EngineSpec = EngineSpec()
    record: RecordSpec = RecordSpec()
    source: str = "<string>"
    origins: tuple = field(default=(), compare=False, repr=False)  # as ModelSpec's

# ------------------------------------------------------------------- loading
#: the top-level tables of a model file and of a protocol file; an override belongs to
#: the file whose tables hold its first part
MODEL_TABLES = frozenset(f.name for f in fields(ModelSpec)) - _META
PROTOCOL_TABLES = frozenset(f.name for f in fields(ProtocolSpec)) - _META
#: the tables of either file: the first part of every override must be one of them
SPEC_TABLES = MODEL_TABLES | PROTOCOL_TABLES


def parse_model(data: dict, source="<string>") -> ModelSpec:
    """Build a validated model spec from a file's tables.

    Parameters
    ----------
    data : dict
        The tables, as TOML reads them (``extends`` already resolved).
    source : str, optional
        The file they come from, named in every error.

    Returns
    -------
    ModelSpec

    Raises
    ------
    SpecError
        For an unknown key, a value of the wrong type, or a failed check
        (:func:`bioprop.validation.validate_model`).
    """
    with named_layers(data.get("layers") if isinstance(data, dict) else None):
        return validate_model(replace(_convert(ModelSpec, data, source), source=source))


def parse_protocol(data: dict, source="<string>") -> ProtocolSpec:
    """Build a validated protocol spec from a file's tables, as :func:`parse_model` does a
    model's (the checks: :func:`bioprop.validation.validate_protocol`)."""
    return validate_protocol(replace(_convert(ProtocolSpec, data, source), source=source))


def load_model(path=None, overrides=()) -> ModelSpec:
    """Read a model file with its base, apply the overrides, and validate it.

    Parameters
    ----------
    path : str or path, optional
        The model file; the embedded default (:func:`default_model_path`) when None.
    overrides : iterable of str, optional
        ``key=value`` settings (:mod:`bioprop.overrides`); those of protocol tables are
        left to :func:`load_protocol`, and a key of neither file is an error. An error about
        a key an override set names the override, ``--set layers.hidden1.size=0``.

    Returns
    -------
    ModelSpec
    """
    return from_tables(*read_spec_file(find_spec_file(path, "model") if path
                                       else default_model_path()), "model", overrides)


def load_protocol(path=None, overrides=()) -> ProtocolSpec:
    """Read a protocol file as :func:`load_model` reads a model file (the embedded default:
    :func:`default_protocol_path`); overrides of model tables are left to :func:`load_model`."""
    return from_tables(*read_spec_file(find_spec_file(path, "protocol") if path
                                       else default_protocol_path()), "protocol", overrides)


def from_tables(data: dict, source, kind: str, overrides=()):
    """The validated spec of a file's tables (`data`, ``extends`` resolved; changed in place)
    from `source`, of `kind` "model" or "protocol", with the overrides of its tables
    applied: what :func:`load_model` and :func:`load_protocol` do once a file is read."""
    tables, parse = {"model": (MODEL_TABLES, parse_model),
                     "protocol": (PROTOCOL_TABLES, parse_protocol)}[kind]
    check_file_kind(data, source, tables, SPEC_TABLES, kind)
    usual = {PROTOCOL: usual_protocol(data.pop(PROTOCOL), source)} if (
        kind == "model" and PROTOCOL in data) else {}
    data, origins = apply_overrides(data, overrides, source, tables, SPEC_TABLES)
    with blame(origins):
        return replace(parse(data, source), origins=tuple(origins.items()), **usual)
