"""The clean slate between tests (conftest): what one test sets does not reach the next."""
import brian2
import numpy as np

from conftest import global_state, restore_global_state


def test_restore_undoes_preferences_device_clock_and_numpy_generator():
    state = global_state()
    expected = np.random.random(3)
    np.random.set_state(state["numpy"])
    brian2.prefs.codegen.target = "cython"
    brian2.prefs.codegen.cpp.extra_compile_args_gcc = ["-O0"]
    brian2.set_device("cpp_standalone", build_on_run=False)
    brian2.defaultclock.dt = 0.25 * brian2.ms
    np.random.seed(12345)

    restore_global_state(state)

    assert brian2.prefs.codegen.target == state["prefs"]["codegen.target"]
    assert brian2.prefs["codegen.cpp.extra_compile_args_gcc"] == \
        state["prefs"]["codegen.cpp.extra_compile_args_gcc"]
    assert brian2.get_device() is state["device"]
    assert brian2.defaultclock.dt == state["dt"]
    np.testing.assert_array_equal(np.random.random(3), expected)

