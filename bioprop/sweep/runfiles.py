"""What a point's run file says about the point: whether it is finished, and with which
settings it was run."""
from __future__ import annotations

from pathlib import Path

__all__ = ["FINISHED", "recorded"]

#: run-file statuses of a point that is done; anything else is run (or resumed) again
FINISHED = ("complete", "diverged")


def recorded(path: Path) -> dict:
    """The root attributes of a point's run file that a sweep compares.

    Parameters
    ----------
    path : Path
        The point's run file, which may not exist.

    Returns
    -------
    dict
        ``status``, ``model_toml`` and ``protocol_toml`` as text; {} when there is no
        file, ``{"status": "unreadable"}`` when it cannot be opened (truncated by a
        kill before its first flush).
    """
    from ..runlog import read_run_file, text_attribute

    if not path.exists():
        return {}
    try:
        with read_run_file(path) as f:  # a killed point's file opens only as a SWMR reader
            return {k: text_attribute(v) for k, v in f.attrs.items()
                    if k in ("status", "model_toml", "protocol_toml")}
    except OSError:
        return {"status": "unreadable"}
