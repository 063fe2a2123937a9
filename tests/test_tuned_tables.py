"""Tables in docs/reproducing.md made by the analysis scripts of the tuned reproductions,
checked line for line against what the scripts make of the committed run files."""
import runpy
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "analysis"


def _bartunov_gap(monkeypatch):
    monkeypatch.chdir(SCRIPTS.parent)
    monkeypatch.syspath_prepend(str(SCRIPTS))  # it imports bartunov_search, as a script does
    return runpy.run_path(str(SCRIPTS / "bartunov_gap.py"))


def test_the_gap_tables_in_the_docs_are_what_the_run_files_give(monkeypatch):
    script = _bartunov_gap(monkeypatch)
    gap, split, full = script["tables"](script["RESULTS"])
    rules = script["RULES"]
    missing = "a run is missing: python analysis/bartunov_gap.py --run"
    assert len(gap) == 2 + len(rules), missing
    assert len(split) == 2 + len(rules) - 1, missing
    assert len(full) == 4, missing
    page = (SCRIPTS.parent / "docs" / "reproducing.md").read_text()
    for table in (gap, split, full):
        assert "\n".join(table) in page, \
            "docs/reproducing.md's gap tables differ: paste `python analysis/bartunov_gap.py`"


def test_the_lee_options_table_in_the_docs_is_what_the_run_files_give(monkeypatch):
    monkeypatch.chdir(SCRIPTS.parent)
    script = runpy.run_path(str(SCRIPTS / "lee_options.py"))
    rows = [script["row"](label, script["RESULTS"] / path) for label, path in script["ROWS"]]
    assert all(rows), "a run is missing: python analysis/lee_options.py --run"
    page = (SCRIPTS.parent / "docs" / "reproducing.md").read_text()
    # the table is indented there, as part of a list item
    indented = "\n".join("  " + line for line in script["HEADER"] + rows)
    assert indented in page, \
        "docs/reproducing.md's Lee options table differs: paste `python analysis/lee_options.py`"
