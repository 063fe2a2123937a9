"""Hostile inputs from files: data sets, run files, checkpoints, output paths; and signals.

The bad files are made by :mod:`makers` in the case's own directory, from tiny runs trained
once per session.
"""
import os
from pathlib import Path

import numpy as np

from case import Hostile
from makers import (bare_run_attrs, copy_run, gzipped, hdf5_file, idx_bytes, mnist_with,
                    resumable, rewrite_checkpoint, set_attrs, truncate)

DATA = {"BIOPROP_DATA": "{here}/data"}
TRAIN_X, TRAIN_Y = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_X = "t10k-images-idx3-ubyte"


def _then(make, *argv):
    """A case's argv: `make(here)` writes the files, then bioprop gets `argv`."""
    def build(here):
        make(here)
        return list(argv)
    return build


def _dir_without_idx(here):
    (here / "data" / "fashion_mnist").mkdir(parents=True)
    (here / "data" / "fashion_mnist" / "README.txt").write_text("downloads go here\n")


def _partial_set(here):
    from makers import idx_set
    idx_set(here / "data")
    (here / "data" / TEST_X).unlink()


def _run_and(*argv, kind="reference", prepare=None, checkpoint=True):
    """Copy a good run to ./run.h5, let `prepare(path)` spoil it, then run `argv`."""
    def build(here):
        path = copy_run(here, kind, checkpoint=checkpoint)
        if prepare is not None:
            prepare(path)
        return list(argv)
    return build


def _resume_with(prepare):
    """An interrupted run whose checkpoint `prepare(checkpoint_path)` spoils; then --resume."""
    def build(here):
        path = resumable(here)
        prepare(path.with_name("run.ckpt.npz"))
        return ["run", "-q", "--resume", "run.h5"]
    return build


def _foreign_checkpoint(ckpt):
    copy_run(ckpt.parent, "reference-seed2", name="other.h5")
    os.replace(ckpt.parent / "other.ckpt.npz", ckpt)
    (ckpt.parent / "other.h5").unlink()


def _npz(path, **arrays):
    with open(path, "wb") as f:  # np.savez(path) would add ".npz" to the name
        np.savez(f, **arrays)


def _folder_instead(path):
    path.unlink()
    path.mkdir()
    (path / "x").write_text("")


def _write(name, content):
    def make(here):
        path = here / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return make


def _bare(name="run.h5", groups=(), **attrs):
    return lambda here: hdf5_file(here, name, bare_run_attrs(**attrs), groups)


def _signal(what, says, test):
    """A signal: it needs a process of its own, so a test of tests/test_interrupt.py runs it."""
    return Hostile("signal", what, None, says, tested_in=f"tests/test_interrupt.py::{test}")


RUN = ["run", "-q", "--set", "engine.name=reference", "--set", "training.epochs=1"]
LABELS_12 = idx_bytes(np.full(40, 12))

