"""Sweeps: one model and protocol over a grid of settings and seeds (``bioprop sweep``).

A sweep is the cartesian product of its grid axes (``--grid key=v1,v2``, values read
as ``--set`` reads them) times its seeds (:mod:`.grid`). Every point trains with
:func:`bioprop.training.run` and writes its own run file, named after the point,
into one folder; a table with one row per point is then read back from those files
alone (:func:`gather`, :mod:`.table`), so it can be remade at any time.

Points run in local processes (:class:`concurrent.futures.ProcessPoolExecutor`) or
on a Dask distributed cluster (``scheduler=ADDRESS``; :mod:`.execute`). Because each
point writes its file itself, a worker that dies loses only the point it was running,
and a rerun of the same sweep skips every finished point:

* ``complete`` and ``diverged`` files are finished (a divergence is deterministic,
  so running it again would only diverge again) and are never touched;
* any other existing file (a point whose worker was killed, or interrupted) is
  *resumed* from its checkpoint, which gives the figures of an uninterrupted run
  bit for bit (see ``bioprop run --resume``); a file with no usable checkpoint is
  started again.

An existing file recorded with other settings (another ``--set``) is an error, never
skipped and never overwritten (:func:`sweep`, :mod:`.api`): the table must describe
the sweep that was asked for.
"""
from .api import SweepResult, sweep
from .execute import SweepError, Task, run_point
from .halving import SearchResult, search, search_table
from .grid import Point, check_key, expand, parse_grid, seed_values
from .runfiles import FINISHED
from .table import gather, summarise, write_table

__all__ = ["Point", "SweepError", "SweepResult", "parse_grid", "expand", "sweep", "run_point",
           "gather", "summarise", "FINISHED", "Task", "check_key", "seed_values", "write_table",
           "search", "SearchResult", "search_table"]
