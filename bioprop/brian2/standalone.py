"""The forward (inference) phase of a spiking network on Brian2's cpp_standalone device.

The Brian2 engine (:mod:`bioprop.brian2.engine`) drives its phases with Python
``NetworkOperation`` objects, which a standalone device cannot run: the whole
simulation is compiled to one C++ program that never calls back into Python. The
forward phase alone needs no Python in the loop, and :class:`StandaloneForward`
builds it from equations only:

* the input layer's rates come from a ``TimedArray`` indexed by (batch, neuron),
  one row per batch of B trials, each row lasting the forward phase, copied into
  the input group by a ``run_regularly`` operation at the start of each batch, so
  that one run of the program covers many batches;
* each dense projection W_l, b_l is a Brian2 ``Synapses`` object with a summed
  variable, one copy of the synapses per trial
  (:func:`bioprop.pathways.synaptic_projection`), plus the bias as a per-neuron
  parameter (:func:`bioprop.pathways.synaptic_input`);
* every layer's rate (the spike trace ``r`` of a LIF layer, φ(v) of a rate layer)
  is read by a ``StateMonitor`` once per forward phase, at the step where the
  engine latches it.

As in the engine, a batch starts from the state the previous one left: the
network is not reset between batches, only the input changes. Each call of
:meth:`StandaloneForward.rates` reruns the compiled program from rest with new
inputs and weights through ``device.run(run_args=...)`` (Brian2 ≥ 2.6), without
generating or compiling code again.

The device is global Brian2 state: while a :class:`StandaloneForward` is open,
Brian2 is back on the runtime device (other networks run as usual), but a second
standalone build needs the first one closed (:meth:`StandaloneForward.close`).
"""
from __future__ import annotations

import os
import time

import numpy as np

from bioprop.pathways import synaptic_projection
from bioprop.populations import input_kind, layer_population, population_kind
from bioprop.rate_groups import rate_soma

from .phases import trial_phases

__all__ = ["StandaloneForward", "reset_device"]


def reset_device(name="cpp_standalone"):
    """Put Brian2 back on the runtime device; the standalone device `name` forgets its build."""
    import brian2
    from brian2.devices.device import all_devices

    if name in all_devices:
        all_devices[name].reinit()
    brian2.set_device("runtime")


