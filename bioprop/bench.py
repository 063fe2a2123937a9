"""``bioprop bench``: the Brian2 engine's speed as ratios against the reference engine.

Trains a DTP network (by default Lee 2015's 784-7×240-10, batch 100) on synthetic
MNIST-shaped data — throughput does not depend on the pixel values — and reports,
from measurements interleaved in one process:

(a) the reference engine's samples per second;
(b) the Brian2 engine's samples per second at the default protocol's phase lengths;
(c) the Brian2 engine at its fastest setting, one step per phase (dt = τ);
(d) the share of the Brian2 engine's time spent outside the matrix products;
(p) a plain NumPy DTP step written here, independently of bioprop's rules and engines
    (:func:`plain_dtp`): the same algorithm with nothing around it, the speed limit that
    (a) and (c) are also given against;

and with ``--spiking``:

(e) the Brian2 engine with every hidden layer made of LIF neurons, at a spiking
    time step and phases (:data:`SPIKING_PHASES`);
(f) the same network of rate layers at the same time step and phases, so that
    (e)/(f) is the price of spikes alone, and (f)/(b) the price of the finer dt;
(g) (e) with ``engine.transmission = "events"``: the pathways from the LIF layers add
    the weight columns of the neurons that fired instead of multiplying the whole
    trace (:mod:`bioprop.event_pathways`); for (e) and (g) it prints the time steps per
    trial and the fraction of neurons that fired per step;
(h) (g) with Brian2's ``cython`` code generation target (``engine.codegen``) instead of
    ``numpy``: the LIF state updates, thresholds and resets compiled;
(i) (g) stepping in NumPy and SciPy instead of the compiled kernel
    (:meth:`~bioprop.event_pathways.EventTransmission.advance_numpy`, the fallback where
    the kernel cannot be compiled), so that (g)/(i) is the kernel's gain.
(j) the LIF network of the shipped ``lif_mnist``: its rule's spiking target, its hidden
    layers' keys and ``mnist_lif``'s phases and transmission (:func:`lif_mnist_settings`),
    compiled, with its feedback weights trained in noise phases;
(k) (j) with ``rule.feedback_from = "twin"`` (no noise phases), as the shipped
    ``lif_mnist`` learns: issue 14's speed goal, (k) ≥ 0.15 × (a), for which it also prints
    the steps per trial and where the time went.

It also prints the peak resident memory, and which BLAS ran with how many threads.
Each figure is the median over ``--repeats`` measurements; the machine this runs
on is shared, so only ratios from one run mean much.
"""
from __future__ import annotations

import contextlib
import platform
import resource
import statistics
import time

import numpy as np

__all__ = ["main", "measure", "cost_split"]


