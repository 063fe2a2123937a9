"""How the run file stores things in HDF5: chunk shapes, the netCDF marker of a dimension
without coordinates, and the fixed-width ``status`` attribute that SWMR mode can rewrite."""
from __future__ import annotations

import numpy as np

__all__ = ["DIMENSION_ONLY", "STATUS_WIDTH", "chunks_for", "status_dtype"]


#: The scale name of a netCDF-4 dimension that has no coordinate variable; h5netcdf
#: (and so xarray) reads it as a plain dimension. Followed by the length, 10 wide.
DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable."

#: the ``status`` attribute is a string of this fixed width, so that SWMR mode can
#: rewrite it in place
STATUS_WIDTH = 16


def status_dtype():
    """The HDF5 type of the `status` attribute: ASCII of :data:`STATUS_WIDTH` bytes."""
    import h5py

    return h5py.string_dtype("ascii", STATUS_WIDTH)


def chunks_for(fixed) -> tuple:
    """Chunk shape of a variable with fixed dims `fixed` grown along a first dimension.

    64 entries per chunk for small per-epoch figures; one entry per chunk for weight
    matrices and activity, which are written rarely and would otherwise allocate space
    for entries that never come; and for entries over 2**21 values (the activity of many
    training batches) one chunk per slice of the leading fixed dims, the unit they are
    written in. The last two fixed dims are never split.
    """
    fixed = list(fixed)
    if int(np.prod(fixed)) <= 256:
        return (64, *fixed)
    for axis in range(len(fixed) - 2):  # a matrix (weights, a trial's activity) stays whole
        if int(np.prod(fixed)) <= 2 ** 21:
            break
        fixed[axis] = 1
    return (1, *fixed)
