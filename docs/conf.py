"""Sphinx configuration of bioprop's documentation site.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (the
``docs`` extra installs the tools). Every warning is an error in CI: a broken link
between pages, an anchor that does not exist, a file the pages link to that is gone, or
a docstring numpydoc cannot read. The reference pages (keys, CLI, run-file schema, API)
are written by ``gen_reference.py`` at the start of every build, from the code itself.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bioprop  # noqa: E402
import gen_reference  # noqa: E402

project = "bioprop"
author = "the bioprop developers"
copyright = "bioprop developers"
release = version = bioprop.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc", "sphinx.ext.mathjax",
              "sphinx_gallery.gen_gallery"]
# .rst only so that autosummary (which numpydoc loads) does not warn; every page is .md
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# the gallery's header is read by sphinx-gallery into its index, not as a page of its own
exclude_patterns = ["_build", "tutorials/GALLERY_HEADER.rst"]
# the pages link to headings as GitHub does (#synaptic-plasticity), down to level 4
myst_heading_anchors = 4
# deflist: the generated key reference lists each key as a term and its description
myst_enable_extensions = ["dollarmath", "deflist"]

# The tutorials: scripts docs/tutorials/plot_*.py, run at every build, their output and
# figures written into docs/auto_tutorials/ (git-ignored). `-D plot_gallery=0` builds the
# pages without running them (tests/test_docs.py). A tutorial that raises fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"/plot_",
    # plot_1_..., plot_2_...: the order of the list in docs/index.md
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_signature": False,
}
abort_on_example_error = True

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"

# the pages are full of options (--set) that "smart" dashes would turn into en dashes
smartquotes = False

html_theme = "pydata_sphinx_theme"
html_title = f"bioprop {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2,
                      "secondary_sidebar_items": ["page-toc"]}
# pages without sub-pages need no section navigation
html_sidebars = {"index": [], "getting-started": []}
html_show_sourcelink = False
html_copy_source = False


def unlink_folders(app, doctree):
    """A link to a folder of the repository (``[rules](../bioprop/rules)``) reads on the
    repository's web view as a listing; the site has no such page, so it becomes plain text.
    A link to a folder that does not exist is left to fail the build."""
    from sphinx import addnodes

    page = Path(app.env.doc2path(app.env.docname)).parent
    for node in list(doctree.findall(addnodes.pending_xref)):
        target = node.get("reftarget", "")
        # a link to a page is a "doc" reference to its name, which may also be a folder's
        if (node.get("reftype") == "myst" and node.get("refdomain") != "doc" and target
                and (page / target).resolve().is_dir()):
            node.replace_self(node.children)


def setup(app):
    # before the pages are read, so the generated ones are read like any other
    app.connect("builder-inited", lambda app: gen_reference.write_all(HERE / "reference"))
    app.connect("doctree-read", unlink_folders)
