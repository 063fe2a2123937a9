"""Continuing a run file after its checkpoint (``bioprop run --resume``).

HDF5 opens a file whose SWMR writer was killed only for reading, so a resumed run
cannot append to it. :func:`reopen_run` copies the file's entries up to the checkpoint's
epoch into a new file and swaps it in, without a moment at which neither file holds the
finished epochs:

1. the copy is written to ``RUN.h5.<pid>.tmp`` while the original stays untouched (a kill
   leaves the original and a temporary, which the next ``--resume`` removes);
2. the copy enters SWMR mode (the state in which a killed writer's file still opens, and
   which ``bioprop recover`` clears for plain readers), is flushed and fsynced;
3. it is renamed over the original in one atomic step, and the open file goes on as the
   resumed run's recorder.

A file of format version 1 is rewritten as today's version
(:mod:`bioprop.runlog.formats`), so the resumed run appends to the groups it declares.
:class:`~bioprop.runlog.recorder.RunRecorder` writes every run file this way; here it is
a copy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import remove_leftovers
from .reader import UNFINISHED, attributes, coordinate_values, data_variables, dims_of, \
    groups_with_data, read_run_file
from .formats import RecordedSpec, format1_phases, rate_in_hz
from .recorder import RunRecorder
from .vocabulary import FORMAT_VERSION, PHASES, RATE, SECTIONS

__all__ = ["reopen_run"]


def reopen_run(path, *, epoch: int) -> RunRecorder:
    """A recorder that continues the run file `path` after `epoch`.

    Every entry recorded after `epoch` (an epoch that finished after the last
    checkpoint, or one a kill left unfinished) is cut, so the resumed run records it
    again, identically; with ``epoch = -1`` (a checkpoint during feedback pre-training)
    no entry is kept. Temporaries left by killed rewrites are removed first.

    Parameters
    ----------
    path : path
        The run file; its root attributes are kept and its status becomes ``running``.
    epoch : int
        The checkpoint's epoch.
    """
    path = Path(path)
    remove_leftovers(path)
    with read_run_file(path) as old:
        recorder = RunRecorder(path, {**old.attrs, "bioprop_format_version": FORMAT_VERSION},
                               force=True)  # written as a temporary
        try:
            upgrade = _Upgrade(old)
            for name, group in groups_with_data(old):
                _copy_group(recorder, name, group, epoch, upgrade)
            upgrade.write_phases(recorder)
            recorder.start_swmr()  # synced, then renamed over the original in one step
        except BaseException:
            recorder.discard()  # the original run file was never touched
            raise
    return recorder


def _kept(epochs, epoch) -> int:
    """How many leading entries of a growing coordinate are finished and ≤ `epoch`."""
    cut = np.flatnonzero((epochs == UNFINISHED) | (epochs > epoch))
    return int(cut[0]) if len(cut) else len(epochs)


class _Upgrade:
    """What a copy of a version-1 file changes: group names, the phases attribute (a
    table now) and spiking rates' attributes; nothing for a file of today's version."""

    def __init__(self, old):
        self.old = int(old.attrs["bioprop_format_version"]) < FORMAT_VERSION
        self.spec = RecordedSpec(old.attrs) if self.old else None
        self.phases = None

    def name(self, name):
        return self.spec.renamed(name) if self.old else name

    def variable_attrs(self, name, key, attrs):
        scale = self.spec.scale_of(name) if self.old and key == RATE else None
        return attrs if scale is None else rate_in_hz(attrs, scale)

    def group_attrs(self, group):
        attrs = attributes(group)
        if self.old and "phases" in attrs:
            runs = attrs.pop("phases")
            if self.phases is None and "time" in group:
                self.phases = format1_phases(runs, group["time"][:])
        return attrs

    def write_phases(self, recorder):
        if self.phases is not None:
            columns = SECTIONS[PHASES].variables
            recorder.write_table(PHASES, {k: (v, columns[k].attrs())
                                          for k, v in self.phases.items()}, dim="phase")


def _copy_group(recorder, old_name, old, epoch, upgrade):
    """Declare `old` (an open group of another run file) in `recorder`, under its name
    of today's format, and copy its entries up to `epoch`."""
    name = upgrade.name(old_name)
    if name == PHASES:  # a table, written whole
        recorder.write_table(name, {k: (coordinate_values(ds), attributes(ds))
                                    for k, ds in data_variables(old).items()}, dim="phase")
        return
    grown, events = {}, {}
    for key, ds in data_variables(old).items():
        dims = dims_of(ds)
        (grown if dims[0] == "epoch" else events)[key] = dims
    if grown:
        dims = next(iter(grown.values()))
        recorder.declare(name, {k: upgrade.variable_attrs(name, k, attributes(old[k]))
                                for k in grown}, dims=dims,
                         coords={d: coordinate_values(old[d]) for d in dims[1:]},
                         coord_attrs={d: attributes(old[d]) for d in dims})
        epochs = old["epoch"][:]
        for i in range(_kept(epochs, epoch)):
            recorder.append(name, epochs[i], {k: old[k][i] for k in grown})
    if events:
        dim = next(iter(events.values()))[0]
        keep = int(np.searchsorted(old[f"{dim}_epoch"][:], epoch, side="right"))
        recorder.declare_events(name, {k: (old[k].dtype, attributes(old[k])) for k in events},
                                dim=dim)
        recorder.append_events(name, {k: old[k][:keep] for k in events})
    recorder.set_group_attrs(name, **upgrade.group_attrs(old))
