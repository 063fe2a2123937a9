"""bioprop: target propagation in Brian2 populations.

The public API::

    model = bioprop.load_model("models/default.toml")      # or None: the embedded default
    protocol = bioprop.load_protocol("protocols/default.toml")
    result = bioprop.run(model, protocol, output="runs/dtp.h5")
    tree = bioprop.open_run(result.path)                    # an xarray.DataTree
    done = bioprop.sweep(grid=["rule.target=tp,dtp"], seeds=5)  # one run file per point
"""
from .spec import SpecError, load_model, load_protocol
from .sweep import SweepResult, sweep
from .training import DivergenceError, RunResult, run

__version__ = "0.1.0"


def open_run(path, chunks=None):
    """Open a run file as an ``xarray.DataTree`` (see :func:`bioprop.record.open_run`);
    ``chunks={}`` makes its arrays dask arrays, for reductions chunk by chunk."""
    from .record import open_run as _open_run
    return _open_run(path, chunks=chunks)


__all__ = ["load_model", "load_protocol", "run", "open_run", "RunResult", "SpecError",
           "DivergenceError", "sweep", "SweepResult", "__version__"]
