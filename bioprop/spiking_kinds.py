"""A user's spiking population kind: Brian2 equations that spike, with their rate twin.

:func:`spiking_kind` (``bioprop.register.spiking_kind``) registers a spike-emitting soma
written as Brian2 equations, a threshold condition and reset statements, together with
its **rate twin** ν = f(I), the firing rate in Hz under a constant input current I, and
the twin's inverse I = f⁻¹(ν). The twin is what the reference engine computes and what
the learning rules differentiate (straight through, as for ``lif``); its inverse is how
the Brian2 engine turns a target rate into an apical current (:mod:`bioprop.rate_twins`).

bioprop adds to the user's equations the input ``I = I_ff + I_apical`` (basal and apical
currents, in units of the input), the layer's ``tau``, and the double spike trace r that
the rules read, r = ν / ν_max in the steady state (:mod:`bioprop.spiking`)::

    dz/dt = −z / τ_trace,   z += 1 / (ν_max τ_trace) at each spike,   dr/dt = (z − r) / τ_trace

The twin is checked when the kind is registered, for a layer of default keys: finite,
non-negative, non-decreasing on :data:`CHECK_CURRENTS`, and its inverse returning the
currents of the rates it gives.
"""
from __future__ import annotations

import re

import numpy as np

from .activations import Activation
from .rate_twins import RATE_MARGIN, SpikingParameters, SpikingPopulation
from .spiking import POISSON_TRACE_JUMP

__all__ = ["spiking_kind", "CHECK_CURRENTS", "SPIKING_VARIABLES"]

#: the input currents on which a twin is checked when its kind is registered
CHECK_CURRENTS = np.linspace(-4.0, 4.0, 801)

#: what bioprop adds to a user's spiking equations: its input, time constant and trace
_ADDED = """
I = I_ff + I_apical : 1
I_ff : 1
I_apical : 1
dz/dt = -z / tau_trace : 1
dr/dt = (z - r) / tau_trace : 1
tau : second (shared, constant)
tau_trace : second (shared, constant)
max_rate : Hz (shared, constant)
"""

#: the variables bioprop defines in a user's spiking soma (its equations may not)
SPIKING_VARIABLES = ("I", "I_ff", "I_apical", "z", "r", "tau", "tau_trace", "max_rate")