def _timed(spent, key, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
    return wrapper


#: the kinds of work :func:`cost_split` times, each with the name the bench prints for it
COSTS = {"matmul": "matrix products", "events": "event-driven transmission",
         "apical": "apical currents", "optimizer": "optimizer", "noise": "noise",
         "brian2": "Brian2 code objects"}


@contextlib.contextmanager
def cost_split():
    """Count the seconds spent in each kind of work while the block runs.

    ``matmul``: :meth:`DenseProjection.drive` and :func:`dense_grads`, which hold every
    matrix product of a step; ``events``: event-driven transmission
    (:class:`~bioprop.event_pathways.EventTransmission`); ``apical``: a spiking layer's
    apical current from its twin's inverse; ``optimizer``: the optimizer steps;
    ``noise``: drawing ε; ``brian2``: Brian2's code objects (state updates, thresholds,
    resets). The rest is element-wise work and Python in the engine.
    """
    import brian2.core.base

    from . import event_pathways, learner, projection, rate_twins
    from .rules import updates

    spent = dict.fromkeys(COSTS, 0.0)
    targets = [(projection.DenseProjection, "drive", "matmul"), (updates, "dense_grads", "matmul"),
               (event_pathways.EventTransmission, "sync", "events"),
               (event_pathways.EventTransmission, "advance", "events"),
               (rate_twins.SpikingPopulation, "apical_current", "apical"),
               (learner.Learner, "apply_forward", "optimizer"),
               (learner.Learner, "apply_feedback", "optimizer"),
               (learner, "sample_noise", "noise"),
               (brian2.core.base.BrianObject, "run", "brian2")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    for (owner, name, key), (_, _, function) in zip(targets, originals):
        setattr(owner, name, _timed(spent, key, function))
    try:
        yield spent
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


#: a spiking time step and phases (dt = 1 ms, half the refractory period; 120/80/120 ms)
SPIKING_PHASES = ['phases.dt="1 ms"', 'phases.forward="120 ms"', 'phases.feedback="80 ms"',
                  'phases.target="120 ms"']


def lif_mnist_settings():
    """The settings with which the shipped models/lif_mnist.toml learns MNIST (rows (j) and
    (k)), read from it and its protocols/mnist_lif.toml so that the bench cannot drift from
    them: its rule's spiking target, the protocol's trial start, phase lengths and
    transmission (as ``[rule]`` keys and protocol overrides), and every key its hidden
    layers set but their name and size (a list of tables, one per hidden layer)."""
    import tomllib

    from .spec import load_model, load_protocol, to_toml

    model, protocol = load_model("lif_mnist"), load_protocol("mnist_lif")
    phases = protocol.phases
    # the resolved layers, so that a key the file inherits through `extends` counts too
    tables = tomllib.loads(to_toml(model))["layers"][:-1]
    hidden = [{k: v for k, v in table.items() if k not in ("name", "size")} for table in tables]
    return ({"spiking_target": model.rule.spiking_target},
            [f'phases.trial_start="{phases.trial_start}"']
            + [f'phases.{key}="{getattr(phases, key)}"' for key in ("forward", "feedback", "target")]
            + [f'engine.transmission="{protocol.engine.transmission}"'], hidden)


def _specs(engine_name, sizes, batch, dtype, one_step: bool, spiking=None, transmission="dense",
           codegen="numpy", rule=None, phases=(), neurons=None):
    """Model and protocol of a measurement; `spiking` None (default phases), ``"rate"`` or
    ``"lif"`` (hidden layers of that kind, at :data:`SPIKING_PHASES`); `transmission` and
    `codegen` are ``engine.transmission`` and ``engine.codegen``; `rule` adds keys to the
    model's ``[rule]``, `phases` overrides of the protocol, applied last, and `neurons`
    (a list of tables; the last serves any further layer) the hidden layers' keys instead
    of a LIF layer of threshold 0.2."""
    from .spec import load_protocol, parse_model

    hidden = [{"population": "lif", "threshold": 0.2} if spiking == "lif" else {}]
    hidden = neurons or hidden
    layers = [{"name": f"hidden{i}", "size": n, **hidden[min(i, len(hidden)) - 1]}
              for i, n in enumerate(sizes[1:-1], start=1)]
    layers.append({"name": "output", "size": sizes[-1], "activation": "linear"})
    # no [rule]: the default rule, DTP with noise-preserving inverses, which plain_dtp restates
    model = parse_model({"network": {"name": "bench", "input_size": sizes[0]}, "layers": layers,
                         **({"rule": rule} if rule else {})}, "<bench>")
    overrides = [f"training.batch_size={batch}", f'engine.dtype="{dtype}"',
                 f"engine.name={engine_name}", f"engine.transmission={transmission}",
                 f"engine.codegen={codegen}"]
    if one_step:
        overrides += ['phases.dt="10 ms"', 'phases.forward="10 ms"', 'phases.feedback="10 ms"',
                      'phases.target="10 ms"']
    if spiking:
        overrides += SPIKING_PHASES
    return model, load_protocol(overrides=overrides + list(phases))


def measure(engine_name: str, sizes, batch: int, n_batches: int, dtype: str, one_step=False,
            spiking=None, transmission="dense", codegen="numpy", kernel=True, rule=None,
            phases=(), neurons=None):
    """Build an engine and return a function that times one pass over `n_batches` batches;
    with `kernel` False its event-driven pathways step without the compiled kernel.

    The function returns (samples per second, {kind of work: seconds}, seconds); its
    attribute ``engine`` is the engine it trains.
    """
    from .training import make_engine

    model, protocol = _specs(engine_name, sizes, batch, dtype, one_step, spiking, transmission,
                             codegen, rule, phases, neurons)
    rng = np.random.default_rng(0)
    engine = make_engine(model, protocol, rng)
    if not kernel:
        for pathway in engine.events.values():
            pathway.kernel = None
    x = rng.random((n_batches * batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], len(x))

    def once():
        with cost_split() as spent:
            start = time.perf_counter()
            engine.train_epoch(x, y, rng)
            elapsed = time.perf_counter() - start
        return len(x) / elapsed, spent, elapsed

    once()  # warm-up: code generation, caches, first-touch allocations
    once.engine = engine
    return once


def plain_dtp(sizes, batch: int, n_batches: int, dtype: str, *, step=0.3, sigma=0.36,
              lr=1e-3, decay=0.9, eps=1e-8, data=None):
    """A stand-alone DTP trainer for (p): tanh layers, a linear softmax output, the output
    target one loss step away, difference targets, noise-preserving inverses, RMSprop on
    both pathways, the alternating schedule of the reference engine (inverses first, then
    the targets from the updated inverses). Returns a function like :func:`measure`'s,
    with a ``predict(x)`` attribute; `data` = (x, labels) trains on real data instead of
    random arrays (the test that this step learns).
    """
    rng = np.random.default_rng(0)
    n_layers = len(sizes) - 1
    # one dict of parameters, keyed (name, l), so that gradients and RMSprop's state use the same keys
    params = {("W", l): rng.standard_normal((sizes[l], sizes[l - 1])) / np.sqrt(sizes[l - 1])
              for l in range(1, n_layers + 1)}
    params.update({("b", l): np.zeros(sizes[l]) for l in range(1, n_layers + 1)})
    params.update({("Q", l): rng.standard_normal((sizes[l - 1], sizes[l])) / np.sqrt(sizes[l])
                   for l in range(2, n_layers + 1)})
    params.update({("c", l): np.zeros(sizes[l - 1]) for l in range(2, n_layers + 1)})
    params = {key: value.astype(dtype) for key, value in params.items()}
    W, b, Q, c = ({l: p for (kind, l), p in params.items() if kind == name} for name in "WbQc")
    mean_square = {key: np.zeros_like(p) for key, p in params.items()}
    if data is None:
        data = rng.random((n_batches * batch, sizes[0])), rng.integers(0, sizes[-1], n_batches * batch)
    x = np.asarray(data[0], dtype)
    y = np.eye(sizes[-1], dtype=dtype)[data[1]]

    def phi(l, a):
        return a if l == n_layers else np.tanh(a)

    def rmsprop(grads):
        for key, g in grads.items():
            ms = mean_square[key]
            ms *= decay
            ms += (1 - decay) * g * g
            params[key] -= lr * g / (np.sqrt(ms) + eps)

    def forward(xb):
        h = [xb]
        for l in range(1, n_layers + 1):
            h.append(phi(l, h[-1] @ W[l].T + b[l]))
        return h

    def train(xb, yb):
        h = forward(xb)
        # inverses: g_l(f_l(h_{l-1} + eps)) should give back h_{l-1} + eps
        grads = {}
        for l in range(2, n_layers + 1):
            noisy = h[l - 1] + sigma * rng.standard_normal(h[l - 1].shape).astype(dtype)
            up = phi(l, noisy @ W[l].T + b[l])
            recon = np.tanh(up @ Q[l].T + c[l])
            delta = (recon - noisy) * (1 - recon ** 2) / len(xb)
            grads["Q", l], grads["c", l] = delta.T @ up, delta.sum(0)
        rmsprop(grads)
        # targets: one loss step at the output, then differences down
        out = np.exp(h[-1] - h[-1].max(1, keepdims=True))
        target = h[-1] - step * (out / out.sum(1, keepdims=True) - yb)
        grads = {}
        for l in range(n_layers, 0, -1):
            delta = (h[l] - target) / len(xb)
            if l < n_layers:
                delta *= 1 - h[l] ** 2
            grads["W", l], grads["b", l] = delta.T @ h[l - 1], delta.sum(0)
            if l > 1:
                g = np.tanh(target @ Q[l].T + c[l]) - np.tanh(h[l] @ Q[l].T + c[l])
                target = h[l - 1] + g
        rmsprop(grads)

    def once():
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            train(x[i:i + batch], y[i:i + batch])
        elapsed = time.perf_counter() - start
        return len(x) / elapsed, {}, elapsed

    once.predict = lambda xs: forward(np.asarray(xs, dtype))[-1]
    once()
    return once


def main(args) -> int:
    from threadpoolctl import threadpool_info, threadpool_limits

    sizes = args.sizes if isinstance(args.sizes, list) else [int(s) for s in args.sizes.split(",")]
    with threadpool_limits(args.threads):
        runs = {
            "(a) reference": measure("reference", sizes, args.batch_size, args.batches, args.dtype),
            "(b) brian2, default phases": measure("brian2", sizes, args.batch_size, args.batches,
                                                  args.dtype),
            "(c) brian2, one step per phase": measure("brian2", sizes, args.batch_size,
                                                      args.batches, args.dtype, one_step=True),
        }
        if args.spiking:
            runs["(e) brian2, LIF hidden layers"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif")
            runs["(f) brian2, rate layers, same dt"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="rate")
            runs["(g) brian2, LIF, event-driven"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif",
                transmission="events")
            runs["(h) (g) compiled (cython)"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif",
                transmission="events", codegen="cython")
            runs["(i) (g) without the kernel"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif",
                transmission="events", kernel=False)
            rule, shipped, neurons = lif_mnist_settings()
            runs["(j) lif_mnist, noise phases"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif",
                codegen="cython", rule=rule, phases=shipped, neurons=neurons)
            runs["(k) (j), feedback on the twin"] = measure(
                "brian2", sizes, args.batch_size, args.batches, args.dtype, spiking="lif",
                codegen="cython", rule={**rule, "feedback_from": "twin"}, phases=shipped,
                neurons=neurons)
        runs["(p) plain NumPy DTP step"] = plain_dtp(sizes, args.batch_size, args.batches,
                                                     args.dtype)
        results = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
            for name, once in runs.items():
                results[name].append(once())
        blas = [f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} thread(s))"
                for i in threadpool_info() if i["user_api"] == "blas"]

    med = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    share = {name: {k: statistics.median(r[1][k] / r[2] for r in rs) for k in rs[0][1]}
             for name, rs in results.items() if rs[0][1]}
    outside = {name: 1 - s["matmul"] for name, s in share.items()}
    ref = med["(a) reference"]
    print(f"network {'-'.join(map(str, sizes))}, DTP, batch {args.batch_size}, {args.dtype}, "
          f"{args.batches} batches x {args.repeats} repeats (medians)")
    kinds = list(share["(a) reference"])
    print(f"{'':32s} {'samples/s':>9s} {'x ref':>6s}   share of time: "
          + " ".join(f"{k:>9s}" for k in kinds + ["rest"]))
    for name in results:
        if name not in share:
            print(f"{name:32s} {med[name]:9.0f} {med[name] / ref:6.2f}")
            continue
        rest = 1 - sum(share[name].values())
        print(f"{name:32s} {med[name]:9.0f} {med[name] / ref:6.2f}                  "
              + " ".join(f"{100 * share[name][k]:8.0f}%" for k in kinds) + f" {100 * rest:8.0f}%")
    print(f"(d) share outside matrix products, one step per phase: "
          f"{100 * outside['(c) brian2, one step per phase']:.0f}%  (goal <= 30%)")
    print(f"goal (c) >= 0.5 x (a): {'met' if med['(c) brian2, one step per phase'] >= 0.5 * ref else 'NOT met'}"
          f" ({med['(c) brian2, one step per phase'] / ref:.2f})")
    plain = med["(p) plain NumPy DTP step"]
    print(f"against the plain NumPy DTP step (p): (a)/(p) = {ref / plain:.2f}, "
          f"(c)/(p) = {med['(c) brian2, one step per phase'] / plain:.2f}")
    print(f"goal (a) >= 2,000 samples/s at batch 100: {'met' if ref >= 2000 else 'NOT met'} "
          f"({ref:,.0f}; an absolute rate, so only as good as the machine's load)")
    if args.spiking:
        lif, rate = med["(e) brian2, LIF hidden layers"], med["(f) brian2, rate layers, same dt"]
        print(f"spikes at the same dt and phases: (e)/(f) = {lif / rate:.2f}; the finer dt: "
              f"(f)/(b) = {rate / med['(b) brian2, default phases']:.2f}")
        _spiking_lines(runs, med, share)
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"BLAS: {'; '.join(blas) or 'unknown'}; numpy {np.__version__}; "
          f"python {platform.python_version()}; {platform.machine()}")
    return 0


