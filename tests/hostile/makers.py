"""Bad files for the cases of :mod:`files`: damaged idx files, run files and checkpoints.

Each ``make_*`` function returns a case's ``argv`` callable: given a fresh directory (the
current directory while the case runs), it writes the files the mistake needs there and
returns bioprop's arguments. The good run files they start from are trained once per test
session (:func:`good_run`) and copied.
"""
from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

#: tiny runs, trained once: (engine, extra overrides)
_RUNS = {"reference": ["engine.name=reference", "training.epochs=2", "data.n_train=64",
                       "data.n_test=32", "record.weights_every=1"],
         "reference-seed2": ["engine.name=reference", "training.epochs=2", "data.n_train=64",
                             "data.n_test=32", "record.weights_every=1", "training.seed=2"],
         "brian2": ["training.epochs=1", "data.n_train=32", "data.n_test=16",
                    "training.batch_size=16", "record.activity_every=1"]}
_BUILT: dict = {}


def good_run(kind: str = "reference") -> Path:
    """A finished run file (its checkpoint beside it) of the tiny run `kind`, trained once."""
    if kind not in _BUILT:
        from bioprop.training import run

        folder = Path(tempfile.mkdtemp(prefix=f"hostile-{kind}-"))
        run(output=folder / "run.h5", overrides=_RUNS[kind], progress=False)
        _BUILT[kind] = folder / "run.h5"
    return _BUILT[kind]


def copy_run(here: Path, kind="reference", name="run.h5", checkpoint=True) -> Path:
    """Copy the run `kind` (and its checkpoint) into `here` as `name`."""
    source = good_run(kind)
    target = here / name
    shutil.copyfile(source, target)
    if checkpoint:
        shutil.copyfile(source.with_name("run.ckpt.npz"),
                        target.with_name(Path(name).stem + ".ckpt.npz"))
    return target


def set_attrs(path: Path, delete=(), **attrs):
    import h5py

    with h5py.File(path, "r+") as f:
        for key in delete:
            del f.attrs[key]
        f.attrs.update(attrs)


def resumable(here: Path, kind="reference") -> Path:
    """A copy of a finished run marked ``interrupted``, so that ``--resume`` accepts it."""
    path = copy_run(here, kind)
    set_attrs(path, status="interrupted")
    return path


# ------------------------------------------------------------------- data sets
def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An idx file of unsigned bytes holding `array` (magic 0x801 labels, 0x803 images)."""
    magic = magic if magic is not None else (0x801 if array.ndim == 1 else 0x803)
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.asarray(array, np.uint8).tobytes()


def idx_set(folder: Path, n=(40, 20), side=8, spoil=None):
    """Write the four MNIST idx files of `n` (train, test) samples of side x side images into
    `folder`; `spoil` maps a file stem to the bytes that replace it (or a function of its
    bytes)."""
    from bioprop.datasets import IDX_FILES

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n[0], side, side)),
              "y_train": np.arange(n[0]) % 10,
              "x_test": rng.integers(0, 256, (n[1], side, side)), "y_test": np.arange(n[1]) % 10}
    for key, stem in IDX_FILES.items():
        raw = idx_bytes(arrays[key])
        bad = (spoil or {}).get(stem)
        raw = bad(raw) if callable(bad) else raw if bad is None else bad
        (folder / stem).write_bytes(raw)


def mnist_with(spoil=None, n=(40, 20), side=8, sets=()):
    """A case's argv: MNIST from the idx files in ``./data`` (``$BIOPROP_DATA``, set by the
    case's `env`), spoilt by `spoil`, trained by a model whose input fits `side`."""
    def make(here: Path):
        idx_set(here / "data", n=n, side=side, spoil=spoil)
        argv = ["run", "-q", "--set", "data.dataset=mnist", "--set", "engine.name=reference",
                "--set", f"network.input_size={side * side}"]
        return argv + [a for s in sets for a in ("--set", s)]
    return make


def gzipped(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


# ------------------------------------------------------------------- run files
def hdf5_file(here: Path, name="run.h5", attrs=None, groups=()):
    """An HDF5 file with the given root attributes and empty groups."""
    import h5py

    path = here / name
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs or {})
        for g in groups:
            f.create_group(g)
    return path


def bare_run_attrs(**changes) -> dict:
    """The root attributes of a real run, changed by `changes` (None deletes one)."""
    import h5py

    with h5py.File(good_run(), "r") as f:
        attrs = dict(f.attrs)
    attrs.update(changes)
    return {k: v for k, v in attrs.items() if v is not None}


def truncate(path: Path, keep: float = 0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


# ----------------------------------------------------------------- checkpoints
def rewrite_checkpoint(path: Path, meta=None, drop=(), reshape=()):
    """Rewrite the checkpoint `path` with `meta` changes, arrays in `drop` left out and
    arrays in `reshape` cut to one row."""
    with np.load(path) as data:
        old = json.loads(str(data["__meta__"]))
        arrays = {k: data[k] for k in data.files if k != "__meta__" and k not in drop}
    for key in reshape:
        arrays[key] = arrays[key][:1]
    old.update(meta or {})
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(old)), **arrays)
