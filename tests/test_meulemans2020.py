"""models/meulemans2020_dtp.toml: Meulemans et al. 2020's mnist_DTP configuration."""
import pytest

import bioprop
from bioprop.spec import load_model, load_protocol

#: the values of their final_configs/mnist_DTP.py that the model carries through a conversion
THEIR_LR, THEIR_STEP = 6.185037324617764e-05, 0.21951187497378802


def test_the_configuration_is_theirs():
    model = load_model("meulemans2020_dtp")
    protocol = load_protocol(model.protocol)
    assert model.sizes == [784] + [256] * 5 + [10]
    # 'normalize_lr': their forward rate is lr / target_stepsize
    assert model.optimizer.forward.lr == pytest.approx(THEIR_LR / THEIR_STEP, rel=1e-15)
    assert model.rule.target_step == THEIR_STEP
    assert (model.rule.target_step_loss, model.rule.schedule, model.network.init) == (
        "batch_mean", "parallel", "glorot_normal")
    assert (protocol.training.batch_size, protocol.training.keep_partial_batch,
            protocol.data.validation, protocol.training.seed) == (128, True, 5000, 42)


@pytest.mark.parametrize("engine, extra", [
    ("reference", []), ("brian2", ["training.keep_partial_batch=false"])])
def test_it_trains_in_either_engine(tmp_path, engine, extra):
    """One epoch of 2000 MNIST images (the model at its size) lowers the validation loss;
    the Brian2 engine takes the configuration once the partial batch is dropped."""
    from bioprop.engines import make_engine
    from bioprop.run_data import run_data
    from bioprop.training import generators, train

    overrides = [f"engine.name={engine}", "training.epochs=1", "data.n_train=2100",
                 "data.n_test=100", "data.validation=100", "record.probe_size=0"] + extra
    model = load_model("meulemans2020_dtp", overrides)
    protocol = load_protocol(model.protocol, overrides)
    data = run_data(model, protocol)
    init_rng, rng = generators(protocol.training.seed)
    engine_ = make_engine(model, protocol, init_rng)
    before = engine_.evaluate(data.x_validation, data.y_validation)["loss"]
    result = train(model, protocol, engine=engine_, rng=rng, data=data,
                   output=tmp_path / "run.h5", progress=False)
    row = result.history[0]
    # 2000 samples in batches of 128: 15 whole ones, and the reference engine's last 80
    assert row["n_samples"] == (2000 if engine == "reference" else 1920)
    assert row["validation_loss"] < before - 0.02
