"""The run log: everything that says what goes into a run file, and how it is written and read.

* :mod:`~bioprop.runlog.vocabulary` — the dims, sections and variables a run file may hold,
  and the check every declaration passes;
* :mod:`~bioprop.runlog.recorder` — :class:`RunRecorder`, the HDF5 (netCDF-4) writer;
* :mod:`~bioprop.runlog.provenance` — the root attributes of a run;
* :mod:`~bioprop.runlog.writers` and :mod:`~bioprop.runlog.activity` — what a training
  run declares and appends epoch by epoch;
* :mod:`~bioprop.runlog.reader` — :func:`open_run` and :func:`read_run_file`;
* :mod:`~bioprop.runlog.rewrite` — :func:`reopen_run`, a run file continued by ``--resume``;
* :mod:`~bioprop.runlog.formats` — what changed between format versions, and how a
  version-1 file reads in today's layout.
* :mod:`~bioprop.runlog.recover`, :mod:`~bioprop.runlog.superblock` and
  :mod:`~bioprop.runlog.writer_lock` — :func:`recover_run`, a killed writer's file made
  readable by every HDF5 reader, and the lock that tells a live writer from a killed one.
"""
from .activity import batch_entries, declare_activity, record_probe_activity, recording, records_batches
from .provenance import provenance
from .reader import UNFINISHED, open_run, read_run_file, text_attribute
from .recorder import RunFileExistsError, RunRecorder
from .recover import recover_run
from .writer_lock import KilledWriterWarning
from .rewrite import reopen_run
from .vocabulary import (ACTIVITY, ACTIVITY_VARIABLES, APICAL, APICAL_CURRENT, DIMS,
                         FORMAT_VERSION, METRICS, NUDGE, POTENTIAL, RATE, RECORD_COORDS, SECTIONS,
                         SPIKE_EVENTS, SPIKE_MARKS, SPIKE_NEURON, SPIKE_TIME, SPIKE_TRIAL, SPIKES,
                         STEADY, TARGET, TIMED, Dim, Section, Variable, VocabularyError,
                         check_declaration, check_dims, spike_mark)
from .writers import (declare_run, record_diagnostics, record_epoch, recorded_pathways,
                      snapshot_weights)

__all__ = ["ACTIVITY", "ACTIVITY_VARIABLES", "APICAL", "APICAL_CURRENT", "DIMS", "FORMAT_VERSION",
           "METRICS", "NUDGE", "POTENTIAL", "RATE", "RECORD_COORDS", "SECTIONS", "SPIKE_EVENTS",
           "SPIKE_MARKS", "SPIKE_NEURON", "SPIKE_TIME", "SPIKE_TRIAL", "SPIKES", "STEADY", "TARGET",
           "TIMED", "Dim", "Section", "Variable", "VocabularyError", "check_declaration",
           "check_dims", "spike_mark", "RunFileExistsError", "RunRecorder", "provenance",
           "open_run", "read_run_file", "text_attribute", "UNFINISHED", "reopen_run",
           "recover_run", "KilledWriterWarning",
           "declare_run", "record_epoch", "record_diagnostics", "snapshot_weights", "recorded_pathways", "declare_activity",
           "recording", "record_probe_activity", "records_batches", "batch_entries"]
