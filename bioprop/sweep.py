"""Sweeps: one model and protocol over a grid of settings and seeds (``bioprop sweep``).

A sweep is the cartesian product of its grid axes (``--grid key=v1,v2``, values read
as ``--set`` reads them) times its seeds. Every point trains with
:func:`bioprop.training.run` and writes its own run file, named after the point,
into one folder; a table with one row per point is then read back from those files
alone (:func:`gather`), so it can be remade at any time.

Points run in local processes (:class:`concurrent.futures.ProcessPoolExecutor`) or
on a Dask distributed cluster (``scheduler=ADDRESS``). Because each point writes its
file itself, a worker that dies loses only the point it was running, and a rerun of
the same sweep skips every finished point:

* ``complete`` and ``diverged`` files are finished (a divergence is deterministic,
  so running it again would only diverge again) and are never touched;
* any other existing file (a point whose worker was killed, or interrupted) is
  *resumed* from its checkpoint, which gives the figures of an uninterrupted run
  bit for bit (see ``bioprop run --resume``); a file with no usable checkpoint is
  started again.

An existing file recorded with other settings (another ``--set``) is an error, never
skipped and never overwritten: the table must describe the sweep that was asked for.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError, suggest
from .overrides import parse_override
from .spec import MODEL_TABLES, PROTOCOL_TABLES

__all__ = ["Point", "SweepError", "SweepResult", "parse_grid", "expand", "sweep", "run_point",
           "gather", "summarise", "FINISHED"]

#: run-file statuses of a point that is done; anything else is run (or resumed) again
FINISHED = ("complete", "diverged")

_TABLES = sorted(MODEL_TABLES | PROTOCOL_TABLES)
# characters kept as they are in a point's file name; others become "_"
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]")
_MAX_NAME = 180


class SweepError(ValueError):
    """A sweep that cannot be run as asked (its folder holds points of another sweep)."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the grid settings and the seed."""

    #: ((key, value), ...) in the grid's order; values as parsed from ``--grid``
    settings: tuple
    seed: int

    @property
    def overrides(self) -> list:
        """The point's ``--set`` overrides, the seed included, as (key, value) pairs."""
        return list(self.settings) + [("training.seed", self.seed)]

    @property
    def name(self) -> str:
        """A stable, filesystem-safe file stem, e.g. ``rule.target-tp_seed3``.

        Values that had to be changed to be safe (``"10 ms"`` → ``10_ms``), and names
        longer than 180 characters, get a hash of the exact settings, so that two
        points never share a name.
        """
        texts = [f"{key}-{_text(value)}" for key, value in self.settings] + [f"seed{self.seed}"]
        readable = "_".join(texts)
        safe = _UNSAFE.sub("_", readable)
        if safe == readable and len(safe) <= _MAX_NAME:
            return safe
        digest = hashlib.sha1(repr(self.overrides).encode()).hexdigest()[:10]
        return f"{safe[:_MAX_NAME]}_{digest}"

    def label(self) -> str:
        """The settings as ``key=value`` text, for summaries and messages."""
        return " ".join(f"{key}={_text(value)}" for key, value in self.settings) or "(no grid)"


def _text(value) -> str:
    if isinstance(value, bool):  # as TOML writes it, which is how --set reads it back
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- the grid
def check_key(key: str, option: str):
    """A SpecError for a key that names no table of a model or protocol file.

    The loaders leave such keys alone (each file takes only its own tables), so a
    misspelt table would otherwise be silently ignored by every point.
    """
    table = key.split(".")[0]
    if table not in _TABLES:
        raise SpecError(f"{option} {key}: unknown table {table!r}. Expected one of: "
                        f"{', '.join(_TABLES)}.{suggest(table, _TABLES)}")


def parse_grid(items) -> list[tuple[str, list]]:
    """``["rule.target=tp,dtp", ...]`` → ``[("rule.target", ["tp", "dtp"]), ...]``.

    Each value is read as ``--set`` reads one (TOML, else a string). A grid key may
    appear once, must name a table of the model or protocol, and may not be
    ``training.seed`` (the seeds are their own axis).

    Raises
    ------
    SpecError
        An item without ``=``, an empty value, a repeated key or value, an unknown table.
    """
    axes: dict[str, list] = {}
    for item in items:
        key, _, raw = (s.strip() for s in item.partition("="))
        texts = [t.strip() for t in raw.split(",")]
        if not key or "=" not in item or "" in texts:
            raise SpecError(f"--grid {item!r}: expected key=v1,v2,... with no empty value, "
                            f"e.g. --grid rule.target=tp,dtp")
        if key == "training.seed":
            raise SpecError("--grid training.seed: give the seeds with --seeds N or --seed-list")
        if key in axes:
            raise SpecError(f"--grid {key}: given twice; list all its values in one --grid")
        check_key(key, "--grid")
        values = [parse_override(f"{key}={t}")[1] for t in texts]
        if len({_text(v) for v in values}) < len(values):
            raise SpecError(f"--grid {item!r}: a value is repeated")
        axes[key] = values
    return list(axes.items())


