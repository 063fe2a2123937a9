"""A sweep's table: one row per point, read from the points' run files alone, so it
can be remade at any time; written as CSV or NetCDF, and summarised over seeds."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpecError
from .grid import value_text
from .runfiles import recorded

__all__ = ["gather", "write_table", "table_path", "summarise"]


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
        ``test_accuracy`` and ``test_loss`` of the last epoch, the same of the
        validation split (``data.validation``; NaN without one), ``training_time``
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

    from ..runlog import read_run_file
    from ..runlog.formats import stored_name
    from ..runlog.vocabulary import TEST, VALIDATION

    status = recorded(path).get("status")
    if status in (None, "unreadable"):
        return {"status": status or "missing", "epochs": 0, "test_accuracy": np.nan,
                "test_loss": np.nan, "validation_accuracy": np.nan, "validation_loss": np.nan,
                "training_time": np.nan}
    with read_run_file(path) as f:
        test = f[stored_name(f, TEST)]
        held_out = f[VALIDATION] if VALIDATION in f else {}
        return {"status": status, "epochs": len(test["epoch"]),
                "test_accuracy": _last(test, "accuracy"), "test_loss": _last(test, "loss"),
                "validation_accuracy": _last(held_out, "accuracy"),
                "validation_loss": _last(held_out, "loss"),
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
    path = table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix == ".nc":
        frame.set_index("point").to_xarray().to_netcdf(partial, engine="h5netcdf")
    else:
        frame.to_csv(partial, index=False)
    os.replace(partial, path)
    return path


def table_path(path) -> Path:
    """A table's path, checked to be ``.csv`` or ``.nc``.

    Raises
    ------
    SpecError
        Any other suffix.
    """
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
        label = " ".join(f"{k}={value_text(v)}" for k, v in zip(keys, values)) or "all"
        x = scale * group[metric]
        rows.append((label, f"{metric.replace('_', ' ')} {x.mean():.2f} ± {x.std(ddof=0):.2f}"
                            f"{unit} (n = {len(x)})"))
    return rows
