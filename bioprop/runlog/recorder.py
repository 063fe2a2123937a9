"""Writing a run file: one HDF5 file per run, in netCDF-4 layout, written as the run goes.

Written with h5py, read by ``xarray.open_datatree(path, engine="h5netcdf")`` with
no code of ours. The layout (docs/design.md, "The run file"):

* root attributes — provenance (:func:`~bioprop.runlog.provenance.provenance`) and the
  run's ``status``;
* one group per section (``/train``, ``/test``, ``/metrics``, ...), each with a growing
  first dimension (``epoch``) and optional fixed ones (``layer``);
* every dimension is a coordinate variable made an HDF5 dimension scale, and every
  variable has its scales attached, which is what netCDF readers see as dims;
* events (spikes) are 1-D, gzip-compressed lists along their own dimension (e.g.
  ``spike``, a netCDF dimension without a coordinate), with the epoch of each event.

Every group, dim and variable is checked against the vocabulary
(:mod:`bioprop.runlog.vocabulary`) when it is declared.

:class:`RunRecorder` declares groups, appends one entry at a time along the
growing dimension and flushes, so a killed run leaves a readable file with every
appended entry. From its first flush on, the file is in HDF5's single-writer/
multiple-reader (SWMR) mode, so a reader can watch a live run
(``h5py.File(path, "r", swmr=True)``).

It is declared as a temporary, renamed into place once in SWMR mode (or closed), so a kill
never leaves a run file with unwritten metadata; a killed writer's file opens in plain
readers after ``bioprop recover`` (:mod:`~bioprop.runlog.recover`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import fsync_path, remove_leftovers, replace, temporary
from ..outputs import OutputExistsError
from .reader import UNFINISHED, text_attribute
from .storage import DIMENSION_ONLY, STATUS_WIDTH, chunks_for, status_dtype
from .vocabulary import check_declaration
from .writer_lock import hold_writer_lock

__all__ = ["RunFileExistsError", "RunRecorder"]


class RunFileExistsError(OutputExistsError):
    """The run file exists and neither ``force`` nor ``resume`` was given."""


class RunRecorder:
    """Write a run file entry by entry, and let readers watch it while it grows.

    The file is created in HDF5's newest format (``libver="latest"``) because that is
    what single-writer/multiple-reader (SWMR) mode needs. The recorder has two stages:

    1. **declaring**: :meth:`declare` and :meth:`declare_events` create the groups,
       datasets and their attributes;
    2. **appending**, from the first :meth:`flush` (or :meth:`start_swmr`) on: the file
       is in SWMR mode, readers open it with ``h5py.File(path, "r", swmr=True)``, and
       HDF5 allows no new group, dataset or attribute, only appending to datasets that
       exist. The one root attribute that changes in this stage, ``status``, is a
       fixed-width string rewritten in place, which SWMR allows.

    The file is ``RUN.h5.<pid>.tmp`` until it enters SWMR mode (or is closed), then `path`,
    locked while the recorder lives (:mod:`~bioprop.runlog.writer_lock`).

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
        if self.path.is_dir():  # checked now: the file is only renamed to it later
            raise IsADirectoryError(f"{self.path}: is a folder, not a run file")
        if self.path.exists() and not force:
            raise RunFileExistsError(self.path)
        remove_leftovers(self.path)  # temporaries of killed writers of this path
        #: the temporary written until the file is in SWMR mode; None once it is in place
        self._tmp = temporary(self.path)
        #: the descriptor holding the writer's lock (hold_writer_lock) once in place
        self._lock = None
        try:
            self._file = h5py.File(self._tmp, "w", libver="latest")
        except OSError as err:  # h5py's own text buries the reason in its library's words
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise OSError(f"{self.path}: cannot create the run file ({reason})") from None
        #: group → (h5py group, dims, variable names) of groups grown along dims[0]
        self._groups: dict[str, tuple] = {}
        #: group → (h5py group, event dim, variable names) of event lists (spikes)
        self._events: dict[str, tuple] = {}
        self._file.attrs.update({k: v for k, v in attrs.items()})
        self._file.attrs.create("status", b"running", dtype=status_dtype())

    @property
    def attrs(self) -> dict:
        """The root attributes (provenance and status), as written."""
        return dict(self._file.attrs)

    # ---------------------------------------------------------------- layout
    @property
    def swmr(self) -> bool:
        """Is the file in SWMR mode (readers may watch; nothing can be declared)?"""
        return self._file.id.valid and self._file.swmr_mode

    def _declaring(self, what):
        if self.swmr:
            raise RuntimeError(f"{what}: the run file is in SWMR mode, where HDF5 creates no "
                               "group, dataset or attribute; declare everything before the "
                               "first flush()")

    def has(self, group: str) -> bool:
        """Is `group` declared (in this session, or in the file being continued)?"""
        return group in self._groups or group in self._events

    def grown_groups(self) -> list:
        """The declared groups of variables grown along a first dimension."""
        return list(self._groups)

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

        Raises
        ------
        VocabularyError
            For a section, dim or variable the run-file vocabulary does not have.
        """
        import h5py

        self._declaring(f"declare({group!r})")
        check_declaration(group, variables, dims)
        coords = coords or {}
        g = self._file.require_group(group)
        grow = dims[0]
        # an entry opened but never committed (a kill between the two) reads as UNFINISHED,
        # which no epoch or batch can be, and which open_run drops
        scales = {grow: g.create_dataset(grow, shape=(0,), maxshape=(None,), dtype="i8",
                                         chunks=(256,), fillvalue=UNFINISHED)}
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
        for name, attrs in variables.items():
            ds = g.create_dataset(name, shape=(0, *fixed), maxshape=(None, *fixed), dtype="f8",
                                  chunks=chunks_for(fixed), fillvalue=np.nan)
            for axis, dim in enumerate(dims):
                ds.dims[axis].attach_scale(scales[dim])
            ds.attrs.update(attrs)
            ds.attrs["_FillValue"] = np.nan
        self._groups[group] = (g, tuple(dims), list(variables))

    def write_table(self, group: str, columns: dict, *, dim: str):
        """Write a small fixed table: one 1-D variable per column along `dim`.

        Parameters
        ----------
        group : str
            Group name, e.g. ``"phases"``.
        columns : dict
            Column name → (values, attributes); text columns are stored as netCDF strings.
        dim : str
            The rows' dimension; its coordinate is the row index.

        Unlike :meth:`declare`, nothing grows: the table is written whole, before the
        file enters SWMR mode.
        """
        import h5py

        self._declaring(f"write_table({group!r})")
        check_declaration(group, columns, (dim,))
        g = self._file.create_group(group, track_order=True)  # columns in the order given
        n = len(next(iter(columns.values()))[0])
        scale = g.create_dataset(dim, data=np.arange(n))
        scale.make_scale(dim)
        for name, (values, attrs) in columns.items():
            values = np.asarray(values)
            if values.dtype.kind in "US":
                ds = g.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
            else:
                ds = g.create_dataset(name, data=values.astype("f8"))
            ds.dims[0].attach_scale(scale)
            ds.attrs.update(attrs)

    def declare_events(self, group: str, variables: dict, *, dim: str = "spike"):
        """Create 1-D lists of events (e.g. spikes) in `group` that grow along `dim`.

        Parameters
        ----------
        group : str
            Group name; it may also hold variables of :meth:`declare`.
        variables : dict
            Variable name → (dtype, attributes). One of them must be ``<dim>_epoch``,
            the epoch each event belongs to, in non-decreasing order (``--resume`` cuts
            the lists by it).
        dim : str
            The events' dimension. It has no coordinate variable (netCDF's "dimension
            but not a variable"), so xarray shows it as a plain dimension.

        Events are sparse and written rarely: they are stored gzip-compressed.
        """
        self._declaring(f"declare_events({group!r})")
        check_declaration(group, variables, (dim,), events=True)
        if f"{dim}_epoch" not in variables:
            raise ValueError(f"declare_events({group!r}): needs a {dim}_epoch variable")
        g = self._file.require_group(group)
        # a scale without data: it only names the dimension, and stores nothing
        scale = g.create_dataset(dim, shape=(0,), maxshape=(None,), dtype="i1", chunks=(4096,))
        scale.make_scale(DIMENSION_ONLY + f"{0:10d}".encode())
        for name, (dtype, attrs) in variables.items():
            ds = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,),
                                  compression="gzip", shuffle=True)
            ds.dims[0].attach_scale(scale)
            ds.attrs.update(attrs)
        self._events[group] = (g, dim, list(variables))

    # ---------------------------------------------------------------- entries
    def grow(self, group: str):
        """Open a new entry along `group`'s growing dimension, every value NaN.

        Fill it with :meth:`put` and close it with :meth:`commit`; until then a plain
        netCDF reader sees the entry at the coordinate value ``UNFINISHED`` (-1),
        :func:`~bioprop.runlog.reader.open_run` leaves it out and ``--resume`` cuts it.
        """
        g, dims, names = self._groups[group]
        n = len(g[dims[0]]) + 1
        for name in names:
            g[name].resize(n, axis=0)

    def put(self, group: str, values: dict, **at):
        """Write `values` into the open entry of `group`.

        `at` picks a place along fixed dimensions by coordinate value (e.g. ``batch=4``);
        without it the values fill the whole entry.
        """
        g, dims, names = self._groups[group]
        unknown = set(values) - set(names)
        if unknown:
            raise KeyError(f"{group}: undeclared variable(s) {sorted(unknown)}; declared: {names}")
        index = [len(g[dims[0]])]
        for dim, value in at.items():  # the fixed dims named in `at` lead, in declared order
            if dims[len(index)] != dim:
                raise KeyError(f"{group}: put(..., {dim}=...) needs dims {dims}")
            index.append(int(np.flatnonzero(g[dim][:] == value)[0]))
        for name, value in values.items():
            g[name][tuple(index)] = value

    def commit(self, group: str, index_value):
        """Close the open entry of `group` by writing its coordinate value."""
        g, dims, _ = self._groups[group]
        scale = g[dims[0]]
        scale.resize((len(scale) + 1,))
        scale[-1] = index_value

    def append(self, group: str, index_value, values: dict):
        """Append one entry along `group`'s growing dimension.

        The variables are written first and the coordinate last, so an entry that a
        crash interrupts has the coordinate ``UNFINISHED`` (-1), never a wrong value.
        """
        g, _, names = self._groups[group]
        unknown = set(values) - set(names)
        if unknown:
            raise KeyError(f"{group}: undeclared variable(s) {sorted(unknown)}; declared: {names}")
        self.grow(group)
        self.put(group, values)
        self.commit(group, index_value)

    def append_events(self, group: str, values: dict):
        """Append events: one 1-D array of equal length for every declared variable.

        The dimension scale grows last, so a crash leaves no event half written.
        """
        g, dim, names = self._events[group]
        if set(values) != set(names):
            raise KeyError(f"{group}: events need exactly {sorted(names)}, got {sorted(values)}")
        arrays = {k: np.asarray(v).ravel() for k, v in values.items()}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"{group}: event arrays of different lengths {sorted(lengths)}")
        count = lengths.pop()
        start = len(g[dim])
        for name, array in arrays.items():
            g[name].resize((start + count,))
            g[name][start:] = array
        g[dim].resize((start + count,))

    def start_swmr(self):
        """Switch to SWMR mode: from now on readers may watch and nothing can be declared.

        The file, written as a temporary so far, is locked, synced and renamed into place.
        """
        if not self.swmr:
            self._file.flush()
            self._file.swmr_mode = True
            # HDF5 drops its own lock in SWMR mode; ours tells recover the writer lives
            self._lock = hold_writer_lock(self._tmp)
            self._put_in_place()

    def _put_in_place(self):
        """Rename the synced temporary to the run file (atomically: the old or the new)."""
        if self._tmp is not None:
            fsync_path(self._tmp)
            replace(self._tmp, self.path)
            self._tmp = None

    def discard(self):
        """Close and delete a file not yet in place; a file already in place is kept."""
        self._close_file(None)
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def flush(self):
        """Push every appended entry to disk, where SWMR readers see it.

        The first flush ends the declaring stage (:meth:`start_swmr`).
        """
        self.start_swmr()
        self._file.flush()

    def set_group_attrs(self, group: str, **attrs):
        """Set attributes of a declared group (only while declaring)."""
        self._declaring(f"set_group_attrs({group!r})")
        self._file[group].attrs.update(attrs)

    def set_attrs(self, **attrs):
        """Set root attributes; in SWMR mode only ``status`` (rewritten in place)."""
        if not self.swmr:
            self._file.attrs.update({k: v for k, v in attrs.items() if k != "status"})
            if "status" in attrs:
                self._file.attrs.create("status", attrs["status"].encode("ascii"),
                                        dtype=status_dtype())
        elif set(attrs) - {"status"}:
            raise RuntimeError(f"set_attrs({', '.join(sorted(attrs))}): the run file is in SWMR "
                               "mode, where HDF5 creates no attribute")
        elif "status" in attrs:
            # SWMR creates no attribute, but rewrites an existing one of the same size
            import h5py

            value = np.array(attrs["status"].encode("ascii"), dtype=f"S{STATUS_WIDTH}")
            h5py.h5a.open(self._file.id, b"status").write(value)
        self._file.flush()

    @property
    def status(self) -> str:
        """The run's status: running, complete, diverged or interrupted."""
        return text_attribute(self._file.attrs["status"])

    def close(self, status: str | None = None):
        """Close the file, setting its `status` first if given, and put it in place."""
        self._close_file(status)
        self._put_in_place()

    def _close_file(self, status):
        if self._file.id.valid:
            if status is not None:
                self.set_attrs(status=status)
            self._file.close()  # clears HDF5's writer flags
        if self._lock is not None:  # only then: a live writer's flags are never unlocked
            os.close(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        status = None
        if exc_type is not None and self._file.id.valid and self.status == "running":
            status = "interrupted"
        self.close(status)
        return False