def seed_values(seeds) -> list[int]:
    """``N`` → seeds 1..N; a sequence → those seeds."""
    values = list(range(1, seeds + 1)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not values or len(set(values)) < len(values) or min(values) < 0:
        raise SpecError(f"seeds: expected at least one seed, none negative and no repeats, "
                        f"got {seeds!r}")
    return values


def expand(grid, seeds=1) -> list[Point]:
    """Every point of a sweep: the grid's cartesian product times the seeds.

    Parameters
    ----------
    grid : sequence of str or of (key, values)
        ``--grid`` items (``"key=v1,v2"``) or already parsed axes.
    seeds : int or sequence of int
        ``N`` for seeds 1..N, or the seeds themselves.

    Returns
    -------
    list of Point
        In the grid's order, the first axis slowest, seeds fastest.
    """
    axes = parse_grid(grid) if all(isinstance(g, str) for g in grid) else list(grid)
    keys, seeds = [key for key, _ in axes], seed_values(seeds)
    return [Point(tuple(zip(keys, combo)), seed)
            for combo in itertools.product(*(values for _, values in axes)) for seed in seeds]


# ----------------------------------------------------------- one point
@dataclass(frozen=True)
class Task:
    """What a worker needs to run one point; plain data, so it pickles anywhere."""

    model: str | None
    protocol: str | None
    overrides: tuple
    path: str


# Brian2 and the BLAS thread limit are per process: a Dask worker with several threads
# must still train one point at a time.
_ONE_AT_A_TIME = threading.Lock()


def run_point(task: Task) -> str:
    """Run one point into its file, unless it is finished; what happened, as a word.

    Returns
    -------
    str
        ``skipped`` (already finished), ``ran``, ``resumed`` (continued from the
        checkpoint of a killed run) or ``diverged``.
    """
    from .checkpoint import CheckpointError
    from .training import DivergenceError, run

    path = Path(task.path)
    with _ONE_AT_A_TIME:
        status = _recorded(path).get("status")
        if status in FINISHED:  # e.g. a task that Dask retried after its worker died late
            return "skipped"
        try:
            if status not in (None, "unreadable"):
                try:
                    run(resume=path, progress=False)
                    return "resumed"
                except CheckpointError:
                    pass  # killed before its first checkpoint: start the point again
            # force: replaces a file that a kill left unreadable; a file that another
            # process still writes is locked, and this raises instead
            run(task.model, task.protocol, overrides=list(task.overrides), output=path,
                force=True, progress=False)
            return "ran"
        except DivergenceError:
            return "diverged"


def _recorded(path: Path) -> dict:
    """The root attributes of a run file; {} when there is none, status ``unreadable``
    when it cannot be opened (truncated by a kill before its first flush)."""
    from .runlog import read_run_file, text_attribute

    if not path.exists():
        return {}
    try:
        with read_run_file(path) as f:  # a killed point's file opens only as a SWMR reader
            return {k: text_attribute(v) for k, v in f.attrs.items()
                    if k in ("status", "model_toml", "protocol_toml")}
    except OSError:
        return {"status": "unreadable"}


# ---------------------------------------------------------- executors
def _die_with_parent():
    """Make a pool worker end when the sweep process ends, even by SIGKILL (Linux).

    An orphaned worker would go on writing its point while a rerun of the sweep
    writes the same file.
    """
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphan finishes its point and exits


def _completed(submit, as_completed, tasks):
    """Submit every task; yield (task, future) as each finishes."""
    futures = {submit(run_point, task): task for task in tasks}
    for future in as_completed(futures):
        yield futures[future], future


def _local(tasks, workers):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: a forked child would inherit the parent's threads and HDF5 state
    with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from _completed(pool.submit, as_completed, tasks)


def _dask(tasks, address):
    try:
        from distributed import Client, WorkerPlugin, as_completed
    except ImportError:
        raise ImportError("--scheduler needs Dask's distributed scheduler: "
                          "pip install 'bioprop[dask]'") from None

    class ImportBrian2(WorkerPlugin):
        """Import Brian2 on each worker, those that join or restart later included, in
        its main thread: Brian2's import installs a SIGINT handler, which Python allows
        only there, and Dask runs tasks in other threads."""

        def setup(self, worker):
            import brian2  # noqa: F401

    try:
        client = Client(address)
    except OSError as err:
        raise SweepError(f"--scheduler {address}: cannot connect: {err}") from None
    with client:
        client.register_plugin(ImportBrian2(), name="bioprop-import-brian2")
        # pure=False: a point's key must not be shared with an earlier sweep's result
        yield from _completed(lambda f, t: client.submit(f, t, pure=False), as_completed, tasks)


# -------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    """What a sweep did and where its table is."""

    #: pandas DataFrame, one row per point (see :func:`gather`)
    table: object
    table_path: Path
    directory: Path
    points: list
    #: point name → what happened (``ran``, ``resumed``, ``diverged``, ``skipped``)
    outcomes: dict = field(default_factory=dict)
    #: point name → error message, for points whose worker failed
    errors: dict = field(default_factory=dict)

    @property
    def n_run(self) -> int:
        """Points trained (or resumed) by this call."""
        return sum(o in ("ran", "resumed", "diverged") for o in self.outcomes.values())

    @property
    def n_skipped(self) -> int:
        """Points found finished, by this call or by its workers."""
        return len(self.points) - self.n_run - len(self.errors)


def sweep(model=None, protocol=None, *, grid=(), seeds=1, overrides=(), output=None,
          workers=None, scheduler=None, table=None, progress=True) -> SweepResult:
    """Run every point of a sweep that is not finished, then gather its table.

    Parameters
    ----------
    model, protocol : path or None
        As for :func:`bioprop.run` (None: the embedded defaults).
    grid : sequence of str
        ``"key=v1,v2,..."`` items; the sweep is their cartesian product.
    seeds : int or sequence of int
        ``N`` for seeds 1..N, or the seeds themselves.
    overrides : sequence of "key=value"
        Applied to every point, as ``--set`` does.
    output : path, optional
        The folder of the run files; default ``runs/sweep-<model name>``.
    workers : int, optional
        Local processes (default: the number of CPUs, at most one per point to run).
    scheduler : str, optional
        Address of a Dask distributed scheduler to run the points on instead. The
        folder must be reachable at the same path from every worker.
    table : path, optional
        The table, ``.csv`` or ``.nc`` (NetCDF); default ``<output>/sweep.csv``.
    progress : bool
        Show a tqdm bar over points.

    Returns
    -------
    SweepResult

    Raises
    ------
    SpecError
        A bad grid, seed list, override or point setting (checked before anything runs).
    SweepError
        The folder holds a run file of a point with other settings.
    """
    from tqdm.auto import tqdm

    points = expand(grid, seeds)
    for item in overrides:
        key = parse_override(item)[0] if isinstance(item, str) else item[0]
        check_key(key, "--set")
        if key == "training.seed" or key in dict(points[0].settings):
            raise SpecError(f"--set {key}: also set by the sweep's grid or seeds")
    directory = Path(output or f"runs/sweep-{_model_name(model, overrides)}")
    tasks = {p.name: _task(model, protocol, list(overrides), p, directory) for p in points}
    todo = [t for t in tasks.values() if _recorded(Path(t.path)).get("status") not in FINISHED]
    result = SweepResult(None, _table_path(table or directory / "sweep.csv"), directory, points)
    bar = tqdm(total=len(points), initial=len(points) - len(todo), unit="point", desc="sweep",
               disable=not progress)
    with bar:
        for task, future in _execute(todo, workers, scheduler):
            name = Path(task.path).stem
            try:
                result.outcomes[name] = future.result()
            except Exception as err:  # the point failed; the others go on
                result.errors[name] = _describe(err)
            bar.update()
    result.table = gather(points, directory)
    write_table(result.table, result.table_path)
    return result


def _model_name(model, overrides) -> str:
    from .spec import load_model

    return load_model(model, overrides).network.name


def _normalised(key: str, text: str) -> str:
    """A recorded model or protocol TOML with today's defaults filled in, so that a file
    written before a key was added to the spec still matches its point."""
    import tomllib

    from .spec import SpecError, parse_model, parse_protocol, to_toml

    parse = parse_model if key == "model_toml" else parse_protocol
    try:
        return to_toml(parse(tomllib.loads(text), "<run file>"))
    except (SpecError, tomllib.TOMLDecodeError):
        return text


def _task(model, protocol, overrides, point, directory) -> Task:
    """A point's task, its settings checked now (so a bad grid fails before anything runs)
    and any existing file of the point checked to be of the same settings."""
    from .spec import load_model, load_protocol, to_toml

    every = overrides + point.overrides
    expected = {"model_toml": to_toml(load_model(model, every)),
                "protocol_toml": to_toml(load_protocol(protocol, every))}
    path = (directory / f"{point.name}.h5").resolve()
    recorded = _recorded(path)
    for key, text in expected.items():
        if key in recorded and _normalised(key, recorded[key]) != text:
            raise SweepError(f"{path} was run with other settings than this sweep's point "
                             f"{point.label()} seed {point.seed} ({key} differs); give the "
                             f"sweep another folder (-o) or remove the file")
    resolved = [str(Path(p).resolve()) if p is not None else None for p in (model, protocol)]
    return Task(*resolved, tuple(every), str(path))


def _execute(tasks, workers, scheduler):
    if not tasks:
        return iter(())
    if scheduler is not None:
        return _dask(tasks, scheduler)
    return _local(tasks, min(workers or os.cpu_count() or 1, len(tasks)))


def _describe(err) -> str:
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(err, BrokenProcessPool):
        return ("a worker process died (killed?); finished points are kept, and running "
                "the sweep again continues the others")
    return f"{type(err).__name__}: {err}"


# -------------------------------------------------------------- the table
def gather(points, directory):
    """The sweep's table, read from its run files alone.

    Parameters
    ----------
    points : list of Point
    directory : path
        The folder of the points' run files.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``point`` (its file stem), one column per grid key,
        ``seed``, ``status`` (the file's, or ``missing``), ``epochs`` finished,
        ``test_accuracy`` and ``test_loss`` of the last epoch, ``training_time``
        (s, summed over epochs) and ``path``.
    """
    import pandas as pd

    rows = []
    for point in points:
        path = Path(directory) / f"{point.name}.h5"
        row = {"point": point.name, **dict(point.settings), "seed": point.seed}
        rows.append({**row, **_results(path), "path": str(path)})
    return pd.DataFrame(rows)


def _results(path: Path) -> dict:
    """The final figures of one run file (NaN where there are none)."""
    import numpy as np

    from .runlog import read_run_file

    status = _recorded(path).get("status")
    if status in (None, "unreadable"):
        return {"status": status or "missing", "epochs": 0, "test_accuracy": np.nan,
                "test_loss": np.nan, "training_time": np.nan}
    with read_run_file(path) as f:
        return {"status": status, "epochs": len(f["eval/epoch"]),
                "test_accuracy": _last(f["eval"], "accuracy"), "test_loss": _last(f["eval"], "loss"),
                "training_time": float(np.sum(f["train/wall_time"][:]))}


def _last(group, name) -> float:
    """The last entry of a per-epoch variable; NaN before the first epoch, or for a
    variable the task does not have (accuracy in regression)."""
    return float(group[name][-1]) if name in group and len(group[name]) else float("nan")


def write_table(frame, path) -> Path:
    """Write the table as CSV or, for a ``.nc`` path, NetCDF (dimension ``point``).

    It is written to a temporary file renamed into place, so a reader never sees
    half a table.
    """
    path = _table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix == ".nc":
        frame.set_index("point").to_xarray().to_netcdf(partial, engine="h5netcdf")
    else:
        frame.to_csv(partial, index=False)
    os.replace(partial, path)
    return path


def _table_path(path) -> Path:
    path = Path(path)
    if path.suffix not in (".csv", ".nc"):
        raise SpecError(f"{path}: a sweep table is .csv or .nc (NetCDF)")
    return path


def summarise(frame, keys) -> list[tuple[str, str]]:
    """Mean ± std (over seeds) of each grid point's final test accuracy.

    Only complete runs count; a task without accuracy (regression) reports the test loss.

    Returns
    -------
    list of (str, str)
        ``("rule.target=dtp", "test accuracy 96.57 ± 0.13 % (n = 3)")`` per grid point,
        ``"all"`` for a sweep over seeds alone.
    """
    done = frame[frame["status"] == "complete"]
    if done.empty:
        return []
    metric, scale, unit = (("test_accuracy", 100, " %") if done["test_accuracy"].notna().any()
                           else ("test_loss", 1, ""))
    groups = done.groupby(list(keys), sort=False) if keys else [((), done)]
    rows = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        label = " ".join(f"{k}={_text(v)}" for k, v in zip(keys, values)) or "all"
        x = scale * group[metric]
        rows.append((label, f"{metric.replace('_', ' ')} {x.mean():.2f} ± {x.std(ddof=0):.2f}"
                            f"{unit} (n = {len(x)})"))
    return rows
