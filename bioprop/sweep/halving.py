"""A random search with successive halving (``bioprop sweep --sample ...``).

Configurations are drawn from a space (:mod:`.space`) and trained for the first
rung's epochs. Each rung keeps the best 1/η of them by **validation** error (never the
test error, which is kept for the final table) and trains those for the next rung's
epochs; the others stop there. The best configuration of the last rung is then
trained with every seed for the last rung's epochs. Its first seed is the run that
won the last rung, so it is not trained twice.

A rung's run of a configuration starts from scratch with the same seed, so its first
epochs are those of the rung before, bit for bit: ranking does not depend on how the
runs were scheduled, and any run file can be checked on its own. Every run is a sweep
point (:mod:`.api`): a finished one is skipped and a killed one resumed, so a search
stopped at any moment goes on from where it was when it is run again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from .grid import Point, seed_values, value_text

__all__ = ["Trial", "SearchPlan", "SearchResult", "plan", "rank", "checked_search", "search",
           "search_table"]


@dataclass(frozen=True)
class Trial(Point):
    """One run of a search: a configuration, its epochs (the rung) and a seed."""

    #: the configuration's number, in the order it was drawn
    config: int = 0
    epochs: int = 1

    @property
    def overrides(self) -> list:
        return list(self.settings) + [("training.epochs", self.epochs),
                                      ("training.seed", self.seed)]

    @property
    def name(self) -> str:
        """``config07_epochs8_seed1``: the settings are in the file, not its name."""
        return f"config{self.config:02d}_epochs{self.epochs}_seed{self.seed}"


def plan(n_configs: int, rungs, eta: int) -> list[int]:
    """How many configurations each rung trains: n, ⌈n/η⌉, ⌈n/η²⌉, ...

    Parameters
    ----------
    n_configs : int
        Configurations drawn (≥ 1).
    rungs : sequence of int
        Epochs of each rung, increasing.
    eta : int
        The fraction kept is 1/eta (≥ 2).

    Raises
    ------
    SpecError
        Rungs that do not increase, or η < 2.
    """
    rungs = list(rungs)
    if n_configs < 1:
        raise SpecError(f"--configs {n_configs}: expected 1 or more")
    if not rungs or min(rungs) < 1 or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise SpecError(f"--rungs {','.join(map(str, rungs))}: expected epochs ≥ 1 that "
                        f"increase, e.g. --rungs 2,8,30")
    if eta < 2:
        raise SpecError(f"--eta {eta}: expected 2 or more (the fraction kept is 1/eta)")
    counts = [n_configs]
    for _ in rungs[1:]:
        counts.append(math.ceil(counts[-1] / eta))
    return counts


def rank(table, keep: int) -> list[int]:
    """The configurations kept from one rung: the `keep` lowest validation errors.

    Parameters
    ----------
    table : pandas.DataFrame
        The rung's rows (:func:`.table.gather`), with ``config``.
    keep : int

    Returns
    -------
    list of int
        Configuration numbers, best first. A run that diverged, failed or has no
        validation figure ranks last; ties go to the configuration drawn first.
    """
    errors = [(_validation_error(row), row.config) for row in table.itertuples()]
    return [config for _, config in sorted(errors)[:keep]]


def _validation_error(row) -> float:
    """Validation error (1 − accuracy, or the loss in regression); inf if it has none."""
    if row.status != "complete":
        return math.inf
    for value in (1 - row.validation_accuracy, row.validation_loss):
        if value == value:  # not NaN
            return float(value)
    return math.inf


@dataclass
class SearchResult:
    """What a search did: its runs' table, the chosen configuration, where they are."""

    #: pandas DataFrame, one row per run (see :func:`search`)
    table: object
    table_path: Path
    directory: Path
    #: the chosen configuration, ((key, value), ...)
    chosen: tuple
    trials: list
    outcomes: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)


