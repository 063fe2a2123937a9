"""Durations: read once into Brian2 quantities, the same floats as the product number × unit."""
import pickle

import brian2
import pytest

from bioprop.errors import SpecError
from bioprop.spec import LayerSpec, load_model, load_protocol, parse_model, to_toml
from bioprop.units import Delay, Duration, parse_duration

#: text → the quantity the engines have always been given: float(number) * the Brian2 unit
CASES = {
    "10 ms": 10.0 * brian2.ms, "0.5 ms": 0.5 * brian2.ms, "0.1 ms": 0.1 * brian2.ms,
    "0.3 ms": 0.3 * brian2.ms, "33.3 ms": 33.3 * brian2.ms, "2*ms": 2.0 * brian2.ms,
    "1.1 msecond": 1.1 * brian2.ms, "3 us": 3.0 * brian2.us, "7 usecond": 7.0 * brian2.us,
    "0.2 s": 0.2 * brian2.second, "0.2 second": 0.2 * brian2.second,
    "1e-3 s": 1e-3 * brian2.second, "  20ms ": 20.0 * brian2.ms,
}


@pytest.mark.parametrize("text", sorted(CASES))
def test_a_duration_is_the_same_float_as_number_times_unit(text):
    quantity = Duration(text).quantity
    assert isinstance(quantity, brian2.Quantity) and quantity.dim == brian2.second.dim
    assert float(quantity).hex() == float(CASES[text]).hex()
    assert Duration(text).text == str(Duration(text)) == text


def test_the_quantity_is_made_once_and_cannot_be_changed():
    duration = Duration("10 ms")
    assert duration.quantity is duration.quantity
    with pytest.raises(ValueError):
        duration.quantity[...] = 0
    with pytest.raises(AttributeError):
        duration.text = "20 ms"


def test_parse_duration_takes_text_a_duration_or_a_quantity():
    assert float(parse_duration("5 ms")) == float(5.0 * brian2.ms)
    duration = Duration("5 ms")
    assert parse_duration(duration) is duration.quantity
    quantity = 3.0 * brian2.ms
    assert parse_duration(quantity) is quantity
    assert float(parse_duration("0 ms", allow_zero=True)) == 0


def test_durations_compare_by_kind_and_text_and_pickle():
    assert Duration("10 ms") == Duration("10 ms") and Duration("10 ms") != Duration("10.0 ms")
    assert Delay("1 ms") != Duration("1 ms")
    assert len({Duration("1 ms"), Duration("1 ms")}) == 1
    copy = pickle.loads(pickle.dumps(Delay("2 ms")))
    assert copy == Delay("2 ms") and float(copy.quantity) == float(2.0 * brian2.ms)


@pytest.mark.parametrize("text, message", [
    ("10", "expected a duration with units"), ("ten ms", "expected a duration with units"),
    ("1.2.3 ms", "expected a duration with units"), ("e ms", "expected a duration with units"),
    ("10 Hz", "expected a duration with units"), ("0 ms", "a duration must be positive"),
    ("-1 ms", "a duration must be positive"), ("1e999 ms", "a duration must be finite"),
    ("- ms", "expected a duration with units"), ("nan ms", "expected a duration with units")])
def test_a_bad_duration_is_one_error_naming_file_and_key(text, message):
    with pytest.raises(SpecError) as err:
        Duration(text, "models/x.toml", "layers.0.tau")
    assert str(err.value).startswith("models/x.toml: layers.0.tau: " + message)
    assert repr(text) in str(err.value)


def test_a_duration_error_lists_the_units_it_accepts():
    with pytest.raises(SpecError) as err:
        Duration("10 min", "m.toml", "phases.dt")
    assert "(a number, then one of the units ms, msecond, us, usecond, s, second)" in str(err.value)


def test_a_delay_may_be_zero_but_not_negative():
    assert float(Delay("0 ms").quantity) == 0
    with pytest.raises(SpecError, match=r"layers.0.delay: a duration must be ≥ 0"):
        Delay("-1 ms", "m.toml", "layers.0.delay")


def test_a_duration_that_is_not_text_is_refused():
    with pytest.raises(SpecError, match=r"^m.toml: phases.dt: expected a duration with units"):
        Duration(5, "m.toml", "phases.dt")


def test_loaded_specs_hold_durations_with_their_quantities():
    model, protocol = load_model(), load_protocol()
    for layer in model.layers:
        assert isinstance(layer.tau, Duration) and isinstance(layer.delay, Delay)
        assert float(layer.tau.quantity) == float(10.0 * brian2.ms)
    assert float(protocol.phases.dt.quantity) == float(parse_duration(protocol.phases.dt.text))
    assert LayerSpec(name="h", size=1).refractory == Duration("2 ms")


def test_a_bad_duration_in_a_file_names_the_file_and_key():
    data = {"network": {"input_size": 2}, "layers": [{"name": "out", "size": 2, "tau": "5"}]}
    with pytest.raises(SpecError, match=r"^m.toml: layers.out.tau: expected a duration with units "
                                        r"such as \"10 ms\" \(a number, then one of the units ms, msecond, us, "
                                        r"usecond, s, second\), got '5'$"):
        parse_model(data, "m.toml")


def test_to_toml_writes_the_text_as_given():
    data = {"network": {"input_size": 2},
            "layers": [{"name": "out", "size": 2, "tau": "2*ms", "tau_apical": "0.01 second"}]}
    text = to_toml(parse_model(data))
    assert 'tau = "2*ms"' in text and 'tau_apical = "0.01 second"' in text
