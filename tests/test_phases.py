"""The trial schedule of the Brian2 engine and its registry of phase kinds."""
from itertools import product
from types import SimpleNamespace

import pytest

from bioprop.brian2.phases import (PHASE_KINDS, Phase, learner_phases, phase_kind, step_schedule,
                                   trial_phases)
from bioprop.units import Duration
from conftest import model_for, phases, small_model_spec

DT = Duration("10 ms").quantity
#: 4, 2 and 3 steps of 10 ms
SPEC = SimpleNamespace(forward=Duration("40 ms"), feedback=Duration("20 ms"),
                       target=Duration("30 ms"))
#: the phases that repeat once per feedback iteration
PER_ITERATION = {"settle", "noise_a", "noise_b", "drl_up", "drl_down"}


def schedule(**options):
    options.setdefault("schedule", "alternating")
    options.setdefault("trains_feedback", True)
    return trial_phases(SPEC, DT, **options)


def names(phases):
    return [(p.name, p.layer) if p.layer is not None else p.name for p in phases]


def test_alternating_schedule_trains_the_inverses_then_settles_then_targets():
    phases = schedule()
    assert names(phases) == ["forward", "noise_a", "noise_b", "settle", "target"]
    assert [p.steps for p in phases] == [4, 2, 2, 2, 3]
    assert [p.name for p in phases if p.ends_iteration] == ["noise_b"]
    assert not any(p.opens_iteration for p in phases)


def test_parallel_schedule_puts_the_targets_first():
    assert names(schedule(schedule="parallel")) == ["forward", "target", "noise_a", "noise_b"]


def test_difference_rules_have_no_feedback_phases():
    assert names(schedule(trains_feedback=False)) == ["forward", "target"]


def test_pretraining_has_no_target_phases():
    assert names(schedule(learn_forward=False, feedback_iterations=2)) == [
        "forward", "noise_a", "noise_b", "noise_a", "noise_b"]


def test_every_feedback_iteration_ends_once_and_a_settle_opens_it():
    phases = schedule(feedback_iterations=2, settle_each_iteration=True)
    assert names(phases) == ["forward", "settle", "noise_a", "noise_b", "settle", "noise_a",
                             "noise_b", "settle", "target"]
    assert [i for i, p in enumerate(phases) if p.opens_iteration] == [1, 4]
    assert [i for i, p in enumerate(phases) if p.ends_iteration] == [3, 6]


def test_iterative_rule_clamps_then_predicts_each_layer_top_down():
    phases = schedule(iterations=2, top=3)
    assert names(phases)[-6:] == [("clamp", 2), ("predict", 2), ("predict", 2),
                                  ("clamp", 1), ("predict", 1), ("predict", 1)]
    assert "target" not in names(phases)
    assert {p.steps for p in phases[-6:]} == {3}  # the target phase's duration


def test_layer_norm_adds_an_influence_phase_per_layer_after_the_targets():
    phases = schedule(layer_norm=True, top=3)
    assert names(phases)[-3:] == ["target", ("influence", 1), ("influence", 2)]
    assert phases[-1].steps == 4  # the forward phase's duration


def test_drl_sends_each_layer_up_and_down_in_every_iteration():
    phases = schedule(drl=True, top=3)
    assert names(phases) == ["forward", "noise_a", "noise_b", ("drl_up", 2), ("drl_down", 2),
                             ("drl_up", 3), ("drl_down", 3), "settle", "target"]
    assert [p.name for p in phases if p.ends_iteration] == ["drl_down"]
    assert phases[6].layer == 3 and phases[6].ends_iteration


def test_drl_alone_needs_no_noise_phases():
    assert names(schedule(drl=True, top=2, noise_phases=False)) == [
        "forward", ("drl_up", 2), ("drl_down", 2), "settle", "target"]


