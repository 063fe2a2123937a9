"""The Brian2 engine: the model's layers as Brian2 populations, trained in simulated time.

:mod:`~bioprop.brian2.engine` holds the engine contract and its step callbacks,
:mod:`~bioprop.brian2.network` builds the groups and operations,
:mod:`~bioprop.brian2.layers` adapts each layer's groups, :mod:`~bioprop.brian2.phases`
holds the trial schedule and the registry of phase kinds, :mod:`~bioprop.brian2.monitors`
the activity probe's monitors, and :mod:`~bioprop.brian2.standalone` the forward pass
on Brian2's standalone devices.
"""
from .engine import Brian2Engine
from .latches import Latches
from .layers import InputLayer, RateLayer, SpikingLayer
from .monitors import ActivityMonitors
from .phases import PHASE_KINDS, Phase, PhaseKind, phase_kind, trial_phases
from .standalone import StandaloneForward, reset_device

__all__ = ["Brian2Engine", "Latches", "InputLayer", "RateLayer", "SpikingLayer",
           "ActivityMonitors", "Phase", "PhaseKind", "PHASE_KINDS", "phase_kind", "trial_phases",
           "StandaloneForward", "reset_device"]
