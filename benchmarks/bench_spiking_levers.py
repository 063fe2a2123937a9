"""Training speed of the spiking digits model under each lever of issue 14, in one run.

    python benchmarks/bench_spiking_levers.py [--samples 128] [--repeats 3] [--feedback]

Trains ``models/lif.toml`` with ``protocols/spiking.toml`` (64-128 LIF-10, batch 32) on
the first `--samples` training digits, once per setting, the settings interleaved
`--repeats` times, and prints for each the median samples per second, its ratio to
the first setting measured in the same run, and the time steps of one training
trial. The settings are the ``--set`` overrides of :data:`SETTINGS`; their accuracy
is measured by full runs (docs/spiking.md, "Speed"). With ``--feedback``: the ways of
training the feedback pathway (:data:`FEEDBACK_SETTINGS`) on ``models/lif_tuned.toml``
with ``protocols/spiking_tuned.toml`` instead (docs/spiking.md, "Feedback learning
without noise phases").
"""
import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--feedback", action="store_true",
                        help="the feedback options on lif_tuned + spiking_tuned instead")
    args = parser.parse_args()
    model, protocol = ("lif_tuned", "spiking_tuned") if args.feedback else ("lif", "spiking")
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