CASES = [
    # ----------------------------------------------------------------- data sets
    Hostile("data set", "`BIOPROP_DATA` names a folder that does not exist",
            ["run", "--set", "data.dataset=mnist"], "no-such-folder: no such folder",
            env={"BIOPROP_DATA": "{here}/no-such-folder"}),
    Hostile("data set", "`BIOPROP_DATA` names a file, not a folder",
            _then(_write("data", "not a folder"), "run", "--set", "data.dataset=mnist"),
            "is not a folder", env=DATA),
    Hostile("data set", "Fashion-MNIST asked for, `BIOPROP_DATA` holds no idx files",
            _then(_dir_without_idx, "run", "--set", "data.dataset=fashion_mnist"),
            "Fashion-MNIST not found", env=DATA),
    Hostile("data set", "`BIOPROP_DATA` holds no MNIST files (no silent fall-back to the package)",
            _then(_dir_without_idx, "run", "--set", "data.dataset=mnist"),
            "MNIST not found in the data folder", env=DATA),
    Hostile("data set", "MNIST idx files: one of the four missing",
            _then(_partial_set, "run", "--set", "data.dataset=mnist"), TEST_X, env=DATA),
    Hostile("data set", "training images idx file cut short",
            mnist_with({TRAIN_X: lambda raw: raw[:-100]}), TRAIN_X, env=DATA),
    Hostile("data set", "idx file cut inside its header",
            mnist_with({TRAIN_X: lambda raw: raw[:9]}), f"{TRAIN_X}: truncated", env=DATA),
    Hostile("data set", "idx file of zero bytes", mnist_with({TRAIN_Y: b""}), TRAIN_Y, env=DATA),
    Hostile("data set", "idx file with a wrong magic number",
            mnist_with({TRAIN_X: lambda raw: b"\x00\x00\x09\x99" + raw[4:]}), TRAIN_X, env=DATA),
    Hostile("data set", "idx file of 32-bit integers, not bytes",
            mnist_with({TRAIN_Y: lambda raw: b"\x00\x00\x0c\x01" + raw[4:]}), TRAIN_Y, env=DATA),
    Hostile("data set", "gzipped idx file cut short",
            mnist_with({TRAIN_X: lambda raw: gzipped(raw)[:-50]}), TRAIN_X, env=DATA),
    Hostile("data set", "a text file in the place of an idx file",
            mnist_with({TRAIN_Y: b"label\n3\n1\n4\n"}), TRAIN_Y, env=DATA),
    Hostile("data set", "idx labels out of range (12 in a ten-class set)",
            mnist_with({TRAIN_Y: LABELS_12}), TRAIN_Y, env=DATA),
    Hostile("data set", "idx images and labels of different counts",
            mnist_with({TRAIN_Y: idx_bytes(np.arange(39) % 10)}), TRAIN_Y, env=DATA),
    Hostile("data set", "idx images and labels files swapped",
            mnist_with({TRAIN_X: idx_bytes(np.arange(40) % 10),
                        TRAIN_Y: idx_bytes(np.zeros((40, 8, 8)))}), TRAIN_X, env=DATA),
    Hostile("data set", "test images of another size than the training images",
            mnist_with({TEST_X: idx_bytes(np.zeros((20, 6, 6)))}), TEST_X, env=DATA),
    Hostile("data set", "images of another size than the model's input",
            mnist_with(side=8, sets=["network.input_size=784"]), "network.input_size",
            env=DATA),
    Hostile("data set", "an idx set with no training images",
            mnist_with(n=(0, 20)), TRAIN_X, env=DATA),
    Hostile("data set", "`data.n_train` larger than the data set",
            RUN + ["--set", "data.n_train=5000"], "data.n_train=5000"),
    Hostile("data set", "`data.n_test` larger than the data set",
            RUN + ["--set", "data.n_test=999"], "data.n_test=999"),
    Hostile("data set", "an unknown data set name (`data.dataset=mnsit`)",
            RUN + ["--set", "data.dataset=mnsit"], "Did you mean 'mnist'?"),
    Hostile("data set", "MNIST not on the machine (with how to get it)", None, "",
            tested_in="tests/test_datasets.py::test_missing_data_sets_are_one_line_from_the_cli"),
    Hostile("data set", "the MNIST CSV file of the package is empty", None, "",
            tested_in="tests/test_datasets.py::test_an_empty_mnist_csv_names_the_file"),
    # -------------------------------------------------------------- output paths
    Hostile("output path", "`-o` names a folder", _then(_write("out/x", ""), *RUN, "-o", "out"),
            "out: is a folder"),
    Hostile("output path", "`-o` names a folder, with `--force`",
            _then(_write("out/x", ""), *RUN, "-o", "out", "--force"), "out: is a folder"),
    Hostile("output path", "`-o` in a folder that does not exist", RUN + ["-o", "nodir/run.h5"],
            "the folder nodir does not exist"),
    Hostile("output path", "`-o` below a file, as if it were a folder",
            _then(_write("notes.txt", "x"), *RUN, "-o", "notes.txt/run.h5"), "notes.txt is not a folder"),
    Hostile("output path", "`-o` in a folder that cannot be written", None, "",
            tested_in="tests/test_record.py::test_an_unwritable_output_is_one_line"),
    Hostile("output path", "`-o` names an existing run file, without `--force`",
            _run_and(*RUN, "-o", "run.h5"), "run.h5 exists; pass --force"),
    Hostile("output path", "`-o` names an existing file that is not a run",
            _then(_write("results.h5", "my results"), *RUN, "-o", "results.h5"),
            "results.h5 exists"),
    Hostile("output path", "`-o` names a model file (`.toml`)",
            _then(_write("model.toml", "[network]\n"), *RUN, "-o", "model.toml"), "model.toml: a run file is HDF5"),
    Hostile("output path", "`-o` with a suffix that is not HDF5 (`.csv`)",
            RUN + ["-o", "run.csv"], "run.csv: a run file is HDF5"),
    Hostile("output path", "`-o` empty", RUN + ["-o", ""], "path is empty"),
    Hostile("output path", "`-o` with a file name too long for the file system",
            RUN + ["-o", "r" * 300 + ".h5"], "this file system allows"),
    Hostile("output path", "`record.path` names a folder (ends in `/`)",
            RUN + ["--set", "record.path=runs/"], "record.path=runs/: 'runs/' names a folder"),
    Hostile("output path", "`record.path` with a positional placeholder `{0}`",
            RUN + ["--set", "record.path=runs/{0}.h5"], "unknown placeholder {0}"),
    Hostile("output path", "`record.path` with a bad format spec `{seed:q}`",
            RUN + ["--set", "record.path=runs/{seed:q}.h5"],
            "'runs/{seed:q}.h5' is not a valid pattern"),
    Hostile("output path", "`record.path` with an attribute `{model.name}`",
            RUN + ["--set", "record.path=runs/{model.name}.h5"],
            "unknown placeholder {model.name}"),
    Hostile("output path", "`report -o` names a file, not a folder",
            _run_and("report", "run.h5", "-o", "run.ckpt.npz"), "run.ckpt.npz: is a file"),
    Hostile("output path", "disk full while the run is written", None, "",
            tested_in="tests/test_record.py::test_a_full_disk_stops_the_run_with_one_line"),
    Hostile("output path", "`export --nwb` names an existing file, without `--force`",
            _run_and("export", "run.h5", "--nwb", "run.h5", kind="brian2"),
            "run.h5 exists; pass --force"),
    Hostile("output path", "`export --nwb` names a folder",
            _run_and("export", "run.h5", "--nwb", ".", "--force", kind="brian2"), "folder"),
    # ----------------------------------------------------------------- run files
    Hostile("run file", "`info` of a file that does not exist", ["info", "nope.h5"], "nope.h5"),
    Hostile("run file", "`info` of a text file", _then(_write("run.h5", "hello"), "info",
                                                       "run.h5"), "run.h5"),
    Hostile("run file", "`info` of an empty file", _then(_write("run.h5", b""), "info",
                                                         "run.h5"), "run.h5"),
    Hostile("run file", "`info` of a model file given for the run file",
            _then(_write("lif.toml", "[network]\ninput_size = 64\n"), "info", "lif.toml"),
            "lif.toml"),
    Hostile("run file", "`info` of a checkpoint given for the run file",
            _run_and("info", "run.ckpt.npz"), "run.ckpt.npz"),
    Hostile("run file", "an HDF5 file without bioprop's attributes",
            _then(lambda h: hdf5_file(h, attrs={"title": "x"}), "info", "run.h5"),
            "not a bioprop run file"),
    Hostile("run file", "`report` of a file with bioprop's attributes but no groups",
            _then(_bare(), "report", "run.h5"), "run.h5"),
    Hostile("run file", "`export` of a file with bioprop's attributes but no groups",
            _then(_bare(), "export", "run.h5", "--nwb", "o.nwb"), "run.h5"),
    Hostile("run file", "`--resume` of a file with bioprop's attributes but no groups",
            _then(_bare(status="interrupted"), "run", "--resume", "run.h5"), "run.h5"),
    Hostile("run file", "`report` of a run without its `engine` attribute",
            _run_and("report", "run.h5", prepare=lambda p: set_attrs(p, delete=["engine"])),
            "engine"),
    Hostile("run file", "format version not a number",
            _run_and("info", "run.h5", prepare=lambda p: set_attrs(
                p, bioprop_format_version="one")), "bioprop_format_version"),
    Hostile("run file", "format version from the future",
            _run_and("info", "run.h5", prepare=lambda p: set_attrs(
                p, bioprop_format_version=99)), "99"),
    Hostile("run file", "`report` of a run whose `model_toml` is garbage",
            _run_and("report", "run.h5", prepare=lambda p: set_attrs(p, model_toml="[[[")),
            "model_toml"),
    Hostile("run file", "`--resume` of a run whose `model_toml` is garbage",
            _then(lambda h: set_attrs(resumable(h), model_toml="[["), "run", "--resume",
                  "run.h5"), "model_toml"),
    Hostile("run file", "`--resume` of a run without `protocol_toml`",
            _then(lambda h: set_attrs(resumable(h), delete=["protocol_toml"]), "run",
                  "--resume", "run.h5"), "protocol_toml"),
    Hostile("run file", "`export` of a run whose `created` date is garbage",
            _run_and("export", "run.h5", "--nwb", "o.nwb", kind="brian2",
                     prepare=lambda p: set_attrs(p, created="yesterday")), "created"),
    Hostile("run file", "`report` of a folder", _then(_write("runs/x", ""), "report", "runs"),
            "is a folder"),
    Hostile("run file", "`report` of two runs, the second missing",
            _run_and("report", "run.h5", "nope.h5"), "nope.h5"),
    Hostile("run file", "`export` of an epoch that was not recorded",
            _run_and("export", "run.h5", "--nwb", "o.nwb", "--epoch", "5", kind="brian2"),
            "recorded: 0, 1"),
    Hostile("run file", "`export` of a run without time-resolved activity",
            _run_and("export", "run.h5", "--nwb", "o.nwb"), "no time-resolved activity"),
    Hostile("run file", "a truncated run file (`info`)",
            _run_and("info", "run.h5", prepare=truncate), "run.h5"),
    Hostile("run file", "a truncated run file (`--resume`)",
            _then(lambda h: truncate(resumable(h)), "run", "--resume", "run.h5"), "run.h5"),
    Hostile("run file", "`--resume` of a complete run", _run_and("run", "--resume", "run.h5"),
            "nothing to resume"),
    Hostile("run file", "`--resume` with `--set`",
            _run_and("run", "--resume", "run.h5", "--set", "training.epochs=5"), "--resume"),
    # --------------------------------------------------------------- checkpoints
    Hostile("checkpoint", "checkpoint missing beside the run file",
            _then(lambda h: resumable(h).with_name("run.ckpt.npz").unlink(), "run", "--resume",
                  "run.h5"), "no checkpoint (run.ckpt.npz)"),
    Hostile("checkpoint", "checkpoint truncated", _resume_with(lambda c: truncate(c, 0.3)),
            "run.ckpt.npz"),
    Hostile("checkpoint", "checkpoint of random bytes", _resume_with(
        lambda c: c.write_bytes(np.random.default_rng(0).bytes(4096))), "run.ckpt.npz"),
    Hostile("checkpoint", "checkpoint of zero bytes", _resume_with(lambda c: c.write_bytes(b"")),
            "run.ckpt.npz"),
    Hostile("checkpoint", "checkpoint is a folder",
            _resume_with(_folder_instead),
            "run.ckpt.npz: is not a file"),
    Hostile("checkpoint", "an `.npz` of other arrays in the checkpoint's place",
            _resume_with(lambda c: _npz(c, a=np.zeros(3))), "run.ckpt.npz"),
    Hostile("checkpoint", "checkpoint metadata not JSON", _resume_with(
        lambda c: _npz(c, __meta__=np.array("{{oops"))), "run.ckpt.npz"),
    Hostile("checkpoint", "checkpoint of another format version",
            _resume_with(lambda c: rewrite_checkpoint(c, {"format": 1})), "format 1"),
    Hostile("checkpoint", "checkpoint from another run (another seed)",
            _resume_with(_foreign_checkpoint), "belongs to another run"),
    Hostile("checkpoint", "checkpoint claiming an epoch past the run's end",
            _resume_with(lambda c: rewrite_checkpoint(c, {"epoch": 50})), "epoch 50"),
    Hostile("checkpoint", "checkpoint older than the run file's last epoch",
            _resume_with(lambda c: rewrite_checkpoint(c, {"epoch": 0})),
            "not the file's latest checkpoint"),
    Hostile("checkpoint", "checkpoint missing one of the model's arrays",
            _resume_with(lambda c: rewrite_checkpoint(c, drop=["W_2"])), "does not fit"),
    Hostile("checkpoint", "checkpoint with an array of the wrong shape",
            _resume_with(lambda c: rewrite_checkpoint(c, reshape=["W_1"])), "does not fit"),
    # ------------------------------------------------------------------- signals
    _signal("Ctrl-C (SIGINT) during training", "interrupted after epoch",
            "test_sigint_stops_keeps_epochs_and_resumes_bit_identical"),
    _signal("Ctrl-C before the engine is built", "nothing was trained and no run file was "
            "written", "test_ctrl_c_before_training_leaves_no_file"),
    _signal("Ctrl-C after the run file is created, before training", "holds no finished epoch",
            "test_ctrl_c_while_the_run_file_is_declared_says_it_holds_no_epoch"),
    _signal("SIGTERM before the engine is built", "nothing was trained",
            "test_ctrl_c_before_training_leaves_no_file"),
    _signal("SIGTERM during training (as from a batch scheduler)", "Continue with: bioprop run "
            "--resume", "test_sigterm_stops_like_sigint"),
    _signal("a second Ctrl-C while the run stops", "", "test_stop_signal_second_ctrl_c_raises_at_once"),
    _signal("Ctrl-C before the first checkpoint", "start the run again",
            "test_interrupted_before_the_first_checkpoint_says_start_again"),
    # recover (H1)
    Hostile("run file", "`bioprop recover` on a file that does not exist",
            ["recover", "missing.h5"], "missing.h5: no such run file"),
    Hostile("run file", "`bioprop recover` on a directory",
            lambda d: (d / "runs").mkdir() or ["recover", "runs"],
            "runs: is a directory, not a run file"),
    Hostile("run file", "`bioprop recover` on a file that is not HDF5",
            lambda d: (d / "notes.h5").write_text("notes") and ["recover", "notes.h5"],
            "notes.h5: not an HDF5 file"),
    Hostile("run file", "`bioprop recover` on an HDF5 file that is not a run, its writer killed",
            lambda d: _flagged(d / "other.h5") or ["recover", "other.h5"],
            "other.h5: an HDF5 file, but not a bioprop run file"),
    Hostile("run file", "`bioprop recover` on a run file cut short",
            lambda d: _cut_short(d / "run.h5") or ["recover", "run.h5"],
            "run.h5: HDF5 cannot read it"),
]


def _flagged(path: Path):
    """An HDF5 file (not a run) with the "open for write" flag a killed writer leaves."""
    import os

    import h5py

    from bioprop.runlog.superblock import lookup3, read_superblock

    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = [1.0]
    with open(path, "r+b") as f:
        block = read_superblock(f.fileno())
        raw = bytearray(block.raw)
        raw[11] = 1  # the flags byte: open for write
        raw[-4:] = lookup3(bytes(raw[:-4])).to_bytes(4, "little")
        os.pwrite(f.fileno(), bytes(raw), block.offset)


def _cut_short(path: Path):
    """A finished run file of which only the first half is left."""
    from bioprop.runlog import RunRecorder

    with RunRecorder(path, {"bioprop_format_version": 1}) as rec:
        rec.declare("train", {"loss": {}}, dims=("epoch",))
        rec.append("train", 1, {"loss": 0.5})
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
