"""Whole runs are bit-identical to their recorded fingerprints (tests/golden/golden.py).

A change of structure must not change a result. Every case is a short run (each rule in
both engines, spiking, stochastic and synaptic-plasticity networks, the objective and
schedule variants); the run file's arrays must hash as they did when the fingerprints were
written. In another environment (other numpy, BLAS or platform) the bits may differ by
rounding, and then the arrays' sums and norms must agree to 1e-6.
"""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("golden", Path(__file__).parent / "golden" / "golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

STORED = golden.load()


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(golden.cases(full=False)))
def test_run_matches_its_fingerprint(case, tmp_path):
    got = golden.run_case(case, golden.cases()[case], tmp_path)
    written_in = STORED.get("case_environments", {}).get(case, STORED["environment"])
    same = written_in == golden.environment()
    problems = golden.compare(STORED["cases"][case], got, same)
    assert not problems, f"{case} changed:\n" + "\n".join(problems)


def test_compare_sees_a_changed_bit():
    case = STORED["cases"]["dtp-reference"]
    changed = {k: dict(v) for k, v in case.items()}
    key = "train/loss"
    changed[key]["sha256"] = "0" * 64
    assert golden.compare(case, changed, same_environment=True) == [
        f"{key}: differs (sum {case[key]['summary'][0]!r} → {case[key]['summary'][0]!r})"]
    # in another environment, the same sums are rounding, not a change
    assert golden.compare(case, changed, same_environment=False) == []
    changed[key]["summary"] = [case[key]["summary"][0] * 1.01] + case[key]["summary"][1:]
    assert "beyond rounding" in golden.compare(case, changed, same_environment=False)[0]
    del changed[key]
    assert golden.compare(case, changed, same_environment=True) == [
        f"{key}: missing from the run file"]
