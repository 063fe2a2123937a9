"""Running a sweep's points: one point into its file (:func:`run_point`), and many in
local processes or on a Dask distributed cluster (:func:`execute`).

Each point writes its own file, so a worker that dies loses only the point it was
running; a finished point is skipped and an interrupted one resumed.
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .runfiles import FINISHED, recorded

__all__ = ["SweepError", "Task", "run_point", "execute", "describe"]


class SweepError(ValueError):
    """A sweep that cannot be run as asked (its folder holds points of another sweep,
    or its scheduler cannot be reached)."""


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
    from ..checkpoint import CheckpointError
    from ..training import DivergenceError, run

    path = Path(task.path)
    with _ONE_AT_A_TIME:
        status = recorded(path).get("status")
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


def _dask(tasks, address, workers):
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

    with _client(Client, address, workers) as client:
        client.register_plugin(ImportBrian2(), name="bioprop-import-brian2")
        # pure=False: a point's key must not be shared with an earlier sweep's result
        yield from _completed(lambda f, t: client.submit(f, t, pure=False), as_completed, tasks)


@contextlib.contextmanager
def _client(client_class, address, workers):
    """A Dask client: of a LocalCluster of `workers` single-threaded processes started
    here (address ``local``), else of the scheduler at `address`."""
    if address != "local":
        try:
            client = client_class(address)
        except OSError as err:
            raise SweepError(f"--scheduler {address}: cannot connect: {err}") from None
        with client:
            yield client
        return
    from distributed import LocalCluster

    # one thread per worker: a point is one process's BLAS and Brian2 (see _ONE_AT_A_TIME)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, client_class(cluster) as client:
        yield client


def execute(tasks, workers, scheduler):
    """Run tasks with :func:`run_point`, yielding each as it finishes.

    Parameters
    ----------
    tasks : list of Task
    workers : int or None
        Local processes (None: the number of CPUs); never more than there are tasks.
    scheduler : str or None
        Address of a Dask distributed scheduler to run the tasks on instead, or
        ``local`` for a Dask LocalCluster of `workers` processes started for them.

    Yields
    ------
    (Task, future)
        The future's ``result()`` is what :func:`run_point` returned, or raises what
        the task's worker raised.
    """
    if not tasks:
        return iter(())
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if scheduler is not None:
        return _dask(tasks, scheduler, workers)
    return _local(tasks, workers)


def describe(err) -> str:
    """A failed task's error as one line of text for the user.

    Parameters
    ----------
    err : BaseException
        What a task's future raised.

    Returns
    -------
    str
        A broken process pool is explained (a worker died, a rerun continues);
        anything else is its type and message.
    """
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(err, BrokenProcessPool):
        return ("a worker process died (killed?); finished points are kept, and running "
                "the sweep again continues the others")
    return f"{type(err).__name__}: {err}"
