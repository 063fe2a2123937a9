"""Hooks (bioprop.hooks, Network.add_hook): called at every phase's end in order and at each
batch's end, with the layers' arrays by name; what they change, both engines compute with."""
import re
from pathlib import Path

import numpy as np
import pytest

import bioprop
from bioprop.brian2.phases import PHASE_KINDS
from bioprop.hooks import REFERENCE_PHASES, HookError

from conftest import assert_close

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"network": {"input_size": 64},
         "layers": [{"name": "hidden1", "size": 24}, {"name": "hidden2", "size": 16},
                    {"name": "output", "size": 10, "activation": "linear"}]}
#: dt = τ: the engines agree to rounding
EXACT = {"data": {"n_train": 32, "n_test": 16}, "training": {"batch_size": 8, "epochs": 1},
         "phases": {"dt": "10 ms", "forward": "30 ms", "feedback": "30 ms", "target": "30 ms"},
         "record": {"probe_size": 8}}
ENGINES = ("reference", "brian2")


@pytest.fixture(scope="module")
def xy():
    data = bioprop.load_dataset("digits")
    return data.x_train[:8], data.y_train[:8]


def test_the_documented_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/hooks.md").read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/hooks.md block {i + 1}", "exec"), namespace)
    assert [phase for phase, _ in namespace["seen"]] == ["forward", "noise_a", "noise_b",
                                                          "settle", "target", "batch"]
    assert float(abs(namespace["done"]["update_hidden1_to_hidden2"]).max()) == 0.0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("schedule", ["alternating", "parallel"])
def test_a_recording_hook_sees_every_phase_in_order(engine, schedule, xy):
    x, y = xy
    net = bioprop.build(MODEL, EXACT, engine=engine, overrides={"rule.schedule": schedule})
    seen = []

    def record(state):
        seen.append((state.phase, state.batch, {k: v.copy() for k, v in state.items()}))

    net.add_hook("phase_end", record)
    net.add_hook("batch_end", lambda state: seen.append(("batch_end", state.batch, None)))
    first = net.step(x, y)
    net.step(x, y)
    if engine == "brian2":
        phases = [p.name for p in net.engine.train_phases]
    else:  # the reference's two phase ends, in the schedule's order
        phases = list(REFERENCE_PHASES)
    assert set(phases) <= set(PHASE_KINDS)
    assert [(p, b) for p, b, _ in seen] == [(p, 0) for p in phases] + [("batch_end", 0)] + \
        [(p, 1) for p in phases] + [("batch_end", 1)]
    forward = seen[0][2]
    assert sorted(k for k in forward if not k.startswith("dendrite_")) == [
        "potential_hidden1", "potential_hidden2", "potential_output", "rate_hidden1",
        "rate_hidden2", "rate_output", "target_output"]
    for name in ("rate_hidden1", "potential_hidden2", "target_output"):
        assert np.array_equal(forward[name], first[name].values)
    at_target = seen[phases.index("target")][2]
    assert np.array_equal(at_target["target_hidden1"], first["target_hidden1"].values)
    net.remove_hook("phase_end", record)
    net.step(x, y)
    assert len(seen) == 2 * (len(phases) + 1) + 1


def _silence(state):
    if state.phase == REFERENCE_PHASES[0]:  # the end of the forward phase
        state["rate_hidden1"] = 0.0


def test_a_silencing_hook_changes_the_step_as_it_should_in_both_engines(xy):
    x, y = xy
    steps = {}
    for engine in ENGINES:
        net = bioprop.build(MODEL, EXACT, engine=engine)
        before = net.weights
        net.add_hook("phase_end", _silence)
        steps[engine] = net.step(x, y)
        done = steps[engine]
        # a silent presynaptic layer: W_2 does not learn, and h_1 is 0 where it is read
        assert float(abs(done["update_hidden1_to_hidden2"]).max()) == 0.0
        assert float(abs(done["rate_hidden1"]).max()) == 0.0
        assert float(abs(done["update_input_to_hidden1"]).max()) > 0
        assert float(abs(done["update_hidden2_to_output"]).max()) > 0
        unsilenced = bioprop.build(MODEL, EXACT, engine=engine)
        assert unsilenced.weights.identical(before)
        assert float(abs(unsilenced.step(x, y)["update_hidden1_to_hidden2"]).max()) > 0
    for name in ("target_hidden1", "target_hidden2", "update_input_to_hidden1",
                 "update_hidden2_to_hidden1", "feedback_loss_hidden2_to_hidden1"):
        assert_close(steps["brian2"][name].values, steps["reference"][name].values, 1e-9, name)


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_takes_hooks_for_one_call(engine, tmp_path):
    net = bioprop.build(MODEL, EXACT, engine=engine)
    batches = []
    result = net.fit(epochs=2, record=str(tmp_path / "run.h5"),
                     hooks={"batch_end": lambda state: batches.append(state.batch)})
    assert batches == list(range(8))  # 32 samples in batches of 8, twice
    tree = bioprop.open_run(result.path)
    assert tree.attrs["hooks"] == ("batch_end: test_fit_takes_hooks_for_one_call.<locals>."
                                   "<lambda>")
    tree.close()
    plain = net.fit(epochs=1, record=str(tmp_path / "plain.h5"))
    tree = bioprop.open_run(plain.path)
    assert "hooks" not in tree.attrs
    tree.close()
    assert not net.engine.hooks
    net.step(*[a[:8] for a in (bioprop.load_dataset("digits").x_train,
                               bioprop.load_dataset("digits").y_train)])
    assert batches == list(range(8))


def test_hooks_that_cannot_be_are_one_error(xy):
    net = bioprop.build(MODEL, EXACT, engine="reference")
    with pytest.raises(HookError, match=r"^unknown hook event 'phase_ends'. Expected one of: "
                                        r"phase_end, batch_end. Did you mean 'phase_end'\?$"):
        net.add_hook("phase_ends", print)
    with pytest.raises(HookError, match="is not a batch_end hook of this network"):
        net.remove_hook("batch_end", print)
    with pytest.raises(HookError, match="unknown hook event"):
        net.fit(hooks={"phase_end": print, "batch_ends": print})
    assert not net.engine.hooks  # the first was taken back

    def wrong(state):
        state["rate_hidden1"] = np.zeros(5)

    net.add_hook("phase_end", wrong)
    with pytest.raises(HookError, match=r"rate_hidden1: a value of shape \(5,\) does not fit "
                                        r"its shape \(8, 24\)"):
        net.step(*xy)
    net.remove_hook("phase_end", wrong)
    net.add_hook("phase_end", lambda state: state["rate_hiden1"])
    with pytest.raises(KeyError, match="no array 'rate_hiden1' at the end of 'forward'.*Did you "
                                       "mean 'rate_hidden1'"):
        net.step(*xy)
