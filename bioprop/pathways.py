"""Projections run inside a Brian2 network: network operations and ``Synapses``.

The arrays and their maths (:class:`~bioprop.projection.DenseProjection`,
:func:`~bioprop.projection.dense_grads`) live in :mod:`bioprop.projection`; this
module puts them to work in Brian2. :func:`dense_operation` wraps a projection as
a Brian2 ``NetworkOperation`` that writes one group's input from another's rates.
:func:`synaptic_projection` is the same projection as Brian2 ``Synapses`` (one
synapse per connection and trial, a summed variable, or event-driven with a delay),
for sparse connectivity (:func:`~bioprop.projection.connection_mask`) and delays; it
is slower, and the dense one stays the default. :func:`copy_weights` keeps its weights
equal to the dense weight the rules update; :class:`SynapticPlasticity` instead lets
the synapses learn their own weights with the local forward rule written as Brian2
statements (:data:`LOCAL_RULE`), and :func:`read_weights` brings them back into the
dense weight.
"""
from __future__ import annotations

import numpy as np

from .projection import DenseProjection, connection_mask

__all__ = ["dense_operation", "synaptic_current", "synaptic_projection", "copy_weights",
           "read_weights", "synaptic_input", "LOCAL_RULE", "RULE_VARIABLES", "SynapticPlasticity"]


def dense_operation(projection: DenseProjection, read_pre, write_post, active, *,
                    name: str, clock, when: str = "groups", order: int = 0, extra=None,
                    version=None):
    """A Brian2 operation that applies `projection` once per time step.

    Parameters
    ----------
    projection : DenseProjection
    read_pre : callable () -> ndarray (B, n_pre)
        Returns the presynaptic rates as they are now in this time step.
    write_post : ndarray (B, n_post)
        A (B, N) view of the postsynaptic group's input variable, written in place.
    active : callable () -> bool
        The phase gate: while it is false the input is left as it is.
    name, clock, when, order
        Brian2 scheduling: the engine orders the operations so that one time step
        carries activity through the whole pathway.
    extra : callable () -> ndarray (B, n_post), optional
        A further input added to the drive, e.g. the side information R s of a
        feedback pathway.
    version : callable () -> hashable, optional
        A token that changes whenever the presynaptic rates or the weights may have
        changed (e.g. a clamped input within one trial). While it stays the same the
        last product is reused instead of recomputed.
    """
    from brian2 import NetworkOperation

    cache = {"token": None, "drive": None}

    def apply():
        if not active():
            return
        token = version() if version is not None else None
        if token is not None and token == cache["token"]:
            np.copyto(write_post, cache["drive"])
        else:
            projection.drive(read_pre(), out=write_post)
            if token is not None:
                cache["token"], cache["drive"] = token, write_post.copy()
        if extra is not None:
            np.add(write_post, extra(), out=write_post)

    return NetworkOperation(apply, clock=clock, when=when, order=order, name=name)


#: the postsynaptic current of a delayed (event-driven) pathway: the spikes it carries,
#: filtered twice with the presynaptic trace's τ, as that trace filters them
_FILTERED_CURRENT = """
dz_{target}_syn/dt = -z_{target}_syn / tau_syn : 1
d{target}_syn/dt = (z_{target}_syn - {target}_syn) / tau_syn : 1
tau_syn : second (shared, constant)
"""

#: what a postsynaptic neuron holds for the synapses that learn onto it (``plastic``):
#: its forward rate h, its target rate ĥ and the factor φ'(a) of its forward drive
_LEARNING_SIGNALS = """
r_forward : 1
r_target : 1
phi_prime : 1
"""

#: what each plastic synapse holds: the presynaptic forward rate it latched at the end of
#: the forward phase (the layer below fires its own target later), the change its trial
#: asks for, and the learning rate
_PLASTIC_SYNAPSE = """
r_in : 1
dw : 1
eta : 1 (shared, constant)
"""

#: the local forward rule of one synapse for its own trial, ΔW_ij ∝ (ĥ_i − h_i) φ'(a_i) h_j
#: (docs/algorithms.md, "Forward weight update"): the same update as rules.updates.forward_grads,
#: whose φ' is the straight-through factor for spiking and discrete units
LOCAL_RULE = "(r_target_post - r_forward_post) * phi_prime_post * r_in"

