"""The Brian2 engine: layered populations that learn by target propagation in time.

One ``Network.run`` covers a whole epoch: a controller operation switches the
stimulus and the phase inside the run, so no Python loop calls ``run`` per trial.
The network is built by :mod:`bioprop.brian2.network`; the phases of a trial, and
what each kind of phase does, are in :mod:`bioprop.brian2.phases`.

A layer may also be spiking or stochastic (``lif``, ``poisson``, ``bernoulli``;
:mod:`bioprop.spiking`). The engine speaks to every layer in rates: a spiking soma
is read through its spike trace, and the rate nudge the feedback asks for reaches
it as the apical current its rate twin says will produce that change
(:class:`~bioprop.brian2.layers.SpikingLayer`). The phases are the same for every kind.

At the end of the trial the settled quantities go to the same update functions as
in the reference engine (:mod:`bioprop.rules.updates`).
"""
from __future__ import annotations

import gc

import numpy as np

from bioprop.batching import epoch_batches, whole_batches
from bioprop.hooks import layer_arrays
from bioprop.learner import BatchTrace, Learner
from bioprop.populations import input_kind, layer_population, population_kind
from bioprop.rules import forward_grads
from bioprop.runlog.vocabulary import RECORD_COORDS

from .engine_state import EngineState
from .latches import Latches
from .monitors import ActivityMonitors
from .network import build_network, copy_synaptic_weights, learn_synaptically, simulate
from .phase_actions import latch_point
from .phases import learner_phases, step_schedule

__all__ = ["Brian2Engine"]


