"""A network's arrays by name: weights, biases and optimizer state in and out of an engine,
and one batch's trace as an xarray Dataset.

Names follow the run file (:mod:`bioprop.runlog.vocabulary`): a pathway is named by the
layers it joins, ``input_to_hidden1`` (forward, W_1) or ``hidden2_to_hidden1`` (feedback,
Q_2), and each layer's neurons are a dim named after the layer, so that a pathway's weights
have dims (post, pre), ``("hidden1", "input")``, and every array of one network fits in one
Dataset. Everything returned is a copy; everything set goes through the engine's
``load_state_arrays``, so the Brian2 engine's synapses follow, and is checked first: a
wrong name, shape or dims raises one :class:`NetworkArrayError` and changes nothing.

xarray is imported where it is used, so that ``import bioprop`` (and so the command
line) does not wait for it and pandas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import suggest
from .runlog.vocabulary import POTENTIAL, RATE, TARGET, pathway_name

__all__ = ["NetworkArrayError", "Pathway", "pathways", "named_arrays", "set_named_arrays",
           "optimizer_arrays", "set_optimizer_arrays", "trace_dataset", "SAMPLE", "POINT"]

#: the dim of a batch's rows, and of the points where a feedback objective evaluates g_l
SAMPLE, POINT = "sample", "point"


class NetworkArrayError(ValueError):
    """An array that does not fit the network: wrong name, shape or dims."""


@dataclass(frozen=True)
class Pathway:
    """One learned pathway: its name, kind, layer index l and the state keys of its
    weight and bias (``W_l``/``b_l`` forward, ``Q_l``/``c_l`` feedback)."""

    name: str
    kind: str
    l: int
    post: str
    pre: str
    weight: str
    bias: str


def pathways(model) -> dict:
    """Name → :class:`Pathway` of every learned pathway, forward ones first."""
    names, out = model.names, {}
    for l in range(1, model.n_layers + 1):
        out[pathway_name(names[l - 1], names[l])] = Pathway(
            pathway_name(names[l - 1], names[l]), "forward", l, names[l], names[l - 1],
            f"W_{l}", f"b_{l}")
    for l in range(2, model.n_layers + 1):
        if model.feedback[l] is not None:
            out[pathway_name(names[l], names[l - 1])] = Pathway(
                pathway_name(names[l], names[l - 1]), "feedback", l, names[l - 1], names[l],
                f"Q_{l}", f"c_{l}")
    return out


def named_arrays(engine, part: str) -> "xarray.Dataset":
    """The ``weight`` or ``bias`` of every pathway as a Dataset (copies)."""
    import xarray as xr

    state = engine.state_arrays()
    out = {}
    for p in pathways(engine.model).values():
        dims = (p.post, p.pre) if part == "weight" else (p.post,)
        out[p.name] = xr.DataArray(state[getattr(p, part)].copy(), dims=dims,
                                   attrs={"pathway": p.kind, "pre": p.pre, "post": p.post})
    return xr.Dataset(out)


def _array(name, value, dims, shape, dtype):
    """`value` as an array of `shape`, a DataArray transposed to `dims` by name."""
    import xarray as xr

    if isinstance(value, xr.DataArray):
        if set(value.dims) != set(dims) or len(value.dims) != len(dims):
            raise NetworkArrayError(f"{name}: dims {tuple(value.dims)}, expected {tuple(dims)}")
        value = value.transpose(*dims).values
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise NetworkArrayError(f"{name}: expected an array of numbers, got "
                                f"{type(value).__name__}") from None
    if array.shape != shape:
        raise NetworkArrayError(f"{name}: shape {array.shape}, expected {shape} "
                                f"({', '.join(f'{d} {n}' for d, n in zip(dims, shape))})")
    return array


def _check_names(given, known, what):
    unknown = [k for k in given if k not in known]
    if unknown:
        raise NetworkArrayError(f"no {what} {unknown[0]!r}; the network's are "
                                f"{', '.join(known)}.{suggest(unknown[0], list(known))}")


def set_named_arrays(engine, part: str, values):
    """Set the ``weight`` or ``bias`` of the pathways `values` names (a Dataset or a
    mapping name → array or DataArray); the others keep theirs.

    Raises
    ------
    NetworkArrayError
        An unknown pathway, a shape or dims that do not fit, or a weight its pathway's
        constraints forbid (:meth:`bioprop.constraints.WeightConstraints.violation`: a
        connection a sparse pathway does not have, a sign against Dale's law, a weight
        out of bounds). Nothing is set then.
    """
    import xarray as xr

    table = pathways(engine.model)
    values = dict(values.data_vars) if isinstance(values, xr.Dataset) else dict(values)
    _check_names(values, table, "pathway")
    state = dict(engine.state_arrays())
    for name, value in values.items():
        p = table[name]
        key = getattr(p, part)
        dims = (p.post, p.pre) if part == "weight" else (p.post,)
        array = _array(name, value, dims, state[key].shape, state[key].dtype)
        broken = engine.constraints.violation(p.kind, p.l, array) if part == "weight" else None
        if broken:
            raise NetworkArrayError(f"{name}: {broken}")
        state[key] = array
    engine.load_state_arrays(state)


def _optimizer_names(engine) -> dict:
    """Optimizer state key in the engine → its name here, e.g. ``optimizer_forward/m/0`` →
    ``forward/m/input_to_hidden1``, ``.../1`` → ``forward/m/input_to_hidden1/bias``."""
    model = engine.model
    param_names = {"forward": [], "feedback": []}
    by_weight = {p.weight: p.name for p in pathways(model).values()}
    for l, p in model.forward_params_by_layer():
        base = by_weight[f"W_{l}"]
        param_names["forward"].append(base if p is model.forward[l].weight else f"{base}/bias")
    for l, p in model.feedback_params_by_layer():
        base = by_weight[f"Q_{l}"]
        if model.feedback[l] is not None and p is model.feedback[l].weight:
            param_names["feedback"].append(base)
        else:
            param_names["feedback"].append(f"{base}/bias" if model.side.get(l) is not p
                                           else f"{base}/side")
    out = {}
    for key in engine.state_arrays():
        if not key.startswith("optimizer_"):
            continue
        side, rest = key[len("optimizer_"):].split("/", 1)
        state, _, index = rest.partition("/")
        out[key] = f"{side}/{state}" + (f"/{param_names[side][int(index)]}" if index else "")
    return out


def optimizer_arrays(engine) -> dict:
    """Both optimizers' state by name (copies): ``forward/mean_square/input_to_hidden1``
    (an array per parameter), ``forward/t`` (Adam's step count)."""
    state = engine.state_arrays()
    return {name: np.array(state[key]) for key, name in _optimizer_names(engine).items()}


def set_optimizer_arrays(engine, values):
    """Set the optimizer state that `values` names (names as :func:`optimizer_arrays`)."""
    names = _optimizer_names(engine)
    keys = {name: key for key, name in names.items()}
    _check_names(values, keys, "optimizer state")
    state = dict(engine.state_arrays())
    for name, value in values.items():
        current = np.asarray(state[keys[name]])
        array = np.asarray(value, dtype=current.dtype)
        if array.shape != current.shape:
            raise NetworkArrayError(f"{name}: shape {array.shape}, expected {current.shape}")
        state[keys[name]] = array
    engine.load_state_arrays(state)


def _layer_var(out, var, layer, array, long_name):
    import xarray as xr

    out[f"{var}_{layer}"] = xr.DataArray(np.array(array), dims=(SAMPLE, layer),
                                         attrs={"layer": layer, "long_name": long_name})


def trace_dataset(trace, model, before=None, after=None) -> "xarray.Dataset":
    """One batch's :class:`~bioprop.batch_trace.BatchTrace` as a Dataset (docs/python-api.md).

    `before` and `after` are the weights (:func:`named_arrays`) around the batch; with
    them, ``update_<pathway>`` holds the change the batch made.
    """
    import xarray as xr

    names, out = model.names, {}
    for l, h in enumerate(trace.h):
        _layer_var(out, RATE, names[l], h, "rate h_l (the input: x)")
    for l, a in enumerate(trace.a):
        if a is not None:
            _layer_var(out, POTENTIAL, names[l], a, "somatic potential a_l")
    for l, target in enumerate(trace.targets):
        if target is not None:
            _layer_var(out, TARGET, names[l], target, "target ĥ_l")
    for l, eps in enumerate(trace.noise):
        if eps is not None:
            _layer_var(out, "noise", names[l], eps, "noise ε_l of the last feedback iteration")
    if trace.loss is not None:
        out["loss"] = xr.DataArray(np.array(trace.loss), dims=(SAMPLE,),
                                   attrs={"long_name": "loss of each sample"})
    table = pathways(model)
    feedback = {p.l: p for p in table.values() if p.kind == "feedback"}
    for l, points in enumerate(trace.points):
        if not points:
            continue
        p, order = feedback[l], list(points)
        for i, (var, dim) in enumerate((("reconstruction_input", p.pre),
                                        ("reconstruction_potential", p.post),
                                        ("reconstruction", p.post))):
            stacked = np.stack([points[name][i] for name in order])
            out[f"{var}_{p.name}"] = xr.DataArray(stacked, dims=(POINT, SAMPLE, dim),
                                                  coords={POINT: order}, attrs={"pathway": p.name})
    for grads, kind in ((trace.forward_grads, "forward"), (trace.feedback_grads, "feedback")):
        for l, pair in enumerate(grads or []):
            if pair is None:
                continue
            p = next(q for q in table.values() if q.kind == kind and q.l == l)
            attrs = {"pathway": p.name, "long_name": "gradient the optimizer was given"}
            out[f"gradient_{p.name}"] = xr.DataArray(np.array(pair[0]), dims=(p.post, p.pre),
                                                     attrs=attrs)
            out[f"bias_gradient_{p.name}"] = xr.DataArray(np.array(pair[1]), dims=(p.post,),
                                                          attrs=attrs)
    for l, loss in enumerate(trace.feedback_losses or []):
        if loss is not None:
            out[f"feedback_loss_{feedback[l].name}"] = xr.DataArray(
                loss, attrs={"long_name": "mean loss of the feedback objective"})
    for l, residual in enumerate(trace.residuals or []):
        if residual is not None:  # per iterate k = 0..K of the iterative rule
            residual = np.array(residual)
            out[f"residual_{names[l]}"] = xr.DataArray(
                residual, dims=(SAMPLE, "iteration")[-residual.ndim:],
                attrs={"long_name": "‖f_{l+1}(x^k) − ĥ_{l+1}‖ of iterate k"})
    if before is not None and after is not None:
        for name in after.data_vars:
            out[f"update_{name}"] = (after[name] - before[name]).assign_attrs(
                pathway=name, long_name="change of the weights in this batch")
    return xr.Dataset(out)
