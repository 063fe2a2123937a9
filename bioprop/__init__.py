"""bioprop: target propagation in Brian2 populations.

The public API::

    net = bioprop.build("default", engine="reference", epochs=3)  # a Network (docs/python-api.md)
    trace = net.step(x, y)                                  # one batch, as an xarray Dataset
    result = net.fit(record="runs/api.h5")                  # epochs, and the usual run file
    model = bioprop.load_model("models/default.toml")      # or None: the embedded default
    protocol = bioprop.load_protocol("protocols/default.toml")
    result = bioprop.run(model, protocol, output="runs/dtp.h5")
    tree = bioprop.open_run(result.path)                    # an xarray.DataTree
    done = bioprop.sweep(grid=["rule.target=tp,dtp"], seeds=5)  # one run file per point
    best = bioprop.search(space=["optimizer.forward.lr=log-uniform:1e-4:1e-1"],
                          rungs=[2, 8], overrides=["data.validation=300"])  # halving

    @bioprop.register.target_rule("halfway")              # a user's rule (docs/extensions.md)
    def halfway(h_lower, g_target, g_forward): ...
"""
from .spec import SpecError, load_model, load_protocol
from .sweep import SearchResult, SweepResult, search, sweep
from ._version import __version__
from .api import Network, NetworkArrayError, NetworkFileError, build
from .datasets import Dataset, load_dataset
from .runlog import open_run
from .training import DivergenceError, RunInterrupted, RunResult, run
from . import extensions as register


__all__ = ["Network", "build", "load_dataset", "Dataset", "load_model", "load_protocol", "run",
           "open_run", "RunResult", "SpecError", "NetworkArrayError", "NetworkFileError",
           "DivergenceError", "RunInterrupted", "sweep", "SweepResult", "search", "SearchResult",
           "register", "__version__"]
