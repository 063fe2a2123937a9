"""Reading a run file: as an ``xarray.DataTree`` (:func:`open_run`), or with h5py
(:func:`read_run_file`), also while it is written or after its writer died.

The helpers below read the netCDF-4 layout the recorder writes (dimension scales,
coordinates, attributes); :func:`~bioprop.runlog.rewrite.reopen_run` uses them to copy a
run file.

An entry that a killed writer opened but never committed has the growing coordinate
:data:`UNFINISHED` (-1) in a plain netCDF reader; :func:`open_run` leaves it out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .formats import upgrade_tree
from .vocabulary import FORMAT_VERSION

__all__ = ["open_run", "read_run_file", "text_attribute", "attributes", "data_variables",
           "dims_of", "coordinate_values", "groups_with_data", "UNFINISHED"]

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
            raise OSError(f"{err} — the writer died before the file entered SWMR mode; "
                          "`h5clear -s FILE` (hdf5-tools) clears the flag") from None


def open_run(path, chunks=None):
    """Open a run file as an ``xarray.DataTree``, refusing files that are not runs.

    Arrays are read lazily, when used. A file of an earlier format version reads in
    today's layout (:func:`~bioprop.runlog.formats.upgrade_tree`). Entries a killed writer left unfinished (their
    coordinate is :data:`UNFINISHED`) are left out. With ``chunks={}`` (dask installed) they become
    dask arrays in the file's own chunks, so that reductions stream chunk by chunk
    instead of loading a whole activity log; any other `chunks` is passed to xarray.

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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    try:
        with read_run_file(path) as f:
            version = f.attrs.get("bioprop_format_version")
            live = f.swmr_mode
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}") from None
    if version is None:
        raise ValueError(f"{path}: not a bioprop run file (no bioprop_format_version attribute)")
    if int(version) > FORMAT_VERSION:
        raise ValueError(f"{path}: run file format version {int(version)} is newer than this "
                         f"bioprop reads ({FORMAT_VERSION}); upgrade bioprop")
    # a run being written (or whose writer was killed) opens only as a SWMR reader
    tree = xr.open_datatree(path, engine="h5netcdf", chunks=chunks,
                            **({"driver_kwds": {"swmr": True}} if live else {}))
    return upgrade_tree(_without_unfinished(tree))


def _without_unfinished(tree):
    """`tree` without the entries a killed writer left uncommitted (epoch ``UNFINISHED``)."""
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "epoch" in ds.indexes:
            finished = ds["epoch"].values != UNFINISHED
            if not finished.all():
                node.dataset = ds.isel(epoch=finished)
    return tree