def search(model=None, protocol=None, *, space, configs=20, rungs=None, eta=3,
           search_seed=1, seeds=1, overrides=(), output=None, workers=None, scheduler=None,
           table=None, progress=True) -> SearchResult:
    """Random search with successive halving on a validation split, then the chosen
    configuration with every seed.

    Parameters
    ----------
    model, protocol : path, shipped name or None
        As for :func:`bioprop.run`.
    space : sequence of str
        ``"key=distribution"`` items (:func:`.space.parse_space`).
    configs : int
        Configurations drawn for the first rung.
    rungs : sequence of int, optional
        Epochs of each rung; the last is the epochs of the final runs. Default: one
        rung of the protocol's epochs (a plain random search).
    eta : int
        Each rung keeps the best ⌈n/η⌉ configurations.
    search_seed : int
        Seeds the draw of configurations.
    seeds : int or sequence of int
        Training seeds of the final runs; the first also trains every rung.
    overrides : sequence of "key=value"
        Applied to every run. The validation split (``data.validation``) must be set
        here or in the protocol: the search ranks on it.
    output, workers, scheduler, table, progress
        As for :func:`.api.sweep`; ``scheduler="local"`` starts a Dask LocalCluster of
        `workers` single-threaded processes. The table is ``<output>/search.csv`` by
        default.

    Returns
    -------
    SearchResult
        Its table has one row per run: the sweep's columns (:func:`.table.gather`),
        ``config``, ``rung`` (``"0"``, ``"1"``, ...; ``"final"`` for the other seeds'
        runs) and ``chosen``.

    Raises
    ------
    SpecError
        A bad space, rungs or η, an override of a sampled key, the seed or the epochs,
        or no validation split.
    SweepError
        The folder holds a run of another search (other settings at the same name).
    """
    from tqdm.auto import tqdm

    from .api import folder, point_task
    from .execute import describe, execute
    from .runfiles import FINISHED, recorded
    from .table import table_path, write_table

    checked = checked_search(model, protocol, space=space, configs=configs, rungs=rungs,
                             eta=eta, search_seed=search_seed, seeds=seeds, overrides=overrides)
    model, protocol = checked.model, checked.protocol
    directory = folder(output, model, overrides, "search")
    directory.mkdir(parents=True, exist_ok=True)
    result = SearchResult(None, table_path(table or directory / "search.csv"), directory,
                          (), [])
    bar = tqdm(total=checked.epochs, unit="epoch", desc="search", disable=not progress)

    def run_trials(trials):
        tasks = {point_task(model, protocol, list(overrides), t, directory): t for t in trials}
        todo = [t for t in tasks if recorded(Path(t.path)).get("status") not in FINISHED]
        bar.update(sum(t.epochs for t in trials) - sum(tasks[t].epochs for t in todo))
        for task, future in execute(todo, workers, scheduler):
            name = Path(task.path).stem
            try:
                result.outcomes[name] = future.result()
            except Exception as err:  # the run failed; it ranks last and the search goes on
                result.errors[name] = describe(err)
            bar.update(tasks[task].epochs)

    with bar:
        result.table, result.chosen, result.trials = _replay(checked, directory, run_trials)
    write_table(result.table, result.table_path)
    return result


def search_table(checked, directory):
    """The table of a search's run files, as :func:`search` makes it, without running
    anything: each rung's ranking is read again from the files.

    Parameters
    ----------
    checked : SearchPlan
        The search, as :func:`checked_search` gives it.
    directory : path
        The search's folder.

    Returns
    -------
    (pandas.DataFrame, tuple)
        The table (a run not in the folder is a row of status ``missing``) and the
        chosen configuration.
    """
    table, chosen, _ = _replay(checked, Path(directory), lambda trials: None)
    return table, chosen