def spiking_kind(name: str, *, threshold: str | None = None, reset: str | None = None,
                 rate=None, current=None, max_rate: float | None = None,
                 refractory: str | None = None, method: str | None = None,
                 dendrite_activation: str = "linear", replace: bool = False):
    """Register a spiking population kind (``layers.N.population``) whose soma runs the
    Brian2 equations the decorated function writes for a layer.

    Parameters
    ----------
    name : str
    threshold : str
        The spike condition, e.g. ``"v > 1"``.
    reset : str
        The statements run at a spike, e.g. ``"v = 0"``; bioprop adds the trace's jump.
    rate : callable (current, layer) -> ndarray
        The rate twin: the firing rate in Hz under the constant input `current` (an array),
        for the layer's spec `layer`.
    current : callable (rate, layer) -> ndarray
        Its inverse: the input current at which the neuron fires `rate` Hz (> 0).
    max_rate : float, optional
        The rate in Hz at which the trace r is 1; None: the layer's ``max_rate`` key.
    refractory : str, optional
        Brian2's ``refractory`` of the group (a time, or a condition), e.g. ``"2 * ms"``.
    method : str, optional
        Brian2's integration method; None: ``euler`` (``exact`` suits linear equations).
    dendrite_activation : str
        ψ of its apical dendrite, an activation's name; ``linear`` as for ``lif``, whose
        f-I curve is flat below threshold and would pass no change down there.
    replace : bool

    Returns
    -------
    callable
        The decorator; it returns the function unchanged. The function takes the layer's
        spec and returns the equations, in ``I`` (the input current), ``tau`` (the
        layer's ``tau``) and numbers with units.
    """
    from .extension_registry import ExtensionError, check_signature, choice, enter
    from .plugins import registries
    from .populations import PopulationKind

    what = f"spiking kind {name!r}"
    for key, value, example in (("threshold", threshold, "v > 1"), ("reset", reset, "v = 0")):
        if not isinstance(value, str) or not value.strip():
            raise ExtensionError(f"{what}: no {key}: give {key}=\"...\", e.g. {key}="
                                 f"\"{example}\" (got {value!r})")
    for key, fn, arguments in (("rate", rate, ("current", "layer")),
                               ("current", current, ("rate", "layer"))):
        if not callable(fn):
            raise ExtensionError(f"{what}: {key}= must be a function ({', '.join(arguments)}), "
                                 f"the {'rate twin' if key == 'rate' else 'twin inverse'}; "
                                 f"got {fn!r}")
        check_signature(fn, f"{what}: {key}", arguments)
    if max_rate is not None and not (isinstance(max_rate, (int, float)) and max_rate > 0):
        raise ExtensionError(f"{what}: max_rate must be a positive number of Hz, or None for "
                             f"the layer's max_rate; got {max_rate!r}")
    choice(dendrite_activation, list(registries()["activation"]), f"{what}: dendrite_activation")

    def register(equations):
        from .spec import LayerSpec

        layer = LayerSpec(name="layer", size=1)
        text = equations(layer)
        if not isinstance(text, str):
            raise ExtensionError(f"{what}: the function must return the equations as a string, "
                                 f"not {type(text).__name__}")
        defined = [a or b for a, b in re.findall(r"^\s*(?:d(\w+)/dt|(\w+))\s*[=:]", text,
                                                 flags=re.M)]
        taken = [n for n in defined if n in SPIKING_VARIABLES]
        if taken:
            raise ExtensionError(f"{what}: its equations define {taken[0]!r}, which bioprop "
                                 f"adds itself ({', '.join(SPIKING_VARIABLES)})")
        own = tuple(dict.fromkeys(re.findall(r"^\s*d(\w+)/dt", text, flags=re.M)))
        if not own:
            raise ExtensionError(f"{what}: its equations have no 'dX/dt = ...' line: a "
                                 "spiking soma needs a variable that evolves to its threshold")
        _check_twin(what, rate, current, max_rate or layer.max_rate, layer, ExtensionError)
        kind = UserSpiking(equations, threshold, reset, rate, current, max_rate, refractory,
                           method, own)
        enter("population_kind", name, PopulationKind(
            name, dendrite_activation=dendrite_activation, twin=kind.twin,
            stochastic=re.search(r"\bxi(_\w+)?\b", text) is not None,
            trace_jump=POISSON_TRACE_JUMP,
            state_variables=own + ("z", "r", "I_ff", "I_apical") + (
                ("lastspike", "not_refractory") if refractory else ()),
            checks=() if max_rate else (_positive_max_rate,), max_rate=kind.max_rate,
            time_constants=("tau", "tau_trace", "tau_trace")), replace)
        return equations
    return register


def _positive_max_rate(layer):
    if not layer.max_rate > 0:
        yield "max_rate", f"must be positive (Hz), got {layer.max_rate}"


