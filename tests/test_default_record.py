"""What the default run records: the probe's activity and every pathway's weights at the
first and last epoch, the probe trials' inputs, labels and phases; and the README's
quickstart reads such a file (tests/test_doc_blocks.py runs every docs block)."""
import re
from pathlib import Path

import numpy as np
import pytest

import bioprop
from bioprop.datasets import load_dataset

SHORT = ["data.n_train=64", "data.n_test=32", "training.epochs=3"]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default model and protocol (Brian2 engine, default record table), on less data."""
    path = tmp_path_factory.mktemp("default") / "run.h5"
    bioprop.run(output=path, progress=False, overrides=SHORT)
    return path


def test_activity_and_weights_at_the_first_and_last_epoch(default_run):
    tree = bioprop.open_run(default_run)
    for name in ("hidden1", "hidden2", "output"):
        assert list(tree["layers"][name]["epoch"].values) == [0, 3], name
        assert tree["layers"][name]["rate"].dims == ("epoch", "trial", "time", "neuron")
    assert set(tree["pathways"].children) == {"input_to_hidden1", "hidden1_to_hidden2",
                                              "hidden2_to_output", "hidden2_to_hidden1",
                                              "output_to_hidden2"}
    for name in tree["pathways"].children:  # weights_every = 10 adds nothing in 3 epochs
        assert list(tree["pathways"][name]["epoch"].values) == [0, 3], name
    tree.close()
    arrays, _ = bioprop.checkpoint.load_checkpoint(default_run)  # the final weights
    tree = bioprop.open_run(default_run)
    np.testing.assert_array_equal(tree["pathways"]["hidden1_to_hidden2"]["weight"].sel(epoch=3).values,
                                  arrays["W_2"])


def test_the_probe_trials_inputs_labels_and_phases_are_in_the_file(default_run):
    data = load_dataset("digits", n_train=64)
    probe = bioprop.open_run(default_run)["probe"]
    assert probe["input"].dims == ("trial", "input_neuron")
    np.testing.assert_array_equal(probe["input"].values, data.x_train[:32])
    np.testing.assert_array_equal(probe["label"].values, data.y_train[:32])
    assert "label" in probe["input"].coords  # so .groupby("label") needs nothing else
    # the default protocol's phases, exact: forward 125 ms, noise 2 x 75, settle 75, target 100
    phases = bioprop.open_run(default_run)["phases"]
    assert list(phases["name"].values) == ["forward", "noise_a", "noise_b", "settle", "target"]
    np.testing.assert_array_equal(phases["start"].values, [0, 125, 200, 275, 350])
    np.testing.assert_array_equal(phases["start"] + phases["duration"], [125, 200, 275, 350, 450])
    assert phases["start"].attrs["units"] == "ms"


def test_no_first_and_last_records_as_before(tmp_path):
    path = tmp_path / "plain.h5"
    bioprop.run(output=path, progress=False, overrides=SHORT + [
        "engine.name=reference", "record.first_and_last=false"])
    tree = bioprop.open_run(path)
    assert "layers" not in tree.children and "probe" not in tree.children
    assert list(tree["pathways"]["input_to_hidden1"]["epoch"].values) == [0]  # weights_every = 10


def test_the_readme_quickstart_reads_a_default_run(default_run, tmp_path, monkeypatch):
    """The README's quickstart Python block runs on a default run file where the quickstart
    writes it, and reads what it says it reads."""
    import shutil

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    block, = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    (tmp_path / "runs").mkdir()
    shutil.copy(default_run, tmp_path / "runs" / "dtp-digits-seed1.h5")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md, Quickstart", "exec"), namespace)
    assert namespace["rate"].dims == ("epoch", "trial", "time", "neuron")
    assert namespace["tree"]["test"]["accuracy"].sizes["epoch"] == 3
