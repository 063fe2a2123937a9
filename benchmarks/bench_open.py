"""Opening and reducing a large activity log: lazily, and chunk by chunk with dask.

    python benchmarks/bench_open.py [--gib 1.0] [--repeats 5] [--folder DIR]

Writes a run file holding about `--gib` GiB of activity, (epoch, trial, time, neuron)
rates recorded epoch by epoch through :class:`bioprop.runlog.RunRecorder` as a run
does, then measures, as medians of `--repeats`:

* the time :func:`bioprop.open_run` takes to open it (arrays are not read);
* the time and the peak memory added by the mean rate per epoch, computed with
  ``open_run(path, chunks={})`` (dask: chunk by chunk), against the size of the array.

The time to open is compared with the time to read the whole array once, measured in
the same run; the machine is shared, so read the ratios.
"""
import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import bioprop
from bioprop.runlog import RunRecorder

TRIALS, TIMES, NEURONS = 32, 256, 512  # one epoch: 32 MiB of float64


def write_log(path: Path, gib: float) -> int:
    """A run file with `gib` GiB of rates; returns the number of epochs."""
    epochs = max(1, int(round(gib * 2 ** 30 / (TRIALS * TIMES * NEURONS * 8))))
    rng = np.random.default_rng(0)
    block = rng.random((TRIALS, TIMES, NEURONS))
    with RunRecorder(path, {"bioprop_format_version": 1}, force=True) as recorder:
        recorder.declare("layers/hidden", {"rate": {"units": "1"}},
                         dims=("epoch", "trial", "time", "neuron"),
                         coords={"trial": np.arange(TRIALS), "time": np.arange(TIMES) * 0.5,
                                 "neuron": np.arange(NEURONS)},
                         coord_attrs={"time": {"units": "ms"}})
        for epoch in range(epochs):
            recorder.append("layers/hidden", epoch, {"rate": block + epoch})
            recorder.flush()
    return epochs


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "log.h5"
        epochs = write_log(path, args.gib)
        size = path.stat().st_size / 2 ** 30
        # the streamed reduction first, while the peak memory is still that of the imports
        before = max_rss_mib()
        start = time.perf_counter()
        tree = bioprop.open_run(path, chunks={})
        mean = tree["layers"]["hidden"]["rate"].mean(["trial", "time", "neuron"]).compute()
        streamed = time.perf_counter() - start
        assert np.allclose(mean.values, 0.5 + np.arange(epochs), atol=1e-2)
        added = max_rss_mib() - before
        opening, reading = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tree = bioprop.open_run(path)
            opening.append(time.perf_counter() - start)
            start = time.perf_counter()
            rate = tree["layers"]["hidden"]["rate"]
            rate.isel(epoch=0).values  # one epoch, to compare with opening
            reading.append((time.perf_counter() - start) * epochs)
            tree.close()
    print(f"activity log: {epochs} epochs x ({TRIALS}, {TIMES}, {NEURONS}) float64, "
          f"file {size:.2f} GiB; medians of {args.repeats}")
    print(f"open_run:                 {statistics.median(opening):.3f} s "
          f"({statistics.median(opening) / statistics.median(reading):.4f} x reading it all, "
          f"{statistics.median(reading):.1f} s)")
    print(f"mean per epoch with dask: {streamed:.1f} s, peak memory added {added:.0f} MiB "
          f"({added / (size * 1024):.2f} x the array)")


if __name__ == "__main__":
    main()
