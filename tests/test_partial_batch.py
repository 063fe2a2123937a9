"""training.keep_partial_batch: the samples left after the last whole batch are trained on."""
import pytest

import bioprop
from bioprop.batching import epoch_batches
from bioprop.errors import SpecError

QUICK = ["training.epochs=2", "data.n_train=100", "data.n_test=40", "training.batch_size=32",
         "record.probe_size=0"]
BRIAN2 = ['phases.dt="10 ms"', 'phases.forward="10 ms"', 'phases.feedback="10 ms"',
          'phases.target="10 ms"']


def _batch_sizes(monkeypatch, engine_class, path, overrides):
    """The size of every batch the engine trained on, and the run's result."""
    sizes = []
    original = engine_class.train_batch

    def spy(self, x, *args, **kwargs):
        sizes.append(len(x))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(engine_class, "train_batch", spy)
    return sizes, bioprop.run(output=path, progress=False, overrides=overrides)


@pytest.mark.parametrize("keep, per_epoch", [(False, [32, 32, 32]), (True, [32, 32, 32, 4])])
def test_reference_engine_samples_per_epoch(tmp_path, monkeypatch, keep, per_epoch):
    from bioprop.reference import ReferenceEngine

    sizes, result = _batch_sizes(monkeypatch, ReferenceEngine, tmp_path / "r.h5",
                                 QUICK + ["engine.name=reference",
                                          f"training.keep_partial_batch={str(keep).lower()}"])
    assert sizes == per_epoch * 2
    assert [row["n_samples"] for row in result.history] == [sum(per_epoch)] * 2


def test_every_sample_once_per_epoch_with_the_partial_batch():
    import numpy as np

    batches = epoch_batches(100, 32, np.random.default_rng(3), keep_partial=True)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(np.concatenate(batches)) == list(range(100))
    # the whole batches are those of a run without the option: the same draw, the same order
    whole = epoch_batches(100, 32, np.random.default_rng(3))
    assert all((a == b).all() for a, b in zip(whole, batches))


def test_brian2_engine_samples_per_epoch(tmp_path):
    """The Brian2 engine simulates exactly B trials: with B dividing the training set it takes
    the option (every sample, as without it); a remainder is refused by name."""
    keep = ["training.keep_partial_batch=true", "training.epochs=1", "data.n_test=16",
            "training.batch_size=16", "record.probe_size=0"] + BRIAN2
    result = bioprop.run(output=tmp_path / "b.h5", progress=False,
                         overrides=keep + ["data.n_train=64"])
    assert result.engine == "brian2" and result.history[0]["n_samples"] == 64
    with pytest.raises(SpecError, match="training.keep_partial_batch.*70 training samples of dataset 'digits' leave a batch of 6"):
        bioprop.run(output=tmp_path / "c.h5", progress=False, overrides=keep + ["data.n_train=70"])


def test_keep_partial_batch_rejects_a_number(tmp_path):
    with pytest.raises(SpecError, match="training.keep_partial_batch.*expected bool"):
        bioprop.run(output=tmp_path / "r.h5", progress=False,
                    overrides=QUICK + ["training.keep_partial_batch=2"])
