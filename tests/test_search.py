"""bioprop sweep --sample: the space and its draws, successive halving on validation
error read from the run files, the chosen configuration's seeds, reruns, and the CLI."""
import math

import h5py
import numpy as np
import pandas as pd
import pytest

from bioprop.cli import check, main
from bioprop.spec import SpecError
from bioprop.sweep.halving import Trial, checked_search, plan, rank, search
from bioprop.sweep.space import parse_space, sample_configs

# tiny runs in the reference engine, with a 100-sample validation split
TINY = ["engine.name=reference", "data.n_train=300", "data.n_test=100", "data.validation=100",
        "layers.hidden1.size=16", "layers.hidden2.size=16", "record.weights_every=0",
        "rule.target=bp"]
# learning rates from useless (1e-6) to good (1e-2): halving has something to tell apart
SPACE = ["optimizer.forward.lr=log-uniform:1e-6:1e-2"]


def test_draws_are_seeded_rounded_and_in_range():
    space = parse_space(["optimizer.forward.lr=log-uniform:1e-4:1e-2", "rule.noise=uniform:0:1",
                         "rule.target=choice:dtp,tp"])
    a, b = sample_configs(space, 50, seed=3), sample_configs(space, 50, seed=3)
    assert a == b and a != sample_configs(space, 50, seed=4)
    lrs = [dict(c)["optimizer.forward.lr"] for c in a]
    assert all(1e-4 <= lr <= 1e-2 and float(f"{lr:.3g}") == lr for lr in lrs)
    # log-uniform: about half the draws below the geometric middle, 1e-3
    assert 15 < sum(lr < 1e-3 for lr in lrs) < 35
    assert {dict(c)["rule.target"] for c in a} == {"dtp", "tp"}
    assert len({repr(c) for c in a}) == 50


@pytest.mark.parametrize("items, message", [
    ([], "at least one --sample"),
    (["optimizer.forward.lr"], "expected KEY=DIST"),
    (["optimizer.forward.lr=normal:0:1"], "unknown distribution 'normal'"),
    (["optimizer.forward.lr=log-uniform:0:1"], "above 0"),
    (["optimizer.forward.lr=uniform:1:0.5"], "LOW must be less than HIGH"),
    (["optimizer.forward.lr=uniform:a:b"], "expected uniform:LOW:HIGH"),
    (["rule.target=choice:dtp"], "two or more values"),
    (["training.epochs=uniform:1:5"], "the search sets it"),
    (["rul.noise=uniform:0:1"], "unknown table 'rul'"),
    (["rule.noise=uniform:0:1", "rule.noise=uniform:0:2"], "given twice"),
])
def test_bad_space_is_one_clear_error(items, message):
    with pytest.raises(SpecError, match=message):
        parse_space(items)


def test_a_small_choice_cannot_give_more_configurations():
    with pytest.raises(SpecError, match="only 2 different"):
        sample_configs(parse_space(["rule.target=choice:dtp,tp"]), 3, seed=1)


def test_plan_keeps_the_ceiling_of_one_in_eta():
    assert plan(20, [2, 8, 30], 4) == [20, 5, 2]     # 20/4 = 5, ⌈5/4⌉ = 2
    assert plan(20, [2, 8, 30], 3) == [20, 7, 3]     # ⌈20/3⌉ = 7, ⌈7/3⌉ = 3
    assert plan(5, [1], 3) == [5]
    for rungs, eta in (([2, 2], 3), ([3, 1], 3), ([0, 2], 3), ([1, 2], 1)):
        with pytest.raises(SpecError):
            plan(4, rungs, eta)


def test_rank_puts_failed_and_diverged_runs_last_and_breaks_ties_by_draw():
    table = pd.DataFrame({
        "config": [0, 1, 2, 3, 4, 5],
        "status": ["complete", "diverged", "complete", "complete", "missing", "complete"],
        "validation_accuracy": [0.90, 0.99, 0.95, 0.90, np.nan, np.nan],
        "validation_loss": [0.3, 0.1, 0.2, 0.3, np.nan, 0.05]})
    # config 5 has no accuracy (regression): its loss, 0.05, is its error
    assert rank(table, 6)[:4] == [5, 2, 0, 3]
    assert set(rank(table, 6)[4:]) == {1, 4}
    assert rank(table, 2) == [5, 2]


