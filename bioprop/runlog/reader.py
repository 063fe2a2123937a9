"""Reading a run file: as an ``xarray.DataTree`` (:func:`open_run`), or with h5py
(:func:`read_run_file`), also while it is written or after its writer died.

The helpers below read the netCDF-4 layout the recorder writes (dimension scales,
coordinates, attributes); :func:`~bioprop.runlog.rewrite.reopen_run` uses them to copy a
run file.

An entry that a killed writer opened but never committed has the growing coordinate
:data:`UNFINISHED` (-1) in a plain netCDF reader; :func:`open_run` leaves it out.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .formats import upgrade_tree
from .vocabulary import FORMAT_VERSION
from .writer_lock import KilledWriterWarning, killed_writer

__all__ = ["open_run", "read_run_file", "text_attribute", "attributes", "data_variables",
           "dims_of", "coordinate_values", "groups_with_data", "require", "UNFINISHED"]

#: The fill value of a growing coordinate (``epoch``): the value of an entry whose
#: variables were written but whose coordinate never was. No epoch is negative.
UNFINISHED = -1

#: attributes HDF5 and netCDF manage themselves, never copied
_INTERNAL_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid",
                   "_Netcdf4Coordinates"}


def text_attribute(value) -> str:
    """An attribute read by h5py as text (fixed-width strings come back as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def attributes(obj) -> dict:
    """The attributes of an open group or dataset, without those HDF5 and netCDF manage."""
    return {k: v for k, v in obj.attrs.items() if k not in _INTERNAL_ATTRS}


def data_variables(group) -> dict:
    """The data variables of an open group (no coordinates, no subgroups)."""
    import h5py

    return {k: ds for k, ds in group.items() if isinstance(ds, h5py.Dataset) and not ds.is_scale}


def dims_of(ds) -> tuple:
    """Dimension names of an open dataset, from its attached scales."""
    return tuple(ds.dims[i].values()[0].name.rsplit("/", 1)[-1] for i in range(ds.ndim))


def coordinate_values(scale):
    """The values of an open coordinate variable; names come back as ``str``."""
    if scale.dtype.kind == "O":
        return np.asarray(scale.asstr()[:]).astype(str)
    return scale[:]


def groups_with_data(f) -> list:
    """(name, group) of every group of an open file that holds variables, parents first."""
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append((name, obj))
                 if isinstance(obj, h5py.Group) and data_variables(obj) else None)
    return found


def read_run_file(path):
    """An h5py File of a run, read-only; also while it is written, or after its writer died.

    A file being written in SWMR mode, or whose SWMR writer was killed, opens only as a
    SWMR reader; any other file opens normally.
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        if "already open for write" not in str(err):
            raise
        try:
            return h5py.File(path, "r", swmr=True)
        except OSError:
            raise OSError(f"{err} — its writer died before the file entered SWMR mode; "
                          f"bioprop recover {path} clears the flag") from None


def open_run(path, chunks=None):
    """Open a run file as an ``xarray.DataTree``, refusing files that are not runs.

    A file whose writer was killed opens here (as a SWMR reader would), with a
    :class:`~bioprop.runlog.writer_lock.KilledWriterWarning` that names ``bioprop recover``,
    after which plain readers open it too. Arrays are read lazily, when used. A file of an
    earlier format version reads in today's layout (:func:`~bioprop.runlog.formats.upgrade_tree`).
    Entries a killed writer left unfinished (their coordinate is :data:`UNFINISHED`) are left
    out. With ``chunks={}`` (dask installed) they become dask arrays in the file's own chunks,
    so that reductions stream chunk by chunk instead of loading a whole activity log; any
    other `chunks` is passed to xarray.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not HDF5, is truncated, is not a bioprop run, or is from a
        newer format version than this bioprop reads.
    """
    import xarray as xr

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a run file; name one of its .h5 files")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    try:
        with read_run_file(path) as f:
            version = f.attrs.get("bioprop_format_version")
            live = f.swmr_mode
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file{_what_it_is(path)}: {err}") from None
    if version is None:
        raise ValueError(f"{path}: not a bioprop run file (no bioprop_format_version attribute)")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: its bioprop_format_version attribute is {version!r}, not a "
                         "whole number: not a run file bioprop wrote, or a damaged one") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: run file format version {int(version)} is newer than this "
                         f"bioprop reads ({FORMAT_VERSION}); upgrade bioprop")
    if live and killed_writer(path):
        warnings.warn(f"{path}: its writer was killed, so plain HDF5 readers (xarray too) refuse "
                      f"it; bioprop recover {path} fixes that", KilledWriterWarning, stacklevel=2)
    # a run being written (or whose writer was killed) opens only as a SWMR reader
    tree = xr.open_datatree(path, engine="h5netcdf", chunks=chunks,
                            **({"driver_kwds": {"swmr": True}} if live else {}))
    return upgrade_tree(_without_unfinished(tree))


def _what_it_is(path: Path) -> str:
    """What a file that is not HDF5 looks like, for the message."""
    if path.name.endswith(".ckpt.npz"):
        run = path.with_name(path.name[:-len(".ckpt.npz")] + ".h5")
        return f" (it is a checkpoint; its run file is {run})"
    if path.suffix.lower() == ".toml":
        return " (it is TOML: a model or protocol file, not a run file)"
    return " (truncated or corrupt?)"


def require(tree, path, *, attrs=(), groups=()):
    """Check that an open run has the root attributes and groups a command reads.

    Raises
    ------
    ValueError
        Naming the file and the first attribute or group it lacks.
    """
    for name in attrs:
        if name not in tree.attrs:
            raise ValueError(f"{path}: no {name} attribute; a run file that bioprop did not "
                             "write, or a damaged one")
    for name in groups:
        if name not in tree.children:
            raise ValueError(f"{path}: no /{name} group; a run file that bioprop did not "
                             "write, or one killed before its first epoch")


def _without_unfinished(tree):
    """`tree` without the entries a killed writer left uncommitted (epoch ``UNFINISHED``)."""
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "epoch" in ds.indexes:
            finished = ds["epoch"].values != UNFINISHED
            if not finished.all():
                node.dataset = ds.isel(epoch=finished)
    return tree
