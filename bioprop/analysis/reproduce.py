"""Running the sweep commands behind a table again: what each would train, how long that
took when the committed run files were made, and the commands themselves.

The table scripts in ``analysis/`` keep the ``bioprop sweep`` commands that wrote their
run files under ``results/``. :func:`plan` reads each command as the CLI would, lists
its points, says which are already finished in the target folder, and estimates each
unfinished point's time from the training time recorded in its committed run file (the
same point, trained on this project's machine). :func:`run` prints that plan, then runs
the commands one after the other; a sweep skips its finished points, so running again
after a stop goes on where it was.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PlannedPoint", "plan", "retarget", "describe", "run", "add_arguments", "main"]


@dataclass(frozen=True)
class PlannedPoint:
    """One point of one command."""

    command: str
    path: Path
    finished: bool
    #: training time of the committed run of the same point (s); without one, the median of
    #: the command's committed points; None if the command has none
    expected_seconds: float | None


def retarget(command: str, results: Path, into: Path | None) -> str:
    """`command` with its ``-o`` and ``--table`` paths moved from under `results` to under
    `into` (unchanged when `into` is None), to reproduce a table beside the committed one."""
    if into is None:
        return command
    words = shlex.split(command)
    for i, word in enumerate(words[:-1]):
        target = Path(words[i + 1])
        if word in ("-o", "--output", "--table") and target.is_relative_to(results):
            words[i + 1] = str(Path(into) / target.relative_to(results))
    return shlex.join(words)


def _points(command: str) -> list[Path]:
    """The run file of every point of a ``bioprop sweep`` command line, as the CLI reads it."""
    from ..cli import check
    from ..sweep.api import folder
    from ..sweep.grid import expand

    args = check(shlex.split(command)[1:])
    directory = folder(args.output, args.model, args.set)
    return [directory / f"{p.name}.h5" for p in expand(args.grid, args.seed_list or args.seeds)]


def _training_time(path: Path) -> float | None:
    """The summed per-epoch training time recorded in a finished run file."""
    import numpy as np

    from ..runlog import read_run_file
    from ..sweep.runfiles import FINISHED, recorded

    if recorded(path).get("status") not in FINISHED:
        return None
    with read_run_file(path) as f:
        return float(np.sum(f["train/wall_time"][:]))


def plan(commands, results: Path, into: Path | None = None) -> list[PlannedPoint]:
    """Every point of `commands`, retargeted to `into`, with whether it is finished there
    and its expected training time.

    Parameters
    ----------
    commands : sequence of str
        ``bioprop sweep ...`` command lines whose folders are under `results`.
    results : Path
        The folder of the committed run files, which give the expected times.
    into : Path, optional
        Where to write the runs instead of `results` (None: into `results`, where the
        committed points are finished and are skipped).

    Raises
    ------
    SpecError
        A command that the CLI would refuse.
    """
    from ..sweep.runfiles import FINISHED, recorded

    import numpy as np

    points = []
    for command in commands:
        moved = retarget(command, results, into)
        pairs = list(zip(_points(command), _points(moved)))
        times = [_training_time(committed) for committed, _ in pairs]
        # a point not yet committed (another seed) is expected to take what the command's
        # committed points took, their median
        known = [t for t in times if t is not None]
        usual = float(np.median(known)) if known else None
        for (_, path), seconds in zip(pairs, times):
            points.append(PlannedPoint(moved, path, recorded(path).get("status") in FINISHED,
                                       usual if seconds is None else seconds))
    return points


def describe(points) -> list[str]:
    """The plan as lines of text: each unfinished point with its expected time, then the
    total, as if the commands ran one after the other."""
    from .tables import duration

    lines, total, unknown = [], 0.0, 0
    for point in points:
        if point.finished:
            continue
        known = point.expected_seconds is not None
        total += point.expected_seconds or 0.0
        unknown += not known
        lines.append(f"  {point.path}: "
                     + (duration(point.expected_seconds) if known else "time not known"))
    done = sum(p.finished for p in points)
    lines.append(f"{len(points) - done} of {len(points)} points to train ({done} finished); "
                 f"expected run time on this project's machine: "
                 f"{duration(total) if total < 7200 else f'{total / 3600:.1f} h'}"
                 + (f", and {unknown} points of no known time" if unknown else ""))
    return lines


def run(commands, results: Path, into: Path | None = None, dry_run: bool = False) -> int:
    """Print the plan, then (unless `dry_run`) run the commands in order.

    Returns
    -------
    int
        0, or the exit status of the first command that failed.
    """
    print("\n".join(describe(plan(commands, results, into))), flush=True)
    if dry_run:
        return 0
    for command in commands:
        moved = retarget(command, results, into)
        print(f"$ {moved}", flush=True)
        status = subprocess.call(shlex.split(moved))
        if status:
            return status
    return 0


def add_arguments(parser) -> None:
    """The table scripts' options to run their commands: ``--run``, ``--dry-run`` and
    ``--into DIR``."""
    group = parser.add_argument_group("reproducing", "train the table's runs again: the "
                                      "expected run time is printed before anything starts")
    group.add_argument("--run", action="store_true",
                       help="run the table's sweep commands (finished points are skipped)")
    group.add_argument("--dry-run", action="store_true",
                       help="list the points to train, with their expected times; run nothing")
    group.add_argument("--into", type=Path, metavar="DIR",
                       help="write the runs under DIR instead of the results folder")


def main(description: str, commands, show, argv=None, options=None) -> int:
    """The command line every table script shares: train the table's runs, or print it.

    ``--results DIR`` (default ``results``) is the folder of the run files, and the options
    of :func:`add_arguments` train them. Without ``--run`` or ``--dry-run`` the table is
    printed by `show`.

    Parameters
    ----------
    description : str
        The script's ``--help`` line.
    commands : callable
        Returns the table's ``bioprop sweep`` command lines. Called only to train or to
        list the points, since some scripts build them from run files.
    show : callable
        Prints the table from the parsed arguments; returns an exit status, or None for 0.
    argv : list of str, optional
        The arguments (None: ``sys.argv[1:]``).
    options : callable, optional
        Adds the script's own options to the parser.

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the table's run files (default: results)")
    add_arguments(parser)
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    if args.run or args.dry_run:
        return run(list(commands()), args.results, args.into, args.dry_run)
    return show(args) or 0
