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
from ._version import __version__
from .runlog import open_run
from .training import DivergenceError, RunInterrupted, RunResult, run


__all__ = ["load_model", "load_protocol", "run", "open_run", "RunResult", "SpecError",
           "DivergenceError", "RunInterrupted", "sweep", "SweepResult", "__version__"]
