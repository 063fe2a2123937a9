"""Analysis of learning rules and run files: metrics on arrays and probe diagnostics."""
from .diagnostics import DIAGNOSTICS, layer_diagnostics
from .metrics import angle, lipschitz_estimate, reconstruction_error, relative_distance

__all__ = ["angle", "relative_distance", "reconstruction_error", "lipschitz_estimate",
           "layer_diagnostics", "DIAGNOSTICS"]
