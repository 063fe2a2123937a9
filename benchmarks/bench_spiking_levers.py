"""Training speed of the spiking digits model under each lever of issue 14, in one run.

    python benchmarks/bench_spiking_levers.py [--samples 128] [--repeats 3] [--feedback]
    python benchmarks/bench_spiking_levers.py --mnist [--batches 2] [--repeats 3]

Trains ``models/lif.toml`` with ``protocols/spiking_fine.toml`` (64-128 LIF-10, batch 32) on
the first `--samples` training digits, once per setting, the settings interleaved
`--repeats` times, and prints for each the median samples per second, its ratio to
the first setting measured in the same run, and the time steps of one training
trial. The settings are the ``--set`` overrides of :data:`SETTINGS`; their accuracy
is measured by full runs (docs/spiking.md, "Speed"). With ``--feedback``: the ways of
training the feedback pathway (:data:`FEEDBACK_SETTINGS`) on ``models/lif.toml``
with ``protocols/spiking.toml`` instead (docs/spiking.md, "Feedback learning
without noise phases"). With ``--mnist``: the levers of the 784-500-500-10 LIF network's
speed (:data:`MNIST_SETTINGS`), as ``bioprop bench --spiking`` measures its row (k) (random
MNIST-shaped data, batch 100, compiled) and against the reference engine's row (a) in the
same run (docs/spiking.md, "Speed").
"""
import argparse
import contextlib
import dataclasses
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bioprop.brian2.phases import step_schedule
from bioprop.datasets import load_dataset
from bioprop.spec import load_model, load_protocol
from bioprop.training import make_engine

_HALF = ['phases.forward="60 ms"', 'phases.feedback="50 ms"', 'phases.target="60 ms"']
_QUARTER = ['phases.forward="30 ms"', 'phases.feedback="25 ms"', 'phases.target="30 ms"']
_DT1 = ['phases.dt="1 ms"']
#: name → overrides of the protocol
SETTINGS = {
    "default (dt 0.5 ms, 120/100/120 ms)": [],
    "dt 1 ms": _DT1,
    "dt 1 ms, phases halved, twin start": _DT1 + _HALF + ['phases.trial_start="twin"'],
    "dt 1 ms, phases quartered, twin start": _DT1 + _QUARTER + ['phases.trial_start="twin"'],
    "the same, event-driven": _DT1 + _QUARTER + ['phases.trial_start="twin"',
                                                 'engine.transmission="events"'],
    "the same, cython": _DT1 + _QUARTER + ['phases.trial_start="twin"',
                                           'engine.codegen="cython"'],
    "the same, event-driven and cython": _DT1 + _QUARTER + ['phases.trial_start="twin"',
                                                            'engine.transmission="events"',
                                                            'engine.codegen="cython"'],
}
#: the feedback lever: name → overrides of the model
FEEDBACK_SETTINGS = {
    "as shipped (noise phases, alternating)": [],
    "rule.feedback_from=twin": ["rule.feedback_from=twin"],
    "rule.feedback=fixed": ["rule.feedback=fixed"],
    "rule.schedule=parallel": ["rule.schedule=parallel"],
}

#: the MNIST levers: name → (protocol overrides, hidden-layer keys, engine.dtype, batch size),
#: each on top of row (k) of ``bioprop bench --spiking`` (the shipped lif_mnist files and
#: rule.feedback_from = "twin"); the "before" rows restate the files as they were
_BEFORE = ['phases.forward="90 ms"', 'phases.target="90 ms"']
_SLOW_DENDRITE = {"tau_apical": "10 ms"}
MNIST_SETTINGS = {
    "before, as the engine was (see _as_before)": (_BEFORE + ['engine.transmission="dense"'],
                                                   _SLOW_DENDRITE, "float64", 100),
    "90/90 ms, dense, tau_apical 10 ms": (_BEFORE + ['engine.transmission="dense"'],
                                          _SLOW_DENDRITE, "float64", 100),
    "90/90 ms, events": (_BEFORE, _SLOW_DENDRITE, "float64", 100),
    "90/60 ms, events": (['phases.forward="90 ms"', 'phases.target="60 ms"'], _SLOW_DENDRITE,
                         "float64", 100),
    "90/1 ms, events, tau_apical 1 ms": (['phases.forward="90 ms"'], {}, "float64", 100),
    "as shipped (60/1 ms, events, tau_apical 1 ms)": ([], {}, "float64", 100),
    "shipped, dense": (['engine.transmission="dense"'], {}, "float64", 100),
    "shipped, forward 40 ms": (['phases.forward="40 ms"'], {}, "float64", 100),
    "shipped, float32": ([], {}, "float32", 100),
    "shipped, batch 50": ([], {}, "float64", 50),
    "shipped, batch 200": ([], {}, "float64", 200),
}


