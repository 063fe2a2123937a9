"""Per-layer learning rates: lr_scale and feedback_lr_scale of a model file, in both engines."""
import numpy as np
import pytest

from bioprop.brian2 import Brian2Engine
from bioprop.reference import ReferenceEngine
from bioprop.spec import SpecError, parse_model

from conftest import assert_close, model_for, phases

SIZES = (6, 5, 4, 4, 3)


def _spec(scales=None, feedback_scales=None, synaptic=False):
    """A 6-5-4-4-3 model under plain SGD and the parallel schedule, so that one batch's
    gradients do not depend on the feedback pathway's own update."""
    scales, feedback_scales = scales or {}, feedback_scales or {}
    layers = []
    for l, n in enumerate(SIZES[1:], start=1):
        layer = {"name": f"l{l}", "size": n, "activation": "tanh" if l < 4 else "linear",
                 "lr_scale": scales.get(l, 1.0)}
        if l > 1:
            layer["feedback_lr_scale"] = feedback_scales.get(l, 1.0)
        if synaptic and l == 1:
            layer.update(connection="synapses", plasticity="synaptic")
        layers.append(layer)
    return parse_model({"network": {"input_size": SIZES[0]}, "layers": layers,
                        "rule": {"schedule": "parallel"},
                        "optimizer": {"forward": {"name": "sgd", "lr": 0.1},
                                      "feedback": {"name": "sgd", "lr": 0.1}}})


def _changes(engine_name, spec):
    """The change of every W_l, b_l, Q_l, c_l over one batch."""
    model = model_for(_spec())  # the same initial weights whatever the scales
    before = model.copy()
    if engine_name == "reference":
        engine = ReferenceEngine(model, spec, 4)
    else:
        engine = Brian2Engine(model, spec, phases(), 4)
    data = np.random.default_rng(5)
    engine.train_batch(data.random((4, 6)), np.array([0, 1, 2, 1]), np.random.default_rng(3))
    forward = {l: [p - q for p, q in zip(engine.model.forward[l].params, before.forward[l].params)]
               for l in range(1, 5)}
    feedback = {l: [p - q for p, q in zip(engine.model.feedback[l].params,
                                          before.feedback[l].params)] for l in range(2, 5)}
    return forward, feedback


@pytest.mark.parametrize("engine_name, synaptic", [("reference", False), ("brian2", False),
                                                   ("brian2", True)])
def test_each_layer_learns_at_its_own_rate(engine_name, synaptic):
    base_forward, base_feedback = _changes(engine_name, _spec(synaptic=synaptic))
    forward, feedback = _changes(engine_name, _spec({1: 0.5, 2: 0.0}, {3: 0.0, 4: 2.0},
                                                    synaptic=synaptic))
    for k in range(2):  # weight, bias
        assert np.abs(base_forward[1][k]).max() > 0 and np.abs(base_feedback[3][k]).max() > 0
        assert_close(forward[1][k], 0.5 * base_forward[1][k], 1e-9, f"layer 1 param {k}")
        assert np.all(forward[2][k] == 0), "lr_scale = 0 must freeze W_2, b_2"
        assert_close(forward[3][k], base_forward[3][k], 1e-12, f"layer 3 param {k}")
        assert np.all(feedback[3][k] == 0), "feedback_lr_scale = 0 must freeze g_3"
        assert_close(feedback[2][k], base_feedback[2][k], 1e-12, f"g_2 param {k}")
        assert_close(feedback[4][k], 2.0 * base_feedback[4][k], 1e-9, f"g_4 param {k}")


@pytest.mark.parametrize("layer, message", [
    ({"name": "l1", "size": 5, "lr_scale": -0.1}, r"layers\.l1\.lr_scale.*≥ 0"),
    ({"name": "l1", "size": 5, "lr_scale": float("nan")}, r"layers\.l1\.lr_scale.*finite"),
    ({"name": "l1", "size": 5, "feedback_lr_scale": 0.5}, r"layers\.l1\.feedback_lr_scale.*no feedback"),
])
def test_bad_learning_rate_scales_name_their_key(layer, message):
    with pytest.raises(SpecError, match=message):
        parse_model({"network": {"input_size": 6},
                     "layers": [layer, {"name": "out", "size": 3, "activation": "linear"}]})