class Brian2Engine(EngineState, Learner):
    """Train a LayeredModel as Brian2 populations simulated in time.

    Parameters
    ----------
    model : LayeredModel
    spec : ModelSpec
    protocol : ProtocolSpec
        Supplies the phase durations, dt and the codegen target.
    batch_size : int
        B, the number of trials simulated side by side.

    Attributes
    ----------
    layers : list
        The layer adapters (:mod:`bioprop.brian2.layers`), index 0 the input.
    latched : Latches
        What the phases of the current trial latched.
    phase, kind : Phase, PhaseKind
        The phase under way and its kind (None before the first step).
    live, listening, noisy : set of int
        The layers whose somas integrate, whose dendrites integrate their feedback,
        and which are nudged by noise, in the phase under way.
    training : bool
        Whether the trials under way train (rather than predict).
    outputs : ndarray
        The output rates of the run under way, one row per sample.
    plastic : dict
        l → SynapticPlasticity of a pathway whose synapses learn.
    tick, clamped_trial, phases_begun : int
        Time steps, trials and phases ever simulated: never reset, so caches never go stale.
    events : dict
        Pathway name → EventTransmission of the pathways that follow spikes.
    """

    name = "brian2"

    def __init__(self, model, spec, protocol, batch_size: int):
        super().__init__(model, spec, batch_size)
        import brian2

        # Divergence is detected (and reported once) by the training loop.
        brian2.BrianLogger.suppress_name("invalid_values")
        self.brian2 = brian2
        self.codegen = protocol.engine.codegen
        self.transmission = protocol.engine.transmission
        self.trial_start = protocol.phases.trial_start
        self.dt = protocol.phases.dt.quantity
        self.train_phases, self.pretrain_phases = learner_phases(self, protocol.phases, self.dt)
        #: the trial of a pass that trains only the forward weights (rule.schedule = "epochs")
        self.forward_phases = learner_phases(self, protocol.phases, self.dt,
                                             learn_feedback=False)[0]
        self.eval_phases = self.train_phases[:1]
        #: each layer's SpikingPopulation (None for a rate layer), index 0 the input
        populations = [None] + [layer_population(ls, self.dt) for ls in spec.layers]
        self.stochastic = input_kind(spec.network).stochastic or any(
            population_kind(ls).stochastic for ls in spec.layers)
        if self.stochastic:  # Brian2's rand() draws from its own generator: seed it
            brian2.seed(protocol.training.seed)
        self.latched = Latches()
        self.phase = self.kind = None
        self.noisy, self.live, self.listening = set(), set(), set()
        #: (phase, live, listening) of every phase begun, while a recording collects them
        self._roles = None
        self.tick = self.clamped_trial = self.phases_begun = 0
        built = build_network(self, spec, populations, on_step_start=self._on_step_start,
                              on_step_end=self._on_step_end)
        self.clock, self.layers, self.network = built.clock, built.layers, built.network
        self._synaptic, self.plastic, self.events = built.synaptic, built.plastic, built.events
        # prepare the code objects before gc.freeze
        simulate(brian2, self.network, self.codegen, 0 * brian2.ms)
        for plasticity in self.plastic.values():  # not in the network: prepared here
            plasticity.prepare()
        # Network.run calls gc.collect(); freezing the long-lived objects makes that cheap.
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------- public
    def train_epoch(self, x, y, rng, progress=None, learn_forward=True,
                    learn_feedback=True) -> dict:
        order = np.concatenate(epoch_batches(len(x), self.batch_size, rng,
                                             self.keep_partial_batch))
        if len(order) % self.batch_size:  # check_data rejects this before a run starts
            raise ValueError(f"the brian2 engine trains whole batches of {self.batch_size} "
                             f"only; keep_partial_batch leaves {len(order) % self.batch_size}")
        xs = np.ascontiguousarray(x[order], dtype=self.dtype)
        ys = y[order]
        self._run(xs, ys, self._trial_of(learn_forward, learn_feedback), True, rng, progress,
                  learn_forward, learn_feedback=learn_feedback)
        n = len(order)
        return {"loss": self._loss_sum / n, "accuracy": self._correct / n}

    def train_batch(self, x, y, rng, learn_forward=True, learn_feedback=True) -> BatchTrace:
        """Train on exactly one batch of B samples; returns its trace."""
        if len(x) != self.batch_size:
            raise ValueError(f"train_batch needs exactly {self.batch_size} samples, got {len(x)}")
        self._run(np.ascontiguousarray(x, dtype=self.dtype), y,
                  self._trial_of(learn_forward, learn_feedback), True, rng, None, learn_forward,
                  learn_feedback=learn_feedback)
        return self.last_trace

    def _trial_of(self, learn_forward, learn_feedback):
        """The phases of a training trial that learns what the two flags say."""
        if not learn_forward:
            return self.pretrain_phases
        return self.train_phases if learn_feedback else self.forward_phases

    def rehearse(self, x, y, rng) -> BatchTrace:
        if len(x) != self.batch_size:
            raise ValueError(f"a batch of this engine has exactly {self.batch_size} samples, "
                             f"got {len(x)}")
        with self.state_kept():
            self._run(np.ascontiguousarray(x, dtype=self.dtype), y, self.train_phases, True, rng,
                      None, learn=False)
            return self.last_trace

    def predict(self, x):
        B = self.batch_size
        n = len(x)
        padded = np.zeros((-(-n // B) * B, x.shape[1]), self.dtype)
        padded[:n] = x
        return self._run(padded, None, self.eval_phases, False, None, None)[:n].copy()

    def rows(self):
        """The rows of the current trial's batch in the run's data."""
        return slice(self._trial * self.batch_size, (self._trial + 1) * self.batch_size)

    # ------------------------------------------------------------ running
    def _run(self, x, y, phases, train: bool, rng, progress, learn_forward=True, learn=True,
             learn_feedback=True):
        """Simulate len(x) / B trials with one Network.run.

        With ``learn=False`` every phase runs and every update is computed, but no
        weight changes (the probe trials of activity recording).
        """
        self._x, self._y, self._rng, self.training, self._progress = x, y, rng, train, progress
        self._learn_forward, self._learn, self._learn_feedback = learn_forward, learn, learn_feedback
        self._names, self._starts, self._ends = step_schedule(phases)
        self._step, self._trial = -1, 0
        n_steps = len(self._names) * whole_batches(len(x), self.batch_size)
        self.outputs = np.empty((len(x), self.model.sizes[-1]), self.dtype)
        self._loss_sum, self._correct = 0.0, 0
        self._stopped_by = None
        simulate(self.brian2, self.network, self.codegen, n_steps * self.dt)
        if self._stopped_by is not None:  # the progress callback abandoned the run
            raise self._stopped_by
        return self.outputs

    def _on_step_start(self):
        self._step += 1
        self.tick += 1
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
            if self.training and self._learn_forward and self._learn:
                self._forward_update()
            if self.training and self._learn:
                self.hooks.fire("batch_end", self._hook_arrays, self._names[s].name)
            self._finish_trial()
            self._trial += 1

    def _begin_trial(self):
        B, rows, latched = self.batch_size, self.rows(), self.latched
        self.layers[0].data[...] = self._x[rows]
        self.clamped_trial += 1
        for layer in self.layers[1:]:
            layer.I_nudge[...] = 0.0
        if self.trial_start != "carry":  # so that the last trial does not leak into this one
            self._start_trial_state(self._x[rows])
        if self.training:
            latched.ytarget = self.targets_of(self._y[rows])
            noises = self.draw_noise(self._rng, B) if self._learn_feedback else []
            latched.noises, latched.iteration = noises, 0
            latched.normalised = [None] * (self.top + 1)
            latched.trace = BatchTrace(a=[None], h=[self._x[rows]],
                                       noise=latched.noises[-1] if latched.noises else [],
                                       points=[None, None] + [{} for _ in range(2, self.top + 1)])

    def _start_trial_state(self, x):
        """Every layer at rest (``rest``), or at the steady state its rate twin gives for
        input x (``twin``: h_l = φ_l(W_l h_{l−1} + b_l), so the traces need only correct
        the twin's error instead of rising from zero)."""
        twin, h = self.trial_start == "twin", x
        self.layers[0].reset(x if twin else None)
        for l in range(1, self.model.n_layers + 1):
            a = self.model.forward[l].drive(h)
            h = self.model.activations[l].fn(a)
            self.layers[l].reset((a, h) if twin else None)

    def _begin_phase(self, phase):
        kind = phase.kind
        self.phase, self.kind = phase, kind
        self.phases_begun += 1
        self.noisy = set()
        if kind.noise_parity is not None:
            self.noisy = {l for l in self.noisy_layers() if l % 2 == kind.noise_parity}
        self.live, self.listening = kind.roles(self, phase)
        if self._roles is not None:
            self._roles.append((phase, self.live, self.listening))
        a, h = self.latched.a, self.latched.h
        for l in range(1, self.model.n_layers + 1):
            self.layers[l].I_nudge[...] = 0.0
            if l in self.live:
                self.layers[l].release()
            else:  # a soma that does not integrate is held at its forward state
                self.layers[l].hold(a[l], h[l])
        kind.begin(self, phase)

    def _end_phase(self, phase):
        self._end_phase_latches(phase)
        if self.training and self._learn:
            self.hooks.fire("phase_end", self._hook_arrays, phase.name)

    def _hook_arrays(self) -> dict:
        """The latched rates, drives and targets, and the dendrites' potentials, by name."""
        latched, layers = self.latched, self.layers
        dendrites = [getattr(layer, "u", None) if layer.apical is not None else None
                     for layer in layers]
        return layer_arrays(self.model.names, latched.a, latched.h, latched.trace.targets,
                            {"dendrite": dendrites})

    def _end_phase_latches(self, phase):
        phase.kind.end(self, phase)
        if phase.opens_iteration:  # g_l(h_l) at the weights this iteration starts from
            for l in range(2, self.top + 1):
                latch_point(self, "clean", l)
        if phase.ends_iteration:
            latched = self.latched
            trace, eps = latched.trace, latched.noises[latched.iteration]
            trace.feedback_grads, trace.feedback_losses = self.feedback_update(
                latched.h, eps, trace.points, self.side_for(latched.h, latched.ytarget),
                apply=self._learn)
            latched.iteration += 1
        if phase.twin_feedback and self.training:  # a prediction's forward phase learns nothing
            self._twin_feedback()

    def _twin_feedback(self):
        """Every feedback iteration of the trial on the rate twin (``rule.feedback_from =
        "twin"``), from the latched forward traces, as the reference engine trains g_l.

        Then each dendrite below the top target is put where a settle phase would bring
        it: u = Q_l h_l + c_l of the new weights, and g_l(h_l) is latched from it for the
        DTP difference. It is exact, and it costs no time steps (docs/spiking.md).
        """
        latched = self.latched
        side = self.side_for(latched.h, latched.ytarget)
        for eps in latched.noises:
            self.feedback_iteration(latched.h, eps, latched.trace, side, apply=self._learn)
        latched.iteration = len(latched.noises)
        latched.g_forward = [None] * self.top
        for l in range(1, self.top):
            self.layers[l].u[...], latched.g_forward[l] = self.model.g(l + 1, latched.h[l + 1],
                                                                        side)

    def _forward_update(self):
        latched, trace = self.latched, self.latched.trace
        grads = forward_grads(self.model, latched.a, latched.h, trace.targets, self.top,
                              bias_only=self.plastic)
        if latched.teaching.output_grads is not None:
            grads.append(latched.teaching.output_grads)
        for l in self.plastic:  # these weights learn in their synapses, not in the optimizer
            grads[l][0] = learn_synaptically(self._synaptic, self.plastic[l], self.model, l,
                                             latched.h[l], trace.targets[l], latched.a[l],
                                             self.batch_size)
        self.apply_forward(grads, applied=self.plastic)
        # learning synapses hold their weights already, unless the constraints moved them
        constrained = self.spec.constraints.forward.active
        copy_synaptic_weights(self._synaptic, self.model, self.batch_size,
                              skip=() if constrained else self.plastic)
        trace.forward_grads = grads

    def _finish_trial(self):
        if self.training:
            latched = self.latched
            latched.trace.a, latched.trace.h = latched.a, latched.h
            latched.trace.loss = latched.teaching.loss
            batch_loss, correct = self.score(latched.h[-1], self._y[self.rows()],
                                             latched.teaching.loss)
            self._loss_sum += batch_loss
            self._correct += correct
            self.last_trace = latched.trace
        if self._progress is not None:
            try:
                self._progress(self.batch_size)
            except Exception as err:  # e.g. a Ctrl-C's StopRequested: end the run cleanly
                # Network.stop ends Network.run after this step, with Brian2's state
                # consistent; the error is raised again once the run has returned.
                self._stopped_by = err
                self.network.stop()

    def weights_replaced(self):
        copy_synaptic_weights(self._synaptic, self.model, self.batch_size)

    def record_activity(self, x, y, every: int = 1) -> dict:
        """One training trial of the probe batch x (B samples), recorded, learning nothing.

        Monitors (:class:`~bioprop.brian2.monitors.ActivityMonitors`) record every
        `every` steps; spikes come as ``spike_trial``, ``spike_time`` (ms from the
        trial's start), ``spike_neuron``. The monitors are removed afterwards, and the
        populations' state, Brian2's generator and the training generator are left as
        they were.
        """
        if len(x) != self.batch_size:
            raise ValueError(f"the activity probe needs {self.batch_size} samples, got {len(x)}")
        monitors = ActivityMonitors(self.brian2, self.layers, self.dt * every)
        self.network.add(*monitors.objects)
        start = self.network.t
        self._roles = []
        watched = [layer for layer in self.layers[1:] if layer.spiking]
        for layer in watched:  # the record shows every soma in every phase
            layer.observed = True
        try:
            with self.state_kept():
                self._run(np.ascontiguousarray(x, dtype=self.dtype), y, self.train_phases, True,
                          np.random.default_rng(0), None, learn=False)
        finally:
            self.network.remove(*monitors.objects)
            roles, self._roles = self._roles, None
            for layer in watched:
                layer.observed = False
        out = monitors.read(self.model.names, self.model.sizes, self.batch_size, start)
        times = monitors.times(start)
        phases = [self._names[i].name for i in range(0, len(self._names), every)][:len(times)]
        out[RECORD_COORDS] = {"time": times, "phase": phases, "phases": self._phase_table(roles)}
        return out

    def _phase_table(self, roles) -> dict:
        """The phases of the recorded trial as columns: name, start and duration (ms), and
        the layers whose somas integrate and whose dendrites listen, by name."""
        dt = float(self.dt / self.brian2.ms)
        steps = np.array([phase.steps for phase, _, _ in roles])

        def named(layers):
            # a role may name the layer above a noisy top, which has no population
            return " ".join(self.model.names[l] for l in sorted(layers) if l <= self.model.n_layers)

        return {"name": [phase.name for phase, _, _ in roles],
                "start": (np.cumsum(steps) - steps) * dt, "duration": steps * dt,
                "somas": [named(live) for _, live, _ in roles],
                "dendrites": [named(listening) for _, _, listening in roles]}
