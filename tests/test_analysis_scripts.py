"""The scripts in analysis/ that make the README's tables read run files correctly."""
import runpy
from pathlib import Path

import h5py
import numpy as np
import pytest

import bioprop

SCRIPTS = Path(__file__).resolve().parent.parent / "analysis"
QUICK = ["training.epochs=1", "data.n_train=64", "data.n_test=32", "engine.name=reference"]


def test_digits_table_summarises_run_files(tmp_path):
    script = runpy.run_path(str(SCRIPTS / "digits_table.py"))
    paths = {}
    for seed in (1, 2):
        path = tmp_path / f"s{seed}.h5"
        bioprop.run(output=path, progress=False, overrides=QUICK + [f"training.seed={seed}"])
        paths.setdefault("DTP (reference engine)", []).append(path)
    accuracies = [float(bioprop.open_run(p)["test"]["accuracy"].values[-1]) for p in paths[
        "DTP (reference engine)"]]
    table = script["summarise"](paths)
    # ddof 1: with two values the sample std is |a − b| / √2
    std = 100 * abs(accuracies[0] - accuracies[1]) / np.sqrt(2)
    assert f"| {100 * np.mean(accuracies):.2f} ± {std:.2f}, 95% CI " in table
    assert "(n = 2) |" in table


def test_rules_table_covers_every_rule_and_reads_a_run(tmp_path):
    script = runpy.run_path(str(SCRIPTS / "rules_table.py"))
    from bioprop.rules import TARGET_RULES

    assert set(script["INVERSE_RULES"]) | set(script["DIFFERENCE_RULES"]) == set(TARGET_RULES)
    for rule in TARGET_RULES:
        assert (script["MODELS"] / f"{rule}.toml").is_file(), rule
    path = tmp_path / "fa-dtp-reference-seed1.h5"
    bioprop.run(script["MODELS"] / "fa.toml", None, output=path, progress=False, overrides=QUICK)
    accuracy = script["_run"](tmp_path, "fa", "dtp", 1, "reference")  # reuses the file
    assert accuracy == float(bioprop.open_run(path)["test"]["accuracy"].values[-1])
    # 60 ± 14.1 (ddof 1: 20/√2); t(0.975, 1) = 12.706, so 60 ± 12.706 · 10 = 60 ± 127.1
    assert script["_cell"]([0.5, 0.7]) == "60.0 ± 14.1, 95% CI -67.1–187.1 (n = 2)"


def test_spiking_table_reads_accuracy_and_firing_rates(tmp_path):
    """A LIF run's row: its architecture and settings, its accuracy, and its layer's mean
    firing rate in Hz, equal to the stored rates (fractions) times 1/refractory."""
    script = runpy.run_path(str(SCRIPTS / "spiking_table.py"))
    path = tmp_path / "lif.h5"
    bioprop.run(SCRIPTS.parent / "models" / "lif.toml", SCRIPTS.parent / "protocols" / "spiking.toml",
                output=path, progress=False, overrides=QUICK + ["record.activity_every=1"])
    tree = bioprop.open_run(path)
    with h5py.File(path, "r") as f:  # the stored fractions of 1/t_ref = 200 Hz
        hz = float(np.mean(f["layers/hidden1/rate"][-1])) / 5e-3
    assert tree["layers"]["hidden1"]["rate"].attrs["units"] == "Hz"
    assert float(tree["layers"]["hidden1"]["rate"].isel(epoch=-1).mean()) == pytest.approx(hz)
    row = script["row"](path)
    assert row.startswith("| 64-128 lif-10 | θ = 0.5, t_ref = 5 ms; target: trace")
    assert f"{100 * float(tree['test']['accuracy'].values[-1]):.2f} %" in row
    assert f"hidden1 {hz:.0f} Hz" in row