#: the names a synapse's rule may read: the postsynaptic ĥ, h and φ'(a), the latched
#: presynaptic forward rate, and the weight
RULE_VARIABLES = ("r_target_post", "r_forward_post", "phi_prime_post", "r_in", "w")


def synaptic_current(name: str, n: int, *, target="I_ff", tau_syn=None, plastic=False, clock,
                     order=0, dtype="float64"):
    """The group of n neurons that holds a synaptic pathway's input ``<target>_syn``.

    Without `tau_syn` it is a plain parameter that Brian2 sets to the summed synaptic
    input every step; with it, the filtered spikes of a delayed pathway. A separate group
    (not a variable of the soma) leaves every population's equations as they are; the
    engine copies the current into the soma's input while the layer integrates. With
    `plastic`, the group also holds the postsynaptic side of :data:`LOCAL_RULE`
    (``r_forward``, ``r_target``, ``phi_prime``) for the synapses that learn onto it.
    """
    from brian2 import NeuronGroup

    learning = _LEARNING_SIGNALS if plastic else ""
    if tau_syn is None:
        return NeuronGroup(n, f"{target}_syn : 1\n{learning}", name=name, clock=clock,
                           order=order, dtype=np.dtype(dtype).type)
    group = NeuronGroup(n, _FILTERED_CURRENT.format(target=target) + learning, method="exact",
                        name=name, clock=clock, order=order, dtype=np.dtype(dtype).type)
    group.tau_syn = tau_syn
    return group


def synaptic_projection(projection: DenseProjection, pre, post, batch: int, *, target="I_ff",
                        mask=None, p_connect: float = 1.0, rng=None, on_spike=None, delay=None,
                        plastic=False, name: str, clock, order: int = 0):
    """`projection` as Brian2 ``Synapses`` from group `pre` (rates ``r``) to group `post`.

    Each of the `batch` trial copies gets its own synapses, connecting only neurons of
    the same trial, with weights copied from ``projection.weight``. The connections are
    those where `mask` (n_post, n_pre) is nonzero, the same in every trial; without
    a mask, a random subset drawn with :func:`~bioprop.projection.connection_mask` (from `rng`) with
    probability `p_connect`. The bias is not a synapse, and the caller adds it.

    Without `on_spike` the post-synaptic variable ``<target>_syn`` (a parameter of
    `post`) becomes the sum over synapses of w · r_pre, every step. With `on_spike`,
    the expression of the presynaptic trace's jump at a spike (in ``_pre`` variables,
    :meth:`bioprop.populations.PopulationKind.jump`), the synapses are event-driven: each spike,
    `delay` later, adds w times that jump to ``z_<target>_syn`` of a `post` made by
    :func:`synaptic_current` with the presynaptic trace's τ, so that ``<target>_syn``
    is the sum of w · r_pre delayed. (:func:`synaptic_input` writes the summed variable and
    a bias into a group's equations.) With `plastic`, each synapse also has the variables
    of :class:`SynapticPlasticity` (``r_in``, ``dw``, ``eta``).

    Returns
    -------
    Synapses
        With ``w`` the weight of every synapse, trial by trial (synapse b·S + s is
        synapse s of trial b).
    """
    from brian2 import Synapses

    n_post, n_pre = projection.weight.shape
    if mask is None:
        mask = connection_mask(rng or np.random.default_rng(0), n_post, n_pre, p_connect)
    post_idx, pre_idx = np.nonzero(mask)
    offsets = np.repeat(np.arange(batch), len(pre_idx))
    model = "w : 1\n" + (_PLASTIC_SYNAPSE if plastic else "")
    if on_spike is None:
        synapses = Synapses(pre, post, model=f"{model}{target}_syn_post = w * r_pre : 1 (summed)",
                            name=name, clock=clock, order=order)
    else:
        synapses = Synapses(pre, post, model=model, on_pre=f"z_{target}_syn_post += w * {on_spike}",
                            delay=delay, name=name, clock=clock, order=order)
    synapses.connect(i=np.tile(pre_idx, batch) + offsets * n_pre,
                     j=np.tile(post_idx, batch) + offsets * n_post)
    # set through Brian2, not in place: standalone devices hold no arrays before they run
    synapses.w = np.tile(projection.weight[np.nonzero(mask)], batch)
    return synapses


def copy_weights(synapses, weight: np.ndarray, mask: np.ndarray, batch: int):
    """Set every trial's synaptic weights to ``weight[post, pre]`` of the existing connections
    (``mask`` nonzero), in place in Brian2's array: after each update of the dense weight."""
    synapses.variables["w"].get_value().reshape(batch, -1)[...] = weight[np.nonzero(mask)]