def _spiking_lines(runs, med, share):
    """Steps per trial of (e), (j) and (k), the spike fraction of (g)'s event-driven
    pathways, (g)/(e), and where (k)'s time went against its goal."""
    from .brian2.phases import step_schedule

    lif, events = med["(e) brian2, LIF hidden layers"], med["(g) brian2, LIF, event-driven"]
    engine = runs["(g) brian2, LIF, event-driven"].engine
    steps = len(step_schedule(engine.train_phases)[0])
    fired = ", ".join(f"{name} {100 * t.spike_fraction:.2f}%" for name, t in engine.events.items())
    print(f"(e) time steps per trial: {steps} (dt = {engine.dt}); neurons firing per step "
          f"into each event-driven pathway: {fired}")
    for row in ("(j) lif_mnist, noise phases", "(k) (j), feedback on the twin"):
        trial = len(step_schedule(runs[row].engine.train_phases)[0])
        print(f"{row}: {trial} time steps per trial, {med[row] / med['(a) reference']:.3f} x (a)")
    goal = med["(k) (j), feedback on the twin"] / med["(a) reference"]
    parts = share["(k) (j), feedback on the twin"]
    first = ("brian2", *(k for k in COSTS if k != "brian2"))  # the costs the issue names first
    print("(k) time: " + ", ".join(f"{COSTS[k]} {100 * parts[k]:.0f}%" for k in first)
          + f", Python and element-wise work {100 * (1 - sum(parts.values())):.0f}%")
    print(f"goal (k) >= 0.15 x (a): {'met' if goal >= 0.15 else 'NOT met'} ({goal:.3f}; "
          f"{med['(k) (j), feedback on the twin']:.0f} samples/s)")
    print(f"event-driven transmission: (g)/(e) = {events / lif:.2f}; compiled as well: "
          f"(h)/(e) = {med['(h) (g) compiled (cython)'] / lif:.2f}; the compiled kernel: "
          f"(g)/(i) = {events / med['(i) (g) without the kernel']:.2f}")