def test_spiking_table_puts_each_brian2_run_beside_its_twin(tmp_path):
    """A row of the spiking table from a folder of runs: the Brian2 and the reference errors of
    each seed, their gap for the same seed, the Brian2 runs' mean firing rate, all equal to
    what the files hold; a folder without one of the engines is one clear error."""
    script = runpy.run_path(str(SCRIPTS / "spiking_table.py"))
    row = script["Row"]("lif", "digits", "unused")
    folder = tmp_path / "lif"
    folder.mkdir()
    root = SCRIPTS.parent
    errors = {}
    for engine, seed in (("reference", 1), ("reference", 2), ("brian2", 1)):
        path = folder / f"engine.name-{engine}_seed{seed}.h5"
        bioprop.run(root / "models" / "lif.toml", root / "protocols" / "spiking.toml",
                    output=path, progress=False,
                    overrides=QUICK[:3] + [f"engine.name={engine}", f"training.seed={seed}",
                                           "engine.codegen=numpy", "record.activity_trials=4",
                                           "phases.forward=30 ms", "phases.feedback=20 ms",
                                           "phases.target=30 ms"])
        errors[engine, seed] = 100 * (1 - float(bioprop.open_run(path)["test"]["accuracy"][-1]))
    line, runs = script["summarise"](row, tmp_path)
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[:3] == ["digits", "64-128 lif-10", "1"]
    twin = [errors["reference", s] for s in (1, 2)]
    assert cells[3] == f"{errors['brian2', 1]:.2f} (n = 1)"  # one seed: its value alone
    # two seeds: Student's t with one degree of freedom is Cauchy, t_0.975 = tan(0.475 π)
    mean, std = np.mean(twin), abs(twin[1] - twin[0]) / np.sqrt(2)
    half = np.tan(0.475 * np.pi) * std / np.sqrt(2)
    assert cells[4] == (f"{mean:.2f} ± {std:.2f}, 95% CI {mean - half:.2f}–{mean + half:.2f} "
                        f"(n = 2): {twin[0]:.2f}, {twin[1]:.2f}")
    assert cells[5] == f"{errors['brian2', 1] - twin[0]:+.2f}"  # seed 1 against seed 1 only
    hz = float(mean_rate(folder / "engine.name-brian2_seed1.h5"))
    assert cells[6] == f"hidden1 {hz:.0f}" and hz > 0
    assert sorted(runs) == ["brian2", "reference"]
    for path in folder.glob("*reference*"):
        path.unlink()
    with pytest.raises(ValueError, match="needs runs of both engines, found \\['brian2'\\]"):
        script["summarise"](row, tmp_path)


def mean_rate(path):
    from bioprop.analysis.firing import mean_firing_rates
    return mean_firing_rates(bioprop.open_run(path))["hidden1"]


def test_spiking_table_commands_load_and_the_readme_holds_the_table():
    """Every row's sweep command names a model that loads with its --set and --grid values and
    fits its data; the README and docs/spiking.md hold the table that the committed run files
    give, line for line, and docs/spiking.md the commands."""
    import shlex

    from bioprop.spec import check_compatible, load_model, load_protocol

    script = runpy.run_path(str(SCRIPTS / "spiking_table.py"))
    root = SCRIPTS.parent
    shapes = {"mnist": (784, 10), "fashion_mnist": (784, 10), "digits": (64, 10)}
    for row in script["ROWS"]:
        words = shlex.split(row.command)
        assert words[:2] == ["bioprop", "sweep"] and words[words.index("-o") + 1] == f"results/{row.folder}"
        overrides = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        overrides += [words[i + 1].split(",")[0] for i, w in enumerate(words) if w == "--grid"]
        model = load_model(root / next(w for w in words if w.endswith(".toml")), overrides=overrides)
        protocol = load_protocol(model.protocol, overrides=overrides)
        check_compatible(model, protocol, *shapes[protocol.data.dataset])
    table, commands = script["table"](root / "results"), script["commands_block"]()
    for page, lines in (("README.md", table), ("docs/spiking.md", table + commands)):
        text = (root / page).read_text()
        for line in lines:
            assert line in text, f"{page} lacks {line!r}: paste `python analysis/spiking_table.py`"


