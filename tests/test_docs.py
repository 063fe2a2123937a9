"""The documentation site (docs/): its generated reference pages cover every key, command,
option and run-file variable, and the site builds with every warning an error, so that a
broken link, a missing anchor or a file a page names that is gone fails the suite."""
import argparse
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bioprop
from bioprop.cli import build_parser
from bioprop.ranges import walk
from bioprop.runlog.vocabulary import DIMS, SECTIONS
from bioprop.spec import ModelSpec, ProtocolSpec, load_model, load_protocol

DOCS = Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS))
import gen_reference  # noqa: E402  (docs/ is not a package)


def sections(page: str) -> dict:
    """{heading text: the page's lines under it} of a generated page's ### headings."""
    out, current = {}, None
    for line in page.splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip().strip("`")
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def first_cells(lines) -> set:
    """The names a table's rows, or a definition list's terms, start with."""
    return {m.group(1) for line in lines if (m := re.match(r"(?:\| )?`([^`]+)` (?:\||·)", line))}


def test_every_key_has_a_description():
    notes = gen_reference.descriptions()
    missing = [key for root in (ModelSpec, ProtocolSpec)
               for key, owner, f, _ in gen_reference.leaf_keys(root, "")
               if not notes.get((owner.__name__, f.name))]
    assert not missing, (f"keys without a #: comment beside their field (the reference page "
                         f"reads their description there): {', '.join(missing)}")


def test_keys_page_lists_every_key_of_the_default_files_under_its_table():
    # the default specs walked as the range check walks them: an independent list of keys
    page = gen_reference.keys_page()
    tables = sections(page)
    keys = [key for spec in (load_model(), load_protocol()) for key, _, _ in walk(spec)]
    assert len(keys) > 50
    for key in keys:
        *table, name = key.split(".")
        if not table:  # a top-level key of the file (``protocol``), in the page's introduction
            assert f"Top-level keys: `{gen_reference.EXTENDS}`" in page and f"`{name}`" in page
            continue
        heading = "[[layers]]" if table[0] == "layers" else f"[{'.'.join(table)}]"
        assert name in first_cells(tables.get(heading, [])), f"{key}: no row under {heading}"


def test_keys_page_gives_type_default_range_and_description():
    lines = gen_reference.keys_page().splitlines()
    at = lines.index("`p_connect` · float · default `1.0` · in (0, 1]")
    assert lines[at + 1] == (":   probability that each connection of W_l exists, drawn once per "
                             "model; absent connections stay zero in both engines (any "
                             "``connection``)")
    assert "`size` · integer · required · positive" in lines
    assert "`tau` · duration · default `\"10 ms\"` · positive" in lines
    # a string key's allowed values are its registry's names (validation.allowed_values)
    activation = next(line for line in lines if line.startswith("`activation` ·"))
    assert activation.startswith("`activation` · string · default `\"tanh\"` · one of ")
    assert {"`tanh`", "`relu`"} <= set(activation.split("one of ")[1].split(", "))


def test_cli_page_has_every_command_and_option():
    page = sections(gen_reference.cli_page())
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        heading = next((h for h in page if h == f"bioprop {name}"), None) or next(
            h for h, lines in page.items() if f"also `bioprop {name}`" in "\n".join(lines))
        text = "\n".join(page[heading])
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert (action.option_strings or [action.dest])[0] in text, (name, action.dest)


def test_schema_page_has_every_dim_group_and_dataset():
    page = sections(gen_reference.schema_page())
    assert first_cells(page["Dimensions"]) == set(DIMS)
    for section in SECTIONS.values():
        heading = next(h for h in page if h.split("/")[1:2] == [section.name])
        assert first_cells(page[heading]) == set(section.variables) | set(section.events)


@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path):
    """The whole site, as CI builds it, but without running the tutorials (about 25 s here):
    test_tutorial_runs_and_computes_what_it_says runs them."""
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                          "html", "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"),
                          str(DOCS),
                          str(tmp_path / "html")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    api = (tmp_path / "html" / "reference" / "api.html").read_text(encoding="utf-8")
    assert "Train a model under a protocol" in api and ".. autofunction" not in api


@pytest.mark.slow
def test_broken_links_fail_the_build(tmp_path):
    """The same configuration on a page with a broken link of each kind: each is named."""
    (tmp_path / "conf.py").write_text(
        f"import sys; sys.path.insert(0, {str(DOCS)!r})\n"
        f"exec(compile(open({str(DOCS / 'conf.py')!r}).read(), 'conf.py', 'exec'))\n"
        f"HERE = __import__('pathlib').Path({str(tmp_path)!r})\n"
        # this site has no tutorials folder for the gallery to read
        "extensions.remove('sphinx_gallery.gen_gallery')\n", encoding="utf-8")
    # a page whose name is also a folder's stays a link to the page
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub.md").write_text("# Sub\n", encoding="utf-8")
    (tmp_path / "index.md").write_text(
        "# Page\n\n## A heading\n\n[a](no-such-page.md) [b](index.md#no-such-heading) "
        "[c](../no/such/file.py) [d](../no/such/folder/) [e](#a-heading) [f](sub.md)\n\n"
        "```{toctree}\n:hidden:\n\nsub\n```\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                          "html", "-D", "exclude_patterns=_build,reference", str(tmp_path),
                          str(tmp_path / "_build")], capture_output=True, text=True)
    assert out.returncode != 0
    for target in ("no-such-page.md", "no-such-heading", "no/such/file.py", "no/such/folder"):
        assert target in out.stderr, f"{target} not reported:\n{out.stderr}"
    assert "a-heading" not in out.stderr
    assert 'href="sub.html"' in (tmp_path / "_build" / "index.html").read_text(encoding="utf-8")


