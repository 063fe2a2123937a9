"""rule.target_step_loss: the top target's step on each sample's loss, or on the batch's mean."""
import numpy as np
import pytest

import bioprop
from bioprop.engines import make_engine
from bioprop.runlog import open_run
from bioprop.spec import load_model, load_protocol
from bioprop.training import generators

REFERENCE = ["engine.name=reference", "data.n_train=64", "data.n_test=32",
             "training.batch_size=16", "training.epochs=1", "record.probe_size=0"]
BRIAN2 = ["data.n_train=32", "data.n_test=16", "training.batch_size=16", "training.epochs=1",
          "record.probe_size=0", 'phases.dt="10 ms"', 'phases.forward="10 ms"',
          'phases.feedback="10 ms"', 'phases.target="10 ms"']


def _engine(overrides):
    model, protocol = load_model(None, overrides), load_protocol(None, overrides)
    return make_engine(model, protocol, next(generators(protocol.training.seed)))


def test_batch_mean_top_target_by_hand():
    """ĥ = h − (η̂ / B)(softmax(h) − y) for the batch-mean loss, h − η̂(softmax(h) − y) per sample."""
    x = np.random.default_rng(0).random((8, 64))
    y = np.arange(8) % 10
    targets = {}
    for loss in ("sample", "batch_mean"):
        engine = _engine(REFERENCE + ["rule.target_step=0.5", f"rule.target_step_loss={loss}"])
        taught = engine.teach_batch(x, y)
        h = taught.h[-1]
        softmax = np.exp(h - h.max(axis=1, keepdims=True))
        softmax /= softmax.sum(axis=1, keepdims=True)
        step = 0.5 / 8 if loss == "batch_mean" else 0.5
        np.testing.assert_allclose(taught.teaching.target, h - step * (softmax - np.eye(10)[y]),
                                   rtol=1e-12, atol=1e-15)
        targets[loss] = taught.teaching.target - h
    np.testing.assert_allclose(targets["batch_mean"], targets["sample"] / 8, rtol=1e-12)


@pytest.mark.parametrize("overrides", [REFERENCE, BRIAN2], ids=["reference", "brian2"])
def test_batch_mean_step_of_b_times_eta_is_the_per_sample_step_of_eta(tmp_path, overrides):
    """η̂ = 0.3 · 16 on the batch-mean loss trains exactly as η̂ = 0.3 per sample (B = 16: a
    power of two, so the division is exact), in either engine; the run file says which."""
    weights = {}
    for name, extra in {"sample": ["rule.target_step=0.3"],
                        "batch_mean": ["rule.target_step=4.8",
                                       "rule.target_step_loss=batch_mean"]}.items():
        path = tmp_path / f"{name}.h5"
        bioprop.run(output=path, progress=False, overrides=overrides + extra)
        with open_run(path) as tree:
            weights[name] = tree["pathways"]["input_to_hidden1"]["weight"].values[-1]
            assert ('target_step_loss = "batch_mean"' in tree.attrs["model_toml"]) == (
                name == "batch_mean")
    np.testing.assert_array_equal(weights["sample"], weights["batch_mean"])
    # and the steps differ when the value is not scaled: the option changes what is trained
    path = tmp_path / "unscaled.h5"
    bioprop.run(output=path, progress=False,
                overrides=overrides + ["rule.target_step=0.3", "rule.target_step_loss=batch_mean"])
    with open_run(path) as tree:
        assert not np.allclose(tree["pathways"]["input_to_hidden1"]["weight"].values[-1],
                               weights["sample"])
