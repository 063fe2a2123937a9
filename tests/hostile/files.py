"""Hostile inputs from files: data sets, run files, checkpoints, output paths; and signals."""
from pathlib import Path

from case import Hostile

CASES = [
    Hostile("signal", "Ctrl-C (SIGINT) during training", None, "",
            tested_in="tests/test_interrupt.py"),
    # recover (H1)
    Hostile("run file", "`bioprop recover` on a file that does not exist",
            ["recover", "missing.h5"], "missing.h5: no such run file"),
    Hostile("run file", "`bioprop recover` on a directory",
            lambda d: (d / "runs").mkdir() or ["recover", "runs"],
            "runs: is a directory, not a run file"),
    Hostile("run file", "`bioprop recover` on a file that is not HDF5",
            lambda d: (d / "notes.h5").write_text("notes") and ["recover", "notes.h5"],
            "notes.h5: not an HDF5 file"),
    Hostile("run file", "`bioprop recover` on an HDF5 file that is not a run, its writer killed",
            lambda d: _flagged(d / "other.h5") or ["recover", "other.h5"],
            "other.h5: an HDF5 file, but not a bioprop run file"),
    Hostile("run file", "`bioprop recover` on a run file cut short",
            lambda d: _cut_short(d / "run.h5") or ["recover", "run.h5"],
            "run.h5: HDF5 cannot read it"),
]


def _flagged(path: Path):
    """An HDF5 file (not a run) with the "open for write" flag a killed writer leaves."""
    import os

    import h5py

    from bioprop.runlog.superblock import lookup3, read_superblock

    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = [1.0]
    with open(path, "r+b") as f:
        block = read_superblock(f.fileno())
        raw = bytearray(block.raw)
        raw[11] = 1  # the flags byte: open for write
        raw[-4:] = lookup3(bytes(raw[:-4])).to_bytes(4, "little")
        os.pwrite(f.fileno(), bytes(raw), block.offset)


def _cut_short(path: Path):
    """A finished run file of which only the first half is left."""
    from bioprop.runlog import RunRecorder

    with RunRecorder(path, {"bioprop_format_version": 1}) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        rec.append("train", 1, {"loss": 0.5})
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