def _check_twin(what, rate, current, max_rate, layer, error):
    """The twin must be a rate (finite, ≥ 0), non-decreasing, not silent everywhere, and
    its inverse must give back the currents of the rates it gives."""
    try:
        with np.errstate(all="ignore"):
            nu = np.asarray(rate(CHECK_CURRENTS, layer), dtype=float)
    except Exception as err:
        raise error(f"{what}: its rate twin fails on an array: "
                    f"{type(err).__name__}: {err}") from None
    if nu.shape != CHECK_CURRENTS.shape or not np.isfinite(nu).all() or (nu < 0).any():
        raise error(f"{what}: its rate twin must give a finite rate ≥ 0 (Hz) for each current "
                    f"of an array; on [-4, 4] it does not")
    falls = np.diff(nu) < -1e-9 * (1 + np.abs(nu[1:]))
    if falls.any():
        i = int(np.argmax(falls))
        raise error(f"{what}: its rate twin is not monotone: it falls from {nu[i]:.6g} Hz at "
                    f"I = {CHECK_CURRENTS[i]:.3g} to {nu[i + 1]:.6g} Hz at "
                    f"I = {CHECK_CURRENTS[i + 1]:.3g}; the inverse needs a non-decreasing "
                    "f-I curve")
    inside = (nu > RATE_MARGIN * max_rate) & (nu < (1 - RATE_MARGIN) * max_rate)
    if not inside.any():
        raise error(f"{what}: its rate twin never fires between 0 and max_rate = {max_rate} Hz "
                    "on [-4, 4]")
    with np.errstate(all="ignore"):
        back = np.asarray(current(nu[inside], layer), dtype=float)
        again = np.asarray(rate(back, layer), dtype=float)
    wrong = ~(np.abs(again - nu[inside]) <= 1e-6 * (1 + nu[inside]))
    if wrong.any():
        i = int(np.argmax(wrong))
        raise error(f"{what}: its inverse is not the twin's: rate(current({nu[inside][i]:.6g} Hz)) "
                    f"= {again[i]:.6g} Hz")


class UserSpiking:
    """The pieces of one registered spiking kind, which build a layer's population."""

    def __init__(self, equations, threshold, reset, rate, current, max_rate, refractory,
                 method, own):
        self.equations, self.threshold, self.reset = equations, threshold, reset
        self.rate, self.current, self.fixed_max_rate = rate, current, max_rate
        self.refractory, self.method, self.own = refractory, method, own

    def max_rate(self, layer, dt=None) -> float:
        """The rate in Hz at which the trace r is 1."""
        return float(self.fixed_max_rate or layer.max_rate)

    def twin(self, record, p: SpikingParameters) -> SpikingPopulation:
        """The layer's population: its twin r = ν(I) / ν_max, inverse and group builder."""
        from brian2 import Hz, second

        layer = p.layer
        if not p.tau_trace > 0 * second:
            raise ValueError(f"{p.where}: tau_trace must be positive, got {p.tau_trace}")
        top = self.max_rate(layer)

        def fn(current):
            return (np.asarray(self.rate(current, layer), dtype=float) / top).astype(
                np.asarray(current).dtype)

        def inverse(r):
            return np.asarray(self.current(np.asarray(r, dtype=float) * top, layer), dtype=float)

        def current_for(r, drive):
            # a silent target has no unique current: the drive, if it is already silent
            r = np.asarray(r, dtype=float)
            current = inverse(np.clip(r, RATE_MARGIN, 1.0 - RATE_MARGIN))
            return np.where(r <= 0.0, np.minimum(drive, inverse(RATE_MARGIN)), current)

        def build(name, n, clock, order, dtype, synaptic_input=False):
            return self.group(layer, name, n, clock=clock, order=order, dtype=dtype,
                              tau_trace=p.tau_trace, max_rate=top * Hz,
                              synaptic_input=synaptic_input)

        activation = Activation(record.name, fn, np.ones_like, None, inverse)
        return SpikingPopulation(record, activation, current_for, build,
                                 rest={name: 0.0 for name in self.own})

    def group(self, layer, name, n, *, clock, order, dtype, tau_trace, max_rate,
              synaptic_input=False):
        """The layer's NeuronGroup: the user's equations, bioprop's input and trace."""
        from brian2 import NeuronGroup

        from .pathways import synaptic_input as basal_synapses

        equations = self.equations(layer).strip() + "\n" + _ADDED
        options = {"method": self.method or "euler"}
        if self.refractory:
            options["refractory"] = self.refractory
        group = NeuronGroup(n, basal_synapses(equations) if synaptic_input else equations,
                            threshold=self.threshold,
                            reset=f"{self.reset}\nz += {POISSON_TRACE_JUMP}", name=name,
                            clock=clock, order=order, dtype=np.dtype(dtype).type, **options)
        group.tau, group.tau_trace, group.max_rate = layer.tau.quantity, tau_trace, max_rate
        return group
