"""No module outside ``bioprop/rules/`` spells the name of a target rule or an objective.

Code elsewhere asks the records what it needs (``rule.uses_inverse``, ``rule.iterates``,
``objective.round_trip``, ...), so that a new rule or objective is a change to
``rules/`` alone. The check reads every module's syntax tree and reports each string
constant equal to a registered name: prose in docstrings and messages is free to name
rules, a name used as a value is not.
"""
import ast
from pathlib import Path

from bioprop.rules import FEEDBACK_OBJECTIVES, TARGET_RULES

PACKAGE = Path(__file__).resolve().parent.parent / "bioprop"
RULES = PACKAGE / "rules"

#: names that are part of the run-file format, not a question asked of a rule: the group of
#: an iterating rule's residuals is called ``/iterative`` in every file written so far
FILE_FORMAT = {("bioprop/runlog/vocabulary.py", "iterative")}


def registered_names() -> set:
    return set(TARGET_RULES) | set(FEEDBACK_OBJECTIVES)


def spelled_names(path: Path, names: set) -> list:
    """(line, name) of every string constant in `path` that is one of `names`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in names)


def test_the_check_sees_a_spelled_name(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('"""Prose may name dtp."""\nif rule == "dtp":\n    x = f"{rule} is not dtp"\n')
    assert spelled_names(module, {"dtp"}) == [(2, "dtp")]


def test_no_module_outside_rules_spells_a_rule_or_objective_name():
    names = registered_names()
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}"
             for path in sorted(PACKAGE.rglob("*.py")) if RULES not in path.parents
             for line, name in spelled_names(path, names)
             if (str(path.relative_to(PACKAGE.parent)), name) not in FILE_FORMAT]
    assert not found, ("names of rules or objectives outside bioprop/rules/ (ask the record "
                       "instead):\n" + "\n".join(found))
