"""The data of a run: the protocol's data set, cut and held out as it says, checked.

:func:`run_data` is what :mod:`bioprop.training` loads before a run starts (and before
``--resume`` continues one): the data set the protocol names, its first ``data.n_train``
and ``data.n_test`` samples, the validation set ``data.validation`` holds out, each count
checked against what the data set has and the shapes against the model.
"""
from __future__ import annotations

from .overrides import blame
from .spec import check_compatible, check_data

__all__ = ["run_data"]


def run_data(model_spec, protocol, data=None):
    """The data a run trains, validates and tests on.

    Parameters
    ----------
    model_spec, protocol : ModelSpec, ProtocolSpec
    data : Dataset, optional
        The caller's own arrays instead of the protocol's data set: not cut to
        ``data.n_train``, but the validation set is held out of them as of the protocol's
        (unless they hold one already); checked against the model the same way.

    Returns
    -------
    Dataset
        The protocol's data set, its first ``data.n_train`` and ``data.n_test`` samples, and
        ``data.validation`` of those training samples held out (:func:`~bioprop.datasets.hold_out`).

    Raises
    ------
    SpecError
        Naming the key at fault: sample counts the data set does not have, a validation set
        that leaves nothing to train on, shapes that do not fit the model.
    """
    from .datasets import hold_out, load_dataset, subset
    from .errors import fail

    check_compatible(model_spec, protocol)  # before the data: a bad pair fails at once
    if data is None:
        name, wanted = protocol.data.dataset, (protocol.data.n_train, protocol.data.n_test)
        data = load_dataset(name, seed=protocol.training.seed)
        with blame(dict(protocol.origins)):
            for split, n in zip(("train", "test"), wanted):
                if n > len(getattr(data, f"x_{split}")):
                    fail(protocol.source, f"data.n_{split}", f"{n} is more than the "
                         f"{len(getattr(data, f'x_{split}'))} {split} samples of data set "
                         f"{name!r}")
        data = subset(data, wanted[0] or None, wanted[1] or None)
    # the caller's own arrays are not cut, and keep a validation set they already hold
    split = data.x_validation is not None
    check_data(model_spec, protocol, data.n_features, data.n_outputs, len(data.x_train),
               held_out=0 if split else None)
    return data if split else hold_out(data, protocol.data.validation,
                                       protocol.data.validation_seed)
