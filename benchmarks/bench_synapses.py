"""Speed of Synapses pathways against the dense batched projection, in the Brian2 engine.

    python benchmarks/bench_synapses.py [--samples 256] [--repeats 3] [--codegen cython]

Trains the default model (64-128-128-10, DTP, batch 32, the default protocol's phases)
on the first `samples` digits for one epoch, with every feedforward pathway
``dense``, every one ``synapses`` (p_connect = 1), and every one ``synapses`` with
p_connect = 0.25, interleaved, and prints the median training samples/s of each and
its ratio to the dense one. Two more settings compare the ways synapses learn, both
with an SGD forward optimizer: weights copied from the dense W_l (``plasticity =
"dense"``) and the rule run by the synapses (``"synaptic"``); the last line is their
ratio. The time excludes building the network.
"""
import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bioprop.datasets import load_dataset
from bioprop.spec import load_model, load_protocol
from bioprop.training import make_engine

SYNAPSES = {"connection": "synapses"}
SGD = ["optimizer.forward.name=sgd"]
#: name → (keys of every layer, other overrides of the model)
SETTINGS = {"dense": ({}, []), "synapses": (SYNAPSES, []),
            "synapses, p = 0.25": ({**SYNAPSES, "p_connect": 0.25}, []),
            "synapses, sgd, copied": ({**SYNAPSES, "plasticity": "dense"}, SGD),
            "synapses, sgd, synaptic": ({**SYNAPSES, "plasticity": "synaptic"}, SGD)}


def samples_per_second(setting, x, y, codegen):
    keys, overrides = setting
    names = [layer.name for layer in load_model().layers]
    model = load_model(overrides=[f"layers.{name}.{key}={value!r}".replace("'", '"')
                                  for name in names for key, value in keys.items()] + overrides)
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
            for name, setting in SETTINGS.items():
                rates[name].append(samples_per_second(setting, x, y, args.codegen))
    dense = statistics.median(rates["dense"])
    print(f"default model (64-128-128-10, DTP, batch 32), digits, {args.samples} samples, "
          f"{args.codegen} target, medians of {args.repeats}")
    print(f"{'feedforward pathways':24s} {'samples/s':>10s} {'vs dense':>9s}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"{name:24s} {median:10.1f} {median / dense:9.3f}")
    print(f"synaptic plasticity vs copied weights: "
          f"{medians['synapses, sgd, synaptic'] / medians['synapses, sgd, copied']:.3f}")


if __name__ == "__main__":
    main()
