"""The contract both engines fulfil, and the parts of training they share.

A :class:`Learner` owns a :class:`~bioprop.model.LayeredModel`, the rule chosen
by the model file (looked up in the registries of :mod:`bioprop.rules`) and one
optimizer per pathway. An engine subclasses it and supplies how one batch's
activity is obtained: algebraically (:mod:`bioprop.reference`) or by simulating
populations in time (:mod:`bioprop.brian2`). Everything after the activity,
gradients and optimizer steps, is here and in :mod:`bioprop.rules`.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .batch_trace import BatchTrace, TaughtBatch
from .batching import epoch_batches
from .constraints import WeightConstraints, forward_p_connect
from .hooks import Hooks
from .model import side_inputs
from .rules import (FEEDBACK_OBJECTIVES, LOSSES, TARGET_RULES, feedback_grads, make_optimizer,
                    one_hot, per_sample_step, propagate_targets, sample_noise, teach, top_layer)

__all__ = ["Learner", "BatchTrace", "TaughtBatch"]  # the traces live in batch_trace


def learning_rate_scales(model, layers):
    """The model file's per-layer learning-rate scales, one per parameter in the order of
    ``model.forward_params()`` and ``model.feedback_params()``.

    Layer l's ``lr_scale`` covers W_l and b_l; its ``feedback_lr_scale`` covers g_l (Q_l,
    c_l) and its side weight R_l.
    """
    return ([layers[l - 1].lr_scale for l, _ in model.forward_params_by_layer()],
            [layers[l - 1].feedback_lr_scale for l, _ in model.feedback_params_by_layer()])


def optimizer_constants(opt) -> dict:
    """The constants an optimizer's spec sets (those left unset keep the optimizer's default)."""
    from .rules.optimizers import constants

    return {name: getattr(opt, name) for name in constants(opt.name)
            if getattr(opt, name) is not None}


class Learner:
    """Shared state and steps of a training engine.

    Parameters
    ----------
    model : LayeredModel
    spec : ModelSpec
        Supplies the rule, loss and optimizers.
    batch_size : int
    """

    name = "abstract"

    def __init__(self, model, spec, batch_size: int):
        self.model, self.spec, self.batch_size = model, spec, batch_size
        rule = spec.rule
        self.rule = rule
        self.target_rule = TARGET_RULES[rule.target]
        self.objective = FEEDBACK_OBJECTIVES[rule.feedback]
        #: difference rules (bp, fa, dfa, gn) do not use the learned inverses, and an
        #: objective without points (fixed feedback) leaves them as they were drawn
        self.trains_feedback = self.target_rule.uses_inverse and self.objective.trains
        self.loss_fn = LOSSES[spec.network.loss]
        self.top = top_layer(model.n_layers, rule.top)
        self.dtype = model.forward[1].weight.dtype
        #: σ of this epoch's noise (start_epoch anneals it; rule.noise until then)
        self.noise_sigma = rule.noise
        opt = spec.optimizer
        forward_scales, feedback_scales = learning_rate_scales(model, spec.layers)
        self.forward_optimizer = make_optimizer(opt.forward.name, model.forward_params(),
                                                opt.forward.lr, forward_scales,
                                                **optimizer_constants(opt.forward))
        self.feedback_optimizer = make_optimizer(opt.feedback.name, model.feedback_params(),
                                                 opt.feedback.lr, feedback_scales,
                                                 **optimizer_constants(opt.feedback))
        self.last_trace: BatchTrace | None = None
        #: the user's functions called at the end of each phase and batch (bioprop.hooks)
        self.hooks = Hooks(self.name)
        #: the forward weights' moving average that the test figures use (keep_average)
        self.average = None
        self.keep_partial_batch = False  #: train on an epoch's last partial batch too
        #: Dale's law, masks and bounds, applied after every step (bioprop.constraints)
        self.constraints = WeightConstraints(spec.constraints, model)
        sparse = {l for l, p in enumerate(forward_p_connect(spec), start=1) if p < 1}
        if sparse != set(model.fixed.get("mask", {})):
            raise ValueError(f"the model's connection masks (pathways {sorted(model.fixed.get('mask', {}))}) "
                             f"do not match the spec's p_connect < 1 (pathways {sorted(sparse)}): "
                             "build the model with build_model(..., p_connect=...)")

    # ---- what an engine provides
    def train_epoch(self, x, y, rng, progress=None, learn_forward: bool = True,
                    learn_feedback: bool = True) -> dict:
        """Train once on each batch of (x, y) in the order `rng` draws (batching.epoch_batches).

        With ``learn_forward=False`` only the feedback pathway learns (pre-training, and the
        first pass of an ``epochs`` schedule's epoch); with ``learn_feedback=False`` only the
        forward pathway does, and no noise is drawn (that epoch's second pass).
        """
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The output activity h_L for every row of `x`."""
        raise NotImplementedError

    @property
    def passes_per_epoch(self) -> int:
        """2 under the ``epochs`` schedule (a pass for the inverses, then one for the forward
        weights) when the rule trains its inverses; 1 otherwise."""
        return 2 if self.rule.schedule == "epochs" and self.trains_feedback else 1

    def feedback_pass(self, x, y, rng, progress=None):
        """The first pass of an ``epochs`` schedule's epoch, which trains only the inverses;
        nothing under the other schedules. The forward pass follows with
        ``learn_feedback = passes_per_epoch == 1``."""
        if self.passes_per_epoch == 2:
            self.train_epoch(x, y, rng, progress, learn_forward=False)

    def rehearse(self, x, y, rng) -> BatchTrace:
        """One training batch of (x, y) that learns nothing: its trace up to the targets
        (no forward gradients), the feedback gradients computed but not applied, noise
        drawn from `rng`; the engine is left as it was (:meth:`state_kept`)."""
        raise NotImplementedError

    @contextmanager
    def state_kept(self):
        """Trials run inside the block leave no trace: the state the engine carries from
        trial to trial (:meth:`dynamic_state`), NumPy's global generator (Brian2's ``rand``
        draws from it) and :attr:`last_trace` are put back as they were."""
        saved = {k: v.copy() for k, v in self.dynamic_state().items()}
        numpy_state, last = np.random.get_state(), self.last_trace
        try:
            yield
        finally:
            for key, value in self.dynamic_state().items():
                value[...] = saved[key]
            np.random.set_state(numpy_state)
            self.last_trace = last

    def train_batchwise(self, x, y, rng, progress=None, learn_forward: bool = True,
                        before_batch=None, learn_feedback: bool = True) -> dict:
        """One epoch as :meth:`train_epoch` draws it, one :meth:`train_batch` call per batch.

        `before_batch(j, x_j, y_j)`, if given, runs before batch j learns (e.g. to record
        its activity). Returns the epoch's mean loss and accuracy.
        """
        total_loss, correct, n = 0.0, 0, 0
        for j, index in enumerate(epoch_batches(len(x), self.batch_size, rng,
                                                self.keep_partial_batch)):
            if before_batch is not None:
                before_batch(j, x[index], y[index])
            trace = self.train_batch(x[index], y[index], rng, learn_forward,
                                     learn_feedback=learn_feedback)
            batch_loss, batch_correct = self.score(trace.h[-1], y[index], trace.loss)
            total_loss, correct, n = total_loss + batch_loss, correct + batch_correct, n + len(index)
            if progress is not None:
                progress(len(index))
        return {"loss": total_loss / n, "accuracy": correct / n}

    def start_epoch(self, epoch: int, epochs: int):
        """Set both optimizers' learning rates for training epoch `epoch` of `epochs`, as the
        model file's schedules say (rules.optimizers.scheduled_lr); the training loop calls it.
        """
        from .rules.feedback import annealed_noise
        from .rules.optimizers import scheduled_lr

        for opt, spec in ((self.forward_optimizer, self.spec.optimizer.forward),
                          (self.feedback_optimizer, self.spec.optimizer.feedback)):
            opt.set_lr(scheduled_lr(spec.schedule, spec.lr, spec.lr_final, epoch, epochs))
        self.noise_sigma = annealed_noise(self.rule.noise, epoch, self.rule.noise_anneal_epochs)

    def keep_average(self, decay: float):
        """Measure the test figures with an exponential moving average of the forward weights,
        decay `decay` per batch (0: with the weights themselves); returns the learner."""
        from .rules.averaging import WeightAverage

        self.average = WeightAverage(self.model.forward_params(), decay) if decay else None
        return self

    def weights_replaced(self):
        """The model's weights were replaced in place: an engine that keeps copies of them
        (the Brian2 engine's synapses) takes them up here."""

    # ---- shared steps
    def targets_of(self, y):
        """The loss's target array: one-hot labels, or the regression targets themselves."""
        if y.ndim == 1:
            return one_hot(y, self.model.sizes[-1], self.dtype)
        return y.astype(self.dtype, copy=False)

    def noisy_layers(self):
        """The layers that receive noise: 1..t−1 (ε for g_2..g_t), and t too when the
        objective also perturbs the upper layer (δ of ``ldrl``)."""
        return list(range(1, self.top + (1 if self.objective.needs_upper_noise else 0)))

    def draw_noise(self, rng, batch):
        """The noise of every feedback iteration of one batch, drawn in a fixed order.

        Returns a list (one entry per iteration) of lists indexed by layer.
        """
        if not self.trains_feedback:
            return []
        sizes = [self.model.sizes[l] for l in self.noisy_layers()]
        return [[None] + sample_noise(rng, batch, sizes, self.noise_sigma, self.dtype)
                for _ in range(self.rule.feedback_iterations)]

    def teach_batch(self, x, y) -> TaughtBatch:
        """The forward pass of `x` on the model as it is, the loss and the top target."""
        a, h = self.model.forward_pass(x.astype(self.dtype, copy=False))
        y_target = self.targets_of(y)
        teaching = teach(self.model, self.loss_fn, y_target, a, h, self.rule.top,
                         self.top_step(len(x)))
        return TaughtBatch(a, h, y_target, teaching, self.side_for(h, y_target))

    def top_step(self, batch: int) -> float:
        """The top target's step on each sample's own gradient, in a batch of `batch`
        samples (``rule.target_step`` under ``rule.target_step_loss``)."""
        return per_sample_step(self.rule.target_step, self.rule.target_step_loss, batch)

    def targets_from(self, a, h, teaching, side=None):
        """The algebraic targets of the model's rule (the reference; diagnostics)."""
        return propagate_targets(self.model, self.target_rule, a, h, teaching.target, self.top,
                                 iterations=self.rule.iterations,
                                 iteration_step=self.rule.iteration_step, damping=self.rule.damping,
                                 layer_norm=self.rule.layer_norm, side=side)

    def side_for(self, h, y_target):
        """The side inputs of the feedback pathway for one batch (None without them)."""
        return side_inputs(self.rule.side_information, h, y_target)

    def feedback_update(self, h, noise, points, side=None, apply: bool = True):
        """Gradients of the feedback objective at `points`, applied; returns (grads, losses)."""
        grads, losses = feedback_grads(self.model, self.objective, h, noise, points, self.top,
                                       self.noise_sigma, side)
        if apply:
            self.apply_feedback(grads)
        return grads, losses

    def feedback_iteration(self, h, eps, trace, side=None, apply: bool = True):
        """One update of every g_l at the points its objective asks for, on the rate twin.

        The points are algebraic: f_l is the layer's rate twin and g_l the feedback
        pathway at its steady state. The reference engine trains every g_l this way;
        so does the Brian2 engine with ``rule.feedback_from = "twin"``, from its latched
        forward traces h.
        """
        model, t = self.model, self.top
        points = [None, None] + [{} for _ in range(2, t + 1)]
        for l in range(2, t + 1):
            for name in self.objective.points:
                upper = self._point(name, l, h, eps, side)
                u, recon = model.g(l, upper, side)
                points[l][name] = (upper, u, recon)
        trace.feedback_grads, trace.feedback_losses = self.feedback_update(h, eps, points, side,
                                                                           apply)
        trace.points = points

    def _point(self, name, l, h, eps, side=None):
        """The input of g_l at the named point (rules.feedback)."""
        model = self.model
        if name == "clean":
            return h[l]
        if name == "upper_noisy":
            return h[l] + eps[l]
        noisy = model.f(l, h[l - 1] + eps[l - 1])[1]
        if name == "noisy":
            return noisy
        # ROUND_TRIP: up to the top layer t, then back down to l by the DTP difference,
        # summed as (h + g) − g, which rounds unlike rules.difference_correction's h + (g − g)
        up = [None] * (self.top + 1)
        up[l] = noisy
        for k in range(l + 1, self.top + 1):
            up[k] = model.f(k, up[k - 1])[1]
        down = up[self.top]
        for k in range(self.top, l, -1):
            down = h[k - 1] + model.g(k, down, side)[1] - model.g(k, h[k], side)[1]
        return down

    def record_activity(self, x, y, every: int = 1) -> dict:
        """The activity of one probe batch, without learning and without touching the run.

        Returns {layer name: {variable: array}} plus optional ``"_coords"``; the
        reference engine gives steady states (trial, neuron).
        """
        raise NotImplementedError

    def apply_feedback(self, grads):
        """One optimizer step on the feedback pathways, from [gQ_l, gc_l(, gR_l)] by layer,
        then the constraints (a masked gradient, like a forward one, is masked in place)."""
        self.constraints.mask_grads("feedback", grads)
        # in the order of model.feedback_params(): every (Q_l, c_l), then every R_l
        flat = [g for pair in grads[2:] for g in pair[:2]]
        flat += [pair[2] for pair in grads[2:] if len(pair) > 2]
        self.feedback_optimizer.step(flat)
        self.constraints.apply("feedback")

    # ---- checkpoints
    def state_arrays(self) -> dict:
        """Every array a checkpoint must hold to continue this learner exactly."""
        from .rules.optimizers import optimizer_state

        model, out = self.model, {}
        for l, proj in enumerate(model.forward):
            if proj is not None:
                out[f"W_{l}"], out[f"b_{l}"] = proj.weight, proj.bias
        for l, proj in enumerate(model.feedback):
            if proj is not None:
                out[f"Q_{l}"], out[f"c_{l}"] = proj.weight, proj.bias
        out.update({f"R_{l}": R for l, R in model.side.items()})
        out.update({f"{kind}_{l}": m for kind, mats in model.fixed.items() for l, m in mats.items()})
        for key, opt in (("forward", self.forward_optimizer), ("feedback", self.feedback_optimizer)):
            out.update({f"optimizer_{key}/{k}": v for k, v in optimizer_state(opt).items()})
        if self.average is not None:
            out.update({f"average/{i}": m for i, m in enumerate(self.average.sums)})
            out["average/t"] = np.asarray(self.average.t)
        out.update(self.dynamic_state())
        return out

    def load_state_arrays(self, arrays: dict):
        """Restore :meth:`state_arrays` in place (the optimizers hold the same arrays)."""
        from .rules.optimizers import load_optimizer_state

        current = self.state_arrays()
        missing = set(current) - set(arrays)
        if missing:
            raise ValueError(f"checkpoint lacks {sorted(missing)[:5]}...: not from this model")
        held = {k: a for k, a in current.items() if not k.startswith("optimizer_") and a.ndim}
        # checked before anything is copied: a (1, n) array would broadcast over (m, n)
        wrong = [f"{k} {np.shape(arrays[k])} (expected {a.shape})" for k, a in held.items()
                 if np.shape(arrays[k]) != a.shape]
        if wrong:
            raise ValueError(f"checkpoint array {wrong[0]}: not from this model")
        for key, array in held.items():
            array[...] = arrays[key]
        if self.average is not None:
            self.average.t = int(arrays["average/t"])
        self.weights_replaced()
        for key, opt in (("forward", self.forward_optimizer), ("feedback", self.feedback_optimizer)):
            prefix = f"optimizer_{key}/"
            load_optimizer_state(opt, {k[len(prefix):]: v for k, v in arrays.items()
                                       if k.startswith(prefix)})

    def dynamic_state(self) -> dict:
        """State the engine carries from trial to trial (none for the reference)."""
        return {}

    def apply_forward(self, grads, applied=()):
        """One optimizer step on the forward pathways, from [gW_l, gb_l] by layer.

        A sparse pathway learns only its existing connections: its weight gradient is
        masked here, in place (so the trace shows what was applied), for both engines.
        The weights W_l of the layers in `applied` have already taken their step (their
        synapses learned them, with SGD): the optimizer leaves them alone. Then every W_l,
        those included, is put back inside its constraints (:mod:`bioprop.constraints`).
        """
        self.constraints.mask_grads("forward", grads)
        self.forward_optimizer.step([None if l in applied and i == 0 else g
                                     for l, pair in enumerate(grads[1:], start=1)
                                     for i, g in enumerate(pair)])
        self.constraints.apply("forward")
        if self.average is not None:
            self.average.update()

    def evaluate(self, x, y) -> dict:
        """Mean loss and accuracy (classification) on a data set; with :meth:`keep_average`,
        those of the averaged weights.

        The weights themselves are evaluated first in either case, and the averaged ones
        after, the engine's state (what a trial carries into the next, Brian2's generator)
        put back as the first pass left it: training goes on as in a run without averaging.
        """
        result = self._scores(x, y)
        if self.average is None:
            return result
        try:
            with self.state_kept(), self.average.swapped_in():
                self.weights_replaced()
                result = self._scores(x, y)
        finally:
            self.weights_replaced()
        return result

    def _scores(self, x, y) -> dict:
        out = self.predict(x)
        loss, _ = self.loss_fn(out, self.targets_of(y))
        result = {"loss": float(loss.mean())}
        if y.ndim == 1:
            result["accuracy"] = float((out.argmax(axis=1) == y).mean())
        return result

    @staticmethod
    def score(out, y, loss):
        """Summed loss and number correct of one batch, for running epoch figures."""
        correct = int((out.argmax(axis=1) == y).sum()) if y.ndim == 1 else 0
        return float(loss.sum()), correct
