"""Who holds a run file: the writer's lock, and a killed writer told from a live one.

HDF5 marks a file its writer has open with flags in the superblock
(:mod:`~bioprop.runlog.superblock`), but drops its own file lock once the writer is in SWMR
mode, and a killed writer leaves the flags behind: the flags alone cannot tell a live writer
from a dead one. So a bioprop writer holds a shared ``flock`` on its run file from the
moment the file is in place until it closes it (:func:`hold_writer_lock`; shared, because
SWMR readers take a shared lock too), and the kernel drops it when the process dies, however
it dies. :func:`in_use` asks for the exclusive lock without waiting: it is refused while any
process holds the file (a writer, or an HDF5 reader).
"""
from __future__ import annotations

import os

from .superblock import read_superblock

__all__ = ["KilledWriterWarning", "hold_writer_lock", "in_use", "killed_writer"]


class KilledWriterWarning(UserWarning):
    """A run file whose writer was killed: bioprop reads it, plain readers need ``bioprop recover``."""


def hold_writer_lock(path):
    """A file descriptor holding a shared lock on `path` until it is closed (or the process
    dies), or None where locks are not available."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, and recover cannot tell live from killed
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # a file system without flock: go on without it
        pass
    return fd


def in_use(path) -> bool:
    """Does another process (or another open file here) hold `path` open under a lock: a
    bioprop run writing it, or an HDF5 reader?"""
    try:
        import fcntl
    except ImportError:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no flock on this file system: nothing to tell by
        return False
    finally:
        os.close(fd)  # releases the probe's lock at once
    return False


def killed_writer(path) -> bool:
    """Does `path` carry writer flags that no live process explains (a killed writer)?"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        block = read_superblock(fd)
    finally:
        os.close(fd)
    return bool(block and block.flags) and not in_use(path)
