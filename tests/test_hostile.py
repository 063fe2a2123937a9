"""Every hostile input of ``tests/hostile``: a non-zero exit, one line naming what was typed,
no traceback, and no file changed. The same cases write ``docs/bad-input.md``."""
import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import table  # noqa: E402

from bioprop import cli  # noqa: E402

CASES = table.all_cases()
RUN_HERE = [c for c in CASES if c.argv is not None]
ELSEWHERE = [c for c in CASES if c.tested_in is not None]


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _message_lines(stderr: str) -> list:
    # argparse's own errors come after its usage lines; those are not bioprop's message
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(("usage:", " "))]


@pytest.mark.parametrize("case", RUN_HERE, ids=[c.what for c in RUN_HERE])
def test_hostile_input_gets_one_line(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, value in (case.env or {}).items():
        monkeypatch.setenv(name, value.format(here=tmp_path))
    argv = case.argv(tmp_path) if callable(case.argv) else case.argv
    before = _snapshot(tmp_path)
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code not in (0, None), f"exit code {code}; stderr: {err}"
    assert "Traceback" not in err
    lines = _message_lines(err)
    assert len(lines) == 1, err
    assert case.expect in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "a file was written or changed"


@pytest.mark.parametrize("case", ELSEWHERE, ids=[c.what for c in ELSEWHERE])
def test_hostile_input_tested_elsewhere_exists(case):
    path, _, name = case.tested_in.partition("::")
    text = (Path(__file__).parent.parent / path).read_text()
    assert not name or f"def {name}(" in text


def test_bad_input_table_is_current():
    assert table.main(["--check"]) == 0, "run python tests/hostile/table.py"


def test_cases_are_distinct():
    whats = [c.what for c in CASES]
    assert len(whats) == len(set(whats))


def test_at_least_120_cases():
    assert len(CASES) >= 120, len(CASES)
