"""`bioprop bench` runs end to end and prints the figures it promises (not a timing test)."""
import re

import numpy as np
import pytest

from bioprop.bench import cost_split
from bioprop.cli import main


def test_bench_prints_ratios_and_cost_split(capsys):
    code = main(["bench", "--sizes", "20,16,16,4", "--batch-size", "8", "--batches", "3",
                 "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("(a) reference", "(b) brian2, default phases", "(c) brian2, one step per phase",
                  "(d) share outside matrix products", "peak memory", "BLAS"):
        assert label in out, label
    ratio = re.search(r"\(c\) brian2, one step per phase\s+\d+\s+([\d.]+)", out)
    assert ratio and float(ratio.group(1)) > 0


@pytest.mark.slow
def test_bench_spiking_rows(capsys):
    code = main(["bench", "--sizes", "20,16,4", "--batch-size", "4", "--batches", "1",
                 "--repeats", "1", "--spiking"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("(e) brian2, LIF hidden layers", "(f) brian2, rate layers, same dt",
                  "(g) brian2, LIF, event-driven", "(h) (g) compiled (cython)",
                  "(i) (g) without the kernel", "the compiled kernel: (g)/(i) = ",
                  "spikes at the same dt and phases: (e)/(f) = ",
                  "(e) time steps per trial: 480", "event-driven transmission: (g)/(e) = ",
                  # protocols/mnist_lif.toml: 60 ms forward, 75 ms feedback phases and a
                  # one-step target phase: 60 + 3·75 + 1, and without the noise phases 60 + 1
                  "(j) lif_mnist, noise phases: 286 time steps per trial",
                  "(k) (j), feedback on the twin: 61 time steps per trial",
                  "(k) time: Brian2 code objects ", "goal (k) >= 0.15 x (a): "):
        assert label in out, label
    split = re.search(r"\(e\) brian2, LIF hidden layers\s+\d+\s+[\d.]+\s+(.*)", out).group(1)
    # matmul, events, apical, optimizer, noise, brian2, rest
    assert len(re.findall(r"\d+%", split)) == 7
    fired = re.search(r"forward_2 ([\d.]+)%", out)
    assert fired and 0 < float(fired.group(1)) < 100


def test_cost_split_restores_what_it_wraps():
    from bioprop import learner, projection

    before = (projection.DenseProjection.drive, learner.sample_noise)
    with cost_split() as spent:
        assert projection.DenseProjection.drive is not before[0]
    assert (projection.DenseProjection.drive, learner.sample_noise) == before
    assert set(spent) == {"matmul", "events", "apical", "optimizer", "noise", "brian2"}


def test_plain_numpy_dtp_step_of_the_benchmark_learns():
    """(p) must be DTP that works, or the ratios against it mean nothing: five epochs of it
    on the digits reach well above chance (10%)."""
    from bioprop.bench import plain_dtp
    from bioprop.datasets import load_dataset

    data = load_dataset("digits")
    once = plain_dtp([64, 64, 64, 10], 32, 0, "float64", data=(data.x_train, data.y_train))
    for _ in range(4):
        once()
    accuracy = np.mean(once.predict(data.x_test).argmax(1) == data.y_test)
    assert accuracy > 0.8, accuracy
