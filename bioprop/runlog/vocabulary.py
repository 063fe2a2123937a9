"""The vocabulary of a run file: every dimension and every variable it may hold.

A run file (docs/design.md, "The run file") is made of *sections*, one top-level group
each (``/train``, ``/test``, ``/metrics``, ``/pathways``, ``/iterative``, ``/phases``,
``/layers``, ``/batches``, ``/probe``, ``/constraints``). A section's groups grow entry by
entry along its *entry dims* (``epoch``; ``epoch`` and ``batch`` in ``/batches``; none in
``/phases``, ``/probe`` and ``/constraints``, which are written once before training), and
each of its variables has one or more *forms*: the dims of one entry of it. The dims of a
dataset are a section's entry dims followed by one form of the variable. Spikes are
events, 1-D lists along ``spike``, each marked with the entry it belongs to
(``spike_epoch``, ``spike_batch``). ``/phases`` is the one table: its entry dim ``phase``
does not grow, and it is written whole.

Everything that writes or reads a run file names its dims and variables from here: the
engines (what ``record_activity`` returns), the spec (``record.variables``), the writers,
and the analysis. :func:`check_declaration` is what the recorder calls before it creates
a group, so that a name not in this vocabulary never reaches a file.

Adding a recorded variable: one entry in the section's table below (and, for an activity
variable, its name constant, which the engine that records it imports).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from string import Template

__all__ = ["FORMAT_VERSION", "VocabularyError", "Dim", "Variable", "Section", "DIMS", "SECTIONS",
           "ACTIVITY", "ACTIVITY_VARIABLES", "METRICS", "SPIKE_EVENTS", "SPIKE_MARKS", "STEADY",
           "TIMED", "RECORD_COORDS", "TEST", "VALIDATION", "SPLIT", "PHASES", "CONSTRAINTS", "PROBE", "HZ", "pathway_name",
           "FORMAT1_PATHWAY", "RATE", "POTENTIAL", "NUDGE", "APICAL", "APICAL_CURRENT",
           "TARGET", "SPIKES", "SPIKE_TRIAL", "SPIKE_TIME", "SPIKE_NEURON", "spike_mark",
           "section_of", "coord_attrs", "check_dims", "check_declaration"]

#: Bumped whenever the layout changes in a way an old reader would misread. Version 2:
#: ``/eval`` became ``/test``, pathways are named by the layers they join, the phases of a
#: trial are the table ``/phases``, and spiking layers' rates read in Hz
#: (:mod:`bioprop.runlog.formats` reads version 1 as version 2).
FORMAT_VERSION = 2


class VocabularyError(ValueError):
    """A dimension, variable or section that the run-file vocabulary does not have."""


@dataclass(frozen=True)
class Dim:
    """A dimension of the run file.

    ``units`` is written as the attribute of its coordinate (``time`` in ms); a dim
    without units has a coordinate of plain indices or names, or none (``spike``).
    """

    name: str
    description: str
    units: str | None = None

    @property
    def coord_attrs(self) -> dict:
        """The attributes of the dim's coordinate variable."""
        return {"units": self.units} if self.units else {}


@dataclass(frozen=True)
class Variable:
    """A recorded variable: its units, long name, dtype and the dims of one entry.

    ``long_name`` may hold ``$fields`` (``$pre``, ``$post`` of a pathway), filled when a
    group is declared. ``forms`` lists every shape the variable may take, as dims; most
    have one, activity has a steady-state and a timed one.
    """

    units: str
    long_name: str
    forms: tuple[tuple[str, ...], ...] = ((),)
    dtype: str = "f8"

    def attrs(self, **fields) -> dict:
        """The dataset attributes of the variable (``units``, unless it is text; ``long_name``)."""
        units = {"units": self.units} if self.units else {}
        return {**units, "long_name": Template(self.long_name).substitute(fields)}