# What each tutorial (docs/tutorials/plot_*.py) computes, checked from the names it leaves
# behind: a tutorial whose text no longer matches what it computes fails here.
def first_network(ns):
    assert ns["accuracy_after"] > ns["accuracy_before"] + 0.3   # one epoch learns
    assert np.mean(ns["losses"][-5:]) < np.mean(ns["losses"][:5]) - 0.2
    for name in ns["layers"]:   # the targets come closer to the rates as the loss falls
        assert np.mean(ns["changes"][name][-5:]) < np.mean(ns["changes"][name][:5])


def own_rule(ns):
    change = {rule: float(abs(ns["asked"][rule]["target_hidden1"]
                              - ns["asked"][rule]["rate_hidden1"]).mean()) for rule in ns["rules"]}
    assert change["dtp"] < change["blend"] < change["tp"]
    final = {rule: curve[-1] for rule, curve in ns["curves"].items()}
    assert final["dtp"] > 90 and final["dtp"] > final["blend"] + 3 > final["tp"] + 6
    angle = {rule: curve[-1] for rule, curve in ns["angles"].items()}
    assert angle["dtp"] < 60 < 75 < angle["blend"]          # hidden1: towards BP, or not


def dales_law(ns):
    acc = ns["summary"]["test accuracy (%)", "mean"]
    error = ns["summary"]["reconstruction error of g_2", "mean"]
    assert ns["dale_holds"] and abs(ns["feedback_fraction"] - 0.1) < 0.02
    assert acc["none"] > 90 and acc["feedback-10"] > 90 and acc["frozen-feedback"] > 90
    assert 50 < acc["dale-both"] < acc["none"] - 5          # learns, but more slowly
    assert error[["none", "dale-both", "feedback-10"]].max() < 0.6 < 0.9 < error["frozen-feedback"]


def spiking(ns):
    assert ns["rate"].attrs["units"] == "Hz" and 1 < float(ns["rate"].mean()) < 200
    assert ns["agreement"] > 0.9          # the spike trace is the counted rate, in Hz
    assert ns["target_agreement"] > 0.7   # the LIF neurons reach the twin's targets
    current, phases = ns["current"], ns["phases"].set_index("name")
    forward = current.sel(time=slice(0, phases.start["noise_a"] - 1))
    target = current.sel(time=slice(phases.start["target"] + 50, None))
    assert float(abs(forward).max()) == 0 < float(abs(target).max())


def run_file(ns):
    assert ns["alignment_gap"] < 1e-6     # xarray's angle(W_2ᵀ, Q_2) is the run file's
    assert ns["alignment"][-1] < ns["alignment"][0] - 10      # the inverse aligns as it learns
    angles = ns["metrics"]["angle_to_bp"].sel(layer="hidden1")
    assert float(angles[-1]) < float(angles[0]) - 10
    structure = ns["class_structure"].values
    assert structure[-1] > structure[0] + 0.2 and ns["similarity"].sizes["trial"] == 32


def sweep(ns):
    table, mean = ns["table"], ns["summary"]["mean"]
    assert len(table) == 12 and (table["status"] == "complete").all()
    for point, accuracy in ns["last_epoch"].items():   # the table is its run files'
        assert table.set_index("point").loc[point, "test_accuracy"] == accuracy
    best = max(mean[0.001], mean[0.003])
    assert best > mean[0.0003] + 3 and best > mean[0.01]


TUTORIAL_CHECKS = {"plot_1_first_network.py": first_network, "plot_2_own_rule.py": own_rule,
                   "plot_3_dales_law.py": dales_law,
                   "plot_4_spiking.py": spiking, "plot_5_run_file.py": run_file,
                   "plot_6_sweep.py": sweep}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in (DOCS / "tutorials").glob("plot_*.py")))
def test_tutorial_runs_and_computes_what_it_says(script, tmp_path, monkeypatch):
    """Each tutorial as a plain script, in a scratch folder, as the docs build runs it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert script in TUTORIAL_CHECKS, f"{script}: no check in TUTORIAL_CHECKS"
    monkeypatch.chdir(tmp_path)
    with bioprop.register.isolated():   # a tutorial's registered rule stays in it
        ns = runpy.run_path(str(DOCS / "tutorials" / script), run_name="__main__")
    plt.close("all")
    TUTORIAL_CHECKS[script](ns)
