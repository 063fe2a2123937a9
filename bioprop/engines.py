"""The engines by name, and building one around a freshly initialised model.

:data:`ENGINES` is the registry the protocol's ``engine.name`` is checked against;
:func:`make_engine` draws the initial weights (:func:`bioprop.model.build_model`) and
puts them inside the engine the protocol names. The engines' classes are imported only
when one is built, so that the reference engine never loads Brian2.
"""
from __future__ import annotations

import numpy as np

from .constraints import draw_constraints, forward_p_connect
from .model import build_model
from .spec import ModelSpec, ProtocolSpec

__all__ = ["ENGINES", "make_engine"]


def _reference(model, spec, protocol):
    from .reference import ReferenceEngine
    return ReferenceEngine(model, spec, protocol.training.batch_size)


def _brian2(model, spec, protocol):
    from .brian2 import Brian2Engine
    return Brian2Engine(model, spec, protocol, protocol.training.batch_size)


#: engine name → builder(model, model_spec, protocol_spec)
ENGINES = {"brian2": _brian2, "reference": _reference}


def make_engine(model_spec: ModelSpec, protocol: ProtocolSpec, rng: np.random.Generator):
    """A freshly initialised model inside the engine the protocol names, its weights
    constrained as the model's ``[constraints]`` say (:mod:`bioprop.constraints`)."""
    from .model import side_size
    from .populations import layer_activation, layer_feedback_activation
    from .rules import top_layer

    rule = model_spec.rule
    dt = protocol.phases.dt.quantity
    model = build_model(model_spec.names, model_spec.sizes,
                        [layer_activation(layer, dt) for layer in model_spec.layers], rng,
                        feedback_activations=[layer_feedback_activation(layer, dt)
                                              for layer in model_spec.layers],
                        dtype=np.dtype(protocol.engine.dtype), init=model_spec.network.init,
                        gain=model_spec.network.init_gain,
                        feedback_gain=model_spec.network.feedback_init_gain,
                        top=top_layer(len(model_spec.layers), rule.top),
                        side_size=side_size(rule.side_information, model_spec.sizes),
                        p_connect=forward_p_connect(model_spec))
    # after every other draw from rng: a model without constraints draws what it always drew
    draw_constraints(model, model_spec.constraints, rng)
    engine = ENGINES[protocol.engine.name](model, model_spec, protocol)
    engine.keep_partial_batch = protocol.training.keep_partial_batch
    return engine.keep_average(protocol.training.average_weights)