class StandaloneForward:
    """The forward phase of `model` for `n_batches` batches of B trials, compiled once.

    Parameters
    ----------
    model : LayeredModel
        Its current weights are compiled in; :meth:`rates` takes others.
    spec : ModelSpec
        Hidden and output layers must be ``lif`` or rate layers; the input must be
        rate-encoded (Poisson units draw from a generator the runtime does not share).
    protocol : ProtocolSpec
        Supplies dt and the forward phase's duration.
    batch_size : int
        B, the trials simulated side by side.
    n_batches : int
        How many batches one run of the program covers.
    directory : str or path
        Where the C++ project is written and compiled; reusing a directory reuses
        the compiled objects that did not change.
    threads : int
        OpenMP threads of the program (0: no OpenMP).
    jobs : int
        Parallel compilation jobs (``make -j``).
    device : str
        ``cpp_standalone``, or ``cuda_standalone`` (brian2cuda, imported here) on a
        machine with an NVIDIA GPU: the same code, but untested in this project.

    Attributes
    ----------
    build_seconds : float
        Code generation and compilation.
    compile_seconds : float
        The compilation (``make``) alone.
    run_seconds : float
        Wall time of the last run of the program: starting it, loading its arrays,
        creating the synapses, simulating and writing its results back.
    simulate_seconds : float
        The time steps alone in the last run, as the program measured them.
    """

    def __init__(self, model, spec, protocol, batch_size: int, n_batches: int, *, directory,
                 threads: int = 0, jobs: int = 1, device: str = "cpp_standalone"):
        import brian2 as b2

        if input_kind(spec.network).spikes:
            raise ValueError("StandaloneForward needs rate-encoded input, got "
                             f"{spec.network.input_encoding!r}")
        if protocol.phases.trial_start != "carry":  # its trials go on from the last one's state
            raise ValueError("StandaloneForward runs each trial on from the state the last one "
                             "left (phases.trial_start = 'carry'); this protocol starts them at "
                             f"{protocol.phases.trial_start!r}, which the runtime engine's "
                             "predict does and the compiled program does not")
        self.model, self.batch_size, self.n_batches = model, batch_size, n_batches
        self.directory = os.fspath(directory)
        self.dt = protocol.phases.dt.quantity
        self.steps = trial_phases(protocol.phases, self.dt, schedule="parallel",
                                  trains_feedback=False)[0].steps
        self.dtype = np.dtype(protocol.engine.dtype)

        if device == "cuda_standalone":
            import brian2cuda  # noqa: F401  (registers the device)
        self.device_name = device
        b2.set_device(device, build_on_run=False)
        self.device = b2.get_device()
        # make's default here is -j (no limit); the machine is shared with other jobs
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{jobs}"]
        b2.prefs.devices.cpp_standalone.openmp_threads = threads
        try:
            start = time.perf_counter()
            self._build(b2, spec)
            self.device.build(directory=self.directory, compile=True, run=False,
                              with_output=False)
            self.build_seconds = time.perf_counter() - start
            self.compile_seconds = self.device.timers["compile"]["make"]
        except BaseException:
            reset_device(device)
            raise
        # Leave Brian2 on the runtime device; the built program still runs through
        # self.device, and its monitors still read their results from its directory.
        b2.set_device("runtime")
        self.run_seconds = self.simulate_seconds = None

    def _build(self, b2, spec):
        B, model = self.batch_size, self.model
        clock = b2.Clock(self.dt, name="standalone_clock")
        phase = self.steps * self.dt
        # One row per batch; the row of batch k holds from t = k·T_forward on.
        self.stimulus = b2.TimedArray(np.zeros((self.n_batches, B * model.sizes[0])), dt=phase,
                                      name="stimulus")
        pre = b2.NeuronGroup(B * model.sizes[0], "r : 1", name="input", clock=clock,
                             dtype=self.dtype.type)
        # Set once per batch: a subexpression r = stimulus(t, i) would be looked up by
        # every synapse at every step (no measurable difference at 784-100-100-10, though).
        pre.run_regularly("r = stimulus(t, i)", dt=phase, when="start", name="input_switch")
        self.groups, self.synapses, self.monitors = [pre], [], []
        for l in range(1, model.n_layers + 1):
            ls, n = spec.layers[l - 1], B * model.sizes[l]
            population = layer_population(ls, self.dt)
            name = f"{ls.name}_soma"
            if population is None:
                group = rate_soma(name, n, ls.tau.quantity, model.activations[l],
                                  clock=clock, order=10 * l, dtype=self.dtype, synaptic_input=True,
                                  **population_kind(ls).soma_options(ls))
            elif population.record.synaptic_input:
                group = population.build(name, n, clock, 10 * l, self.dtype, synaptic_input=True)
            else:
                raise ValueError(f"layer {ls.name!r}: StandaloneForward runs lif and rate layers, "
                                 f"not {population.kind!r}")
            # Brian2 updates a summed variable just before its target group (order − 1),
            # after the layer below: one step carries activity bottom-up, as in the engine.
            self.synapses.append(synaptic_projection(model.forward[l], pre, group, B,
                                                     name=f"forward_{l}", clock=clock))
            group.I_ff_bias = np.tile(model.forward[l].bias, B)
            # The engine latches a phase's rates at the end of its last step, which is the
            # state at the start of the next one: record there, once per batch.
            self.monitors.append(b2.StateMonitor(group, "r", record=True, dt=phase,
                                                 when="start", name=f"latch_{l}"))
            self.groups.append(group)
            pre = group
        network = b2.Network(*self.groups, *self.synapses, *self.monitors)
        # One step beyond the last batch, for the record at its end.
        network.run(self.n_batches * phase + self.dt, namespace={"stimulus": self.stimulus})

    def run_args(self, x, model=None) -> dict:
        """The ``run_args`` that give the program inputs `x` and the weights of `model`."""
        B, model = self.batch_size, model or self.model
        rows = np.zeros((self.n_batches * B, model.sizes[0]))
        if len(x) > len(rows):
            raise ValueError(f"this build covers {len(rows)} samples, got {len(x)}")
        rows[:len(x)] = x
        args = {self.stimulus: rows.reshape(self.n_batches, -1)}
        for l, (synapses, group) in enumerate(zip(self.synapses, self.groups[1:]), start=1):
            # synaptic_projection connects trial by trial, in the order of np.nonzero
            args[synapses.w] = np.tile(model.forward[l].weight.ravel(), B)
            args[group.I_ff_bias] = np.tile(model.forward[l].bias, B)
        return args

    def rates(self, x, model=None) -> list:
        """Every layer's rates at the end of the forward phase of each sample of `x`.

        Parameters
        ----------
        x : ndarray (n, n_in), n ≤ n_batches · B
            Padded with zeros to the build's batches.
        model : LayeredModel, optional
            Other weights of the same shapes (e.g. after training); default: the
            model the program was built for.

        Returns
        -------
        list of ndarray
            ``rates[l]`` (n, N_l) for l = 1..L (``rates[0]`` is x).
        """
        start = time.perf_counter()
        self.device.run(directory=self.directory, with_output=False,
                        run_args=self.run_args(x, model))
        self.run_seconds = time.perf_counter() - start
        self.simulate_seconds = self.device._last_run_time
        out = [np.asarray(x)]
        for monitor in self.monitors:  # (B·N, 1 + n_batches) → (n_batches · B, N)
            latched = np.asarray(monitor.r)[:, 1:self.n_batches + 1]
            out.append(latched.T.reshape(self.n_batches * self.batch_size, -1)[:len(x)])
        return out

    def predict(self, x, model=None):
        """The top layer's latched rates, as :meth:`Brian2Engine.predict` returns them."""
        return self.rates(x, model)[-1]

    def close(self):
        """Forget the build and leave Brian2 on the runtime device."""
        reset_device(self.device_name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