def all_schedules():
    for (sched, trains, learn, settle, iters, norm, drl, noise) in product(
            ("alternating", "parallel"), (True, False), (True, False), (True, False), (0, 2),
            (True, False), (True, False), (True, False)):
        if not (settle or noise or drl):
            continue  # a feedback iteration needs at least one phase
        yield schedule(schedule=sched, trains_feedback=trains, learn_forward=learn,
                       feedback_iterations=2, settle_each_iteration=settle, iterations=iters,
                       layer_norm=norm, top=3, drl=drl, noise_phases=noise)


def test_every_phase_the_schedule_makes_has_a_kind_and_every_kind_is_made():
    made = {p.name for phases in all_schedules() for p in phases}
    assert made == set(PHASE_KINDS)
    for name in made:
        assert phase_kind(name) is PHASE_KINDS[name] is Phase(name, 1).kind


def test_only_per_iteration_phases_open_or_end_an_iteration():
    # the engine runs a kind's own latches before those of the iteration a phase opens or
    # ends; sub-phases such as clamp or influence must never carry the flags
    for phases in all_schedules():
        assert {p.name for p in phases if p.opens_iteration or p.ends_iteration} <= PER_ITERATION


def test_an_unknown_phase_fails_with_the_known_kinds():
    with pytest.raises(ValueError, match=r"unknown phase 'nosie_a'.*noise_a"):
        phase_kind("nosie_a")
    with pytest.raises(ValueError, match="unknown phase"):
        Phase("nosie_a", 1).kind


def test_kinds_say_which_phases_nudge_and_which_inject_noise():
    assert {n: k.nudge for n, k in PHASE_KINDS.items() if k.nudge} == {"target": "target",
                                                                        "drl_down": "round_trip"}
    assert {n: k.noise_parity for n, k in PHASE_KINDS.items()
            if k.noise_parity is not None} == {"noise_a": 1, "noise_b": 0}
    assert [n for n, k in PHASE_KINDS.items() if k.settles_forward] == ["forward"]


def test_roles_of_the_forward_and_noise_phases():
    engine = SimpleNamespace(model=SimpleNamespace(n_layers=4), top=3, training=True,
                             noisy={1}, objective=SimpleNamespace(needs_upper_noise=False))
    forward = Phase("forward", 1)
    assert PHASE_KINDS["forward"].roles(engine, forward) == ({1, 2, 3, 4}, {1, 2})
    engine.training = False  # predicting: the dendrites are not needed
    assert PHASE_KINDS["forward"].roles(engine, forward) == ({1, 2, 3, 4}, set())
    assert PHASE_KINDS["noise_a"].roles(engine, Phase("noise_a", 1)) == ({2}, {1})
    engine.noisy, engine.objective.needs_upper_noise = {2}, True
    assert PHASE_KINDS["noise_b"].roles(engine, Phase("noise_b", 1)) == ({3}, {1, 2})
    assert PHASE_KINDS["drl_down"].roles(engine, Phase("drl_down", 1, layer=2)) == (set(), {1, 2})
    assert PHASE_KINDS["predict"].roles(engine, Phase("predict", 1, layer=1)) == ({2}, {1})


def test_step_schedule_marks_where_each_phase_starts_and_ends():
    phases = schedule(trains_feedback=False)  # forward 4 steps, target 3
    steps, starts, ends = step_schedule(phases)
    assert [p.name for p in steps] == ["forward"] * 4 + ["target"] * 3
    assert starts == {0, 4} and ends == {3, 6}


@pytest.mark.parametrize("target, expected", [
    ("dtp", ["forward", "noise_a", "noise_b", "settle", "target"]),
    ("iterative", ["forward", "noise_a", "noise_b", "settle", ("clamp", 3), ("predict", 3),
                   ("clamp", 2), ("predict", 2), ("clamp", 1), ("predict", 1)]),
    ("bp", ["forward", "target"]),
])
def test_learner_phases_follow_the_rule(target, expected):
    from bioprop.reference import ReferenceEngine

    spec = small_model_spec(target=target, iterations=1)
    learner = ReferenceEngine(model_for(spec), spec, 4)
    train, pretrain = learner_phases(learner, phases().phases, DT)
    assert names(train) == expected
    assert "target" not in names(pretrain) and names(pretrain)[0] == "forward"
