"""Make the format-1 run files of tests/data, with bioprop at the last commit that wrote format 1.

Run it from a checkout of that commit (1197371), which has no format 2::

    git worktree add /tmp/format1 1197371
    cd /tmp/format1 && python /path/to/tests/data/make_format1.py OUT
    cd OUT && gzip -9 -n format1-*.h5 format1-stopped.ckpt.npz   # then copy into tests/data

It writes three small runs (mostly empty HDF5 chunks, 15-90 kB gzipped), which
tests/test_format.py and tests/test_figures.py unpack and read with today's code:

* ``format1-brian2.h5`` — the default model, shrunk, in the Brian2 engine, one epoch, with
  weights and time-resolved activity (pathways ``forward_l``/``feedback_l``, ``/eval``, phases
  as a JSON attribute);
* ``format1-lif.h5`` — the LIF model, shrunk, with activity (rates as fractions of 200 Hz);
* ``format1-stopped.h5`` and its checkpoint ``format1-stopped.ckpt.npz`` — a reference-engine run of 2 epochs stopped in
  epoch 2, for ``--resume``.
"""
import sys
from pathlib import Path

import bioprop

SMALL = ["data.n_train=64", "data.n_test=32", "record.probe_size=32", "record.weights_every=1",
         "layers.hidden1.size=6"]


def main(out):
    out = Path(out)
    bioprop.run(output=out / "format1-brian2.h5", force=True, progress=False, overrides=SMALL + [
        "layers.hidden2.size=5", "training.epochs=1", "record.activity_every=1",
        "record.activity_dt_factor=10", "record.variables=[\"rate\"]"])
    from importlib.resources import files
    bioprop.run(str(files("bioprop.models") / "lif.toml"),
                str(files("bioprop.protocols") / "spiking_fine.toml"),
                output=out / "format1-lif.h5", force=True, progress=False, overrides=SMALL + [
                    "optimizer.forward.lr=0.001", "training.epochs=1", "record.activity_every=1",
                    "record.activity_dt_factor=40",
                    "record.variables=[\"rate\"]", "phases.forward=40 ms",
                    "phases.feedback=30 ms", "phases.target=40 ms"])
    from bioprop import training
    original = training.record_epoch

    def stop_in_epoch_2(recorder, row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt
        original(recorder, row)

    training.record_epoch = stop_in_epoch_2
    try:
        bioprop.run(output=out / "format1-stopped.h5", force=True, progress=False,
                    overrides=SMALL + ["layers.hidden2.size=5", "training.epochs=2",
                                       "engine.name=reference"])
    except KeyboardInterrupt:
        pass
    finally:
        training.record_epoch = original


if __name__ == "__main__":
    main(sys.argv[1])