@pytest.mark.slow
def test_results_table_reads_rules_engines_and_errors_from_run_files(tmp_path):
    """Rows are labelled from the models recorded in the files, the error is the last epoch's
    mean ± std over seeds, and a Brian2 row is set beside the reference at the same epoch."""
    script = runpy.run_path(str(SCRIPTS / "results_table.py"))
    folder = tmp_path / "bartunov2018"
    folder.mkdir()
    variants = {"dtp": ["rule.target=dtp"], "dtp-parallel": ["rule.schedule=parallel"],
                "bp": ["rule.target=bp"]}
    for name, overrides in variants.items():
        for seed in (1, 2):
            bioprop.run(output=folder / f"{name}-seed{seed}.h5", progress=False,
                        overrides=QUICK + overrides + [f"training.seed={seed}"])
    bioprop.run(output=folder / "dtp-brian2-seed1.h5", progress=False,
                overrides=QUICK + ["engine.name=brian2", 'phases.dt="10 ms"',
                                   'phases.forward="10 ms"', 'phases.feedback="10 ms"',
                                   'phases.target="10 ms"'])
    runs = [script["summarise_run"](p) for p in sorted(folder.glob("*.h5"))]
    experiment = next(e for e in script["EXPERIMENTS"] if e.folder == "bartunov2018")
    rows = script["table"](experiment, runs)
    by_rule = {(row.split(" | ")[2], row.split(" | ")[5]): row for row in rows}
    assert set(by_rule) == {("DTP", "reference"), ("DTP, parallel", "reference"),
                            ("BP", "reference"), ("DTP", "brian2")}
    errors = [100 * (1 - float(bioprop.open_run(folder / f"bp-seed{s}.h5")["test"]["accuracy"][-1]))
              for s in (1, 2)]
    mean, std = np.mean(errors), np.std(errors, ddof=1)
    half = np.tan(0.475 * np.pi) * std / np.sqrt(2)  # t_0.975 with one degree of freedom
    assert f"{mean:.2f} ± {std:.2f}, 95% CI {mean - half:.2f}–{mean + half:.2f} (n = 2)" \
        in by_rule[("BP", "reference")]
    assert "| 1.48 |" in by_rule[("BP", "reference")]     # the paper's number, by label
    assert "64-2×128 tanh-10 (digits, 64 training images)" in by_rule[("BP", "reference")]
    # the Brian2 run at one step per phase is seed 1 of the reference: the same error
    brian2 = 100 * (1 - float(bioprop.open_run(folder / "dtp-brian2-seed1.h5")["test"]["accuracy"][-1]))
    reference = 100 * (1 - float(bioprop.open_run(folder / "dtp-seed1.h5")["test"]["accuracy"][-1]))
    assert f"reference {reference:.2f}" in by_rule[("DTP", "brian2")]
    assert abs(brian2 - reference) < 1e-6
    script["learning_curves"](experiment, runs, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_every_results_command_names_files_that_fit_their_data():
    """Each experiment's sweep commands load their model and protocol with every --set and
    the first value of every --grid, and the model fits the protocol's data set."""
    import shlex

    from bioprop.spec import check_compatible, load_model, load_protocol

    script = runpy.run_path(str(SCRIPTS / "results_table.py"))
    root = SCRIPTS.parent
    shapes = {"mnist": (784, 10), "fashion_mnist": (784, 10), "digits": (64, 10)}
    for experiment in script["EXPERIMENTS"]:
        assert experiment.commands, experiment.folder
        for command in experiment.commands:
            words = shlex.split(command)
            assert words[:2] == ["bioprop", "sweep"]
            model_path, protocol_path = (root / w for w in words[2:] if w.endswith(".toml"))
            overrides = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
            overrides += [words[i + 1].split(",")[0] for i, w in enumerate(words) if w == "--grid"]
            assert words[words.index("-o") + 1].startswith(f"results/{experiment.folder}")
            model = load_model(model_path, overrides=overrides)
            protocol = load_protocol(protocol_path, overrides=overrides)
            check_compatible(model, protocol, *shapes[protocol.data.dataset])


def test_docs_print_the_results_commands_the_script_knows():
    """docs/reproducing.md holds the script's block of reproduction commands, word for word."""
    script = runpy.run_path(str(SCRIPTS / "results_table.py"))
    block = "\n".join(script["commands_block"](script["EXPERIMENTS"]))
    assert block in (SCRIPTS.parent / "docs" / "reproducing.md").read_text(), \
        "docs/reproducing.md differs from `python analysis/results_table.py --commands`: paste its output"


def test_constraints_table_reads_its_conditions_from_run_files(tmp_path):
    script = runpy.run_path(str(SCRIPTS / "constraints_table.py"))
    for overrides in script["CONDITIONS"].values():  # every condition is a valid model
        bioprop.load_model(None, overrides)
    paths = {}
    for name in ("none", "dale-both"):
        path = tmp_path / name / "seed1.h5"
        path.parent.mkdir()
        bioprop.run(output=path, progress=False, overrides=QUICK + script["CONDITIONS"][name])
        paths[name] = [path]
    table = script["summarise"](paths)
    tree = bioprop.open_run(paths["dale-both"][0])
    accuracy = float(tree["test"]["accuracy"].values[-1])
    assert "constraints" in tree and "constraints" not in bioprop.open_run(paths["none"][0])
    row, = [line for line in table.splitlines() if line.startswith("| dale-both |")]
    assert f"| {100 * accuracy:.2f} (n = 1) |" in row and row.endswith("| 1 |")


def test_the_results_table_in_the_docs_is_what_the_run_files_give():
    """docs/reproducing.md's results table, line for line, is `python analysis/results_table.py`
    over the committed run files in results/ (no hand-typed numbers)."""
    script = runpy.run_path(str(SCRIPTS / "results_table.py"))
    results = SCRIPTS.parent / "results"
    lines = list(script["HEADER"])
    for experiment in script["EXPERIMENTS"]:
        files = script["experiment_files"](results, experiment)
        if files:
            lines += script["table"](experiment, [script["summarise_run"](p) for p in files])
    assert len(lines) > 10
    page = (SCRIPTS.parent / "docs" / "reproducing.md").read_text()
    assert "\n".join(lines) in page, \
        "docs/reproducing.md's results table differs: paste `python analysis/results_table.py`"


def test_mean_std_interval_by_hand():
    """1, 2, 3: mean 2, sample std 1, t_0.975 with 2 degrees of freedom = 4.3027 (tables),
    so the interval is 2 ± 4.3027 / √3 = 2 ± 2.484."""
    from bioprop.analysis.tables import mean_std_interval

    assert mean_std_interval([1, 2, 3]) == "2.00 ± 1.00, 95% CI -0.48–4.48 (n = 3)"
    assert mean_std_interval([2.5]) == "2.50 (n = 1)"


def _bartunov_search(monkeypatch):
    monkeypatch.chdir(SCRIPTS.parent)  # the script's folders are relative to the repository
    return runpy.run_path(str(SCRIPTS / "bartunov_search.py"))


def test_every_search_command_is_what_its_plan_checks(monkeypatch):
    """Each rule's printed command draws the configurations the script's plan does."""
    from bioprop.cli import check
    from bioprop.sweep.halving import checked_search

    script = _bartunov_search(monkeypatch)
    for rule in script["RULES"]:
        args = check(script["command"](rule, 5, 2)[1:])
        planned = script["plan"](rule, 5)
        again = checked_search(args.model, args.protocol, space=args.sample,
                               configs=args.configs, rungs=args.rungs, eta=args.eta,
                               seeds=args.seeds, overrides=args.set)
        assert again.drawn == planned.drawn and again.counts == planned.counts == [20, 5, 2]
        assert planned.pairs[0][1].data.validation == 5000


def test_committed_searches_stopped_their_dropped_configurations_early(monkeypatch):
    """Every run file of a committed search is one the halving asked for, replayed from the
    files: no configuration went on past a rung it lost."""
    from bioprop.sweep.halving import search_table

    script = _bartunov_search(monkeypatch)
    for rule in script["RULES"]:
        folder = script["RESULTS"] / "search" / rule
        files = {p.stem for p in folder.glob("*.h5")}
        if not files:
            continue
        table, _ = search_table(script["plan"](rule, 5), folder)
        assert files <= set(table.point), f"{rule}: runs the halving did not ask for"
        last_rung = table[table.rung == "2"]
        if (last_rung.status == "complete").all():
            assert len(table[table.rung == "1"]) == 5 and len(last_rung) == 2


def test_the_tuned_bartunov_table_in_the_docs_is_what_the_run_files_give(monkeypatch):
    script = _bartunov_search(monkeypatch)
    lines = list(script["HEADER"])
    for rule in script["RULES"]:
        row, _ = script["search_rows"](rule)
        if row is not None:
            lines.append(row)
    page = (SCRIPTS.parent / "docs" / "reproducing.md").read_text()
    assert "\n".join(lines) in page, \
        "docs/reproducing.md's tuned table differs: paste `python analysis/bartunov_search.py --table`"


def _bartunov_gap(monkeypatch):
    monkeypatch.chdir(SCRIPTS.parent)
    monkeypatch.syspath_prepend(str(SCRIPTS))  # it imports bartunov_search, as a script does
    return runpy.run_path(str(SCRIPTS / "bartunov_gap.py"))


def test_gap_runs_are_the_searches_choices_with_a_cosine_rate(monkeypatch):
    """Each rule's gap command trains what its search chose, on the search's split, and
    changes only the forward rate's schedule."""
    from bioprop.cli import check

    script = _bartunov_gap(monkeypatch)
    search = runpy.run_path(str(SCRIPTS / "bartunov_search.py"))
    for rule in script["RULES"]:
        args = check(script["command"](rule).split()[1:])
        chosen = dict(script["chosen"](rule))
        assert chosen, f"{rule}: its search has not chosen yet"
        settings = dict(item.split("=", 1) for item in args.set)
        for key, value in chosen.items():
            assert float(settings.pop(key)) == pytest.approx(value, rel=1e-12)
        assert settings.pop("optimizer.forward.schedule") == "cosine"
        fixed = search["FIXED"] + search["RULES"][rule][0]
        assert settings == dict(item.split("=", 1) for item in fixed)
    assert args.seeds == script["SEEDS"]
    # BP on all 60k: the same command but for the validation split, in its own folder
    split, full = script["command"]("bp"), script["command"]("bp", split=False)
    assert full == split.replace("--set data.validation=5000 ", "").replace("gap/bp", "gap/bp-60k")
    assert full in script["commands"]()


def test_a_rules_gap_is_split_into_bps_and_its_own(monkeypatch):
    """Hand-computed: FA at 2.2 and 2.4 beside BP at 1.7 and 1.9, against the paper's 1.85
    and 1.48. Our BP is 0.32 above its paper; FA − BP is 0.50 here, 0.37 in the paper, so
    0.13 of FA's 0.45 points are its own, the same on both seeds (std 0)."""
    import numpy as np

    script = _bartunov_gap(monkeypatch)
    fa, bp = np.array([2.2, 2.4]), np.array([1.7, 1.9])
    line = script["split_row"]("fa", fa, bp)
    assert line.startswith("| FA | +0.45 | +0.32 | 0.13 ± 0.00, 95% CI 0.13–0.13 (n = 2) |")
    assert script["split_row"]("dtp", None, bp) is None  # a rule without its seeds



def test_lee_options_take_lees_rates_from_the_model_file(monkeypatch):
    """"Lee's rates" are twice the model file's on both pathways with half on the output
    layer, the only change besides the schedule; every row's run file is a point of a
    command."""
    import tomllib

    from bioprop.cli import check

    monkeypatch.chdir(SCRIPTS.parent)
    script = runpy.run_path(str(SCRIPTS / "lee_options.py"))
    model = tomllib.loads((SCRIPTS.parent / "models" / "lee2015_dtp.toml").read_text())
    args = check(script["COMMANDS"][0].split()[1:])
    settings = dict(item.split("=", 1) for item in args.set)
    assert float(settings["optimizer.forward.lr"]) == pytest.approx(2 * model["optimizer"]["forward"]["lr"])
    assert float(settings["optimizer.feedback.lr"]) == pytest.approx(2 * model["optimizer"]["feedback"]["lr"])
    assert float(settings["layers.output.lr_scale"]) == 0.5
    from bioprop.analysis.reproduce import plan

    planned = {p.path for p in plan(script["COMMANDS"], script["RESULTS"], None)}
    new = {script["RESULTS"] / path for _, path in script["ROWS"] if "options" in path}
    assert new == planned
