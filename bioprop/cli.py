"""The bioprop command line: run, sweep, list, report, info, recover, export and bench.

Each command is a thin layer over the Python API; every error a user can cause
(bad TOML, missing data, an existing run file, divergence) is printed as one
message naming the file and key, with no traceback, and a non-zero exit status:
2 for a bad input, 1 for a run that diverged, 130 for one stopped by Ctrl-C and 143
for one stopped by SIGTERM (with the command that resumes it). A warning (e.g. phases too short to settle) is one line.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import warnings

__all__ = ["main", "build_parser", "check"]


def _run(args) -> int:
    from .training import run

    _check_resume(args)
    result = run(args.model, args.protocol, output=args.output, force=args.force,
                 overrides=args.set, progress=not args.quiet, resume=args.resume)
    rows = [("engine", result.engine), ("epochs", str(result.epochs))]
    if result.test_accuracy is not None:
        rows.append(("test accuracy", f"{100 * result.test_accuracy:.2f} %"))
    rows.append(("test loss", f"{result.test_loss:.4f}"))
    last = result.history[-1] if result.history else {}
    if "validation_loss" in last:  # data.validation: the last epoch's held-out figures
        if "validation_accuracy" in last:
            rows.append(("validation accuracy", f"{100 * last['validation_accuracy']:.2f} %"))
        rows.append(("validation loss", f"{last['validation_loss']:.4f}"))
    rows += [("training time", f"{result.wall_time:.1f} s"),
             ("samples / s", f"{result.samples_per_second:,.0f}"),
             ("run file", str(result.path))]
    _print_rows(rows)
    return 0


def _check_resume(args):
    from .spec import SpecError

    if args.resume and (args.model or args.protocol or args.set or args.output):
        raise SpecError("--resume continues a run with the model and protocol recorded in it; "
                        "it takes no MODEL, PROTOCOL, -o or --set")


def _check_set_spacing(argv):
    """``--set training.epochs 1`` (a space for the ``=``): argparse would take the ``1`` as
    the model file; name the mistake instead."""
    from .errors import SpecError

    for option, key, after in zip(argv, argv[1:], argv[2:]):
        if option == "--set" and "=" not in key and not after.startswith("-"):
            raise SpecError(f"--set {key} {after}: expected KEY=VALUE with no space; did you "
                            f"mean --set {key}={after}?")


def _print_rows(rows):
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows))


def _count(text):
    """A whole number ≥ 1, for argparse (which names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return value


def _sizes(text):
    """``"784,240,10"`` → [784, 240, 10]: layer sizes, input first, for argparse."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected two or more whole numbers ≥ 1 separated by "
                                         f"commas, input first, got {text!r}")
    return sizes


def _sweep(args) -> int:
    from .sweep.command import run_command

    return run_command(args, _print_rows)


def _list(args) -> int:
    from .shipped import listing

    print(listing())
    return 0


def _report(args) -> int:
    from .analysis.report import write_report

    page = write_report(args.runs, args.output)
    print(f"report: {page}")
    return 0


def _info(args) -> int:
    from .analysis.report import describe

    print(describe(args.run, toml=args.toml))
    return 0


def _recover(args) -> int:
    from .runlog import recover_run

    print(recover_run(args.run))
    return 0


def _export(args) -> int:
    from .nwb import export_nwb

    print(f"NWB: {export_nwb(args.run, args.nwb, epoch=args.epoch, force=args.force)}")
    return 0


def _bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def _parser():
    parser = argparse.ArgumentParser(
        prog="bioprop", description="Target propagation in Brian2 neural populations: train a "
        "model under a protocol, sweep settings, and read the run files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands below; bioprop COMMAND --help "
                                     "describes its arguments")
    sub.add_parser = _described(sub.add_parser)

    run = sub.add_parser("run", help="train a model under a protocol and write a run file")
    run.add_argument("model", nargs="?", help="model TOML, or the name of a shipped model "
                     "(bioprop list; default: the embedded DTP digits model)")
    run.add_argument("protocol", nargs="?", help="protocol TOML, or the name of a shipped "
                     "protocol (default: the one the model names, else the embedded protocol)")
    run.add_argument("-o", "--output", help="run file (.h5); default from the protocol's record.path")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override an entry of the model or protocol, e.g. --set rule.target=tp")
    run.add_argument("--force", action="store_true", help="replace an existing run file")
    run.add_argument("--resume", metavar="RUN.h5",
                     help="continue a killed or interrupted run from its checkpoint")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    from .sweep import command as sweep_command

    sweep = sub.add_parser("sweep", help="run a grid of settings times seeds, or a random "
                                         "search, one run file per point, and gather one table")
    sweep.add_argument("model", nargs="?", help="model TOML or shipped name (default: the "
                       "embedded model)")
    sweep.add_argument("protocol", nargs="?", help="protocol TOML or shipped name (default: "
                       "the one the model names, else the embedded protocol)")
    seeds = sweep.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_count, default=1, metavar="N",
                       help="seeds 1..N (default 1)")
    seeds.add_argument("--seed-list", type=sweep_command.int_list, metavar="S1,S2,...",
                       help="these seeds instead")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="an axis of the grid (repeatable); values are read as --set reads them")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override an entry for every point")
    sweep.add_argument("-o", "--output", metavar="DIR",
                       help="folder of the run files (default: runs/sweep-<model name>)")
    sweep.add_argument("--table", metavar="PATH", help="the table, .csv or .nc "
                       "(default: DIR/sweep.csv; a search: DIR/search.csv)")
    sweep.add_argument("--workers", type=_count, metavar="N",
                       help="local processes (default: the number of CPUs)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the points on this Dask distributed scheduler instead; "
                            "'local' starts a Dask LocalCluster of --workers processes")
    sweep.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sweep_command.add_arguments(sweep, _count)
    sweep.set_defaults(func=_sweep)

    shipped = sub.add_parser("list", aliases=["models"], help="the shipped models and protocols, "
                             "one line each")
    shipped.set_defaults(func=_list)

    report = sub.add_parser("report", help="figures and a summary page of one or more run files")
    report.add_argument("runs", nargs="+", metavar="RUN.h5", help="runs to overlay")
    report.add_argument("-o", "--output", default="report", help="folder (default: ./report)")
    report.set_defaults(func=_report)

    info = sub.add_parser("info", help="provenance and contents of a run file")
    info.add_argument("run", metavar="RUN.h5", help="a run file")
    info.add_argument("--toml", action="store_true", help="also print the model and protocol")
    info.set_defaults(func=_info)

    recover = sub.add_parser("recover", help="make a run file whose writer was killed open in "
                                             "every HDF5 reader (plain xarray, h5py)")
    recover.add_argument("run", metavar="RUN.h5", help="the killed run's file; it is changed "
                         "only in its header's writer flags")
    recover.set_defaults(func=_recover)

    export = sub.add_parser("export", help="export a run's recorded activity (NWB)")
    export.add_argument("run", metavar="RUN.h5", help="a run file with recorded activity")
    export.add_argument("--nwb", required=True, metavar="OUT.nwb", help="the NWB file to write")
    export.add_argument("--epoch", type=int, help="recorded epoch (default: the last)")
    export.add_argument("--force", action="store_true", help="replace an existing OUT.nwb")
    export.set_defaults(func=_export)

    bench = sub.add_parser("bench", help="speed benchmark: Brian2 engine against the reference")
    bench.add_argument("--sizes", type=_sizes, default="784,240,240,240,240,240,240,240,10",
                       help="layer sizes, input first (default: Lee 2015's 784-7x240-10)")
    bench.add_argument("--batch-size", type=_count, default=100,
                       help="trials per batch (default 100)")
    bench.add_argument("--batches", type=_count, default=20, help="batches per measurement")
    bench.add_argument("--repeats", type=_count, default=3,
                       help="measurements; medians are reported")
    bench.add_argument("--threads", type=_count, default=1, help="BLAS threads")
    bench.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                       help="floating point type of weights and activity (default float64)")
    bench.add_argument("--spiking", action="store_true",
                       help="also time the network with LIF hidden layers, against the same "
                            "network of rate layers at the same dt and phases")
    bench.set_defaults(func=_bench)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``bioprop`` command, every subcommand with its options (the
    documentation's CLI reference is generated from it)."""
    return _parser()


def check(argv) -> argparse.Namespace:
    """Check a command line as far as it can be without running it: the parser takes it,
    and the model, protocol and ``--set`` overrides of ``run`` (or every point of ``sweep``)
    load and validate, and suit each other, as they would before training starts.

    Parameters
    ----------
    argv : sequence of str
        The arguments after ``bioprop``.

    Returns
    -------
    argparse.Namespace
        The parsed arguments.

    Raises
    ------
    SystemExit
        When the parser refuses the arguments (its message is on stderr).
    SpecError
        When a model, protocol, override, grid or seed list is wrong.
    """
    from .compatibility import check_compatible, check_data
    from .api_specs import resolve_specs
    from .sweep.command import check_command

    args = _parser().parse_args(argv)
    _check_set_spacing(list(argv))
    pairs = []
    if args.command == "run":
        _check_resume(args)
        if args.resume is None:  # a resumed run's specs are the ones in its file
            pairs = [resolve_specs(args.model, args.protocol, args.set)]
    elif args.command == "sweep":
        pairs = check_command(args)
    for model, protocol in pairs:
        check_compatible(model, protocol)  # the pair first, then its data, as a run checks them
        n_features, n_outputs, n_train = _data_shape(protocol.data.dataset)
        check_data(model, protocol, n_features, n_outputs,
                   min(protocol.data.n_train or n_train, n_train))
    return args


@functools.lru_cache
def _data_shape(name: str) -> tuple[int, int, int]:
    """Features, outputs and training samples of a data set (loaded once per process)."""
    from .datasets import load_dataset

    data = load_dataset(name)
    return data.n_features, data.n_outputs, len(data.x_train)


def _described(add_parser):
    """``add_parser`` that gives each command's own --help its one-line help as description."""
    def add(name, **kwargs):
        text = kwargs.get("help", "")
        kwargs.setdefault("description", text[:1].upper() + text[1:] + "." if text else None)
        return add_parser(name, **kwargs)
    return add


def main(argv=None) -> int:
    """Entry point of the ``bioprop`` console script."""
    from .outputs import OutputExistsError
    from .spec import SpecError
    from .stopping import DivergenceError, RunInterrupted

    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    # OSError: files that cannot be read or written (a full disk), each named in its message
    expected = [SpecError, DivergenceError, OSError, ValueError, ImportError]
    # Brian2, once imported, routes warnings to its log (logging.captureWarnings), which
    # it does only if nothing did so before: so do it first, then print ours as one line.
    logging.captureWarnings(True)
    try:
        _check_set_spacing(argv)
        with warnings.catch_warnings(), _sigterm_as_ctrl_c():
            warnings.showwarning = _one_line_warning(args.command, warnings.showwarning)
            return args.func(args)
    except OutputExistsError as err:  # the API's message says force=True
        option = "--nwb" if args.command == "export" else "-o"
        print(f"bioprop {args.command}: error: {err.path} exists; pass --force to replace it, "
              f"or choose another file with {option}", file=sys.stderr)
        return 2
    except tuple(expected) as err:
        print(f"bioprop {args.command}: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, DivergenceError) else 2
    except RunInterrupted as err:  # stopped at a safe point, checkpoint written
        print(f"bioprop {args.command}: {err}", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt as err:
        kept = ("finished points are kept; run the same sweep again to go on"
                if args.command == "sweep" else "finished epochs are in the run file")
        print(f"bioprop {args.command}: interrupted; {kept}", file=sys.stderr)
        return 128 + getattr(err, "signum", signal.SIGINT)


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """While a command runs, SIGTERM stops it as a Ctrl-C does (exit status 143, not 130):
    training installs its own handler for both (bioprop.stopping.catch_sigint)."""
    import threading

    from .stopping import raise_terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line_warning(command, default):
    """A ``warnings.showwarning`` that prints bioprop's own warnings as one line, and
    passes the others to `default`."""

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("bioprop"):
            print(f"bioprop {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


if __name__ == "__main__":
    sys.exit(main())
