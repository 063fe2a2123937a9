"""Writing a run: what a training run declares in its run file and appends epoch by epoch.

:func:`declare_run` creates every group before the file enters SWMR mode: the per-epoch
figures (``/train``, ``/test``), the probe diagnostics (``/metrics``), the weight
snapshots (``/pathways/<name>``), the residuals of the iterative rule (``/iterative``)
and the recorded activity (:mod:`bioprop.runlog.activity`). The other functions append
one epoch's entries to them and flush, so that a killed run keeps the epoch. Dims,
units and long names all come from the vocabulary (:mod:`bioprop.runlog.vocabulary`).
"""
from __future__ import annotations

import numpy as np

from .activity import declare_activity, due, records_activity
from .vocabulary import (CONSTRAINTS, FORMAT1_PATHWAY, RESIDUALS, SECTIONS, SPLIT, TEST,
                         VALIDATION, coord_attrs, pathway_name, section_of)

__all__ = ["pathway_names", "declare_run", "record_epoch", "record_diagnostics", "snapshot_weights",
           "recorded_pathways", "write_constraints"]

#: the keys of a run's per-epoch row that /train holds, and the /test variable of each
#: test figure
_TRAIN_KEYS = ("loss", "accuracy", "wall_time", "samples_per_second")
_TEST_KEYS = {"test_loss": "loss", "test_accuracy": "accuracy"}
_VALIDATION_KEYS = {"validation_loss": "loss", "validation_accuracy": "accuracy"}


def pathway_names(model) -> dict:
    """Every learned pathway of `model`: its name (the layers it joins, e.g.
    ``hidden1_to_hidden2``) → its version-1 name (``forward_2``), forward ones first."""
    names, out = model.names, {}
    for kind in ("forward", "feedback"):
        for l in range(1, model.n_layers + 1):
            if getattr(model, kind)[l] is not None:
                out[FORMAT1_PATHWAY[kind](names, l)] = f"{kind}_{l}"
    return out


def recorded_pathways(model, record_spec=None) -> dict:
    """The learned pathways of a model whose weights are recorded (``record.pathways``,
    by today's or the version-1 name; all without it): name → (weight array, post
    names, pre names)."""
    out = {}
    for l in range(1, model.n_layers + 1):
        out[pathway_name(model.names[l - 1], model.names[l])] = (
            model.forward[l].weight, model.names[l], model.names[l - 1])
        if model.feedback[l] is not None:
            out[pathway_name(model.names[l], model.names[l - 1])] = (
                model.feedback[l].weight, model.names[l - 1], model.names[l])
    chosen = set(record_spec.pathways if record_spec is not None else ())
    old = pathway_names(model)
    return {k: v for k, v in out.items() if not chosen or k in chosen or old[k] in chosen}


def _declare(recorder, group, names, coords=None, **fields):
    dims, attrs = section_of(group).declaration(names, **fields)
    recorder.declare(group, attrs, dims=dims, coords=coords, coord_attrs=coord_attrs(dims))


def declare_run(recorder, data, engine, record_spec=None):
    """Create every group the run will write to, before the file enters SWMR mode.

    Parameters
    ----------
    recorder : RunRecorder
    data : Dataset
        Its task says whether accuracies are recorded; its first batch is the
        activity probe.
    engine : Learner
        Its model names the layers and pathways; its rule says whether residuals of
        the iterative target rule are recorded.
    record_spec : RecordSpec, optional
        What to record (``record.*`` of the protocol); without it, the figures and
        diagnostics only.
    """
    accuracy = data.task == "classification"
    _declare(recorder, "train", [n for n in SECTIONS["train"].variables
                                 if accuracy or n != "accuracy"])
    _declare(recorder, TEST, [n for n in SECTIONS[TEST].variables
                                if accuracy or n != "accuracy"])
    if data.x_validation is not None:
        _declare(recorder, VALIDATION, [n for n in SECTIONS[VALIDATION].variables
                                        if accuracy or n != "accuracy"])
        index = SECTIONS[SPLIT].variables["validation_index"]
        recorder.write_fixed(SPLIT, {"validation_index": (data.validation_index, index.forms[0],
                                                          index.attrs())},
                             coords={"sample": np.arange(len(data.validation_index))})
    layers = engine.model.names[1:]
    _declare(recorder, "metrics", list(SECTIONS["metrics"].variables), {"layer": layers})
    if record_spec is not None and (record_spec.weights_every or record_spec.first_and_last):
        for name, (weight, post, pre) in recorded_pathways(engine.model, record_spec).items():
            _declare(recorder, f"pathways/{name}", ["weight"],
                     {"post": np.arange(weight.shape[0]), "pre": np.arange(weight.shape[1])},
                     post=post, pre=pre)
    write_constraints(recorder, engine.model)
    if engine.target_rule.iterates:
        _declare(recorder, RESIDUALS, ["residual"],
                 {"layer": layers, "iteration": np.arange(engine.rule.iterations + 1)})
    if records_activity(record_spec):
        declare_activity(recorder, data, engine, record_spec)


def write_constraints(recorder, model):
    """Write what the constraints drew (:func:`bioprop.constraints.constraint_arrays`), the
    connection masks and the neurons' signs, as ``/constraints/<pathway>``: nothing for a
    model without them."""
    from ..constraints import constraint_arrays

    section = SECTIONS[CONSTRAINTS]
    for (kind, l), arrays in constraint_arrays(model).items():
        pre, post = ((model.names[l - 1], model.names[l]) if kind == "forward"
                     else (model.names[l], model.names[l - 1]))
        variables = {name: (array, section.variables[name].forms[0],
                            section.variables[name].attrs(pre=pre, post=post))
                     for name, array in arrays.items()}
        shape = dict(zip(("post", "pre"), getattr(model, kind)[l].shape))
        used = {d for _, dims, _ in variables.values() for d in dims}
        recorder.write_fixed(f"{CONSTRAINTS}/{pathway_name(pre, post)}", variables,
                             coords={d: np.arange(n) for d, n in shape.items() if d in used})


def record_epoch(recorder, row):
    """Append one epoch's figures (a row of the run's history) and flush, so a killed
    run keeps this epoch."""
    recorder.append("train", row["epoch"], {k: row[k] for k in _TRAIN_KEYS if k in row})
    recorder.append(TEST, row["epoch"], {name: row[k] for k, name in _TEST_KEYS.items()
                                           if k in row})
    if "validation_loss" in row:
        recorder.append(VALIDATION, row["epoch"], {name: row[k] for k, name
                                                   in _VALIDATION_KEYS.items() if k in row})
    recorder.flush()


def record_diagnostics(recorder, epoch, values: dict):
    """Append the probe diagnostics of `epoch` (``layer_diagnostics``; its ``residuals``,
    when present, go to ``/iterative``) and flush."""
    values = dict(values)
    residuals = values.pop("residuals", None)
    recorder.append("metrics", epoch, values)
    if residuals is not None:
        recorder.append(RESIDUALS, epoch, {"residual": residuals})
    recorder.flush()


def snapshot_weights(engine, recorder, record_spec, epoch, last=None):
    """The pathways' weights at `epoch`, every ``record.weights_every`` epochs and, with
    ``record.first_and_last``, at epoch 0 and the `last` epoch."""
    if not due(record_spec and record_spec.weights_every, epoch, record_spec, last):
        return
    for name, (weight, _, _) in recorded_pathways(engine.model, record_spec).items():
        recorder.append(f"pathways/{name}", epoch, {"weight": weight})
    recorder.flush()
