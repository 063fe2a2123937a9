"""A sweep from end to end: check every point, run those not finished, gather the table.

An existing run file recorded with other settings (another ``--set``) is an error,
never skipped and never overwritten: the table must describe the sweep that was asked
for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ..overrides import parse_override
from .execute import SweepError, Task, describe, execute
from .grid import check_key, expand
from .runfiles import FINISHED, recorded
from .table import gather, table_path, write_table

__all__ = ["SweepResult", "check_sweep", "sweep", "checked_points", "model_name", "point_task",
           "folder"]


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
    model, protocol : path, shipped name or None
        As for :func:`bioprop.run` (None: the embedded model; the protocol the model
        names, else the embedded one).
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

    points, model, protocol = checked_points(model, protocol, grid, seeds, overrides)
    directory = folder(output, model, overrides)
    tasks = {p.name: point_task(model, protocol, list(overrides), p, directory) for p in points}
    todo = [t for t in tasks.values() if recorded(Path(t.path)).get("status") not in FINISHED]
    result = SweepResult(None, table_path(table or directory / "sweep.csv"), directory, points)
    directory.mkdir(parents=True, exist_ok=True)  # every point is checked: its files go here
    bar = tqdm(total=len(points), initial=len(points) - len(todo), unit="point", desc="sweep",
               disable=not progress)
    with bar:
        for task, future in execute(todo, workers, scheduler):
            name = Path(task.path).stem
            try:
                result.outcomes[name] = future.result()
            except Exception as err:  # the point failed; the others go on
                result.errors[name] = describe(err)
            bar.update()
    result.table = gather(points, directory)
    write_table(result.table, result.table_path)
    return result


def checked_points(model, protocol, grid, seeds, overrides):
    """The sweep's points and its model and protocol files, its grid, seeds and overrides
    checked (nothing read from or written to its folder)."""
    points = expand(grid, seeds)
    for item in overrides:
        key = parse_override(item)[0] if isinstance(item, str) else item[0]
        check_key(key, "--set")
        if key == "training.seed" or key in dict(points[0].settings):
            raise SpecError(f"--set {key}: also set by the sweep's grid or seeds")
    return (points, *_files(model, protocol, overrides))


def check_sweep(model=None, protocol=None, *, grid=(), seeds=1, overrides=()) -> list:
    """Check a sweep as :func:`sweep` would before it runs anything, without its folder.

    Parameters
    ----------
    model, protocol, grid, seeds, overrides
        As for :func:`sweep`.

    Returns
    -------
    list of (ModelSpec, ProtocolSpec)
        Each point's specs, each loaded and validated on its own (not yet against each
        other: :func:`bioprop.compatibility.check_compatible`).

    Raises
    ------
    SpecError
        A bad grid, seed list or override, or a point whose settings do not validate.
    """
    from ..spec import load_model, load_protocol

    points, model, protocol = checked_points(model, protocol, grid, seeds, overrides)
    return [(load_model(model, list(overrides) + p.overrides),
             load_protocol(protocol, list(overrides) + p.overrides)) for p in points]


def _files(model, protocol, overrides):
    """The model and protocol files of shipped names, and the protocol the model names
    when none is given (as :func:`bioprop.run` chooses it)."""
    from ..shipped import find_spec_file
    from ..spec import load_model

    model = find_spec_file(model, "model") if model else None
    if protocol:
        return model, find_spec_file(protocol, "protocol")
    return model, load_model(model, overrides).protocol or None


def model_name(model, overrides) -> str:
    """The network name of a model file with overrides (the default folder's name)."""
    from ..spec import load_model

    return load_model(model, overrides).network.name


def folder(output, model, overrides, kind: str = "sweep") -> Path:
    """A sweep's folder: `output`, else ``runs/<kind>-<model name>``."""
    return Path(output or f"runs/{kind}-{model_name(model, overrides)}")


def _normalised(key: str, text: str) -> str:
    """A recorded model or protocol TOML with today's defaults filled in, so that a file
    written before a key was added to the spec still matches its point."""
    import tomllib

    from ..spec import parse_model, parse_protocol, to_toml

    parse = parse_model if key == "model_toml" else parse_protocol
    try:
        return to_toml(parse(tomllib.loads(text), "<run file>"))
    except (SpecError, tomllib.TOMLDecodeError):
        return text


def point_task(model, protocol, overrides, point, directory) -> Task:
    """A point's task, its settings checked now (so a bad grid fails before anything runs)
    and any existing file of the point checked to be of the same settings."""
    from ..spec import load_model, load_protocol, to_toml

    every = overrides + point.overrides
    expected = {"model_toml": to_toml(load_model(model, every)),
                "protocol_toml": to_toml(load_protocol(protocol, every))}
    path = (directory / f"{point.name}.h5").resolve()
    found = recorded(path)
    for key, text in expected.items():
        if key in found and _normalised(key, found[key]) != text:
            raise SweepError(f"{path} was run with other settings than this sweep's point "
                             f"{point.label()} seed {point.seed} ({key} differs); give the "
                             f"sweep another folder (-o) or remove the file")
    resolved = [str(Path(p).resolve()) if p is not None else None for p in (model, protocol)]
    return Task(*resolved, tuple(every), str(path))
