"""data.validation: a seeded validation set held out of the training samples, scored every epoch."""
import numpy as np
import pytest

import bioprop
from bioprop.cli import main
from bioprop.datasets import hold_out, load_dataset, subset
from bioprop.errors import SpecError
from bioprop.rules import LOSSES
from bioprop.runlog import open_run

REFERENCE = ["engine.name=reference", "training.epochs=2", "data.n_train=300", "data.n_test=100",
             "training.batch_size=25", "data.validation=60"]


def _run(path, extra=()):
    return bioprop.run(output=path, progress=False, overrides=REFERENCE + list(extra))


def test_held_out_samples_never_reach_a_training_batch(tmp_path, monkeypatch):
    from bioprop.reference import ReferenceEngine

    seen = []
    original = ReferenceEngine.train_batch

    def spy(self, x, y, *args, **kwargs):
        seen.append(x.copy())
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(ReferenceEngine, "train_batch", spy)
    _run(tmp_path / "run.h5")
    with open_run(tmp_path / "run.h5") as tree:
        held = tree["split"]["validation_index"].values
    # the digits' training images are all different: each row names its own sample
    first = subset(load_dataset("digits"), 300).x_train
    where = {row.tobytes(): i for i, row in enumerate(first)}
    trained = {where[row.tobytes()] for batch in seen for row in batch}
    assert len(held) == 60 and len(set(held)) == 60
    assert not trained & set(held.tolist())
    # every other sample is trained on (12 whole batches of 25 = all 240, two epochs)
    assert trained == set(range(300)) - set(held.tolist())


def test_same_validation_seed_same_split_whatever_the_training_seed(tmp_path):
    indices = {}
    for name, extra in {"a": ["training.seed=1"], "b": ["training.seed=2"],
                        "c": ["training.seed=1", "data.validation_seed=7"]}.items():
        _run(tmp_path / f"{name}.h5", extra + ["training.epochs=1"])
        with open_run(tmp_path / f"{name}.h5") as tree:
            indices[name] = tree["split"]["validation_index"].values
            assert 'validation = 60' in tree.attrs["protocol_toml"]
    assert np.array_equal(indices["a"], indices["b"])
    assert not np.array_equal(indices["a"], indices["c"])
    data = subset(load_dataset("digits"), 300)
    assert np.array_equal(hold_out(data, 60, 7).validation_index, indices["c"])


def test_validation_figures_equal_an_independent_evaluation(tmp_path):
    from bioprop.engines import make_engine
    from bioprop.spec import load_model, load_protocol
    from bioprop.training import generators, train

    model, protocol = load_model(None, REFERENCE), load_protocol(None, REFERENCE)
    init_rng, rng = generators(protocol.training.seed)
    engine = make_engine(model, protocol, init_rng)
    result = train(model, protocol, engine=engine, rng=rng, output=tmp_path / "run.h5",
                   progress=False)
    data = hold_out(subset(load_dataset("digits"), 300), 60, 0)
    # by hand: the forward pass of the final weights, softmax cross-entropy, arg max
    out = engine.model.forward_pass(data.x_validation)[1][-1]
    targets = np.eye(10)[data.y_validation]
    loss, _ = LOSSES["softmax_cross_entropy"](out, targets)
    last = result.history[-1]
    assert last["validation_loss"] == pytest.approx(float(loss.mean()), rel=1e-12)
    assert last["validation_accuracy"] == pytest.approx(
        float((out.argmax(axis=1) == data.y_validation).mean()))
    assert last["validation_loss"] != pytest.approx(last["test_loss"])
    with open_run(tmp_path / "run.h5") as tree:
        recorded = tree["validation"]
        assert list(recorded["epoch"].values) == [1, 2]
        assert float(recorded["loss"].values[-1]) == last["validation_loss"]
        assert float(recorded["accuracy"].values[-1]) == last["validation_accuracy"]


def test_run_without_validation_writes_none(tmp_path):
    result = _run(tmp_path / "run.h5", ["data.validation=0", "training.epochs=1"])
    assert "validation_loss" not in result.history[-1]
    with open_run(tmp_path / "run.h5") as tree:
        assert "validation" not in tree.children and "split" not in tree.children
        assert "validation" not in tree.attrs["protocol_toml"]


def test_summary_and_learning_curves_show_validation(tmp_path, capsys):
    from bioprop.analysis import figures

    main(["run", "-o", str(tmp_path / "cli.h5"), "-q"] + sum([["--set", o] for o in REFERENCE],
                                                             []))
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "validation loss" in out
    with open_run(tmp_path / "cli.h5") as tree:
        fig = figures.learning_curves({"run": tree})
        labels = [line.get_label() for line in fig.axes[0].lines]
    assert "run (validation)" in labels


@pytest.mark.parametrize("held, expected", [(300, "data.validation"), (-1, "data.validation")])
def test_a_validation_set_that_leaves_nothing_is_named(tmp_path, held, expected):
    with pytest.raises(SpecError, match=expected):
        _run(tmp_path / "run.h5", [f"data.validation={held}"])


def test_brian2_engine_scores_the_validation_set(tmp_path):
    quick = ["training.epochs=1", "data.n_train=64", "data.n_test=32", "training.batch_size=16",
             "data.validation=16", 'phases.dt="10 ms"', 'phases.forward="10 ms"',
             'phases.feedback="10 ms"', 'phases.target="10 ms"', "record.probe_size=0"]
    result = bioprop.run(output=tmp_path / "b.h5", progress=False, overrides=quick)
    assert result.engine == "brian2"
    assert 0 <= result.history[-1]["validation_accuracy"] <= 1
    assert result.history[-1]["n_samples"] == 48


def test_report_table_has_a_validation_column(tmp_path):
    from bioprop.analysis.report import write_report

    _run(tmp_path / "held.h5", ["training.epochs=1"])
    _run(tmp_path / "plain.h5", ["training.epochs=1", "data.validation=0"])
    text = write_report([tmp_path / "held.h5", tmp_path / "plain.h5"], tmp_path / "r").read_text()
    header, rule, held, plain = [line for line in text.splitlines() if line.startswith("|")]
    assert "| validation accuracy |" in header and header.count("|") == rule.count("|")
    with open_run(tmp_path / "held.h5") as tree:
        accuracy = 100 * float(tree["validation"]["accuracy"].values[-1])
    assert f"| {accuracy:.2f} % |" in held and held.count("|") == header.count("|")
    assert plain.split("|")[-3].strip() == "–"
