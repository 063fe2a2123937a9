"""The reference engine: the same algorithms on NumPy arrays, at steady state, with no time.

It is the oracle for the Brian2 engine (the two must agree when the phases are long
against τ) and the speed limit the Brian2 engine is measured against. It runs
every rule of :mod:`bioprop.rules`. Select it with ``--set engine.name=reference``.

One batch of a target-propagation rule (Lee 2015, Algorithm 1):

1. forward pass h_l = f_l(h_{l-1});
2. the top target ĥ_t = h_t − η̂ ∂ℓ/∂h_t;
3. ``parallel`` schedule: the targets, sent down by the target rule with the
   feedback weights as they are at the start of the batch;
4. ``feedback_iterations`` times: noise ε_{l-1} in every layer below t, the
   reconstructions g_l(f_l(h_{l-1}+ε)), and a feedback-weight update
   (skipped by the difference rules bp, fa, dfa, gn, which use no inverses, and
   by fixed feedback weights, which are never trained);
5. ``alternating`` schedule: the targets, from the updated feedback weights;
6. the local forward updates.

Step 4 is always on the rate twin (:meth:`Learner.feedback_iteration`), so
``rule.feedback_from = "twin"`` changes nothing here: it asks the Brian2 engine to
train its feedback weights the same way.
"""
from __future__ import annotations

import numpy as np

from .hooks import REFERENCE_PHASES, layer_arrays
from .learner import BatchTrace, Learner
from .rules import forward_grads
from .runlog.vocabulary import POTENTIAL, RATE, TARGET

__all__ = ["ReferenceEngine"]


class ReferenceEngine(Learner):
    """Train a LayeredModel algebraically, batch by batch."""

    name = "reference"

    def train_epoch(self, x, y, rng, progress=None, learn_forward=True,
                    learn_feedback=True) -> dict:
        return self.train_batchwise(x, y, rng, progress, learn_forward,
                                    learn_feedback=learn_feedback)

    def train_batch(self, x, y, rng, learn_forward=True, learn=True,
                    learn_feedback=True) -> BatchTrace:
        """One batch of training; returns its trace and updates the model in place.

        With ``learn=False`` nothing changes and the trace ends at the targets
        (:meth:`rehearse`).
        """
        model, t = self.model, self.top
        noise = self.draw_noise(rng, len(x)) if learn_feedback else []
        taught = self.teach_batch(x, y)
        a, h, teaching, side = taught.a, taught.h, taught.teaching, taught.side
        trace = BatchTrace(a, h, noise=noise[-1] if noise else [], loss=teaching.loss)
        forward_end, target_end = REFERENCE_PHASES
        self._hook("phase_end", forward_end, trace, learn, [None] * t + [teaching.target])
        if self.rule.schedule == "parallel" and learn_forward:
            trace.targets, trace.residuals = self.targets_from(a, h, teaching, side)
            self._hook("phase_end", target_end, trace, learn)
        for eps in noise:
            self.feedback_iteration(h, eps, trace, side, apply=learn)
        if not learn_forward:
            self._hook("batch_end", forward_end, trace, learn)
            self.last_trace = trace
            return trace
        if self.rule.schedule != "parallel":  # alternating, or the forward pass of "epochs"
            trace.targets, trace.residuals = self.targets_from(a, h, teaching, side)
            self._hook("phase_end", target_end, trace, learn)
        if not learn:
            return trace
        trace.forward_grads = forward_grads(model, a, h, trace.targets, t)
        if teaching.output_grads is not None:
            trace.forward_grads.append(teaching.output_grads)
        self.apply_forward(trace.forward_grads)
        self._hook("batch_end", target_end, trace, learn)
        self.last_trace = trace
        return trace

    def _hook(self, event, phase, trace, learn, targets=None):
        """The hooks of `event` at the end of `phase`, in a batch that learns (the targets:
        the trace's, unless given); the hooks count the batch after its ``batch_end``."""
        if learn:
            self.hooks.fire(event, lambda: layer_arrays(self.model.names, trace.a, trace.h,
                                                        targets or trace.targets), phase)

    def rehearse(self, x, y, rng) -> BatchTrace:
        with self.state_kept():
            return self.train_batch(x, y, rng, learn=False)

    def record_activity(self, x, y, every: int = 1) -> dict:
        """Steady-state rates and targets of the probe batch (trial, neuron); learns nothing."""
        taught = self.teach_batch(x, y)
        a, h = taught.a, taught.h
        targets, _ = self.targets_from(a, h, taught.teaching, taught.side)
        out = {}
        for l in range(1, self.model.n_layers + 1):
            out[self.model.names[l]] = {RATE: h[l], POTENTIAL: a[l]}
            if l <= self.top:
                out[self.model.names[l]][TARGET] = targets[l]
        return out

    def predict(self, x):
        return self.model.forward_pass(x.astype(self.dtype, copy=False))[1][-1]