@contextlib.contextmanager
def _as_before():
    """The engine as it was before its bit-for-bit levers: held somas simulated (and their
    apical currents computed) in every step, and the forward phase's dendrites listening
    although the twin feedback overwrites them when the phase ends."""
    from bioprop.brian2 import phases
    from bioprop.brian2.layers import SpikingLayer

    def listening(engine, phase):
        every = set(range(1, engine.model.n_layers + 1))
        return every, set(range(1, engine.top)) if engine.training else set()

    forward, frozen = phases.PHASE_KINDS["forward"], SpikingLayer.frozen
    phases.PHASE_KINDS["forward"] = dataclasses.replace(forward, roles=listening)
    SpikingLayer.frozen = property(lambda self: False)
    try:
        yield
    finally:
        phases.PHASE_KINDS["forward"], SpikingLayer.frozen = forward, frozen


def mnist_levers(n_batches, repeats):
    """Row (a) of ``bioprop bench`` and each of :data:`MNIST_SETTINGS`, interleaved."""
    from bioprop.bench import lif_mnist_settings, measure

    sizes, samples = [784, 500, 500, 10], 100 * n_batches
    rule, shipped, neurons = lif_mnist_settings()
    rule = {**rule, "feedback_from": "twin"}
    runs = {"(a) reference engine, rate twin": measure("reference", sizes, 100, n_batches,
                                                       "float64")}
    for name, (phases, keys, dtype, batch) in MNIST_SETTINGS.items():
        runs[name] = measure("brian2", sizes, batch, samples // batch, dtype, spiking="lif",
                             codegen="cython", rule=rule, phases=shipped + phases,
                             neurons=[{**n, **keys} for n in neurons])
    results = {name: [] for name in runs}
    for _ in range(repeats):
        for name, once in runs.items():
            with _as_before() if name.startswith("before") else contextlib.nullcontext():
                results[name].append(once())
    ref = statistics.median(r[0] for r in results["(a) reference engine, rate twin"])
    print(f"784-500-500-10, {samples} samples x {repeats} repeats (medians); share of time: "
          "Brian2 code objects, matrix products, event-driven transmission, Python and "
          "element-wise work")
    print(f"{'setting':48s} {'steps/trial':>11s} {'samples/s':>9s} {'x (a)':>6s}")
    for name, rs in results.items():
        rate = statistics.median(r[0] for r in rs)
        engine = runs[name].engine
        steps = len(step_schedule(engine.train_phases)[0]) if hasattr(engine, "train_phases") \
            else "-"
        shares = {k: statistics.median(r[1][k] / r[2] for r in rs) for k in rs[0][1]}
        split = " ".join(f"{100 * shares[k]:3.0f}%" for k in ("brian2", "matmul", "events")) + \
            f" {100 * (1 - sum(shares.values())):3.0f}%"
        print(f"{name:48s} {steps!s:>11s} {rate:9.0f} {rate / ref:6.3f}   {split}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--feedback", action="store_true",
                        help="the feedback options on lif + spiking instead")
    parser.add_argument("--mnist", action="store_true",
                        help="the levers of the 784-500-500-10 LIF network against row (a)")
    parser.add_argument("--batches", type=int, default=2, help="with --mnist: batches of 100")
    args = parser.parse_args()
    if args.mnist:
        with threadpool_limits(1):
            mnist_levers(args.batches, args.repeats)
        return
    model, protocol = ("lif", "spiking") if args.feedback else ("lif", "spiking_fine")
    settings = FEEDBACK_SETTINGS if args.feedback else SETTINGS
    data = load_dataset("digits")
    x, y = data.x_train[:args.samples], data.y_train[:args.samples]
    runs = {}
    with threadpool_limits(1):
        for name, overrides in settings.items():
            # each loader takes the overrides of its own tables
            engine = make_engine(load_model(model, overrides=overrides),
                                 load_protocol(protocol, overrides=overrides),
                                 np.random.default_rng(0))
            engine.train_epoch(x, y, np.random.default_rng(1))  # warm-up: code generation
            runs[name] = (engine, [])
        for _ in range(args.repeats):  # interleaved, so the machine's load hits all alike
            for name, (engine, rates) in runs.items():
                start = time.perf_counter()
                engine.train_epoch(x, y, np.random.default_rng(1))
                rates.append(len(x) / (time.perf_counter() - start))
    base = statistics.median(next(iter(runs.values()))[1])
    print(f"models/{model}.toml + protocols/{protocol}.toml, {len(x)} digits x {args.repeats} "
          "repeats (medians)")
    print(f"{'setting':42s} {'steps/trial':>11s} {'samples/s':>9s} {'x first':>9s}")
    for name, (engine, rates) in runs.items():
        steps = len(step_schedule(engine.train_phases)[0])
        rate = statistics.median(rates)
        print(f"{name:42s} {steps:11d} {rate:9.0f} {rate / base:9.2f}")


if __name__ == "__main__":
    main()