def _last(path, group):
    with h5py.File(path, "r") as f:
        return f[f"{group}/accuracy"][-1], len(f[f"{group}/epoch"])


@pytest.fixture(scope="module")
def small_search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    result = search(space=SPACE, configs=4, rungs=[1, 3], eta=2, seeds=2, overrides=TINY,
                    output=out, workers=2, progress=False)
    return result, out


def test_halving_stops_the_worse_configurations_on_validation_error(small_search):
    result, out = small_search
    assert not result.errors
    first = {c: _last(out / f"config{c:02d}_epochs1_seed1.h5", "validation")[0]
             for c in range(4)}
    # the two best on validation error, read from the files, and only they, go on
    kept = sorted(first, key=lambda c: (1 - first[c], c))[:2]
    assert sorted(p.name for p in out.glob("config*_epochs3_seed1.h5")) == sorted(
        f"config{c:02d}_epochs3_seed1.h5" for c in kept)
    second = {c: _last(out / f"config{c:02d}_epochs3_seed1.h5", "validation")[0] for c in kept}
    best = min(kept, key=lambda c: (1 - second[c], c))
    assert dict(result.chosen) == dict(Trial(result.chosen, 1, best, 3).settings)
    assert result.chosen == sample_configs(parse_space(SPACE), 4, 1)[best]
    # the final seeds: seed 1 is the last rung's run, seed 2 trained for the last rung's epochs
    assert _last(out / f"config{best:02d}_epochs3_seed2.h5", "test")[1] == 3
    assert len(list(out.glob("*.h5"))) == 4 + 2 + 1


def test_search_table_equals_what_the_run_files_hold(small_search):
    result, out = small_search
    table = pd.read_csv(out / "search.csv")
    assert len(table) == 7
    for _, row in table.iterrows():
        test, epochs = _last(row.path, "test")
        assert (row.test_accuracy, row.epochs) == (test, epochs)
        assert row.validation_accuracy == _last(row.path, "validation")[0]
        with h5py.File(row.path, "r") as f:
            assert f"lr = {row['optimizer.forward.lr']}" in f.attrs["model_toml"]
    assert set(table.loc[table.chosen, "seed"]) == {1, 2}
    assert table.loc[table.rung == "final", "seed"].tolist() == [2]


def test_a_rung_starts_from_scratch_so_its_first_epochs_are_the_rung_before(small_search):
    _, out = small_search
    longer = sorted(out.glob("config*_epochs3_seed1.h5"))[0]
    shorter = longer.with_name(longer.name.replace("epochs3", "epochs1"))
    with h5py.File(longer, "r") as a, h5py.File(shorter, "r") as b:
        assert a["validation/accuracy"][0] == b["validation/accuracy"][0]
        assert a["train/loss"][0] == b["train/loss"][0]


def test_a_search_table_can_be_netcdf(small_search, tmp_path):
    import xarray as xr

    from bioprop.sweep import write_table

    result, _ = small_search
    path = write_table(result.table, tmp_path / "search.nc")
    with xr.open_dataset(path) as table:
        assert list(table["rung"].values) == list(result.table["rung"])
        assert table.sizes["point"] == 7


def test_a_rerun_trains_nothing_and_gives_the_same_table(small_search):
    result, out = small_search
    again = search(space=SPACE, configs=4, rungs=[1, 3], eta=2, seeds=2, overrides=TINY,
                   output=out, workers=2, progress=False)
    assert again.outcomes == {} and again.chosen == result.chosen
    pd.testing.assert_frame_equal(again.table, result.table)


def test_another_search_in_the_same_folder_is_refused(small_search):
    from bioprop.sweep import SweepError

    _, out = small_search
    with pytest.raises(SweepError, match="other settings"):
        search(space=SPACE, configs=4, rungs=[1, 3], eta=2, search_seed=9, overrides=TINY,
               output=out, progress=False)


