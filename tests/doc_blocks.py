"""The code blocks of the README and the docs, and the checks of the blocks that are not
Python: shell commands are parsed and validated, TOML is parsed and loaded through the spec.

Used by ``tests/test_doc_blocks.py``, which runs the Python blocks. A block's kind is its
fence's info string (```` ```python ````); :data:`KINDS` says what each kind gets.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import io
import re
import shlex
import sys
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bioprop import cli
from bioprop.errors import SpecError
from bioprop.plugins import ENTRY_POINT_GROUPS
from bioprop.shipped import default_model_path, default_protocol_path
from bioprop.specfiles import merge_tables, read_spec_file
from bioprop.spec import MODEL_TABLES, PROTOCOL_TABLES, from_tables, load_model, load_protocol

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: folders of docs/ that a build writes (git-ignored): their pages are not the docs' own
GENERATED = {"_build", "auto_tutorials", "reference"}
#: info string → what the test does with the block; anything else fails the test
KINDS = {"python": "runs, after the page's earlier Python blocks, in a scratch folder",
         "bash": "every command is checked (bioprop ones parsed and validated)",
         "console": "every `$ ` line is a command, checked as in bash; bioprop's error "
                    "messages and `bioprop list` shown under it must be what it prints",
         "toml": "parses; a model or protocol table loads through the spec, merged into "
                 "the default file (or on its own, with `extends`)",
         "text": "not run: an output listing, equations or a layout; it holds no command"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, the line of its opening fence, kind and text."""

    path: Path
    line: int
    kind: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """The README and every Markdown or reStructuredText page of docs/ a person wrote."""
    found = [p for p in sorted(DOCS.rglob("*")) if p.suffix in (".md", ".rst")
             and not GENERATED & set(p.relative_to(DOCS).parts)
             and p.name != "sg_execution_times.rst"]
    return [ROOT / "README.md", *found]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (```` ```kind ````), or the
    ``.. code-block:: kind`` directives of an rst page; MyST directives (```` ```{toctree} ````)
    are not code."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    if path.suffix == ".rst":
        for i, line in enumerate(lines):
            if m := re.match(r"\s*\.\. (?:code-block|code|sourcecode)::\s*(\S*)", line):
                body = []
                for text in lines[i + 1:]:
                    if text.strip() and not text.startswith((" ", "\t")):
                        break
                    body.append(text)
                found.append(Block(path, i + 1, m.group(1), _dedent(body)))
        return found
    i = 0
    while i < len(lines):
        m = re.match(r"(\s*)(`{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines))
                   if lines[j].strip() == m.group(2))
        info = m.group(3).strip()
        if not info.startswith("{"):
            found.append(Block(path, i + 1, info.split()[0] if info else "",
                               _dedent(lines[i + 1:end])))
        i = end + 1
    return found


def _dedent(lines) -> str:
    import textwrap

    return textwrap.dedent("\n".join(lines)).strip("\n") + "\n"


# ---- shell commands ---------------------------------------------------------------------

def commands(text: str) -> list[list[str]]:
    """The commands of a shell block, as argv lists: continuation lines joined, comments
    dropped, ``&&`` and ``;`` split; ``[--option VALUE]`` is usage notation for an optional
    part, and is left out."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s\[-[^\]]*\]", "", line)
        argv = []
        for token in shlex.split(line, comments=True) + ["&&"]:
            if token in ("&&", ";"):
                if argv:
                    out.append(argv)
                argv = []
            else:
                argv.append(token)
    return out


def check_command(argv: list[str]) -> None:
    """Check one command as far as it can be without running it; raise AssertionError
    (or the SpecError of a bad bioprop command) when it is wrong."""
    program = argv[0] if argv[0] in CHECKS else Path(argv[0]).name
    assert program in CHECKS, (f"{' '.join(argv)}: no check for {program!r} commands; add one "
                               f"to tests/doc_blocks.py CHECKS")
    CHECKS[program](argv)


def check_bioprop(argv):
    """The CLI's parser takes it, and the specs it names load and validate (cli.check)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            cli.check(argv[1:])
    except SystemExit:
        raise AssertionError(f"{shlex.join(argv)}: {err.getvalue().strip()}") from None


def check_pip(argv):
    """``pip install`` of this project names extras that pyproject.toml has; a pinned
    package is the version the suite runs with."""
    assert argv[1] == "install", shlex.join(argv)
    for req in (a for a in argv[2:] if not a.startswith("-")):
        m = re.fullmatch(r"(\.|bioprop)(?:\[([\w,-]+)\])?", req)
        if m:
            extras = set((m.group(2) or "").split(",")) - {""}
            assert extras <= set(EXTRAS), f"{req}: no extra {extras - set(EXTRAS)} in pyproject"
            continue
        name, _, version = req.partition("==")
        assert version, f"{req}: a package besides bioprop is pinned in the docs"
        assert importlib.metadata.version(name) == version, f"{req}: the suite runs another"


