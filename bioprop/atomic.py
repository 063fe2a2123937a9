"""Files that are replaced whole or not at all, and the leftovers of writers that were killed.

A file that must never be seen half written (a checkpoint, a run file rewritten by
``--resume``) is written to a temporary beside it, named after the writing process,
made durable with ``fsync`` and renamed into place: a kill at any moment leaves either
the old file or the new one. A kill before the rename leaves the temporary behind;
:func:`remove_leftovers` removes those whose writer is gone.

* :func:`temporary` — the temporary of a target, for this process.
* :func:`fsync_path` — push a file's data to disk.
* :func:`replace` — rename a finished temporary over its target, durably.
* :func:`remove_leftovers` — delete the temporaries of a target whose writers died.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["temporary", "fsync_path", "replace", "remove_leftovers"]


def temporary(target) -> Path:
    """``TARGET.<pid>.tmp`` beside `target`: the pid tells a live writer's file from a dead one's."""
    target = Path(target)
    return target.with_name(f"{target.name}.{os.getpid()}.tmp")


def fsync_path(path):
    """Push the data of the file at `path` to disk (any descriptor of a file syncs all of it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(tmp, target):
    """Rename the finished, fsynced `tmp` over `target`, and make the rename durable.

    ``os.replace`` is atomic: any reader, and any later process, finds the old file or
    the new one at `target`, never neither.
    """
    os.replace(tmp, target)
    try:
        fd = os.open(Path(target).parent, os.O_RDONLY)
    except OSError:  # a directory that cannot be opened (some platforms): the rename stands
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_leftovers(target) -> list:
    """Delete the ``TARGET.<pid>.tmp`` files of `target` whose writing process has ended.

    A temporary of a live process (another run writing right now) is kept. Returns the
    removed paths.
    """
    target = Path(target)
    removed = []
    for path in target.parent.glob(f"{target.name}.*.tmp"):
        pid = path.name[len(target.name) + 1:-len(".tmp")]
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue  # not one of ours, or a writer still at work
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to another user
        return True
    return True
