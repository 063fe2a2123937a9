"""What changed between run-file format versions, and how a version-1 file reads as today's.

Version 2 (this bioprop) differs from version 1 in four ways:

* the test figures are in ``/test`` (version 1: ``/eval``);
* a pathway's group is named by the layers it joins, ``/pathways/hidden1_to_hidden2``
  (version 1: ``forward_2``, and ``feedback_2`` for ``hidden2_to_hidden1``);
* the phases of a recorded trial are the table ``/phases`` (version 1: a JSON string
  ``[[phase, first ms, last ms], ...]`` in each activity group's ``phases`` attribute);
* a spiking layer's ``rate`` reads in Hz: its stored values are still fractions of the
  layer's maximal rate, and its ``scale_factor`` attribute (that rate) converts them
  (version 1: the fractions, with units "1").

:func:`upgrade_tree` gives :func:`~bioprop.runlog.reader.open_run` a version-1 file in
today's layout; :func:`renamed_group` is the renaming, also used by ``--resume``
(:mod:`bioprop.runlog.rewrite`), which rewrites a version-1 file as version 2.
"""
from __future__ import annotations

import json
import tomllib

import numpy as np

from .vocabulary import FORMAT1_PATHWAY, FORMAT_VERSION, HZ, PHASES, RATE, TEST

__all__ = ["RecordedSpec", "layer_names", "max_rates", "rate_in_hz", "renamed_group", "format1_phases",
           "upgrade_tree", "stored_name"]

#: top-level groups that version 1 named otherwise
_FORMAT1_GROUPS = {"eval": TEST}


def stored_name(f, group: str) -> str:
    """The name under which an open h5py file `f` of either format stores the top-level
    `group` (today's name): ``/test`` is ``/eval`` in version 1."""
    if group in f:
        return group
    return next((old for old, new in _FORMAT1_GROUPS.items() if new == group and old in f),
                group)


def layer_names(model_toml: str) -> list:
    """The layer names of a recorded model, ``input`` first."""
    from ..spec import parse_model

    return parse_model(tomllib.loads(model_toml), "model_toml").names


def max_rates(model_toml: str, protocol_toml: str) -> dict:
    """{layer: the rate in Hz at which its recorded rate is 1} of the spiking layers of a
    recorded model and protocol (those whose population kind has a maximal rate)."""
    from ..populations import population_kind
    from ..spec import parse_model
    from ..units import parse_duration

    model = parse_model(tomllib.loads(model_toml), "model_toml")
    dt = parse_duration(tomllib.loads(protocol_toml)["phases"]["dt"])
    out = {}
    for layer in model.layers:
        max_rate = population_kind(layer).max_rate
        if max_rate is not None:
            out[layer.name] = float(max_rate(layer, dt))
    return out


def rate_in_hz(attrs: dict, max_rate: float) -> dict:
    """The attributes of a spiking layer's rate, stored as fractions of `max_rate` (Hz).

    netCDF's ``scale_factor`` makes every netCDF reader (xarray included) multiply the
    stored values by it, so the rate reads in Hz while the stored bits stay the ones
    the learning rules computed with.
    """
    return {**attrs, "units": HZ, "scale_factor": float(max_rate),
            "long_name": "firing rate: the spike trace, stored as a fraction of the maximal "
                         "rate (scale_factor, Hz)"}


def renamed_group(path: str, names) -> str:
    """Today's name of a version-1 group path (no leading slash), e.g. ``eval`` → ``test``
    and ``pathways/forward_2`` → ``pathways/hidden1_to_hidden2``; others are unchanged.

    `names` are the model's layer names, ``input`` first (:func:`layer_names`).
    """
    parts = path.strip("/").split("/")
    parts[0] = _FORMAT1_GROUPS.get(parts[0], parts[0])
    if parts[0] == "pathways" and len(parts) > 1:
        kind, _, index = parts[1].rpartition("_")
        if kind in FORMAT1_PATHWAY and index.isdigit():
            parts[1] = FORMAT1_PATHWAY[kind](names, int(index))
    return "/".join(parts)


def format1_phases(runs: str, time) -> dict:
    """The ``/phases`` columns (name, start, duration in ms) of a version-1 ``phases``
    attribute, ``[[phase, first ms, last ms], ...]`` over the recorded time points `time`.

    Version 1 kept only the recorded points, so a phase starts at its first recorded
    point and lasts until the next phase's (the last one, one recording step past its
    last point): exact when every step was recorded, to within the recording's time
    step otherwise. Which somas and dendrites took part was not recorded.
    """
    runs = json.loads(runs)
    step = float(time[1] - time[0]) if len(time) > 1 else 0.0
    starts = np.array([float(start) for _, start, _ in runs])
    ends = np.append(starts[1:], float(runs[-1][2]) + step) if runs else starts
    return {"name": [name for name, _, _ in runs], "start": starts, "duration": ends - starts}


class RecordedSpec:
    """The layer names and maximal rates of a version-1 run, read from its recorded model
    only when a group needs them (a file without pathways or activity needs no model)."""

    def __init__(self, attrs):
        self.attrs, self._names, self._scales = attrs, None, None

    def renamed(self, path: str) -> str:
        """Today's name of the group `path` (:func:`renamed_group`)."""
        if path.strip("/").startswith("pathways/") and self._names is None:
            self._names = layer_names(self.attrs["model_toml"])
        return renamed_group(path, self._names)

    def scale_of(self, path: str):
        """The maximal rate (Hz) of the spiking layer whose activity group is `path`."""
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("layers", "batches"):
            return None
        if self._scales is None:
            self._scales = max_rates(self.attrs["model_toml"], self.attrs["protocol_toml"])
        return self._scales.get(parts[1])


def upgrade_tree(tree):
    """A version-1 run as a version-2 DataTree (the same tree for a version-2 run).

    Groups are renamed (:func:`renamed_group`), ``/phases`` is built from the first
    activity group's ``phases`` attribute, and spiking layers' rates are multiplied by
    their maximal rate. Arrays stay lazy except those rates, which load when converted
    (unless the tree holds dask arrays).
    """
    import xarray as xr

    from .vocabulary import SECTIONS

    if int(tree.attrs.get("bioprop_format_version", FORMAT_VERSION)) >= FORMAT_VERSION:
        return tree
    spec = RecordedSpec(tree.attrs)
    nodes, phases = {}, None
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "phases" in ds.attrs:
            runs = ds.attrs.pop("phases")
            if phases is None and "time" in ds.coords:
                phases = format1_phases(runs, ds["time"].values)
        scale = spec.scale_of(node.path)
        if scale is not None and RATE in ds:
            ds[RATE] = (ds[RATE] * scale).assign_attrs(rate_in_hz(ds[RATE].attrs, scale))
        nodes["/" + spec.renamed(node.path)] = ds
    if phases is not None:
        columns = SECTIONS[PHASES].variables
        nodes["/" + PHASES] = xr.Dataset(
            {k: ("phase", np.asarray(v), columns[k].attrs()) for k, v in phases.items()},
            coords={"phase": np.arange(len(phases["name"]))})
    nodes["/"].attrs["bioprop_format_version"] = FORMAT_VERSION
    nodes["/"].attrs["read_from_format_version"] = int(tree.attrs["bioprop_format_version"])
    upgraded = xr.DataTree.from_dict(nodes)
    upgraded.set_close(tree.close)
    return upgraded
