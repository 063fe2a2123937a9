"""Run files whose writer was killed: tell them from live ones, and make any reader open them.

A writer killed in SWMR mode leaves HDF5's "open for write" flags set in the superblock
(:mod:`~bioprop.runlog.superblock`), and plain HDF5 readers, xarray among them, then refuse
the file although every flushed epoch is in it. :func:`recover_run` (``bioprop recover
RUN.h5``) clears the flags in place; it changes nothing else.

The flags alone cannot tell a killed writer from a live one, and clearing a live writer's
flags would let plain readers into a file that is still changing: a file that
:func:`~bioprop.runlog.writer_lock.in_use` finds held by a process is refused, and nothing
is changed.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..atomic import remove_leftovers
from .reader import UNFINISHED, text_attribute
from .superblock import SWMR_WRITE, clear_flags, read_superblock
from .writer_lock import in_use

__all__ = ["recover_run"]


def recover_run(path) -> str:
    """Make the run file `path`, whose writer was killed, open in every HDF5 reader.

    Clears the superblock's writer flags (as ``h5clear -s`` does), after checking that it is
    a bioprop run and that no process has it open, and removes the temporaries of killed
    writers beside it. Every flushed epoch stays as it was; an entry a kill left unfinished
    keeps the epoch ``UNFINISHED`` (-1). Recovering a file twice changes nothing the second
    time, and a kill during recovery leaves a file that recovery still fixes.

    Returns
    -------
    str
        One line saying what was done.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A directory, a file that is not HDF5 or not a bioprop run, one that a live process
        has open, or one whose metadata the kill left unreadable. The file is then unchanged.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a run file")
    removed = remove_leftovers(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run file"
                                + (f" (removed {len(removed)} temporary file(s) of a run "
                                   "killed before its file was in place)" if removed else ""))
    fd = os.open(path, os.O_RDONLY)
    try:
        block = read_superblock(fd)
    finally:
        os.close(fd)
    if block is None:
        raise ValueError(f"{path}: not an HDF5 file, so not a bioprop run file")
    if not block.flags:
        return f"{path}: nothing to recover; {_contents(path)}; it opens in any HDF5 reader"
    if in_use(path):
        raise ValueError(f"{path}: another process has it open (a run still writing it, or a "
                         "reader); recover it once that process has ended")
    if block.flags & SWMR_WRITE:
        _contents(path, swmr=True)  # a run file? (raises, and nothing is changed)
    return f"{path}: recovered: {_clear(path, block)}; it now opens in any HDF5 reader"


def _clear(path, block) -> str:
    """Clear the flags of `path` and check that a plain reader opens it as a run; put the
    superblock back as it was if not."""
    try:
        f = open(path, "r+b")
    except PermissionError:
        raise ValueError(f"{path}: no permission to write it; recover a copy") from None
    with f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        # a kill between HDF5 storing a larger end of file and writing up to it leaves the
        # file short, which a plain reader calls truncated: the missing tail was never
        # written, so zeros (a sparse extension) stand for it
        if size < block.end_of_file:
            os.ftruncate(fd, block.end_of_file)
        clear_flags(fd, block)
        try:
            return f"cleared the writer flags a killed run left; {_contents(path)}"
        except ValueError:
            os.pwrite(fd, block.raw, block.offset)  # as it was: the file is unchanged
            os.ftruncate(fd, size)
            os.fsync(fd)
            raise


def _contents(path, swmr=False) -> str:
    """What a run file holds, in words ("epochs 0-3 finished, status running"), read with a
    plain HDF5 reader (or a SWMR one); ValueError for a file that is not a readable run."""
    import h5py

    try:
        with h5py.File(path, "r", swmr=swmr) as f:
            if "bioprop_format_version" not in f.attrs:
                raise ValueError(f"{path}: an HDF5 file, but not a bioprop run file (no "
                                 "bioprop_format_version attribute); nothing was changed")
            epochs = f["train/epoch"][:] if "train/epoch" in f else []
            status = text_attribute(f.attrs.get("status", b"unknown"))
    except OSError as err:
        raise ValueError(f"{path}: HDF5 cannot read it ({err}); nothing was changed") from None
    done = [int(e) for e in epochs if e != UNFINISHED]
    held = f"epochs {done[0]}-{done[-1]}" if len(done) > 1 else \
        f"epoch {done[0]}" if done else "no finished epoch"
    return f"it holds {held}, status {status}"
