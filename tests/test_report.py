"""`bioprop report` and `bioprop info` on short real runs."""
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

import bioprop
from bioprop.analysis.report import describe, write_report

QUICK = ["training.epochs=2", "data.n_train=128", "data.n_test=64", "engine.name=reference",
         "record.weights_every=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for rule, extra in (("dtp", []), ("iterative", ["rule.iterations=3"]), ("fa", [])):
        path = folder / f"{rule}.h5"
        bioprop.run(output=path, progress=False, overrides=QUICK + [f"rule.target={rule}"] + extra)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_report_writes_every_figure_it_promises(runs, tmp_path):
    page = write_report(runs, tmp_path / "report")
    expected = ["learning_curves", "angle_to_bp", "angle_to_gn", "reconstruction_error",
                "lipschitz", "angle_w_q", "iteration_residuals", "weight_histograms"]
    text = page.read_text()
    for stem in expected:
        image = mpimg.imread(tmp_path / "report" / f"{stem}.png")
        assert image.shape[0] > 200 and image.shape[1] > 400, stem
        assert f"({stem}.png)" in text
    for run in runs:  # one summary row per overlaid run
        assert f"| {run.stem} |" in text


@pytest.mark.slow
def test_report_without_iterative_has_no_residual_figure(runs, tmp_path):
    write_report(runs[:1], tmp_path / "one")
    assert not (tmp_path / "one" / "iteration_residuals.png").exists()
    assert (tmp_path / "one" / "learning_curves.png").exists()


def test_info_lists_provenance_and_dims(runs):
    text = describe(runs[1])
    for needle in ("git_commit", "brian2_version", "seed: 1", "/metrics  (epoch=3, layer=3)",
                   "angle_to_bp('epoch', 'layer') [degree]",
                   "residual('epoch', 'layer', 'iteration')"):
        assert needle in text, needle
    assert "rule.target" not in text and 'target = "iterative"' in describe(runs[1], toml=True)


@pytest.mark.slow
def test_cli_report_and_info_and_a_hostile_file(runs, tmp_path):
    out = subprocess.run([sys.executable, "-m", "bioprop.cli", "report", *map(str, runs), "-o",
                          str(tmp_path / "r")], capture_output=True, text=True)
    assert out.returncode == 0 and "report.md" in out.stdout
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    for command in ("info", "report"):
        proc = subprocess.run([sys.executable, "-m", "bioprop.cli", command, str(junk)],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "junk.h5: not a readable HDF5 file" in proc.stderr


@pytest.mark.slow
def test_report_draws_a_spike_raster_when_the_run_has_spikes(spiking_run, runs, tmp_path):
    page = write_report([spiking_run], tmp_path / "spikes")
    image = mpimg.imread(tmp_path / "spikes" / "spike_raster.png")
    assert image.shape[0] > 600 and image.shape[1] > 800  # three layer panels
    assert "(spike_raster.png)" in page.read_text()
    assert (tmp_path / "spikes" / "probe_rates.png").exists()
    write_report(runs[:1], tmp_path / "none")  # no spikes: no raster
    assert not (tmp_path / "none" / "spike_raster.png").exists()
