"""Write ``docs/bad-input.md``: the table of every hostile input the suite tests.

Run from the repository: ``python tests/hostile/table.py`` (``--check`` only compares).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from case import AREAS  # noqa: E402
import configs  # noqa: E402
import files  # noqa: E402

DOC = HERE.parent.parent / "docs" / "bad-input.md"

INTRO = """\
# Bad input

Every mistake below gets a non-zero exit and one line that names what was typed (the file, the
`--set`, the key or the value), with no traceback, and leaves every existing file as it was.
The table is written from the cases that `tests/test_hostile.py` runs
(`tests/hostile/configs.py`, `tests/hostile/files.py`): regenerate it with
`python tests/hostile/table.py`.
"""


def all_cases() -> list:
    return list(configs.CASES) + list(files.CASES)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    cases = all_cases()
    lines = [INTRO, f"{len(cases)} hostile inputs, by area.", ""]
    for area in AREAS:
        rows = [c for c in cases if c.area == area]
        if not rows:
            continue
        lines += [f"## {area[0].upper()}{area[1:]}", "", "| # | mistake | the message says |",
                  "|---|---|---|"]
        for i, c in enumerate(rows, 1):
            said = f"`{_cell(c.expect)}`" if c.expect else ""
            if c.tested_in:
                said += f" (see `{c.tested_in}`)"
            lines.append(f"| {i} | {_cell(c.what)} | {said} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run python tests/hostile/table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC} ({len(all_cases())} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
