"""Speed of Synapses pathways against the dense batched projection, in the Brian2 engine.

    python benchmarks/bench_synapses.py [--samples 256] [--repeats 3] [--codegen cython]

Trains the default model (64-128-128-10, DTP, batch 32, the default protocol's phases)
on the first `samples` digits for one epoch, with every feedforward pathway
``dense``, every one ``synapses`` (p_connect = 1), and every one ``synapses`` with
p_connect = 0.25, interleaved, and prints the median training samples/s of each and
its ratio to the dense one. The time excludes building the network.
"""
import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bioprop.datasets import load_dataset
from bioprop.spec import load_model, load_protocol
from bioprop.training import make_engine

SETTINGS = {"dense": {}, "synapses": {"connection": "synapses"},
            "synapses, p = 0.25": {"connection": "synapses", "p_connect": 0.25}}


def samples_per_second(keys, x, y, codegen):
    names = [layer.name for layer in load_model().layers]
    model = load_model(overrides=[f"layers.{name}.{key}={value!r}".replace("'", '"')
                                  for name in names for key, value in keys.items()])
    protocol = load_protocol(overrides=[f"engine.codegen={codegen}"])
    engine = make_engine(model, protocol, np.random.default_rng(1))
    start = time.perf_counter()
    engine.train_epoch(x, y, np.random.default_rng(2))
    return len(x) // engine.batch_size * engine.batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codegen", choices=["numpy", "cython"], default="numpy")
    args = parser.parse_args()
    data = load_dataset("digits", seed=1)
    x, y = data.x_train[:args.samples], data.y_train[:args.samples]
    rates = {name: [] for name in SETTINGS}
    with threadpool_limits(1):
        for _ in range(args.repeats):
            for name, keys in SETTINGS.items():
                rates[name].append(samples_per_second(keys, x, y, args.codegen))
    dense = statistics.median(rates["dense"])
    print(f"default model (64-128-128-10, DTP, batch 32), digits, {args.samples} samples, "
          f"{args.codegen} target, medians of {args.repeats}")
    print(f"{'feedforward pathways':22s} {'samples/s':>10s} {'vs dense':>9s}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:22s} {median:10.1f} {median / dense:9.2f}")


if __name__ == "__main__":
    main()
