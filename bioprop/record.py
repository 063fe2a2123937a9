"""The run file: one HDF5 file per run, in netCDF-4 layout, written as the run goes.

Written with h5py, read by ``xarray.open_datatree(path, engine="h5netcdf")`` with
no code of ours. The layout (DESIGN.md, "The run file"):

* root attributes — provenance (:func:`provenance`) and the run's ``status``;
* one group per kind of thing (``/train``, ``/eval``, ``/metrics``, ...), each
  with a growing first dimension (``epoch``) and optional fixed ones (``layer``);
* every dimension is a coordinate variable made an HDF5 dimension scale, and every
  variable has its scales attached, which is what netCDF readers see as dims.

:class:`RunRecorder` declares groups, appends one entry at a time along the
growing dimension and flushes, so a killed run leaves a readable file with every
appended entry. :func:`open_run` opens a run file and checks that it is one.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["FORMAT_VERSION", "RunFileExistsError", "RunRecorder", "provenance", "open_run"]

#: Bumped whenever the layout changes in a way an old reader would misread.
FORMAT_VERSION = 1


class RunFileExistsError(FileExistsError):
    """The run file exists and neither --force nor --resume was given."""


def _git_commit() -> str:
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance(*, model_toml: str, protocol_toml: str, seed: int, engine: str,
               codegen_target: str) -> dict:
    """The root attributes that say where a run came from.

    Returns
    -------
    dict
        The resolved model and protocol TOML, the seed, the engine and codegen
        target, the versions of bioprop, brian2, numpy, h5py and Python, the
        platform, the git commit of the bioprop source (if it is a checkout) and
        the creation time.
    """
    import h5py

    from . import __version__

    try:
        import brian2
        brian2_version = brian2.__version__
    except ImportError:
        brian2_version = ""
    return {
        "bioprop_format_version": FORMAT_VERSION, "model_toml": model_toml,
        "protocol_toml": protocol_toml, "seed": int(seed), "engine": engine,
        "codegen_target": codegen_target, "bioprop_version": __version__,
        "brian2_version": brian2_version, "numpy_version": np.__version__,
        "h5py_version": h5py.__version__, "python_version": sys.version.split()[0],
        "platform": platform.platform(), "git_commit": _git_commit(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


class RunRecorder:
    """Write a run file entry by entry.

    Parameters
    ----------
    path : path
        The file to create.
    attrs : dict
        Root attributes (usually :func:`provenance`).
    force : bool
        Replace an existing file. Without it an existing file raises
        :class:`RunFileExistsError` and is left untouched.

    Examples
    --------
    >>> with RunRecorder("run.h5", attrs) as rec:                       # doctest: +SKIP
    ...     rec.declare("train", {"loss": {"units": "1"}}, dims=("epoch",))
    ...     rec.append("train", 1, {"loss": 0.3})
    ...     rec.flush()
    """

    def __init__(self, path, attrs: dict, *, force: bool = False):
        import h5py

        self.path = Path(path)
        if self.path.exists() and not force:
            raise RunFileExistsError(f"{self.path} exists; pass --force (force=True) to "
                                     "overwrite it, or choose another output file (-o)")
        # The default (oldest compatible) file format on purpose: libver="latest" marks
        # the file as open for writing in its superblock, and a run killed with SIGKILL
        # would then leave a file that no reader opens without h5clear.
        self._file = h5py.File(self.path, "w")
        self._groups: dict[str, tuple] = {}
        self._file.attrs.update({k: v for k, v in attrs.items()})
        self._file.attrs["status"] = "running"

    @classmethod
    def reopen(cls, path, *, epoch: int) -> "RunRecorder":
        """Open an existing run file to continue it after `epoch` (for ``--resume``).

        Every entry recorded after `epoch` (an epoch that finished after the last
        checkpoint) is cut, so the resumed run records it again, identically.
        """
        import h5py

        self = cls.__new__(cls)
        self.path = Path(path)
        self._file = h5py.File(self.path, "r+")
        self._groups = {}
        groups = []
        self._file.visititems(lambda name, obj: groups.append((name, obj))
                              if isinstance(obj, h5py.Group) and "epoch" in obj else None)
        for name, g in groups:
            keep = int(np.searchsorted(g["epoch"][:], epoch, side="right"))
            variables = [k for k, ds in g.items() if isinstance(ds, h5py.Dataset) and not ds.is_scale]
            for k in variables + ["epoch"]:
                g[k].resize(keep, axis=0)
            self._groups[name] = (g, "epoch", variables)
        self._file.attrs["status"] = "running"
        self._file.flush()
        return self

    # ---------------------------------------------------------------- layout
    def has(self, group: str) -> bool:
        """Is `group` declared (in this session, or in the file being continued)?"""
        return group in self._groups

    def declare(self, group: str, variables: dict, *, dims: tuple, coords: dict | None = None,
                coord_attrs: dict | None = None):
        """Create a group whose variables share `dims`, the first of which grows.

        Parameters
        ----------
        group : str
            Group name, e.g. ``"train"``.
        variables : dict
            Variable name → attributes (``units``, ``long_name``, ...).
        dims : tuple of str
            The dimension names; the first is appended along, the others are fixed.
        coords : dict, optional
            Values of the fixed dimensions' coordinates (strings or numbers).
        coord_attrs : dict, optional
            Attributes of coordinates, e.g. ``{"time": {"units": "ms"}}``.
        """
        import h5py

        coords = coords or {}
        g = self._file.require_group(group)
        grow = dims[0]
        scales = {grow: g.create_dataset(grow, shape=(0,), maxshape=(None,), dtype="i8",
                                         chunks=(256,))}
        for dim in dims[1:]:
            if dim not in coords:
                raise ValueError(f"declare({group!r}): fixed dimension {dim!r} needs coords")
            values = np.asarray(coords[dim])
            dtype = h5py.string_dtype() if values.dtype.kind in "US" else values.dtype
            scales[dim] = g.create_dataset(dim, data=values.astype(object) if dtype != values.dtype
                                           else values, dtype=dtype)
        for name, scale in scales.items():
            scale.make_scale(name)
            scale.attrs.update((coord_attrs or {}).get(name, {}))
        fixed = tuple(len(scales[d]) for d in dims[1:])
        # 64 epochs per chunk for small per-epoch figures; one entry per chunk for weight
        # matrices and activity, which are written rarely and would otherwise allocate
        # space for entries that never come
        rows = 64 if int(np.prod(fixed)) <= 256 else 1
        for name, attrs in variables.items():
            ds = g.create_dataset(name, shape=(0, *fixed), maxshape=(None, *fixed), dtype="f8",
                                  chunks=(rows, *fixed), fillvalue=np.nan)
            for axis, dim in enumerate(dims):
                ds.dims[axis].attach_scale(scales[dim])
            ds.attrs.update(attrs)
            ds.attrs["_FillValue"] = np.nan
        self._groups[group] = (g, grow, list(variables))

    def append(self, group: str, index_value, values: dict):
        """Append one entry along `group`'s growing dimension.

        The variables are written first and the coordinate last, so an entry
        that a crash interrupts shows as NaN, never as a wrong value.
        """
        g, grow, names = self._groups[group]
        unknown = set(values) - set(names)
        if unknown:
            raise KeyError(f"{group}: undeclared variable(s) {sorted(unknown)}; declared: {names}")
        n = len(g[grow]) + 1
        for name in names:
            ds = g[name]
            ds.resize(n, axis=0)
            if name in values:
                ds[n - 1] = values[name]
        g[grow].resize((n,))
        g[grow][n - 1] = index_value

    def flush(self):
        """Push every appended entry to disk."""
        self._file.flush()

    def set_group_attrs(self, group: str, **attrs):
        self._groups[group][0].attrs.update(attrs)

    def set_attrs(self, **attrs):
        self._file.attrs.update(attrs)
        self._file.flush()

    def close(self, status: str | None = None):
        if self._file.id.valid:
            if status is not None:
                self._file.attrs["status"] = status
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        status = None
        if exc_type is not None and self._file.id.valid and self._file.attrs["status"] == "running":
            status = "interrupted"
        self.close(status)
        return False


def open_run(path):
    """Open a run file as an ``xarray.DataTree``, refusing files that are not runs.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not HDF5, is truncated, is not a bioprop run, or is from a
        newer format version than this bioprop reads.
    """
    import h5py
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("bioprop_format_version")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}") from None
    if version is None:
        raise ValueError(f"{path}: not a bioprop run file (no bioprop_format_version attribute)")
    if int(version) > FORMAT_VERSION:
        raise ValueError(f"{path}: run file format version {int(version)} is newer than this "
                         f"bioprop reads ({FORMAT_VERSION}); upgrade bioprop")
    return xr.open_datatree(path, engine="h5netcdf")