def check_python(argv):
    """``python -m MODULE`` names a module there is; ``python SCRIPT`` names a script of
    the repository, and each of its ``--options`` is one the script defines."""
    if argv[1] == "-m":
        assert importlib.util.find_spec(argv[2]), f"{shlex.join(argv)}: no module {argv[2]}"
        return
    script = ROOT / argv[1]
    assert script.is_file(), f"{shlex.join(argv)}: no file {argv[1]}"
    for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
        assert option in _script_options(script), f"{shlex.join(argv)}: {argv[1]} has no {option}"


@functools.lru_cache
def _script_options(script) -> set:
    """The --options a script's own --help lists (its parser's, those a helper adds too)."""
    import re
    import subprocess

    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return set(re.findall(r"--[a-z][a-z0-9-]*", done.stdout))


def check_activate(argv):
    assert argv[1].endswith("/bin/activate"), shlex.join(argv)


def check_pytest(argv):
    """``-n`` is pytest-xdist's, which the test extra must install."""
    if "-n" in argv:
        assert any(r.startswith("pytest-xdist") for r in EXTRAS["test"]), "no pytest-xdist"


def check_sphinx(argv):
    """sphinx-build's own parser takes the options; the docs extra installs Sphinx."""
    from sphinx.cmd.build import get_parser

    assert any(r.lower().startswith("sphinx") for r in EXTRAS["docs"])
    args = get_parser().parse_args(argv[1:])
    assert (ROOT / args.sourcedir / "conf.py").is_file(), shlex.join(argv)


CHECKS = {"bioprop": check_bioprop, "pip": check_pip, "python": check_python,
          "python3": check_python, ".": check_activate, "source": check_activate,
          "pytest": check_pytest, "sphinx-build": check_sphinx}


def console_parts(text: str):
    """(command, output lines) of each ``$ `` line of a console block."""
    parts = []
    for line in text.splitlines():
        if line.startswith("$ "):
            parts.append((line[2:], []))
        else:
            assert parts, f"output before any command: {line}"
            parts[-1][1].append(line)
    return parts


def check_console_output(argv, output):
    """A bioprop error shown under its command is the message the check raises; the lines of
    ``bioprop list`` shown are lines it prints (``...`` stands for the lines left out)."""
    said = " ".join(" ".join(output).split())
    if argv[:1] == ["bioprop"] and ": error: " in said:
        try:
            cli.check(argv[1:])
        except SpecError as err:
            assert said == " ".join(f"bioprop {argv[1]}: error: {err}".split()), said
            return
        raise AssertionError(f"{shlex.join(argv)} passes the check, but the page shows {said}")
    check_command(argv)
    if argv[:2] == ["bioprop", "list"]:
        from bioprop.shipped import listing

        printed = {" ".join(line.split()) for line in listing().splitlines()}
        for line in output:
            assert line.strip() == "..." or " ".join(line.split()) in printed, line


# ---- TOML -------------------------------------------------------------------------------

def check_toml(text: str, scratch: Path) -> None:
    """Parse a TOML block; a model or protocol (or a part of one, merged into the default
    file) loads through the spec; a pyproject entry-point table names bioprop's groups."""
    data = tomllib.loads(text)
    if "project" in data:
        groups = set(data["project"].get("entry-points", {}))
        assert groups <= set(ENTRY_POINT_GROUPS.values()), groups
        return
    keys = set(data) - {"extends", "description", "protocol"}
    kind = "model" if keys <= MODEL_TABLES else "protocol"
    assert keys <= (MODEL_TABLES if kind == "model" else PROTOCOL_TABLES), (
        f"tables {sorted(keys)} are neither a model's nor a protocol's")
    if "extends" in data:  # a file beside the shipped ones, as the page puts it
        folder = scratch / f"{kind}s"
        shutil.copytree(ROOT / f"{kind}s", folder, dirs_exist_ok=True)
        (folder / "block.toml").write_text(text, encoding="utf-8")
        (load_model if kind == "model" else load_protocol)(folder / "block.toml")
        return
    default = default_model_path() if kind == "model" else default_protocol_path()
    base, _ = read_spec_file(default)
    from_tables(merge_tables(base, data), "<docs block>", kind)


# ---- what a Python block says it prints ---------------------------------------------------

def promised_output(text: str) -> dict[int, str]:
    """{line: what the block says it prints there} for each one-line ``print(...)  # C``
    whose comment C shows the output: C holds ``...`` (it stands for any text); or the print
    is of an exception ``err``; or C is a Python literal, alone or before ``: why``.
    Other comments explain, and are not checked."""
    import ast

    promised = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*print\((.*)\)\s+# (.*)$", line)
        if not m:
            continue
        said = m.group(2).strip()
        if "..." in said or m.group(1) == "err":
            promised[number] = said
            continue
        for part in (said, said.split(": ")[0]):
            try:
                ast.literal_eval(part)
            except (ValueError, SyntaxError):
                continue
            promised[number] = part
            break
    return promised


def printed_as_promised(printed: str, said: str) -> bool:
    """Whether a printed line is what the comment shows (``...`` standing for any text)."""
    pattern = ".*".join(re.escape(piece) for piece in said.split("..."))
    return re.fullmatch(pattern, printed, flags=re.S) is not None
