"""bioprop sweep: grid x seeds, one run file per point, Dask or local processes, reruns
that skip finished points, a killed sweep that loses none, and the table from the files."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bioprop
from bioprop.cli import main
from bioprop.spec import SpecError
from bioprop.sweep import Point, SweepError, expand, parse_grid
from bioprop.sweep.runfiles import recorded

# tiny runs in the reference engine: a point takes a fraction of a second once imported
TINY = ["engine.name=reference", "training.epochs=2", "data.n_train=256", "data.n_test=128",
        "layers.hidden1.size=16", "layers.hidden2.size=16", "record.weights_every=0"]
GRID = ["rule.target=dtp,bp"]
LONGER = ["engine.name=reference", "training.epochs=6"]  # about 1 s a point


def test_grid_times_seeds_and_point_names():
    points = expand(["rule.target=tp,dtp", "rule.target_step=0.3,1e-1"], seeds=2)
    assert len(points) == 8
    assert points[0] == Point((("rule.target", "tp"), ("rule.target_step", 0.3)), 1)
    assert [p.seed for p in points[:4]] == [1, 2, 1, 2]  # seeds fastest, first axis slowest
    assert points[0].name == "rule.target-tp_rule.target_step-0.3_seed1"
    assert points[3].name == "rule.target-tp_rule.target_step-0.1_seed2"  # 1e-1 read as TOML
    assert points[0].overrides[-1] == ("training.seed", 1)
    assert len({p.name for p in points}) == 8
    assert [p.seed for p in expand([], seeds=[3, 7])] == [3, 7]
    assert expand([], seeds=1)[0].name == "seed1"
    for bad in (0, [1, 1], [-1]):
        with pytest.raises(SpecError, match="seeds"):
            expand([], seeds=bad)
    # values that must be changed to be safe get a hash, so that names stay distinct
    spaced = expand(['phases.dt="10 ms","10_ms"'])
    assert all(" " not in p.name and "/" not in p.name for p in spaced)
    assert spaced[0].name != spaced[1].name and spaced[0].name == expand(['phases.dt="10 ms"'])[0].name
    assert parse_grid(["layers.hidden1.size=16,32", "rule.layer_norm=true,false"]) == [
        ("layers.hidden1.size", [16, 32]), ("rule.layer_norm", [True, False])]


@pytest.mark.parametrize("grid, message", [
    (["rul.target=tp"], "unknown table 'rul'.*Did you mean 'rule'"),
    (["rule.target=tp,"], "no empty value"),
    (["rule.target"], "expected key=v1,v2"),
    (["rule.target=tp", "rule.target=dtp"], "given twice"),
    (["rule.target=tp,tp"], "repeated"),
    (["training.seed=1,2"], "--seeds"),
])
def test_bad_grid_is_a_clear_error(grid, message):
    with pytest.raises(SpecError, match=message):
        expand(grid)


def test_cli_bad_grid_key_exits_2_with_one_message(tmp_path, capsys):
    code = main(["sweep", "--grid", "rule.targte=tp,dtp", "-o", str(tmp_path / "s"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "unknown key 'rule.targte'" in err and "Did you mean 'target'" in err
    assert not (tmp_path / "s").exists()  # nothing runs before every point is checked


@pytest.fixture(scope="module")
def cluster():
    """A Dask LocalCluster of one worker process with one thread (so points run in order)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def dask_sweep(tmp_path_factory, cluster):
    """A tiny sweep (2 rules x 2 seeds) run through the Dask cluster."""
    return bioprop.sweep(grid=GRID, seeds=2, overrides=TINY, output=tmp_path_factory.mktemp("sweep"),
                         scheduler=cluster.scheduler_address, progress=False)


@pytest.mark.slow
def test_dask_sweep_table_holds_the_run_files_values(dask_sweep):
    result = dask_sweep
    assert result.errors == {} and result.n_run == 4
    assert set(result.outcomes.values()) == {"ran"}
    table = pd.read_csv(result.table_path)
    assert result.table_path == result.directory / "sweep.csv"
    assert list(table["rule.target"]) == ["dtp", "dtp", "bp", "bp"]
    assert list(table["seed"]) == [1, 2, 1, 2] and set(table["status"]) == {"complete"}
    for row in table.itertuples():
        tree = bioprop.open_run(row.path)
        assert tree.attrs["status"] == "complete" and tree.attrs["seed"] == row.seed
        assert f'target = "{row[2]}"' in tree.attrs["model_toml"]
        assert row.epochs == 2
        assert row.test_accuracy == tree["test"]["accuracy"].values[-1]
        assert row.test_loss == tree["test"]["loss"].values[-1]
        assert np.isclose(row.training_time, tree["train"]["wall_time"].values.sum())
        tree.close()
    # seeds differ, so the points are distinct runs
    assert table["test_loss"].nunique() == 4