def _replay(checked, directory, run_trials):
    """Walk the rungs: `run_trials` each rung's trials, rank them from their files, and go
    on with the best; then the chosen configuration's other seeds. Returns the table,
    the chosen configuration and every trial."""
    import pandas as pd

    from .table import gather

    drawn, rungs, counts, seeds = checked.drawn, checked.rungs, checked.counts, checked.seeds
    frames, trials, alive = [], [], list(range(len(drawn)))

    def rows(stage_trials, stage):
        if not stage_trials:  # one seed: no final runs besides the last rung's
            return None
        run_trials(stage_trials)
        trials.extend(stage_trials)
        frame = gather(stage_trials, directory)
        frame.insert(1, "config", [t.config for t in stage_trials])
        frame.insert(2, "rung", str(stage))  # text throughout, so that NetCDF can hold it
        frames.append(frame)
        return frame

    for k, epochs in enumerate(rungs):
        frame = rows([Trial(drawn[c], seeds[0], c, epochs) for c in alive], k)
        alive = rank(frame, counts[k + 1] if k + 1 < len(counts) else 1)
    best = alive[0]
    rows([Trial(drawn[best], s, best, rungs[-1]) for s in seeds[1:]], "final")
    table = pd.concat(frames, ignore_index=True)
    table["chosen"] = table["config"] == best
    return table, drawn[best], trials


@dataclass
class SearchPlan:
    """A search checked before it runs: its configurations, rungs and specs."""

    drawn: list
    rungs: list
    counts: list
    seeds: list
    model: object
    protocol: object
    #: (ModelSpec, ProtocolSpec) of every configuration, loaded and validated
    pairs: list

    @property
    def epochs(self) -> int:
        """Epochs trained in all, rungs and final seeds."""
        return (sum(e * n for e, n in zip(self.rungs, self.counts))
                + self.rungs[-1] * (len(self.seeds) - 1))

    def describe(self) -> list[str]:
        """The search's runs as lines of text, for ``--dry-run``."""
        lines = [f"config{i:02d}: " + " ".join(f"{k}={value_text(v)}" for k, v in config)
                 for i, config in enumerate(self.drawn)]
        lines += [f"rung {k}: {n} configurations × {e} epochs"
                  for k, (e, n) in enumerate(zip(self.rungs, self.counts))]
        lines.append(f"final: the chosen configuration, {self.rungs[-1]} epochs, seeds "
                     f"{', '.join(map(str, self.seeds))} (seed {self.seeds[0]} is its "
                     f"last-rung run)")
        lines.append(f"epochs in all: {self.epochs}")
        return lines


def checked_search(model=None, protocol=None, *, space, configs=20, rungs=None, eta=3,
                   search_seed=1, seeds=1, overrides=()) -> SearchPlan:
    """Check a search as :func:`search` does before it runs anything.

    Parameters
    ----------
    model, protocol, space, configs, rungs, eta, search_seed, seeds, overrides
        As for :func:`search`.

    Returns
    -------
    SearchPlan
        Every configuration drawn, loaded and validated.

    Raises
    ------
    SpecError
        A bad space, rungs, η or override, a configuration that does not validate, or no
        validation split.
    """
    from ..spec import load_model, load_protocol
    from .api import checked_points
    from .space import parse_space, sample_configs

    parsed = parse_space(space)
    sampled = {key for key, _ in parsed}
    for item in overrides:
        key = item.partition("=")[0].strip() if isinstance(item, str) else item[0]
        if key in sampled or key == "training.epochs":
            raise SpecError(f"--set {key}: also set by the search (--sample, --rungs)")
    _, model, protocol = checked_points(model, protocol, [], seeds, overrides)  # the sweep's checks
    drawn = sample_configs(parsed, configs, search_seed)
    pairs = []
    for config in drawn:  # every configuration loads and validates before anything runs
        every = list(overrides) + list(config)
        pairs.append((load_model(model, every), load_protocol(protocol, every)))
        if not pairs[-1][1].data.validation:
            raise SpecError("a search ranks configurations by validation error, never by "
                            "test error: set a validation split, e.g. --set data.validation=5000")
    rungs = list(rungs) if rungs else [pairs[0][1].training.epochs]
    return SearchPlan(drawn, rungs, plan(configs, rungs, eta), seed_values(seeds), model,
                      protocol, pairs)