@dataclass(frozen=True)
class Section:
    """A top-level group of the run file and what its groups may hold.

    Parameters
    ----------
    name : str
    entry : tuple of str
        The dims every dense variable of the section starts with; the first grows.
    variables : dict
        Dense variables: name → :class:`Variable`.
    events : dict
        Event lists (spikes): name → :class:`Variable` of form ``("spike",)``.
    """

    name: str
    entry: tuple[str, ...]
    variables: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)

    def dims(self, names, form: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The dims of a group of the section whose variables `names` have `form`.

        Without `form`, the one form the variables have (a variable with several forms,
        such as activity, needs it).

        Raises
        ------
        VocabularyError
            For a variable the section does not have, or one without that form.
        """
        _check_known("Variable(s)", names, self.variables, f" in /{self.name}")
        if form is None:
            forms = {self.variables[name].forms for name in names}
            if len(forms) != 1 or len(next(iter(forms))) != 1:
                raise VocabularyError(f"Variables {', '.join(map(repr, names))} of /{self.name} "
                                      "do not share one form; choose the dims")
            form = next(iter(forms))[0]
        for name in names:
            if form not in self.variables[name].forms:
                raise VocabularyError(
                    f"Variable {name!r} of /{self.name} has no dims {form}. Expected one of "
                    f"{', '.join(map(str, self.variables[name].forms))}")
        return (*self.entry, *form)

    def declaration(self, names, form: tuple[str, ...] | None = None,
                    **fields) -> tuple[tuple, dict]:
        """(dims, {name: attributes}) of a group declaring `names`, as the recorder takes them."""
        dims = self.dims(names, form)
        return dims, {name: self.variables[name].attrs(**fields) for name in names}

    def event_declaration(self) -> dict:
        """{name: (dtype, attributes)} of the section's event lists: the marks of the
        entry each event belongs to, then the events' own variables."""
        return {name: (variable.dtype, variable.attrs()) for name, variable in self.events.items()}


def _check_known(what, names, known, where=""):
    unknown = [n for n in names if n not in known]
    if unknown:
        raise VocabularyError(f"{what} {', '.join(map(repr, unknown))} do not exist{where}. "
                              f"Expected one of {', '.join(map(repr, known))}")


#: every dimension of a run file
DIMS = {dim.name: dim for dim in (
    Dim("epoch", "training epoch; 0 is before training"),
    Dim("batch", "training batch, counted within its epoch"),
    Dim("trial", "row of a recorded batch"),
    Dim("time", "time from the start of the trial", "ms"),
    Dim("neuron", "neuron of a layer"),
    Dim("layer", "layer of the network, by name"),
    Dim("post", "neuron a pathway projects to"),
    Dim("pre", "neuron a pathway projects from"),
    Dim("iteration", "iterate k of the iterative target rule"),
    Dim("spike", "one spike event; a dimension without coordinate"),
    Dim("input_neuron", "neuron of the input layer (a pixel of an image)"),
    Dim("phase", "phase of a trial, in the order they run"),
    Dim("sample", "held-out validation sample, in the order of the training set"),
)}

#: the forms of activity: a steady state, and a trace through the trial
STEADY = ("trial", "neuron")
TIMED = ("trial", "time", "neuron")

#: the key of an activity record (``record_activity``) that holds its coordinates
#: (``time``, and the ``phase`` of each time point), beside the layers
RECORD_COORDS = "_coords"

# the names of activity variables, which the engines use as keys of ``record_activity``
RATE, POTENTIAL, NUDGE, APICAL, APICAL_CURRENT, TARGET = (
    "rate", "potential", "nudge", "apical", "apical_current", "target")
SPIKE_TRIAL, SPIKE_TIME, SPIKE_NEURON = "spike_trial", "spike_time", "spike_neuron"
#: the name ``record.variables`` uses for all of a layer's spike events
SPIKES = "spikes"

#: what a layer's activity record may hold, in the order it is declared
ACTIVITY = {
    RATE: Variable("1", "firing rate r = φ(v) + nudge", (STEADY, TIMED)),
    POTENTIAL: Variable("1", "somatic potential v (a at steady state)", (STEADY, TIMED)),
    NUDGE: Variable("1", "apical nudge of the rate", (TIMED,)),
    APICAL: Variable("1", "apical potential u (feedback input)", (TIMED,)),
    APICAL_CURRENT: Variable("1", "apical current of a spiking soma (feedback)", (TIMED,)),
    TARGET: Variable("1", "target ĥ of the layer (steady state)", (STEADY,)),
}

#: the spike events of a layer in ``record_activity``
SPIKE_EVENTS = {
    SPIKE_TRIAL: Variable("1", "trial (row of the batch) of the spike", (("spike",),), "i8"),
    SPIKE_TIME: Variable("ms", "spike time from the start of the trial", (("spike",),), "f8"),
    SPIKE_NEURON: Variable("1", "neuron of the layer that spiked", (("spike",),), "i8"),
}

#: the variable that marks each spike with its entry along an entry dim
SPIKE_MARKS = {
    "epoch": ("spike_epoch", Variable("1", "recorded epoch of the spike", (("spike",),), "i8")),
    "batch": ("spike_batch", Variable("1", "training batch (in its epoch) of the spike",
                                      (("spike",),), "i8")),
}

#: what ``record.variables`` may choose: the activity variables, and the spikes
ACTIVITY_VARIABLES = (*ACTIVITY, SPIKES)

#: every per-layer diagnostic of the probe batch (``/metrics``)
METRICS = {name: Variable(units, long_name, (("layer",),)) for name, (units, long_name) in {
    "angle_to_bp": ("degree", "angle between the rule's weight update and BP's"),
    "activity_angle_to_bp": ("degree", "angle between ĥ_l − h_l and −∂ℒ/∂h_l"),
    "angle_to_gn": ("degree", "angle between ĥ_l − h_l and the damped Gauss–Newton change"),
    "reconstruction_error": ("1", "‖g_l(f_l(h_{l-1})) − h_{l-1}‖ / ‖h_{l-1}‖"),
    "lipschitz": ("1", "estimate of Lip(g_l∘f_l − I) from pairs of points"),
    "angle_w_q": ("degree", "angle between W_lᵀ and Q_l"),
    "distance_w_q": ("1", "‖W_lᵀ − Q_l‖ / ‖W_lᵀ‖"),
}.items()}


#: the probe batch whose activity ``/layers`` holds: its trials' inputs and labels (the
#: phases of its trials are the table ``/phases``)
PROBE = {
    "input": Variable("1", "input of the probe trial (a training sample)",
                      (("trial", "input_neuron"),)),
    "label": Variable("1", "class of the probe trial's sample", (("trial",),), "i8"),
}


def spike_mark(dim: str) -> str:
    """The name of the variable that marks each spike with its entry along `dim`."""
    _check_known("Entry dimension(s)", [dim], SPIKE_MARKS)
    return SPIKE_MARKS[dim][0]


def _activity_section(name, entry):
    marks = {SPIKE_MARKS[d][0]: SPIKE_MARKS[d][1] for d in entry}
    return Section(name, entry, ACTIVITY, {**marks, **SPIKE_EVENTS})


#: the group of the residuals of a target rule that iterates (``rule.iterates``); the
#: group's name is part of the file format, and older files name it so
RESIDUALS = "iterative"


#: the group of the test figures; format 1 named it ``eval``
TEST = "test"

#: the group of the per-epoch figures on the validation set (data.validation), and of
#: the fixed group that says which training samples it holds
VALIDATION = "validation"
SPLIT = "split"

#: the group of the phases of a trial, one row each (a table: its dim does not grow)
PHASES = "phases"

#: the group of the connection masks and the neurons' signs that the constraints drew
#: (bioprop.constraints), one subgroup a pathway
CONSTRAINTS = "constraints"

#: the unit of a spiking layer's rate; its stored values are fractions of the layer's
#: maximal rate, and the netCDF attribute ``scale_factor`` (that rate in Hz) makes every
#: netCDF reader, xarray included, read them in Hz
HZ = "Hz"


def pathway_name(pre: str, post: str) -> str:
    """The name of the pathway from layer `pre` to layer `post`, e.g. ``hidden1_to_hidden2``."""
    return f"{pre}_to_{post}"


#: today's name of the pathway that format 1 named ``<kind>_<l>``, from the model's layer
#: names (``input`` first) and l, the layer a forward pathway projects to and a feedback
#: pathway projects from
FORMAT1_PATHWAY = {"forward": lambda names, l: pathway_name(names[l - 1], names[l]),
                   "feedback": lambda names, l: pathway_name(names[l], names[l - 1])}


#: every section of a run file
SECTIONS = {section.name: section for section in (
    Section("train", ("epoch",), {
        "loss": Variable("1", "mean training loss"),
        "wall_time": Variable("s", "wall-clock time of the epoch"),
        "samples_per_second": Variable("1/s", "training throughput"),
        "accuracy": Variable("1", "training accuracy"),
    }),
    Section(TEST, ("epoch",), {
        "loss": Variable("1", "mean test loss"),
        "accuracy": Variable("1", "test accuracy"),
    }),
    Section(VALIDATION, ("epoch",), {
        "loss": Variable("1", "mean validation loss"),
        "accuracy": Variable("1", "validation accuracy"),
    }),
    # written once, before training, when a validation set is held out
    Section(SPLIT, (), {
        "validation_index": Variable("1", "index in the training set (after data.n_train) of "
                                     "each held-out validation sample", (("sample",),), "i8"),
    }),
    Section("metrics", ("epoch",), METRICS),
    Section("pathways", ("epoch",), {
        "weight": Variable("1", "weights from $pre to $post", (("post", "pre"),)),
    }),
    Section(RESIDUALS, ("epoch",), {
        "residual": Variable("1", "‖f_{l+1}(x^k) − ĥ_{l+1}‖ of layer l's k-th iterate",
                             (("layer", "iteration"),)),
    }),
    Section(PHASES, ("phase",), {
        "name": Variable("", "kind of phase", dtype="str"),
        "start": Variable("ms", "start of the phase from the start of the trial"),
        "duration": Variable("ms", "duration of the phase"),
        "somas": Variable("", "layers whose somas integrate their input (the others are held)",
                          dtype="str"),
        "dendrites": Variable("", "layers whose apical dendrites integrate their feedback",
                              dtype="str"),
    }),
    _activity_section("layers", ("epoch",)),
    _activity_section("batches", ("epoch", "batch")),
    # written once, before training: no entry dims
    Section("probe", (), PROBE),
    # written once, before training, for each pathway a constraint draws for
    Section(CONSTRAINTS, (), {
        "connected": Variable("1", "1 where the connection from $pre to $post exists, else 0",
                              (("post", "pre"),), "i1"),
        "sign": Variable("1", "sign of every weight out of each neuron of $pre to $post: +1 "
                         "excitatory, −1 inhibitory (Dale's law)", (("pre",),), "i1"),
    }),
)}


def section_of(group: str) -> Section:
    """The section a group belongs to: the first part of its path."""
    name = group.strip("/").split("/")[0]
    _check_known("Section(s)", [name], SECTIONS)
    return SECTIONS[name]


def coord_attrs(dims) -> dict:
    """{dim: attributes} of the coordinates of `dims` that have attributes (units)."""
    return {d: DIMS[d].coord_attrs for d in dims if DIMS[d].coord_attrs}


def check_dims(dims) -> None:
    """Raise :class:`VocabularyError` for a dim that is not in :data:`DIMS`."""
    _check_known("Dimension(s)", dims, DIMS)


def check_declaration(group: str, names, dims, *, events: bool = False) -> None:
    """Check a group's declaration against the vocabulary, before it reaches a file.

    Parameters
    ----------
    group : str
        The group's path; its first part names the section.
    names : iterable of str
        The variables declared.
    dims : tuple of str
        Their dims: for dense variables the section's entry dims then a form of each
        variable; for events, the one event dim.
    events : bool
        Whether `names` are event lists.

    Raises
    ------
    VocabularyError
        Naming the unknown dims, section or variables and what was expected instead.
    """
    check_dims(dims)
    section = section_of(group)
    if events:
        _check_known("Event variable(s)", names, section.events, f" in /{section.name}")
        for name in names:
            if tuple(dims) not in section.events[name].forms:
                raise VocabularyError(f"Event variable {name!r} of /{section.name} has dims "
                                      f"{section.events[name].forms[0]}, not {tuple(dims)}")
        return
    entry = len(section.entry)
    if tuple(dims[:entry]) != section.entry:
        raise VocabularyError(f"Groups of /{section.name} start with dims {section.entry}, "
                              f"not {tuple(dims[:entry])}")
    section.dims(list(names), tuple(dims[entry:]))