@pytest.mark.parametrize("overrides, message", [
    ([o for o in TINY if not o.startswith("data.validation")], "validation split"),
    (TINY + ["optimizer.forward.lr=0.1"], "also set by the search"),
    (TINY + ["training.epochs=3"], "also set by the search"),
    (TINY + ["training.seed=3"], "training.seed"),
])
def test_a_search_that_cannot_be_run_as_asked_is_refused_before_it_runs(tmp_path, overrides,
                                                                      message):
    with pytest.raises(SpecError, match=message):
        search(space=SPACE, configs=2, rungs=[1], overrides=overrides, output=tmp_path,
               progress=False)
    assert not list(tmp_path.iterdir())


def test_a_search_of_one_seed_has_no_final_runs_besides_its_winner(tmp_path):
    result = search(space=SPACE, configs=2, rungs=[1], overrides=TINY, output=tmp_path,
                    workers=1, progress=False)
    assert len(result.table) == 2 and "final" not in set(result.table.rung)
    assert result.table.chosen.sum() == 1


def test_default_rung_is_the_protocols_epochs():
    checked = checked_search(space=SPACE, configs=3, overrides=TINY)
    assert checked.rungs == [checked.pairs[0][1].training.epochs]
    assert checked.counts == [3] and checked.epochs == 3 * checked.rungs[0]


def test_cli_dry_run_lists_configurations_and_rungs_and_runs_nothing(tmp_path, capsys):
    argv = ["sweep", "--sample", SPACE[0], "--configs", "5", "--rungs", "1,2,4", "--eta", "2",
            "--seeds", "3", "-o", str(tmp_path / "s")] + sum((["--set", o] for o in TINY), [])
    assert main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("config0") == 5
    assert "rung 0: 5 configurations × 1 epochs" in out and "rung 2: 2 configurations" in out
    assert "epochs in all: 27" in out  # 5·1 + 3·2 + 2·4, and 2 more seeds · 4
    assert not (tmp_path / "s").exists()
    assert check(argv).sample == SPACE
    assert main(argv + ["--grid", "rule.target=dtp,bp"]) == 2
    assert "not both" in capsys.readouterr().err


def test_grid_dry_run_lists_its_points(capsys):
    assert main(["sweep", "--grid", "rule.target=dtp,bp", "--seeds", "2", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "rule.target-dtp_seed1: rule.target=dtp seed 1", "rule.target-dtp_seed2: rule.target=dtp seed 2",
        "rule.target-bp_seed1: rule.target=bp seed 1", "rule.target-bp_seed2: rule.target=bp seed 2"]


@pytest.mark.slow
def test_search_on_a_dask_local_cluster_gives_the_local_processes_result(small_search, tmp_path):
    result, _ = small_search
    on_dask = search(space=SPACE, configs=4, rungs=[1, 3], eta=2, seeds=2, overrides=TINY,
                     output=tmp_path, workers=2, scheduler="local", progress=False)
    assert on_dask.chosen == result.chosen
    columns = ["point", "config", "status", "epochs", "test_accuracy", "validation_accuracy"]
    pd.testing.assert_frame_equal(on_dask.table[columns], result.table[columns])
    assert not math.isnan(on_dask.table["validation_accuracy"].iloc[0])


def test_search_table_replays_the_search_from_its_files_alone(small_search):
    from bioprop.sweep.halving import search_table

    result, out = small_search
    checked = checked_search(space=SPACE, configs=4, rungs=[1, 3], eta=2, seeds=2,
                             overrides=TINY)
    table, chosen = search_table(checked, out)
    assert chosen == result.chosen
    pd.testing.assert_frame_equal(table, result.table)
    # a file that is gone is a missing row, never a silently shorter table
    (out / "config00_epochs1_seed1.h5").rename(out / "moved.h5")
    try:
        table, _ = search_table(checked, out)
        assert table.loc[table.point == "config00_epochs1_seed1", "status"].item() == "missing"
    finally:
        (out / "moved.h5").rename(out / "config00_epochs1_seed1.h5")
