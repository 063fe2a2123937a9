"""Analysis of learning rules and run files: metrics on arrays, probe diagnostics,
activity statistics, figures and reports."""
from .activity import (population_rate, raster, rate_statistics, recorded_spikes,
                       representational_similarity, spike_rates)
from .diagnostics import layer_diagnostics
from .metrics import angle, lipschitz_estimate, reconstruction_error, relative_distance

__all__ = ["angle", "relative_distance", "reconstruction_error", "lipschitz_estimate",
           "layer_diagnostics", "rate_statistics", "population_rate",
           "spike_rates", "raster", "recorded_spikes", "representational_similarity"]
