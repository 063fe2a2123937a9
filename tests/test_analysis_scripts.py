"""The scripts in analysis/ that make the README's tables read run files correctly."""
import runpy
from pathlib import Path

import numpy as np

import bioprop

SCRIPTS = Path(__file__).resolve().parent.parent / "analysis"
QUICK = ["training.epochs=1", "data.n_train=64", "data.n_test=32", "engine.name=reference"]


def test_digits_table_summarises_run_files(tmp_path):
    script = runpy.run_path(str(SCRIPTS / "digits_table.py"))
    paths = {}
    for seed in (1, 2):
        path = tmp_path / f"s{seed}.h5"
        bioprop.run(output=path, progress=False, overrides=QUICK + [f"training.seed={seed}"])
        paths.setdefault("DTP (reference engine)", []).append(path)
    accuracies = [float(bioprop.open_run(p)["eval"]["accuracy"].values[-1]) for p in paths[
        "DTP (reference engine)"]]
    table = script["summarise"](paths)
    assert f"{100 * np.mean(accuracies):.2f} ± {100 * np.std(accuracies):.2f} % (n = 2)" in table


def test_rules_table_covers_every_rule_and_reads_a_run(tmp_path):
    script = runpy.run_path(str(SCRIPTS / "rules_table.py"))
    from bioprop.rules import TARGET_RULES

    assert set(script["INVERSE_RULES"]) | set(script["DIFFERENCE_RULES"]) == set(TARGET_RULES)
    for rule in TARGET_RULES:
        assert (script["MODELS"] / f"{rule}.toml").is_file(), rule
    path = tmp_path / "fa-dtp-reference-seed1.h5"
    bioprop.run(script["MODELS"] / "fa.toml", None, output=path, progress=False, overrides=QUICK)
    accuracy = script["_run"](tmp_path, "fa", "dtp", 1, "reference")  # reuses the file
    assert accuracy == float(bioprop.open_run(path)["eval"]["accuracy"].values[-1])
    assert script["_cell"]([0.5, 0.7]) == "60.0 ± 10.0"


def test_spiking_table_reads_accuracy_and_firing_rates(tmp_path):
    """A LIF run's row: its architecture and settings, its accuracy, and its layer's mean
    firing rate in Hz, equal to the recorded rates times 1/refractory."""
    script = runpy.run_path(str(SCRIPTS / "spiking_table.py"))
    path = tmp_path / "lif.h5"
    bioprop.run(SCRIPTS.parent / "models" / "lif.toml", SCRIPTS.parent / "protocols" / "spiking.toml",
                output=path, progress=False, overrides=QUICK + ["record.activity_every=1"])
    tree = bioprop.open_run(path)
    hz = float(tree["layers"]["hidden1"]["rate"].isel(epoch=-1).mean()) / 5e-3  # t_ref = 5 ms
    row = script["row"](path)
    assert row.startswith("| 64-128 lif-10 | θ = 0.5, t_ref = 5 ms; target: trace")
    assert f"{100 * float(tree['eval']['accuracy'].values[-1]):.2f} %" in row
    assert f"hidden1 {hz:.0f} Hz" in row
