"""``bioprop report`` and ``bioprop info``: a run file's figures, summary and contents.

* :func:`write_report` — PNG figures of one or several runs and a Markdown summary page.
* :func:`describe` — the provenance and contents of one run file, as text.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures

__all__ = ["write_report", "describe"]

#: per-layer figures: file stem → (variable, title)
PER_LAYER = {
    "angle_to_bp": ("angle_to_bp", "angle between the rule's weight update and BP's", False),
    "angle_to_gn": ("angle_to_gn", "angle between the layer's change and Gauss–Newton's", False),
    "reconstruction_error": ("reconstruction_error", "inverse quality ‖g(f(h)) − h‖ / ‖h‖", True),
    "lipschitz": ("lipschitz", "estimated Lip(g∘f − I)", True),
    "angle_w_q": ("angle_w_q", "alignment of the feedback weights: angle(Wᵀ, Q)", True),
}


def _labels(paths):
    stems = [Path(p).stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]


def write_report(paths, out_dir) -> Path:
    """Write the figures of the runs in `paths` (overlaid) and ``report.md`` into `out_dir`.

    Returns
    -------
    Path
        The summary page.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: is a file; the report goes in a folder (-o DIR)")
    runs = _open_runs(paths)
    out_dir.mkdir(parents=True, exist_ok=True)  # only once every run is known to be readable
    written = {"learning_curves": figures.learning_curves(runs)}
    if all("metrics" in tree.children for tree in runs.values()):
        for stem, (variable, title, pathway) in PER_LAYER.items():
            fig = figures.per_layer(runs, variable, title, pathway)
            if fig is not None:
                written[stem] = fig
    for stem, figure in (("iteration_residuals", figures.iteration_residuals),
                         ("weight_histograms", figures.weight_histograms)):
        fig = figure(runs)
        if fig is not None:
            written[stem] = fig
    import matplotlib.pyplot as plt

    for label, tree in runs.items():  # activity figures of one run each: they do not overlay
        for stem, figure in (("probe_rates", figures.probe_rates),
                             ("spike_raster", figures.spike_raster)):
            fig = figure(tree)
            if fig is not None:
                written[f"{stem}_{label}" if len(runs) > 1 else stem] = fig
    for stem, fig in written.items():
        fig.savefig(out_dir / f"{stem}.png", dpi=110)
        plt.close(fig)
    page = out_dir / "report.md"
    page.write_text(_summary(runs, paths) + "\n" + "\n".join(
        f"## {stem.replace('_', ' ')}\n\n![{stem}]({stem}.png)\n" for stem in written))
    for tree in runs.values():
        tree.close()
    return page


def _open_runs(paths) -> dict:
    """label → open run, each checked for what the report reads; none left open on an error."""
    import tomllib

    from ..runlog import open_run
    from ..runlog.reader import require
    from ..runlog.vocabulary import TEST

    runs = {}
    try:
        for label, path in zip(_labels(paths), paths):
            runs[label] = tree = open_run(path)
            require(tree, path, attrs=("model_toml", "engine", "status"),
                    groups=("train", TEST))
            try:
                tomllib.loads(str(tree.attrs["model_toml"]))
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"{path}: its model_toml attribute is not TOML ({err})") from None
    except BaseException:
        for tree in runs.values():
            tree.close()
        raise
    return runs


def _summary(runs, paths):
    """The report's table: a row a run, its last epoch's figures; a validation column when
    any run held a validation set out (data.validation)."""
    import tomllib

    validated = any("validation" in tree.children for tree in runs.values())
    extra = " validation accuracy |" if validated else ""
    rows = ["# bioprop report", "", "| run | engine | rule | objective | epochs | test accuracy "
            f"| test loss |{extra} status |", "|---|---|---|---|---|---|---|" +
            ("---|" if validated else "") + "---|"]
    for (label, tree), path in zip(runs.items(), paths):
        rule = tomllib.loads(tree.attrs["model_toml"]).get("rule", {})
        evaluation = tree["test"]
        loss = f"{float(evaluation['loss'].values[-1]):.4f}" if evaluation["loss"].size else "–"
        held = f" {_last_accuracy(tree, 'validation')} |" if validated else ""
        rows.append(f"| {label} | {tree.attrs['engine']} | {rule.get('target')} | "
                    f"{rule.get('feedback')} | {evaluation['epoch'].size} | "
                    f"{_last_accuracy(tree, 'test')} | {loss} |{held} {tree.attrs['status']} |")
    return "\n".join(rows) + "\n"


def _last_accuracy(tree, group):
    """The last epoch's accuracy of `group` in percent, or a dash where there is none."""
    if (group not in tree.children or "accuracy" not in tree[group]
            or not tree[group]["accuracy"].size):
        return "–"
    return f"{100 * float(tree[group]['accuracy'].values[-1]):.2f} %"


def describe(path, *, toml: bool = False) -> str:
    """The provenance (root attributes) and the contents (groups, variables, dims) of a run."""
    from ..runlog import open_run

    tree = open_run(path)
    long = ("model_toml", "protocol_toml")
    lines = [f"{path}", "", "provenance:"]
    lines += [f"  {k}: {v}" for k, v in tree.attrs.items() if k not in long]
    lines += ["", "contents:"]
    for node in tree.subtree:
        if not node.data_vars:
            continue
        dims = ", ".join(f"{d}={n}" for d, n in node.dataset.sizes.items())
        lines.append(f"  {node.path}  ({dims})")
        for name, var in node.data_vars.items():
            units = var.attrs.get("units", "")
            lines.append(f"    {name}{tuple(var.dims)}" + (f" [{units}]" if units else ""))
    if toml:
        for key in long:
            lines += ["", f"{key}:", str(tree.attrs[key])]
    tree.close()
    return "\n".join(lines)
