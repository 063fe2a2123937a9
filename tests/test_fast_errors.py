"""Errors come at once: a bad model, protocol or command line, ``bioprop --help`` and
``bioprop info`` never import Brian2 (seconds to import), and a bad spec never loads data.

Each check runs in a fresh interpreter and reads what it imported (``sys.modules``), so it
holds however busy the machine is; no timing.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bioprop

HOSTILE = Path(__file__).parent / "hostile"

#: a synapse's own plasticity rule is checked with Brian2's parser, so these may import it
#: (but for one that is no expression at all)
NEEDS_BRIAN2 = "plasticity rule"

#: the modules that make an error slow: Brian2 (and its sympy), and the digits' loader
HEAVY = ("brian2", "sympy", "sklearn")

SCRIPT = """
import json, os, sys, tempfile
from pathlib import Path
sys.path.insert(0, {hostile!r})
import configs
from bioprop import cli

first = {{}}
for case in configs.CASES:
    # a model checked against its data set's shapes has loaded the data, rightly
    if case.argv is None or ({only!r} in case.what) != {want!r} or "dataset '" in case.expect:
        continue
    here = Path(tempfile.mkdtemp())
    os.chdir(here)
    argv = case.argv(here) if callable(case.argv) else case.argv
    try:
        cli.main(list(argv))
    except SystemExit:
        pass
    for name in {heavy!r}:
        if name in sys.modules and name not in first:
            first[name] = case.what
print(json.dumps(first))
"""


def _imported_by(code: str, *args, cwd=None) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_hostile_config_imports_brian2_or_loads_data():
    """The first case (if any) after which Brian2 or scikit-learn was imported is named."""
    code = SCRIPT.format(hostile=str(HOSTILE), only=NEEDS_BRIAN2, want=False, heavy=HEAVY)
    assert _imported_by(code) == {}


@pytest.mark.slow
def test_the_check_can_fail():
    """The same script sees Brian2 when a case does import it (a plasticity rule)."""
    code = SCRIPT.format(hostile=str(HOSTILE), only=NEEDS_BRIAN2, want=True, heavy=HEAVY)
    assert "brian2" in _imported_by(code)


HELP_AND_INFO = """
import json, sys
from bioprop import cli
for argv in ([a.split() for a in sys.argv[1:]]):
    try:
        cli.main(argv)
    except SystemExit:
        pass
print(json.dumps([name for name in {heavy!r} if name in sys.modules]))
"""


@pytest.mark.slow
def test_help_and_info_do_not_import_brian2(tmp_path):
    run = tmp_path / "r.h5"
    bioprop.run(output=run, progress=False, overrides=[
        "engine.name=reference", "training.epochs=1", "data.n_train=64", "data.n_test=32",
        "record.probe_size=8"])
    helps = ["--help"] + [f"{command} --help" for command in
                          ("run", "sweep", "report", "info", "export", "bench")]
    code = HELP_AND_INFO.format(heavy=HEAVY)
    assert _imported_by(code, *helps, f"info {run}", f"info {run} --toml", "info nope.h5") == []
