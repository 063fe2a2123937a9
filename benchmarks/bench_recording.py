"""Cost of recording: training time and file size per epoch, with and without logging.

    python benchmarks/bench_recording.py [--epochs 5] [--repeats 3]
    python benchmarks/bench_recording.py --recover [--epochs 3] [--repeats 3]

Trains the default model on digits in the Brian2 engine under three recording
settings, interleaved, and prints medians of the time per epoch (training and
recording, everything the run does at an epoch's end) relative to a run that
records only the per-epoch figures, and the run file's size per epoch:

* ``minimal``: per-epoch figures only (no diagnostics, weights or activity);
* ``default``: the default protocol (diagnostics on 64 probe samples, weights every 10 epochs);
* ``full``: default, plus the activity of one probe batch (B trials, every time step)
  and the weights, every epoch.

With ``--recover`` it measures instead what makes killed run files recoverable
(docs/run-file.md, "Killed runs"): the file declared as a temporary, synced and renamed
into place, and the writer's lock, against a recorder that writes the file in place
with none of it (as before), default recording, interleaved; and what closing and
reopening the file in SWMR mode would add per epoch (the rejected alternative).
"""
import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import bioprop
from bioprop.runlog import recorder as recorder_module

SETTINGS = {
    "minimal": ["record.probe_size=0", "record.weights_every=0"],
    "default": [],
    "full": ["record.activity_every=1", "record.activity_dt_factor=1", "record.weights_every=1"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recover", action="store_true",
                        help="the cost of recoverable run files, with against without")
    args = parser.parse_args()
    if args.recover:
        return recover_cost(args.epochs, args.repeats)
    times = {name: [] for name in SETTINGS}
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, overrides in SETTINGS.items():
                path = Path(folder) / f"{name}-{repeat}.h5"
                start = time.perf_counter()
                bioprop.run(output=path, progress=False,
                            overrides=overrides + [f"training.epochs={args.epochs}"])
                times[name].append((time.perf_counter() - start) / args.epochs)
                sizes[name] = path.stat().st_size / args.epochs
    base = statistics.median(times["minimal"])
    print(f"default model, digits, Brian2 engine, {args.epochs} epochs x {args.repeats} repeats "
          "(medians; time per epoch includes evaluation and everything recorded)")
    print(f"{'recording':10s} {'s/epoch':>8s} {'overhead':>9s} {'file/epoch':>11s}")
    for name in SETTINGS:
        t = statistics.median(times[name])
        print(f"{name:10s} {t:8.3f} {100 * (t / base - 1):8.1f}% {sizes[name] / 2 ** 20:9.2f} MiB")


@contextlib.contextmanager
def _in_place():
    """The recorder as it was: the file created where it belongs, no temporary, no sync,
    no rename, no lock."""
    saved = {k: getattr(recorder_module, k) for k in ("temporary", "fsync_path", "replace",
                                                      "hold_writer_lock")}
    recorder_module.temporary = lambda target: Path(target)
    recorder_module.fsync_path = recorder_module.replace = lambda *a: None
    recorder_module.hold_writer_lock = lambda path: None
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(recorder_module, k, v)


@contextlib.contextmanager
def _timed(spent):
    """Add the time spent in the recorder steps that differ (creating the file, entering SWMR
    mode, closing it) to `spent`."""
    cls = recorder_module.RunRecorder
    saved = {k: getattr(cls, k) for k in ("__init__", "start_swmr", "close")}

    def timer(method):
        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                spent.append(time.perf_counter() - start)
        return timed

    for k, v in saved.items():
        setattr(cls, k, timer(v))
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(cls, k, v)


def recover_cost(epochs, repeats):
    import h5py

    modes = {"without": _in_place, "with": contextlib.nullcontext}
    times = {name: [] for name in modes}
    steps = {name: [] for name in modes}
    with tempfile.TemporaryDirectory() as folder:
        bioprop.run(output=Path(folder) / "warm-up.h5", progress=False,
                    overrides=["training.epochs=1"])  # imports and caches, not measured
        for repeat in range(repeats):
            for name in (list(modes) if repeat % 2 else list(modes)[::-1]):  # alternate order
                path = Path(folder) / f"{name}-{repeat}.h5"
                spent = []
                start = time.perf_counter()
                with modes[name](), _timed(spent):
                    bioprop.run(output=path, progress=False,
                                overrides=[f"training.epochs={epochs}"])
                times[name].append((time.perf_counter() - start) / epochs)
                steps[name].append(sum(spent))
        reopen = []
        for _ in range(20):  # alternative (b): close at each epoch's end, reopen to append
            start = time.perf_counter()
            with h5py.File(path, "r+", libver="latest") as f:
                f.swmr_mode = True
            reopen.append(time.perf_counter() - start)
    t = {name: statistics.median(v) for name, v in times.items()}
    step = {name: 1e3 * statistics.median(v) for name, v in steps.items()}
    print(f"default model, digits, Brian2 engine, {epochs} epochs x {repeats} repeats "
          "(medians; time per epoch includes start-up, evaluation and everything recorded)")
    print(f"without (file written in place): {t['without']:.3f} s/epoch, recorder's create, "
          f"SWMR and close steps {step['without']:.1f} ms per run")
    print(f"with (temporary, sync, rename, lock): {t['with']:.3f} s/epoch, the same steps "
          f"{step['with']:.1f} ms per run")
    print(f"ratio with/without: time per epoch {t['with'] / t['without']:.3f}, "
          f"those steps {step['with'] / step['without']:.2f}; difference per run "
          f"{step['with'] - step['without']:.1f} ms = {100 * (step['with'] - step['without']) / 1e3 / (t['without'] * epochs):.2f}% of the run")
    print(f"(b) close and reopen in SWMR mode: {1e3 * statistics.median(reopen):.1f} ms per epoch")

if __name__ == "__main__":
    main()