def read_weights(synapses, weight: np.ndarray, mask: np.ndarray, batch: int):
    """Set ``weight[post, pre]`` of the existing connections (``mask`` nonzero) to the
    synaptic weights of the first trial, in place: the inverse of :func:`copy_weights`, after
    the synapses learned (every trial's copy then holds the same weights)."""
    weight[np.nonzero(mask)] = synapses.variables["w"].get_value().reshape(batch, -1)[0]


class SynapticPlasticity:
    """The forward rule of a :func:`synaptic_projection` as Brian2 statements on its synapses.

    Two statements run on every synapse of every trial, each at one moment the engine
    chooses (they are not in the network, so they cost nothing in the other steps):

    * :meth:`latch`, at the end of the forward phase: ``r_in = r_pre``, the presynaptic
      forward rate h_j (later phases make the layer below fire its own target);
    * :meth:`learn`, at the forward update: ``dw = <rule>``, each synapse's change for
      its own trial, from the postsynaptic ``r_forward``, ``r_target``, ``phi_prime``
      (written by the engine into the post group) and its own ``r_in``.

    Synapse b·S + s is synapse s of trial b, and the batch update is the mean over the
    B trial copies, which no synaptic statement sees: :meth:`learn` then consolidates,
    w += η · mean_b dw, the same for every copy (plain SGD). With B = 1 there is nothing
    to average, and the statement itself is the whole update: ``w += eta * dw``.

    Parameters
    ----------
    synapses : Synapses
        Made by :func:`synaptic_projection` with ``plastic=True``.
    batch : int
        B, the trial copies.
    lr : float
        η, the learning rate (SGD).
    rule : str
        The Brian2 expression of one synapse's change, in :data:`RULE_VARIABLES`;
        empty: :data:`LOCAL_RULE`.
    """

    def __init__(self, synapses, batch: int, lr: float, rule: str = ""):
        from brian2.groups.group import CodeRunner

        self.synapses, self.batch, self.lr = synapses, batch, lr
        synapses.eta = lr
        learn = f"dw = {rule or LOCAL_RULE}" + ("\nw += eta * dw" if batch == 1 else "")
        self._latch, self._learn = (
            CodeRunner(synapses, "stateupdate", code=code, name=f"{synapses.name}_{what}",
                       clock=synapses.clock)
            for what, code in (("latch", "r_in = r_pre"), ("learn", learn)))

    def prepare(self):
        """Generate the statements' code (once, with the codegen target of the network)."""
        for runner in (self._latch, self._learn):
            runner.before_run({})

    def latch(self):
        self._latch.run()

    def learn(self, r_forward, r_target, phi_prime) -> np.ndarray:
        """Run the rule on every synapse and consolidate the trials' changes.

        Parameters
        ----------
        r_forward, r_target, phi_prime : ndarray, shape (B, n_post)
            h, ĥ and φ'(a) of the postsynaptic layer, written into its current group.

        Returns
        -------
        ndarray, shape (S,)
            mean_b dw: the change every synapse's weight took, divided by η.
        """
        post = self.synapses.target
        for name, value in (("r_forward", r_forward), ("r_target", r_target),
                            ("phi_prime", phi_prime)):
            post.variables[name].get_value()[...] = value.ravel()
        self._learn.run()
        dw = self.synapses.variables["dw"].get_value()
        if self.batch == 1:  # the statement has already applied it
            return dw.copy()
        change = dw.reshape(self.batch, -1).mean(axis=0)
        self.synapses.variables["w"].get_value().reshape(self.batch, -1)[...] += self.lr * change
        return change


def synaptic_input(equations: str, target: str = "I_ff") -> str:
    """`equations` with the input parameter `target` fed by a :func:`synaptic_projection`.

    The parameter ``<target> : 1`` becomes ``<target> = <target>_syn + <target>_bias``:
    the projection's summed variable plus the bias, a per-neuron parameter. Brian2
    lets one summed variable, and nothing else, write a variable, so the bias needs
    a variable of its own.
    """
    line = f"{target} : 1\n"
    if line not in equations:
        raise ValueError(f"the equations have no parameter line {line.strip()!r}")
    return equations.replace(line, f"{target} = {target}_syn + {target}_bias : 1\n"
                                   f"{target}_syn : 1\n{target}_bias : 1\n")