@pytest.mark.slow
def test_rerun_skips_finished_points(dask_sweep, capsys):
    folder = dask_sweep.directory
    files = sorted(folder.glob("*.h5"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    args = ["sweep", "-o", str(folder), "--seeds", "2", "-q", "--table", str(folder / "t.nc")]
    code = main(args + sum([["--grid", g] for g in GRID] + [["--set", s] for s in TINY], []))
    out = capsys.readouterr().out
    assert code == 0 and "4 (0 run now, 4 already finished, 0 failed)" in out
    assert "rule.target=dtp  test accuracy" in out and "% (n = 2)" in out
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    again = xr.open_dataset(folder / "t.nc", engine="h5netcdf")  # the same table, as NetCDF
    first = pd.read_csv(dask_sweep.table_path)
    np.testing.assert_array_equal(again["test_accuracy"].values, first["test_accuracy"].values)
    assert list(again["point"].values) == list(first["point"])
    again.close()
    # a point file of other settings is never skipped, nor overwritten
    with pytest.raises(SweepError, match="other settings"):
        bioprop.sweep(grid=GRID, seeds=2, overrides=TINY[:-1], output=folder, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == mtimes


@pytest.mark.slow
def test_killed_sweep_keeps_finished_points_and_rerun_completes(tmp_path):
    """SIGKILL a sweep (the process and its worker) in its second point, once the first is
    complete; the rerun leaves the first point's file alone, resumes the second from its
    checkpoint (to the figures of an uninterrupted run) and runs the third."""
    from bioprop.checkpoint import checkpoint_path

    folder = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "bioprop.cli", "sweep", "--seeds", "3", "--workers", "1", "-q",
           "-o", str(folder)] + sum([["--set", s] for s in LONGER], [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first, second = folder / "seed1.h5", folder / "seed2.h5"
    deadline = time.time() + 120
    try:
        while not checkpoint_path(second).exists():
            assert time.time() < deadline and proc.poll() is None, "point 2 never started"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _wait_until_gone(proc.pid)  # the pool worker too: until it is, it holds the file's lock
    statuses = [recorded(folder / f"seed{s}.h5").get("status") for s in (1, 2, 3)]
    assert statuses == ["complete", "running", None], statuses
    mtime = first.stat().st_mtime_ns

    result = bioprop.sweep(seeds=3, overrides=LONGER, output=folder, workers=1, progress=False)
    assert result.errors == {} and result.outcomes == {"seed2": "resumed", "seed3": "ran"}
    assert first.stat().st_mtime_ns == mtime
    assert list(result.table["status"]) == ["complete"] * 3
    assert list(result.table["epochs"]) == [6] * 3
    whole = bioprop.run(output=tmp_path / "whole.h5", progress=False,
                        overrides=LONGER + ["training.seed=2"])
    assert result.table["test_loss"][1] == whole.test_loss


@pytest.mark.slow
def test_killed_dask_worker_loses_no_finished_point(tmp_path, cluster):
    """SIGKILL the Dask worker process while it trains a point, once another point is complete:
    the sweep goes on (Dask restarts the worker and reschedules its tasks), the complete
    point's file is never written again and the killed point is resumed."""
    import distributed

    folder = tmp_path / "sweep"
    files = [folder / f"seed{s}.h5" for s in (1, 2, 3)]
    out = []
    sweeping = threading.Thread(target=lambda: out.append(bioprop.sweep(
        seeds=3, overrides=LONGER, output=folder, scheduler=cluster.scheduler_address,
        progress=False)))
    with distributed.Client(cluster) as client:
        sweeping.start()
        complete, running = _wait_for_complete_and_running(files)
        mtimes = {f.stem: f.stat().st_mtime_ns for f in complete}
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)
        sweeping.join(timeout=300)
    result = out[0]
    assert result.errors == {} and list(result.table["status"]) == ["complete"] * 3
    assert {f.stem: f.stat().st_mtime_ns for f in complete} == mtimes
    for f in running:
        assert result.outcomes[f.stem] == "resumed", result.outcomes


def _wait_for_complete_and_running(files, timeout=120):
    """Poll until some of `files` are complete and another has a checkpoint, in training
    (a file open for writing is locked: it reads as ``unreadable`` from here)."""
    from bioprop.checkpoint import checkpoint_path, load_checkpoint

    deadline = time.time() + timeout
    while time.time() < deadline:
        status = {f: recorded(f).get("status") for f in files}
        complete = [f for f in files if status[f] == "complete"]
        running = [f for f in files if status[f] != "complete" and checkpoint_path(f).exists()
                   and load_checkpoint(f)[1]["epoch"] <= 2]  # with epochs to go: no race
        if complete and running:
            return complete, running
        time.sleep(0.02)
    pytest.fail(f"no point was complete while another ran: {status}")


def _wait_until_gone(group, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    pytest.fail(f"process group {group} still alive {timeout} s after SIGKILL")


def test_a_file_from_before_a_key_existed_still_matches_its_point():
    """Run files record the resolved TOML; a key added to the spec later (with its default)
    must not make a finished point look like one run with other settings."""
    from bioprop.spec import load_model, to_toml
    from bioprop.sweep.api import _normalised

    current = to_toml(load_model())
    older = "\n".join(line for line in current.splitlines()
                      if not line.startswith("plasticity")) + "\n"
    assert older != current and _normalised("model_toml", older) == current
    other = to_toml(load_model(overrides=["rule.target=tp"]))
    assert _normalised("model_toml", other) != current
