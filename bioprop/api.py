"""``bioprop.Network``: one model inside one engine, driven batch by batch from Python.

A network is built from a model and a protocol, each a path, a shipped name, a spec or a
plain dict (:mod:`bioprop.api_specs`), with settings as keywords (``epochs=5``,
``engine="reference"``) or as ``overrides``. Its initial weights and its training
generator are those ``bioprop run`` draws from the protocol's seed, so::

    net = bioprop.build("default", engine="reference")
    net.fit()                       # the same run file as bioprop run --set engine.name=reference

Its arrays are named as in the run file (:mod:`bioprop.api_arrays`): ``net.weights`` is an
xarray Dataset with one variable per pathway, dims (post, pre) named after the layers.
:meth:`Network.step` trains one batch and returns what happened in it;
:meth:`~Network.predict` and :meth:`~Network.targets` learn nothing and leave the network
exactly as it was; :meth:`~Network.fit` trains epochs through the training loop of
``bioprop run`` and writes the usual run file; :meth:`~Network.save` and
:meth:`Network.load` continue a network bit for bit. docs/python-api.md shows it all.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from ._version import __version__
from .api_arrays import (SAMPLE, NetworkArrayError, named_arrays, optimizer_arrays,
                         set_named_arrays, set_optimizer_arrays, trace_dataset)
from .api_specs import resolve_spec, resolve_specs
from .checkpoint import UNREADABLE, read_state, recorded_specs, write_state
from .spec import check_compatible, to_toml
from .training import generators, make_engine, train

__all__ = ["Network", "build", "NetworkFileError", "NetworkArrayError", "NETWORK_FORMAT"]

#: the format of a saved network: the checkpoint's .npz (checkpoint.write_state) whose
#: metadata also holds the model and protocol as TOML
NETWORK_FORMAT = 1
_KIND = "bioprop.Network"


class NetworkFileError(ValueError):
    """A file that is not a network :meth:`Network.save` wrote; the message says why."""


def _threads(protocol):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(protocol.engine.threads)


class Network:
    """A model inside an engine, with its optimizers and its training generator.

    Parameters
    ----------
    model : path, shipped name, ModelSpec, dict or None
        None is the embedded default (DTP on digits).
    protocol : path, shipped name, ProtocolSpec, dict or None
        None is the protocol the model names, else the embedded default.
    engine : {"brian2", "reference"}, optional
        The engine; by default the protocol's ``engine.name``.
    overrides : mapping or sequence, optional
        Dotted keys as ``--set`` takes them: ``{"layers.hidden1.size": 32}``.
    **keywords
        Keys by their own name when only one table has it: ``epochs=5``, ``seed=3``,
        ``batch_size=16``, ``dataset="mnist"``.

    Attributes
    ----------
    model_spec, protocol : ModelSpec, ProtocolSpec
        What the network was built from, every setting applied.
    engine : Learner
        The engine (``bioprop.reference.ReferenceEngine`` or ``bioprop.brian2.Brian2Engine``).
    rng : numpy.random.Generator
        The training generator: the order of the samples in :meth:`fit` and the noise of
        every batch.

    Raises
    ------
    SpecError
        One line naming the file (or ``<model dict>``), the key or the setting as typed.
    """

    def __init__(self, model=None, protocol=None, *, engine=None, overrides=None, **keywords):
        if engine is not None:
            keywords["engine"] = engine
        self._build(*resolve_specs(model, protocol, overrides, **keywords))

    def _build(self, model_spec, protocol):
        check_compatible(model_spec, protocol)  # τ against dt, names, memory: before building
        self.model_spec, self.protocol = model_spec, protocol
        init_rng, self.rng = generators(protocol.training.seed)
        outside = np.random.get_state()
        with _threads(protocol):
            self.engine = make_engine(model_spec, protocol, init_rng)
        # Brian2's random units draw from NumPy's global generator, which the engine has
        # just seeded: this network keeps that state as its own (see _running)
        self._numpy_state = np.random.get_state()
        np.random.set_state(outside)

    @contextmanager
    def _running(self):
        """The engine runs with the protocol's BLAS threads and, when its units draw random
        numbers (Brian2's ``rand()`` draws from NumPy's global generator), with this
        network's own state of that generator: two networks in one process then draw
        as two runs would, and the caller's global generator is left as it was."""
        stochastic = getattr(self.engine, "stochastic", False)
        outside = np.random.get_state()
        if stochastic:
            np.random.set_state(self._numpy_state)
        try:
            with _threads(self.protocol):
                yield
        finally:
            if stochastic:
                self._numpy_state = np.random.get_state()
            np.random.set_state(outside)

    def __repr__(self):
        sizes = " → ".join(f"{n} {s}" for n, s in zip(self.names, self.engine.model.sizes))
        return (f"<bioprop.Network {self.model_spec.network.name!r}: {sizes}; "
                f"{self.model_spec.rule.target} in the {self.engine.name} engine>")

    @property
    def names(self) -> list:
        """The layers' names, the input first: the dims of every array."""
        return list(self.engine.model.names)

    # ------------------------------------------------------------- arrays
    @property
    def weights(self) -> "xarray.Dataset":
        """Every pathway's weights (a copy): forward ``input_to_hidden1`` (W_1) and feedback
        ``hidden2_to_hidden1`` (Q_2), dims (post, pre) named after the layers. Set it to a
        Dataset or a mapping name → array (or DataArray, transposed by its dims) of some or
        all pathways; a wrong name, shape or dims raises one NetworkArrayError."""
        return named_arrays(self.engine, "weight")

    @weights.setter
    def weights(self, values):
        with self._running():
            set_named_arrays(self.engine, "weight", values)

    @property
    def biases(self) -> "xarray.Dataset":
        """Every pathway's bias (b_l, c_l; a copy), dims (post,); set as :attr:`weights`."""
        return named_arrays(self.engine, "bias")

    @biases.setter
    def biases(self, values):
        with self._running():
            set_named_arrays(self.engine, "bias", values)

    @property
    def optimizer_state(self) -> dict:
        """Both optimizers' state (copies): ``"forward/mean_square/input_to_hidden1"``,
        ``".../input_to_hidden1/bias"``, ``"forward/t"`` (Adam's step count)...; set it to
        a mapping of some or all of these names."""
        return optimizer_arrays(self.engine)

    @optimizer_state.setter
    def optimizer_state(self, values):
        with self._running():
            set_optimizer_arrays(self.engine, values)

    # ------------------------------------------------------------ batches
    def _rows(self, x, y=None, whole_batch=False):
        """`x` (and `y`) checked against the network: one clear error if they do not fit."""
        x = np.asarray(x)
        n_in, n_out = self.engine.model.sizes[0], self.engine.model.sizes[-1]
        if x.ndim != 2 or x.shape[1] != n_in or not np.issubdtype(x.dtype, np.number):
            raise NetworkArrayError(f"x: {x.dtype} array of shape {x.shape}, expected numbers "
                                    f"of shape (samples, {n_in}) for input layer of {n_in}")
        B = self.engine.batch_size
        if whole_batch and self.engine.name == "brian2" and len(x) != B:
            raise NetworkArrayError(f"x: {len(x)} samples, but a batch of the Brian2 engine "
                                    f"is exactly training.batch_size = {B} trials")
        if y is None:
            return x
        y = np.asarray(y)
        if len(y) != len(x) or y.shape[1:] not in ((), (n_out,)):
            raise NetworkArrayError(f"y: shape {y.shape}, expected ({len(x)},) class labels or "
                                    f"({len(x)}, {n_out}) targets for {len(x)} samples")
        if y.ndim == 1 and not np.issubdtype(y.dtype, np.integer):
            raise NetworkArrayError(f"y: {y.dtype} labels, expected class labels as whole "
                                    f"numbers (or ({len(x)}, {n_out}) targets)")
        if y.ndim == 1 and (y.min(initial=0) < 0 or y.max(initial=0) >= n_out):
            raise NetworkArrayError(f"y: labels from {y.min()} to {y.max()}, expected classes "
                                    f"0 to {n_out - 1} of the output layer")
        return x, y

    def step(self, x, y) -> "xarray.Dataset":
        """Train on one batch, as one batch of :meth:`fit`, and return what happened.

        Parameters
        ----------
        x : array (samples, input size)
            Exactly ``training.batch_size`` samples in the Brian2 engine.
        y : array (samples,) of class labels, or (samples, output size) targets

        Returns
        -------
        xarray.Dataset
            Dims ``sample`` and one per layer, named after it; variables ``rate_<layer>``,
            ``potential_<layer>``, ``target_<layer>``, ``noise_<layer>``, ``loss``,
            ``reconstruction_<pathway>`` (with ``reconstruction_input_`` and
            ``reconstruction_potential_``; dim ``point``), ``gradient_<pathway>`` and
            ``bias_gradient_<pathway>`` (what each optimizer was given),
            ``update_<pathway>`` (the change of the weights), ``feedback_loss_<pathway>``.
        """
        x, y = self._rows(x, y, whole_batch=True)
        before = self.weights
        with self._running():
            trace = self.engine.train_batch(x, y, self.rng)
        return trace_dataset(trace, self.engine.model, before, self.weights)

    def targets(self, x, y) -> "xarray.Dataset":
        """The batch :meth:`step` would train, learning nothing: rates, potentials, the
        targets the rule sends with the weights as they are, reconstructions and the
        feedback objective's losses, as :meth:`step` names them (no gradients, no updates).

        The noise is drawn from a generator of its own, and the network (weights,
        optimizers, populations' state, generators) is left exactly as it was.
        """
        x, y = self._rows(x, y, whole_batch=True)
        with self._running():
            trace = self.engine.rehearse(x, y, np.random.default_rng(0))
        out = trace_dataset(trace, self.engine.model)
        return out.drop_vars([v for v in out.data_vars if "gradient_" in str(v)])

    def predict(self, x) -> "xarray.DataArray":
        """The output layer's rates for every row of `x` (dims sample, output layer), as
        the test figures of a run compute them; the network is left as it was."""
        import xarray as xr

        x = self._rows(x)
        with self._running(), self.engine.state_kept():
            out = self.engine.predict(x)
        return xr.DataArray(np.array(out), dims=(SAMPLE, self.names[-1]),
                            attrs={"layer": self.names[-1], "long_name": "output rate"})

    # -------------------------------------------------------------- hooks
    def add_hook(self, event: str, fn):
        """Call ``fn(state)`` at every `event` of the batches that learn (:meth:`step`,
        :meth:`fit`): ``"phase_end"``, the end of each phase, or ``"batch_end"``.

        `state` is a :class:`bioprop.hooks.HookState`: ``state.phase``, ``state.batch`` and
        the layers' arrays by name (``rate_hidden1``, ``potential_hidden1``,
        ``target_hidden1``...), to record, or to change in place
        (``state["rate_hidden1"] = 0`` silences the layer from there on in the batch).
        docs/hooks.md lists the phases of each engine. Returns `fn`.
        """
        return self.engine.hooks.add(event, fn)

    def remove_hook(self, event: str, fn):
        """Stop calling the hook `fn` at `event`."""
        self.engine.hooks.remove(event, fn)

    # ------------------------------------------------------------- epochs
    def fit(self, data=None, epochs=None, record=None, *, force: bool = False,
            progress: bool = False, hooks=None):
        """Train for whole epochs with the loop of ``bioprop run`` and write its run file.

        The run starts from the network as it is (its epoch 0) and goes on with its
        generator; the file records the network's model and protocol with these changes.

        Parameters
        ----------
        data : None, data set name or Dataset
            None: the protocol's; a name (``"mnist"``) sets ``data.dataset``; a
            :class:`bioprop.datasets.Dataset` of your own arrays is checked against the
            model (the run file still names the protocol's data set).
        epochs : int, optional
            Instead of ``training.epochs``.
        record : path or mapping, optional
            The run file, or ``record.*`` keys (``{"path": ..., "activity_every": 5}``);
            by default the protocol's ``record.path``, numbered if it exists.
        force : bool
            Replace an existing run file.
        progress : bool
            Show the progress bar.
        hooks : mapping, optional
            Hooks for this call only: event → a function or a list of them
            (:meth:`add_hook`).

        Returns
        -------
        RunResult
        """
        items, output = [], None
        if epochs is not None:
            items.append(("training.epochs", epochs))
        if isinstance(data, str):
            items.append(("data.dataset", data))
            data = None
        if isinstance(record, (str, os.PathLike)):
            output = record
        elif isinstance(record, Mapping):
            items += [(f"record.{key}", value) for key, value in record.items()]
        protocol = resolve_spec(self.protocol, "protocol", items)
        check_compatible(self.model_spec, protocol)
        added = [(event, fn) for event, fns in (hooks or {}).items()
                 for fn in (fns if isinstance(fns, (list, tuple)) else [fns])]
        for done, (event, fn) in enumerate(added):
            try:
                self.add_hook(event, fn)
            except ValueError:
                for earlier in added[:done]:
                    self.remove_hook(*earlier)
                raise
        try:
            with self._running():
                return train(self.model_spec, protocol, engine=self.engine, rng=self.rng,
                             data=data, output=output, force=force, progress=progress)
        finally:
            for event, fn in added:
                self.remove_hook(event, fn)

    # --------------------------------------------------------------- files
    def save(self, path):
        """Write the network to `path` (an .npz file, replaced atomically): the model and
        protocol, every weight, both optimizers' state, the populations' state and the
        training generator, so that :meth:`load` continues it bit for bit."""
        meta = {"format": NETWORK_FORMAT, "kind": _KIND, "version": __version__,
                "model_toml": to_toml(self.model_spec), "protocol_toml": to_toml(self.protocol),
                "rng": self.rng.bit_generator.state}
        with self._running():  # the state of Brian2's generator is this network's
            return write_state(path, meta, self.engine.state_arrays())

    @classmethod
    def load(cls, path) -> "Network":
        """The network :meth:`save` wrote to `path`.

        Raises
        ------
        NetworkFileError
            A file that is missing, unreadable, of another format, or whose arrays do
            not fit its model.
        """
        try:
            arrays, meta = read_state(path)
        except FileNotFoundError:
            raise NetworkFileError(f"{path}: no such file") from None
        except UNREADABLE as err:
            raise NetworkFileError(f"{path}: not a saved network (truncated or corrupt?): "
                                   f"{err}") from None
        if meta.get("kind") != _KIND or meta.get("format") != NETWORK_FORMAT:
            raise NetworkFileError(f"{path}: not a network saved by Network.save (format "
                                   f"{NETWORK_FORMAT}); a run's checkpoint continues with "
                                   f"bioprop run --resume")
        net = cls.__new__(cls)
        net._build(*recorded_specs(path, meta))
        try:
            with net._running():
                net.engine.load_state_arrays(arrays)
            net.rng.bit_generator.state = meta["rng"]
        except (KeyError, ValueError, TypeError) as err:
            raise NetworkFileError(f"{path}: its arrays do not fit its model ({err})") from None
        return net


def build(model=None, protocol=None, **keywords) -> Network:
    """A :class:`Network`: ``bioprop.build("lif", epochs=5, engine="reference")``."""
    return Network(model, protocol, **keywords)
