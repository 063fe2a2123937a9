"""``bioprop sweep`` on the command line: a grid times seeds, or, with ``--sample``, a
random search with successive halving; ``--dry-run`` lists what would run."""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run_command", "check_command", "int_list"]


def int_list(text):
    """``"2,8,30"`` → [2, 8, 30], for argparse: ``--seed-list`` and ``--rungs`` (what the
    numbers must be is checked where they are used)."""
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, "
                                         f"got {text!r}") from None


def add_arguments(parser, count):
    """The random search's options and ``--dry-run``; `count` is the CLI's argparse type of
    a whole number ≥ 1."""
    search = parser.add_argument_group(
        "random search", "with --sample, draw configurations instead of a grid, train them "
        "rung by rung keeping the best 1/eta on validation error (successive halving), then "
        "the chosen one with every seed")
    search.add_argument("--sample", action="append", default=[], metavar="KEY=DIST",
                        help="a setting's distribution (repeatable): log-uniform:LOW:HIGH, "
                             "uniform:LOW:HIGH or choice:A,B,...")
    search.add_argument("--configs", type=count, default=20, metavar="N",
                        help="configurations drawn (default 20)")
    search.add_argument("--rungs", type=int_list, metavar="E1,E2,...",
                        help="epochs of each rung (default: one rung of the protocol's epochs)")
    search.add_argument("--eta", type=count, default=3, metavar="N",
                        help="each rung keeps the best 1/N (default 3)")
    search.add_argument("--search-seed", type=int, default=1, metavar="S",
                        help="seed of the draw of configurations (default 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the points (or the search's configurations and rungs) "
                             "and run nothing")


def _search_arguments(args) -> dict:
    return dict(space=args.sample, configs=args.configs, rungs=args.rungs, eta=args.eta,
                search_seed=args.search_seed, seeds=args.seed_list or args.seeds,
                overrides=args.set)


def _check_mode(args):
    from ..errors import SpecError

    if args.sample and args.grid:
        raise SpecError("--sample and --grid: a sweep is a grid or a random search, not both")


def check_command(args) -> list:
    """The (model, protocol) spec pairs of every point a sweep command would run, checked
    (a search: every drawn configuration)."""
    from .api import check_sweep
    from .halving import checked_search

    _check_mode(args)
    if args.sample:
        return checked_search(args.model, args.protocol, **_search_arguments(args)).pairs
    return check_sweep(args.model, args.protocol, grid=args.grid,
                       seeds=args.seed_list or args.seeds, overrides=args.set)


def run_command(args, print_rows) -> int:
    """Run ``bioprop sweep``; `print_rows` prints (name, value) rows as the CLI does."""
    _check_mode(args)
    if args.sample:
        return _search(args, print_rows)
    from .api import sweep
    from .grid import expand
    from .table import summarise

    if args.dry_run:
        for point in expand(args.grid, args.seed_list or args.seeds):
            print(f"{point.name}: {point.label()} seed {point.seed}")
        return 0
    result = sweep(args.model, args.protocol, grid=args.grid, seeds=args.seed_list or args.seeds,
                   overrides=args.set, output=args.output, workers=args.workers,
                   scheduler=args.scheduler, table=args.table, progress=not args.quiet)
    keys = list(dict(result.points[0].settings))
    print_rows([("points", f"{len(result.points)} ({result.n_run} run now, {result.n_skipped} "
                           f"already finished, {len(result.errors)} failed)"),
                ("run files", str(result.directory)), ("table", str(result.table_path))]
               + summarise(result.table, keys))
    return _failed(result.errors)


def _search(args, print_rows) -> int:
    from .grid import value_text
    from .halving import checked_search, search

    if args.dry_run:
        print("\n".join(checked_search(args.model, args.protocol,
                                       **_search_arguments(args)).describe()))
        return 0
    result = search(args.model, args.protocol, **_search_arguments(args), output=args.output,
                    workers=args.workers, scheduler=args.scheduler, table=args.table,
                    progress=not args.quiet)
    final = result.table[result.table["chosen"] & (result.table["status"] == "complete")]
    final = final[final["epochs"] == final["epochs"].max()]
    accuracy = 100 * final["test_accuracy"]
    print_rows([("runs", f"{len(result.table)} ({len(result.errors)} failed)"),
                ("chosen", " ".join(f"{k}={value_text(v)}" for k, v in result.chosen)),
                ("test accuracy", f"{accuracy.mean():.2f} % over {len(final)} seeds"),
                ("run files", str(result.directory)), ("table", str(result.table_path))])
    return _failed(result.errors)


def _failed(errors) -> int:
    for name, message in errors.items():
        print(f"bioprop sweep: point {name} failed: {message}", file=sys.stderr)
    return 1 if errors else 0
