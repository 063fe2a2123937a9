"""Inference of a LIF network on Brian2's cpp_standalone device against the runtime engine.

    python benchmarks/bench_standalone.py [--sizes 784,500,500,10] [--batch-size 100]
                                          [--batches 1] [--repeats 3]

For a network of LIF hidden layers and a linear rate output (threshold 0.2, the
spiking protocol's dt = 1 ms and 120 ms forward phase, :data:`bioprop.bench.SPIKING_PHASES`)
on MNIST-shaped synthetic data, prints from one process:

* the standalone build's time (code generation and compilation, ``make -j<jobs>``);
* samples per second of the forward phase (``predict``) on the runtime engine
  (numpy target, dense projections) and on cpp_standalone
  (:class:`bioprop.brian2.StandaloneForward`: per-trial ``Synapses``), medians
  of interleaved repeats, and their ratio; the standalone time is the wall time of
  one run of the compiled program, loading its inputs and weights included;
* how far the two devices' latched output rates are apart, and on how many samples
  their argmax agrees;
* whether ``device.run(run_args=...)`` reran the build with other weights and
  matched the runtime engine on them;
* the peak resident memory of this process and of the standalone program (measured
  by ``/usr/bin/time`` as the program's run command, where it exists: a child's
  ``ru_maxrss`` would count the pages it shares with this process at fork).

The default (784-500-500-10, batch 100, one batch, three repeats) took 4 min 13 s
from a cold build on 2 shared cores, most of it in the five standalone runs (about 40 s
each); two batches and two repeats took 8 min 23 s.

The C++ project goes to ``.standalone/`` (``--directory``); a kept directory
recompiles only what changed.
"""
import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="784,500,500,10")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=1, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=0,
                        help="OpenMP threads of the standalone program (0: none)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel compilation jobs")
    parser.add_argument("--directory", default=None,
                        help="the C++ project's directory (default .standalone/<sizes>-b<B>)")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from bioprop.bench import _specs
    from bioprop.brian2 import StandaloneForward
    from bioprop.training import make_engine

    sizes = [int(s) for s in args.sizes.split(",")]
    B, n_batches = args.batch_size, args.batches
    directory = args.directory or f".standalone/{'-'.join(map(str, sizes))}-b{B}"
    spec, protocol = _specs("brian2", sizes, B, args.dtype, False, spiking="lif")
    rng = np.random.default_rng(0)
    x = rng.random((n_batches * B, sizes[0]))

    with threadpool_limits(1):  # as bioprop's engines do on this shared machine
        runtime = make_engine(spec, protocol, np.random.default_rng(0))
        other = make_engine(spec, protocol, np.random.default_rng(1))
        first = runtime.predict(x)  # from rest, like every standalone run
        other_first = other.predict(x)

        program_peak = _measure_program_memory(directory)
        forward = StandaloneForward(runtime.model, spec, protocol, B, n_batches,
                                    directory=directory, threads=args.threads, jobs=args.jobs)
        try:
            latched = forward.predict(x)
            reuse = forward.predict(x, model=other.model)
            reuse_error = np.abs(reuse - other_first).max()
            # the rerun must be the other weights' answer, not this build's first one
            reused = reuse_error < 1e-6 and np.abs(reuse - latched).max() > 1e-3
            timings = {"runtime (numpy, dense)": [], "cpp_standalone (Synapses)": []}
            steps = []  # the standalone program's time steps alone
            for _ in range(args.repeats):  # interleaved: load on the machine hits both alike
                start = time.perf_counter()
                runtime.predict(x)
                timings["runtime (numpy, dense)"].append(time.perf_counter() - start)
                forward.predict(x)
                timings["cpp_standalone (Synapses)"].append(forward.run_seconds)
                steps.append(forward.simulate_seconds)
        finally:
            forward.close()

    n = len(x)
    rate = {name: n / statistics.median(seconds) for name, seconds in timings.items()}
    synapses = B * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    print(f"network {'-'.join(map(str, sizes))} (LIF hidden layers, linear output), batch {B}, "
          f"{args.dtype}, dt = {protocol.phases.dt}, forward phase {protocol.phases.forward}; "
          f"{n_batches} batches x {args.repeats} repeats (medians); {synapses:,} synapses")
    print(f"standalone build (code generation + compilation, make -j{args.jobs}): "
          f"{forward.build_seconds:.1f} s, of which make {forward.compile_seconds:.1f} s  "
          f"[{directory}]")
    base = rate["runtime (numpy, dense)"]
    for name, value in rate.items():
        print(f"{name:28s} {value:9.1f} samples/s  x runtime {value / base:6.2f}")
    run = statistics.median(timings["cpp_standalone (Synapses)"])
    print(f"  one standalone run {run:.1f} s, of which time steps {statistics.median(steps):.2f} s "
          "(the rest: start, loading arrays, creating synapses, writing results)")
    agree = (latched.argmax(1) == first.argmax(1)).mean()
    print(f"latched output rates, standalone vs runtime: max |diff| {np.abs(latched - first).max():.2g}; "
          f"argmax agrees on {agree * n:.0f}/{n} samples")
    print(f"run_args reuse (other weights, no rebuild): {'worked' if reused else 'FAILED'} "
          f"(max |diff| to the runtime engine on those weights {reuse_error:.2g})")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    program = f"{program_peak() / 1024:.0f} MiB" if program_peak else "not measured"
    print(f"peak memory (max RSS): this process {own:.0f} MiB; the standalone program "
          f"(last run) {program}")
    return 0


def _measure_program_memory(directory):
    """Run the standalone program under ``/usr/bin/time``; returns a function that reads
    the last run's peak RSS in KiB, or None where the tool is missing."""
    from brian2 import prefs

    if not os.access("/usr/bin/time", os.X_OK):
        return None
    record = os.path.abspath(os.path.join(directory, "peak_rss_kib.txt"))
    prefs.devices.cpp_standalone.run_cmd_unix = ["/usr/bin/time", "-f", "%M", "-o", record,
                                                 "./main"]
    return lambda: float(open(record).read().split()[-1])


if __name__ == "__main__":
    sys.exit(main())
