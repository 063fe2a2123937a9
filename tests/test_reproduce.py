"""Reproducing a table's runs: the points of its sweep commands, which are finished, the
expected time from the committed run files, --into another folder, --dry-run."""
import shlex

import h5py
import numpy as np
import pytest

from bioprop.analysis.reproduce import describe, plan, retarget, run
from bioprop.spec import SpecError

TINY = ("--set engine.name=reference --set training.epochs=2 --set data.n_train=200 "
        "--set data.n_test=100 --set layers.hidden1.size=16 --set layers.hidden2.size=16 "
        "--set record.weights_every=0")


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A results folder with one finished sweep of two points, as a table script's is."""
    monkeypatch.chdir(tmp_path)
    command = f"bioprop sweep --workers 1 -q --grid rule.target=dtp,bp {TINY} -o results/tiny"
    assert run([command], tmp_path / "results") == 0
    return command


def test_retarget_moves_only_the_folders_under_results():
    command = "bioprop sweep --grid a.b=1,2 -o results/x --table results/x/t.csv --set c.d=results/y"
    moved = shlex.split(retarget(command, "results", "fresh"))
    assert moved[moved.index("-o") + 1] == "fresh/x"
    assert moved[moved.index("--table") + 1] == "fresh/x/t.csv"
    assert "c.d=results/y" in moved  # a --set value is never rewritten
    assert retarget(command, "results", None) == command
    assert shlex.split(retarget("bioprop sweep -o runs/x", "results", "fresh"))[-1] == "runs/x"


def test_plan_finds_finished_points_and_expects_their_recorded_time(committed, tmp_path):
    from pathlib import Path

    here = plan([committed], Path("results"))
    assert [p.finished for p in here] == [True, True]
    fresh = plan([committed], Path("results"), Path("fresh"))
    assert [p.finished for p in fresh] == [False, False]
    assert [p.path for p in fresh] == [Path("fresh/tiny/rule.target-dtp_seed1.h5"),
                                       Path("fresh/tiny/rule.target-bp_seed1.h5")]
    for point, old in zip(fresh, here):
        with h5py.File(old.path, "r") as f:
            assert point.expected_seconds == float(np.sum(f["train/wall_time"][:]))
    total = sum(p.expected_seconds for p in fresh)
    assert describe(fresh)[-1].startswith("2 of 2 points to train (0 finished)")
    assert f"{total:.1f} s" in describe(fresh)[-1]
    assert describe(here) == ["0 of 2 points to train (2 finished); expected run time on "
                              "this project's machine: 0.0 s"]


def test_dry_run_trains_nothing_and_run_into_trains_there(committed, capsys):
    from pathlib import Path

    assert run([committed], Path("results"), Path("fresh"), dry_run=True) == 0
    assert "2 of 2 points to train" in capsys.readouterr().out
    assert not Path("fresh").exists()
    assert run([committed], Path("results"), Path("fresh")) == 0
    assert all(p.finished for p in plan([committed], Path("results"), Path("fresh")))


def test_a_command_the_cli_refuses_is_refused_before_anything_runs(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="rul"):
        run(["bioprop sweep --grid rul.target=dtp -o results/x"], Path("results"))
    assert not Path("results").exists()


def test_a_point_not_yet_committed_is_expected_to_take_its_commands_median(committed):
    from pathlib import Path

    more = committed.replace("--grid rule.target=dtp,bp", "--grid rule.target=dtp,bp,fa")
    planned = plan([more], Path("results"))
    assert [p.finished for p in planned] == [True, True, False]
    known = sorted(p.expected_seconds for p in planned[:2])
    assert planned[2].expected_seconds == pytest.approx((known[0] + known[1]) / 2)


def test_a_table_scripts_command_line_prints_lists_or_trains(committed, capsys):
    from pathlib import Path

    from bioprop.analysis.reproduce import main

    shown, built = [], []

    def commands():
        built.append(True)
        return [committed]

    def options(parser):
        parser.add_argument("--figure", type=Path)

    # no --run: the table is shown, from --results, and the commands are never built
    assert main("t", commands, shown.append, ["--results", "elsewhere", "--figure", "f.png"],
                options) == 0
    assert shown[0].results == Path("elsewhere") and shown[0].figure == Path("f.png")
    assert not built
    # --dry-run lists the points and trains nothing; --run --into trains them there
    assert main("t", commands, shown.append, ["--dry-run", "--into", "fresh"]) == 0
    assert "2 of 2 points to train" in capsys.readouterr().out and not Path("fresh").exists()
    assert main("t", commands, shown.append, ["--run", "--into", "fresh"]) == 0
    assert all(p.finished for p in plan([committed], Path("results"), Path("fresh")))
    assert len(shown) == 1
    # the status of the table's own printer is passed on
    assert main("t", commands, lambda args: 3, []) == 3
    with pytest.raises(SystemExit):
        main("t", commands, shown.append, ["--figure", "f.png"])  # not an option of this script
