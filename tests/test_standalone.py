"""The forward phase on Brian2's cpp_standalone device against the runtime engine.

The oracle is the runtime Brian2 engine's forward phase (``predict``) on the same
weights, dt and phase. Both devices run the same equations in the same order within
each step (summed variables just before their target group, as the engine's dense
operations), so the spike trains are the same and the latched rates differ only by
the order of floating-point sums: measured 1e-16, asserted within 1e-9. A spike that
vanished or moved by one step would change a trace by far more (one spike adds
t_ref / τ_trace = 0.1 to z) and fail.

The build compiles C++ from a cold directory: the module took 48 s with one make job
on this loaded 2-core machine (31 s for a 6-8-3 version), so the tests that need it are
marked slow.
"""
import numpy as np
import pytest

from bioprop.spec import parse_model
from bioprop.training import make_engine

from test_spiking_engine import spiking_protocol, spiking_spec

B, BATCHES, TOLERANCE = 2, 2, 1e-9


def _runtime_rates(engine, x):
    """Every layer's latched rates, batch after batch (each batch starts from the state
    the previous one left, as within one predict call)."""
    rows = []
    for k in range(0, len(x), B):
        engine.predict(x[k:k + B])
        rows.append([h.copy() for h in engine.latched.h])
    return [np.concatenate(layer) for layer in zip(*rows)]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    from bioprop.brian2 import StandaloneForward

    # two LIF layers (LIF into LIF through synapses) and a linear rate output
    spec = parse_model({"network": {"input_size": 6}, "layers": [
        {"name": "hidden1", "size": 8, "population": "lif", "threshold": 0.2},
        {"name": "hidden2", "size": 5, "population": "lif", "threshold": 0.2},
        {"name": "out", "size": 3, "activation": "linear"}]})
    protocol = _with_batch(spiking_protocol(), B)
    engine = make_engine(spec, protocol, np.random.default_rng(0))
    forward = StandaloneForward(engine.model, spec, protocol, B, BATCHES,
                                directory=tmp_path_factory.mktemp("standalone"))
    yield spec, protocol, engine, forward
    forward.close()


def _with_batch(protocol, batch):
    from dataclasses import replace

    return replace(protocol, training=replace(protocol.training, batch_size=batch))


@pytest.mark.slow
def test_latched_rates_match_the_runtime_engine(standalone):
    spec, protocol, engine, forward = standalone
    x = np.random.default_rng(2).random((B * BATCHES, 6))
    expected = _runtime_rates(engine, x)
    for l in (1, 2):
        assert 0.03 < expected[l].mean() < 0.9, f"the test needs active LIF layers ({l})"
    got = forward.rates(x)
    for l in (1, 2, 3):
        np.testing.assert_allclose(got[l], expected[l], rtol=0, atol=TOLERANCE,
                                   err_msg=f"layer {l}")
    assert (forward.predict(x).argmax(1) == expected[3].argmax(1)).all()


@pytest.mark.slow
def test_run_args_rerun_the_build_with_new_weights_and_inputs(standalone):
    """device.run(run_args=...) gives the program other weights and inputs: no new build."""
    spec, protocol, engine, forward = standalone
    other = make_engine(spec, protocol, np.random.default_rng(5))  # other weights, at rest
    x = np.random.default_rng(3).random((B * BATCHES - 1, 6))  # a partial last batch
    expected = other.predict(x)
    got = forward.predict(x, model=other.model)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    assert np.abs(got - forward.predict(x)).max() > 0.01, "the weights must matter"


@pytest.mark.slow
def test_device_is_runtime_again(standalone):
    """Brian2's device is global: other networks in this process still run at runtime."""
    from brian2 import get_device
    from brian2.devices.device import RuntimeDevice

    assert isinstance(get_device(), RuntimeDevice)


def test_stochastic_input_is_refused():
    from bioprop.brian2 import StandaloneForward

    spec = spiking_spec("lif", encoding="poisson")
    with pytest.raises(ValueError, match="rate-encoded"):
        StandaloneForward(None, spec, spiking_protocol(), B, 1, directory="unused")


@pytest.mark.parametrize("start", ["twin", "rest"])
def test_a_trial_start_the_program_lacks_is_refused(start):
    """The compiled program carries each trial's state over; a protocol that starts trials
    anew would make it disagree with the engine's predict, so it is refused, not run."""
    from dataclasses import replace

    from bioprop.brian2 import StandaloneForward

    protocol = spiking_protocol()
    protocol = replace(protocol, phases=replace(protocol.phases, trial_start=start))
    with pytest.raises(ValueError, match=f"starts them at '{start}'"):
        StandaloneForward(None, spiking_spec("lif"), protocol, B, 1, directory="unused")
