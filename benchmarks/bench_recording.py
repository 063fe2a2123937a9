"""Cost of recording: training time and file size per epoch, with and without logging.

    python benchmarks/bench_recording.py [--epochs 5] [--repeats 3] [--settings minimal default]

Trains the default model on digits in the Brian2 engine under three recording
settings, interleaved, and prints medians of the time per epoch (training and
recording, everything the run does at an epoch's end) relative to a run that
records only the per-epoch figures, and the run file's size per epoch:

* ``minimal``: per-epoch figures only (no diagnostics, weights or activity);
* ``no-ends``: the default protocol without ``record.first_and_last`` (diagnostics on 64
  probe samples, weights every 10 epochs);
* ``default``: the default protocol: that, plus the probe batch's activity (every time
  step) and every pathway's weights at epoch 0 and the last epoch;
* ``full``: default, plus the activity of one probe batch (B trials, every time step)
  and the weights, every epoch.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import bioprop

SETTINGS = {
    "minimal": ["record.probe_size=0", "record.weights_every=0", "record.first_and_last=false"],
    "no-ends": ["record.first_and_last=false"],
    "default": [],
    "full": ["record.activity_every=1", "record.activity_dt_factor=1", "record.weights_every=1"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="the settings to run (the first is the reference of the overhead)")
    args = parser.parse_args()
    settings = {name: SETTINGS[name] for name in args.settings}
    times = {name: [] for name in settings}
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, overrides in settings.items():
                path = Path(folder) / f"{name}-{repeat}.h5"
                start = time.perf_counter()
                bioprop.run(output=path, progress=False,
                            overrides=overrides + [f"training.epochs={args.epochs}"])
                times[name].append((time.perf_counter() - start) / args.epochs)
                sizes[name] = path.stat().st_size / args.epochs
    base = statistics.median(times[args.settings[0]])
    print(f"default model, digits, Brian2 engine, {args.epochs} epochs x {args.repeats} repeats "
          "(medians; time per epoch includes evaluation and everything recorded)")
    print(f"{'recording':10s} {'s/epoch':>8s} {'overhead':>9s} {'file/epoch':>11s}")
    for name in settings:
        t = statistics.median(times[name])
        print(f"{name:10s} {t:8.3f} {100 * (t / base - 1):8.1f}% {sizes[name] / 2 ** 20:9.2f} MiB")


if __name__ == "__main__":
    main()
