"""``bioprop bench``: the Brian2 engine's speed as ratios against the reference engine.

Trains a DTP network (by default Lee 2015's 784-7×240-10, batch 100) on synthetic
MNIST-shaped data — throughput does not depend on the pixel values — and reports,
from measurements interleaved in one process:

(a) the reference engine's samples per second;
(b) the Brian2 engine's samples per second at the default protocol's phase lengths;
(c) the Brian2 engine at its fastest setting, one step per phase (dt = τ);
(d) the share of the Brian2 engine's time spent outside the matrix products.

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

__all__ = ["main", "measure", "matmul_timer"]


@contextlib.contextmanager
def matmul_timer():
    """Count the seconds spent inside the dense projections' products.

    Wraps :meth:`DenseProjection.drive` (the forward and feedback currents) and
    :func:`dense_grads` (the weight gradients), which hold every matrix product of
    a training step.
    """
    from . import pathways
    from .rules import updates

    spent = [0.0]
    original_drive, original_grads = pathways.DenseProjection.drive, updates.dense_grads

    def drive(self, pre, out=None):
        start = time.perf_counter()
        try:
            return original_drive(self, pre, out)
        finally:
            spent[0] += time.perf_counter() - start

    def grads(delta, pre):
        start = time.perf_counter()
        try:
            return original_grads(delta, pre)
        finally:
            spent[0] += time.perf_counter() - start

    pathways.DenseProjection.drive, updates.dense_grads = drive, grads
    try:
        yield spent
    finally:
        pathways.DenseProjection.drive, updates.dense_grads = original_drive, original_grads


def _specs(sizes, batch, dtype, one_step: bool):
    from .spec import load_protocol, parse_model

    layers = [{"name": f"hidden{i}", "size": n} for i, n in enumerate(sizes[1:-1], start=1)]
    layers.append({"name": "output", "size": sizes[-1], "activation": "linear"})
    model = parse_model({"network": {"name": "bench", "input_size": sizes[0]}, "layers": layers,
                         "rule": {"target": "dtp", "feedback": "dtp"}}, "<bench>")
    overrides = [f"training.batch_size={batch}", f'engine.dtype="{dtype}"']
    if one_step:
        overrides += ['phases.dt="10 ms"', 'phases.forward="10 ms"', 'phases.feedback="10 ms"',
                      'phases.target="10 ms"']
    return model, load_protocol(overrides=overrides)


def measure(engine_name: str, sizes, batch: int, n_batches: int, dtype: str, one_step=False):
    """Build an engine and return a function that times one pass over `n_batches` batches.

    The function returns (samples per second, seconds inside matrix products, seconds).
    """
    from .spec import ProtocolSpec
    from .training import make_engine
    from dataclasses import replace

    model, protocol = _specs(sizes, batch, dtype, one_step)
    protocol = replace(protocol, engine=replace(protocol.engine, name=engine_name))
    assert isinstance(protocol, ProtocolSpec)
    rng = np.random.default_rng(0)
    engine = make_engine(model, protocol, rng)
    x = rng.random((n_batches * batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], len(x))

    def once():
        with matmul_timer() as spent:
            start = time.perf_counter()
            engine.train_epoch(x, y, rng)
            elapsed = time.perf_counter() - start
        return len(x) / elapsed, spent[0], elapsed

    once()  # warm-up: code generation, caches, first-touch allocations
    return once


def main(args) -> int:
    from threadpoolctl import threadpool_info, threadpool_limits

    sizes = [int(s) for s in args.sizes.split(",")]
    with threadpool_limits(args.threads):
        runs = {
            "(a) reference": measure("reference", sizes, args.batch_size, args.batches, args.dtype),
            "(b) brian2, default phases": measure("brian2", sizes, args.batch_size, args.batches,
                                                  args.dtype),
            "(c) brian2, one step per phase": measure("brian2", sizes, args.batch_size,
                                                      args.batches, args.dtype, one_step=True),
        }
        results = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
            for name, once in runs.items():
                results[name].append(once())
        blas = [f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} thread(s))"
                for i in threadpool_info() if i["user_api"] == "blas"]

    med = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    outside = {name: statistics.median(1 - r[1] / r[2] for r in rs) for name, rs in results.items()}
    ref = med["(a) reference"]
    print(f"network {'-'.join(map(str, sizes))}, DTP, batch {args.batch_size}, {args.dtype}, "
          f"{args.batches} batches x {args.repeats} repeats (medians)")
    print(f"{'':34s} {'samples/s':>10s} {'x reference':>12s} {'time outside matmul':>20s}")
    for name in results:
        print(f"{name:34s} {med[name]:10.0f} {med[name] / ref:12.2f} {100 * outside[name]:19.0f}%")
    print(f"(d) share outside matrix products, one step per phase: "
          f"{100 * outside['(c) brian2, one step per phase']:.0f}%  (goal <= 30%)")
    print(f"goal (c) >= 0.5 x (a): {'met' if med['(c) brian2, one step per phase'] >= 0.5 * ref else 'NOT met'}"
          f" ({med['(c) brian2, one step per phase'] / ref:.2f})")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"BLAS: {'; '.join(blas) or 'unknown'}; numpy {np.__version__}; "
          f"python {platform.python_version()}; {platform.machine()}")
    return 0
