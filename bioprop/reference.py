"""The reference engine: the same algorithms on NumPy arrays, at steady state, with no time.

It is the oracle for the Brian2 engine (the two must agree when the phases are long
against τ) and the speed limit the Brian2 engine is measured against. It runs
every rule of :mod:`bioprop.rules` and the ``bp`` baseline. Select it with
``--set engine.name=reference``.

One batch of a target-propagation rule (Lee 2015, Algorithm 1):

1. forward pass h_l = f_l(h_{l-1});
2. the top target ĥ_t = h_t − η̂ ∂ℓ/∂h_t;
3. noise ε_{l-1} in every layer below t, and the reconstructions g_l(f_l(h_{l-1}+ε));
   with the ``alternating`` schedule the feedback weights are updated now;
4. the targets sent down by the target rule;
5. the local forward updates (and, ``parallel``, the feedback updates).
"""
from __future__ import annotations

import numpy as np

from .learner import BatchTrace, Learner, batches
from .rules import (bp_grads, feedback_grads, forward_grads, propagate_targets, sample_noise,
                    teach)

__all__ = ["ReferenceEngine"]


class ReferenceEngine(Learner):
    """Train a LayeredModel algebraically, batch by batch."""

    name = "reference"

    def train_epoch(self, x, y, rng, progress=None) -> dict:
        total_loss, correct, n = 0.0, 0, 0
        for index in batches(len(x), self.batch_size, rng, drop_last=True):
            trace = self.train_batch(x[index], y[index], rng)
            batch_loss, batch_correct = self.score(trace.h[-1], y[index], trace.loss)
            total_loss, correct, n = total_loss + batch_loss, correct + batch_correct, n + len(index)
            if progress is not None:
                progress(len(index))
        return {"loss": total_loss / n, "accuracy": correct / n}

    def train_batch(self, x, y, rng) -> BatchTrace:
        """One batch of training; returns its trace and updates the model in place."""
        x = x.astype(self.dtype, copy=False)
        y_target = self.targets_of(y)
        if self.rule.target == "bp":
            return self._bp_batch(x, y_target)
        model, t = self.model, self.top
        noise = [None] + sample_noise(rng, len(x), self.noisy_layer_sizes(), self.rule.noise, self.dtype)
        a, h = model.forward_pass(x)
        teaching = teach(model, self.loss_fn, y_target, a, h, self.rule.top, self.rule.target_step)

        upper, u, recon = [None, None], [None, None], [None, None]
        for l in range(2, t + 1):
            _, up = model.f(l, h[l - 1] + noise[l - 1])
            u_l, recon_l = model.g(l, up)
            upper.append(up), u.append(u_l), recon.append(recon_l)
        fb_grads, fb_losses = feedback_grads(model, self.objective, h, noise, upper, u, recon, t)
        if self.rule.schedule == "alternating":
            self.apply_feedback(fb_grads)

        targets = propagate_targets(model, self.target_rule, h, teaching.target, t)
        fw_grads = forward_grads(model, a, h, targets, t)
        if teaching.output_grads is not None:
            fw_grads.append(teaching.output_grads)
        if self.rule.schedule == "parallel":
            self.apply_feedback(fb_grads)
        self.apply_forward(fw_grads)
        self.last_trace = BatchTrace(a, h, targets, noise, upper, u, recon, fw_grads, fb_grads,
                                     fb_losses, teaching.loss)
        return self.last_trace

    def _bp_batch(self, x, y_target) -> BatchTrace:
        grads, loss, a, h = bp_grads(self.model, self.loss_fn, x, y_target)
        self.apply_forward(grads)
        self.last_trace = BatchTrace(a, h, forward_grads=grads, loss=loss)
        return self.last_trace

    def predict(self, x):
        return self.model.forward_pass(x.astype(self.dtype, copy=False))[1][-1]
