"""Provenance: the root attributes that say where a run came from."""
from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from .._version import __version__
from .vocabulary import FORMAT_VERSION

__all__ = ["provenance"]


def _git_commit() -> str:
    source = Path(__file__).resolve().parent.parent.parent
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
