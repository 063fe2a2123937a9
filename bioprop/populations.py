"""Population kinds: one record per kind, in one registry.

A model file gives each layer a ``population`` kind. Everything that depends on the
kind is a field or method of its :class:`PopulationKind` record in
:data:`POPULATION_KINDS`, which the spec, the engines and the analysis consult:

* its transfer function φ (:meth:`PopulationKind.transfer`) and its apical
  dendrite's ψ (:meth:`PopulationKind.dendrite`);
* how it checks a layer of a model file (:meth:`PopulationKind.validate`);
* its maximal rate, by which a spiking layer's recorded rate is scaled to Hz;
* whether it spikes, whether it draws random numbers, the jump of its trace at a
  spike, its state and rate variables;
* how it is built: a rate soma (:func:`bioprop.rate_groups.rate_soma`), or the
  :class:`~bioprop.rate_twins.SpikingPopulation` its twin factory makes.

The kinds: ``rate`` (a rate soma with the layer's own φ), ``sign`` (a rate soma with
φ = sign, Lee 2015's discrete units), and the spiking and stochastic kinds ``lif``,
``poisson`` and ``bernoulli`` (:mod:`bioprop.spiking`). A new kind is one more
record here.

The input layer's encoding (``network.input_encoding``) names the kind of activity it
carries (:func:`input_kind`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Iterator

from .activations import Activation
from .errors import fail
from .rate_twins import SpikingParameters, SpikingPopulation, bernoulli_twin, lif_twin, poisson_twin
from .spiking import LIF_TRACE_JUMP, POISSON_TRACE_JUMP, threshold_problem, with_suffix

__all__ = ["PopulationKind", "POPULATION_KINDS", "DEFAULT_KIND", "SPIKING_TARGETS", "SENDS_TARGET",
           "APICAL_TARGETS", "input_encodings",
           "population_kind", "input_kind",
           "is_spiking", "layer_population", "layer_activation", "layer_feedback_activation"]

#: what a kind's check yields for a layer it cannot run: (the layer's key, the message)
Problem = tuple[str, str]


@dataclass(frozen=True)
class PopulationKind:
    """Everything that depends on a layer's population kind.

    Attributes
    ----------
    name : str
        The kind's name in a model file (``layers.N.population``).
    activation : str or None
        The transfer function (:data:`bioprop.activations.ACTIVATIONS`) a rate-soma kind
        fixes; None: the layer's own ``activation`` (or the rate twin of a spiking kind).
    dendrite_activation : str or None
        ψ of the apical dendrite when it is not φ; None: φ itself.
    twin : callable (record, SpikingParameters) -> SpikingPopulation, or None
        The factory of a spiking layer's population: its rate twin, its inverse and its
        Brian2 group builder (:mod:`bioprop.rate_twins`). None: the layer is a rate soma
        (:func:`bioprop.rate_groups.rate_soma`).
    stochastic : bool
        Its group draws random numbers (Brian2's generator must be seeded).
    trace_jump : str or None
        The jump of the trace's first filter z at a spike, in the group's parameters;
        None: the kind emits no spike events.
    rate_variable : str
        The soma's variable the learning rules and the pathways read.
    state_variables : tuple of str
        The soma's variables a checkpoint holds to continue it exactly.
    checks : tuple of callables (layer) -> iterable of Problem
        The kind's own checks of a layer spec, beyond :meth:`validate`'s common one.
    max_rate : callable (layer, dt) -> float, or None
        The rate in Hz at which the recorded rate is 1 (`dt` in seconds, a Brian2
        time); None for a rate soma, whose rate has no unit.
    synaptic_input : bool
        Its soma can take ``I_ff`` from Brian2 ``Synapses`` (``synaptic_input=True``
        to its builder), as the standalone forward pass needs.
    encodes_input : bool
        The input layer can carry this kind of activity (``network.input_encoding``).
    smooth_twin : bool
        Its rate twin can be smoothed (layer key ``twin_smoothing``, the soft LIF) and its
        derivative be the soft LIF's slope (``surrogate_width``).
    time_constants : tuple of str
        The layer keys of the filters its input crosses, in series, before its rate is read
        (the settling check of :mod:`bioprop.validation`): a rate soma's ``tau``; a spiking
        kind's membrane, if it has one, and its trace's two ``tau_trace`` filters.
    soma_dynamics : callable (layer) -> str, or None
        A rate soma's Brian2 equations of its potential v, which settles on ``I_ff``, and
        of any variables of its own (:func:`bioprop.rate_groups.rate_soma`); None:
        τ dv/dt = −v + I_ff. A user's kind (:func:`bioprop.extensions.population_kind`).
    """

    name: str
    activation: str | None = None
    dendrite_activation: str | None = None
    twin: Callable | None = None
    stochastic: bool = False
    trace_jump: str | None = None
    rate_variable: str = "r"
    state_variables: tuple = ("v", "I_ff", "I_nudge")
    checks: tuple = ()
    max_rate: Callable | None = None
    synaptic_input: bool = True
    encodes_input: bool = False
    smooth_twin: bool = False
    time_constants: tuple = ("tau",)
    soma_dynamics: Callable | None = None

    @property
    def spiking(self) -> bool:
        """Simulated as spikes or binary states read through a trace, not as a rate soma."""
        return self.twin is not None

    @property
    def fixes_activation(self) -> bool:
        """Its φ is its own (a fixed one, or a rate twin), not the layer's ``activation``."""
        return self.activation is not None or self.spiking

    @property
    def spikes(self) -> bool:
        """Emits spike events (a delayed pathway can carry them, a SpikeMonitor record them)."""
        return self.trace_jump is not None

    def jump(self, suffix: str = "") -> str:
        """The trace's jump at a spike, with `suffix` on every parameter (``"_pre"`` reads
        them from the presynaptic group of a ``Synapses``)."""
        return with_suffix(self.trace_jump, suffix)

    def validate(self, layer, source: str, key: str) -> None:
        """Check the parameters this kind needs of `layer`, where no dt is needed yet.

        Parameters
        ----------
        layer : LayerSpec
            The layer, of this kind.
        source, key : str
            The model file and the layer's key (``layers.N``), for the error.

        Raises
        ------
        SpecError
            Naming the file, the layer's key at fault and what is wrong.
        """
        for field, message in self.problems(layer):
            fail(source, f"{key}.{field}", message)

    def problems(self, layer) -> Iterator[Problem]:
        """The (key, message) of everything this kind cannot run in `layer`."""
        # a kind that fixes its φ accepts only the spec's default or that φ
        default = next(f.default for f in fields(layer) if f.name == "activation")
        if self.fixes_activation and layer.activation not in (default, self.activation):
            yield "activation", (f"a {self.name!r} population fixes its own transfer function; "
                                 f"leave 'activation' out (got {layer.activation!r})")
        for key in ("twin_smoothing", "surrogate_width"):  # both are the soft LIF's width
            if getattr(layer, key) and not self.smooth_twin:
                yield key, (f"a {self.name!r} population has no soft-LIF twin; "
                            f"leave {key!r} out (got {getattr(layer, key)!r})")
        for check in self.checks:
            yield from check(layer)

    def soma_options(self, layer) -> dict:
        """The keywords of :func:`bioprop.rate_groups.rate_soma` for a rate layer of this
        kind: its own dynamics, if it has some (every builder of a rate soma passes them)."""
        return {} if self.soma_dynamics is None else {"dynamics": self.soma_dynamics(layer)}

    def population(self, layer, dt, where=None) -> SpikingPopulation | None:
        """The :class:`~bioprop.rate_twins.SpikingPopulation` of a spiking layer, checked
        (a ValueError names `where` and the parameter); None for a rate soma.

        `dt` is the simulation step (a Brian2 time).
        """
        if self.twin is None:
            return None
        from brian2 import Hz

        return self.twin(self, SpikingParameters(
            tau=layer.tau.quantity, threshold=layer.threshold, reset=layer.reset,
            refractory=layer.refractory.quantity,
            tau_trace=layer.tau_trace.quantity, max_rate=layer.max_rate * Hz, dt=dt,
            where=where or f"layer {layer.name!r}", smoothing=layer.twin_smoothing,
            surrogate_width=layer.surrogate_width, layer=layer))

    def transfer(self, layer, dt=None) -> Activation:
        """φ of `layer`: its rate twin (which depends on `dt`: the refractory period is
        shortened by dt/2), the
        φ the kind fixes, or the layer's own ``activation``."""
        from .activations import get_activation

        if not self.spiking:  # a rate soma's φ is a name: no population (nor Brian2) needed
            return get_activation(self.activation or layer.activation)
        from brian2 import ms

        return self.population(layer, dt if dt is not None else 0.001 * ms).activation

    def dendrite(self, layer, dt=None) -> Activation:
        """ψ of `layer`'s apical dendrite, which reconstructs the layer's rates (g_{l+1})."""
        from .activations import get_activation

        if self.dendrite_activation is not None:
            return get_activation(self.dendrite_activation)
        return self.transfer(layer, dt)


def _lif_checks(layer) -> Iterator[Problem]:
    problem = threshold_problem(layer.threshold, layer.reset)
    if problem:
        yield "threshold", problem


def _positive_max_rate(layer) -> Iterator[Problem]:
    if not layer.max_rate > 0:
        yield "max_rate", f"must be positive (Hz), got {layer.max_rate}"


def _refractory_limit(layer, dt) -> float:
    """1 / refractory: a LIF neuron fires at most once per refractory period."""
    return 1.0 / float(layer.refractory.quantity)


def _configured_max_rate(layer, dt) -> float:
    """``max_rate``: a Poisson unit's rate at p = 1."""
    return float(layer.max_rate)


def _one_per_step(layer, dt) -> float:
    """1 / dt: a binary unit holds one state per step."""
    return 1.0 / float(dt)


def _registry(*kinds: PopulationKind) -> dict:
    return {kind.name: kind for kind in kinds}


#: the kind of a layer that names none: a rate soma whose φ is the layer's ``activation``
DEFAULT_KIND = "rate"

#: population kind name → its record
POPULATION_KINDS = _registry(
    PopulationKind(DEFAULT_KIND, encodes_input=True),
    PopulationKind("sign", activation="sign"),
    # A LIF f-I curve is flat below threshold, so a dendrite computing it would send no
    # change to a neuron whose reconstruction is subthreshold (measured: the targets of
    # a 784-500-500-10 LIF network's hidden layers did not move at all); its dendrite is
    # linear, g = Q h + c.
    PopulationKind("lif", dendrite_activation="linear", twin=lif_twin,
                   trace_jump=LIF_TRACE_JUMP,
                   state_variables=("v", "z", "r", "I_ff", "I_apical", "lastspike",
                                    "not_refractory"),
                   checks=(_lif_checks,), max_rate=_refractory_limit, smooth_twin=True,
                   time_constants=("tau", "tau_trace", "tau_trace")),
    PopulationKind("poisson", twin=poisson_twin, stochastic=True, trace_jump=POISSON_TRACE_JUMP,
                   state_variables=("z", "r", "I_ff", "I_apical"), checks=(_positive_max_rate,),
                   max_rate=_configured_max_rate, synaptic_input=False,
                   encodes_input=True, time_constants=("tau_trace", "tau_trace")),
    PopulationKind("bernoulli", twin=bernoulli_twin, stochastic=True,
                   state_variables=("s", "z", "r", "I_ff", "I_apical"), max_rate=_one_per_step,
                   synaptic_input=False, time_constants=("tau_trace", "tau_trace")),
)


#: ``rule.spiking_target`` → what a spiking layer's target for its forward update is, and what
#: it sends while its soma is held (its target or noise being asked of it). Rate layers fire
#: h + nudge exactly, so for them the three are the same.
SPIKING_TARGETS = {
    "trace": "its spike trace at the end of the target phase; a held layer sends its spikes",
    "apical": "its forward trace plus the change its dendrite asked for (h + Δ); a held layer "
              "sends its spikes",
    "rate": "h + Δ, and a held layer sends the rate asked of it (h + Δ, or h + ε) to the layers "
            "it projects to, instead of its spikes",
}

#: the spiking targets read from the dendrite's request, h + Δ, rather than from the trace
APICAL_TARGETS = ("apical", "rate")

#: the spiking target with which a held spiking layer sends the rate asked of it
SENDS_TARGET = "rate"


def population_kind(layer_spec) -> PopulationKind:
    """The record of a layer's population kind."""
    return POPULATION_KINDS[layer_spec.population]


def input_kind(network_spec) -> PopulationKind:
    """The kind of activity the input layer carries: ``network.input_encoding`` names it
    (``rate``: clamped rates; ``poisson``: Poisson spike trains and their trace)."""
    return POPULATION_KINDS[network_spec.input_encoding]


def input_encodings() -> list:
    """The kinds the input layer can carry, the choices of ``network.input_encoding``."""
    return [name for name, kind in POPULATION_KINDS.items() if kind.encodes_input]


def is_spiking(layer_spec) -> bool:
    """Whether the layer is simulated as spikes or binary states (not as a rate soma)."""
    return population_kind(layer_spec).spiking


def layer_population(layer_spec, dt, where=None) -> SpikingPopulation | None:
    """The :class:`~bioprop.rate_twins.SpikingPopulation` of a spiking layer, checked; None
    for a rate layer. `dt` is the simulation step (a Brian2 time)."""
    return population_kind(layer_spec).population(layer_spec, dt, where)


def layer_feedback_activation(layer_spec, dt=None) -> Activation:
    """ψ of a layer's apical dendrite (:meth:`PopulationKind.dendrite`)."""
    return population_kind(layer_spec).dendrite(layer_spec, dt)


def layer_activation(layer_spec, dt=None) -> Activation:
    """φ of a layer (:meth:`PopulationKind.transfer`)."""
    return population_kind(layer_spec).transfer(layer_spec, dt)
