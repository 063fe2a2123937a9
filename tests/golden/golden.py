"""Fingerprints of whole runs, to show that a change of structure left every result as it was.

Each case is a short run of ``bioprop run`` (a rule in an engine, a spiking network, a
network whose synapses learn). Its fingerprint is the SHA-256 of every array in the run
file (metrics, weight snapshots, recorded activity and spikes) except the wall times,
and of the resolved model and protocol text; with it go a few summary numbers per array,
which :func:`compare` uses when the environment differs from the one that wrote them.

Write the fingerprints (only on purpose: after a change that is *meant* to alter results)::

    python tests/golden/golden.py write            # the cases the test suite checks
    python tests/golden/golden.py write --full     # also the full 30-epoch default run

and check the current code against them::

    python tests/golden/golden.py check [--full]

``tests/test_golden.py`` runs the check on the quick cases.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).parent
FINGERPRINTS = HERE / "fingerprints.json"

#: what every quick case shares: few samples, 2 epochs, weights and activity recorded
QUICK = ["training.epochs=2", "data.n_train=192", "data.n_test=64", "record.weights_every=1",
         "record.activity_every=1", "record.activity_dt_factor=5", "record.probe_size=32"]
RULES = ("tp", "dtp", "iterative", "bp", "fa", "dfa", "gn")
ENGINES = ("reference", "brian2")


def cases(full: bool = False) -> dict:
    """Case name → (model file or None, protocol file or None, overrides)."""
    out = {}
    for engine in ENGINES:
        for rule in RULES:
            out[f"{rule}-{engine}"] = (f"{rule}.toml", None, QUICK + [f"engine.name={engine}"])
    # the digits LIF model at its first forward learning rate, in the first spiking protocol
    out["lif-brian2"] = ("lif.toml", "spiking_fine.toml",
                         ["optimizer.forward.lr=0.001", "training.epochs=2", "data.n_train=64", "data.n_test=32",
                          "record.weights_every=1", "record.activity_every=1",
                          "record.activity_dt_factor=20", "record.probe_size=32",
                          "phases.forward=40 ms", "phases.feedback=30 ms", "phases.target=40 ms"])
    out["synaptic-brian2"] = (None, None, QUICK + [
        "layers.hidden1.connection=synapses", "layers.hidden1.plasticity=synaptic",
        "optimizer.forward.name=sgd", "optimizer.forward.lr=0.05"])
    for engine in ENGINES:
        out[f"variants-{engine}"] = (None, None, QUICK + [
            f"engine.name={engine}", "rule.feedback=drl", "rule.layer_norm=true",
            "rule.side_information=activity", "rule.feedback_iterations=2"])
        out[f"parallel-{engine}"] = (None, None, QUICK + [
            f"engine.name={engine}", "rule.feedback=ldrl", "rule.schedule=parallel",
            "rule.feedback_pretrain_epochs=1", "layers.hidden2.population=sign"])
    out["stochastic-brian2"] = ("lif.toml", "spiking_fine.toml", [
        "optimizer.forward.lr=0.001", "training.epochs=1", "data.n_train=64", "data.n_test=32", "record.weights_every=1",
        "record.activity_every=1", "record.activity_dt_factor=20", "record.probe_size=32",
        "phases.forward=30 ms", "phases.feedback=20 ms", "phases.target=30 ms",
        "network.input_encoding=poisson", "layers.hidden1.connection=synapses",
        "layers.hidden1.delay=1 ms",
        "rule.spiking_target=apical"])
    if full:
        out["default-full"] = (None, None, ["record.weights_every=1"])
    return out


def _resolve(name, package):
    if name is None:
        return None
    from importlib.resources import files
    return str(files(package) / name)


def _skipped(path: str) -> bool:
    # wall times differ from run to run; nothing else may
    return path.split("/")[-1] in ("wall_time", "samples_per_second")


def fingerprint(path) -> dict:
    """Hash and summary numbers of every array of a run file, and of its resolved specs."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or _skipped(name):
                return
            value = obj[()]
            if value.dtype.kind == "O":
                value = np.array([v.decode() if isinstance(v, bytes) else str(v)
                                  for v in np.ravel(value)])
                raw = "\x00".join(value).encode()
                summary = None
            else:
                value = np.ascontiguousarray(value)
                raw = value.tobytes() + str(value.shape).encode()
                finite = value[np.isfinite(value)] if value.dtype.kind == "f" else value
                summary = [float(np.sum(finite, dtype=np.float64)),
                           float(np.sqrt(np.sum(np.square(finite, dtype=np.float64)))),
                           int(value.size)]
            out[name] = {"sha256": hashlib.sha256(raw).hexdigest(), "summary": summary}
        f.visititems(visit)
        for attr in ("model_toml", "protocol_toml"):
            text = f.attrs[attr]
            text = text.decode() if isinstance(text, bytes) else str(text)
            out[f"@{attr}"] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "summary": None}
    return out


def environment() -> dict:
    """What decides whether the same code gives the same bits."""
    import platform

    import brian2
    import scipy
    from threadpoolctl import threadpool_info

    # OpenBLAS picks its kernels for the CPU it runs on, and kernels round differently
    blas = sorted({f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
                   for i in threadpool_info() if i["user_api"] == "blas"})
    return {"numpy": np.__version__, "scipy": scipy.__version__, "brian2": brian2.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "blas": ", ".join(blas)}


def run_case(name: str, spec, workdir) -> dict:
    """Run one case into `workdir` and return its fingerprint."""
    import bioprop

    model, protocol, overrides = spec
    path = Path(workdir) / f"{name}.h5"
    bioprop.run(_resolve(model, "bioprop.models"), _resolve(protocol, "bioprop.protocols"),
                output=path, force=True, overrides=overrides, progress=False)
    return fingerprint(path)


def _atol(key: str) -> float:
    """The absolute tolerance of a summary number. An angle between two vectors that agree to
    rounding (BP against itself, GN with exact inverses) is arccos of 1 - O(eps): about 1e-6
    degrees of pure noise, whatever the kernel, so angles get 1e-5 degrees."""
    return 1e-5 if "angle" in key.rsplit("/", 1)[-1] else 1e-9


def compare(expected: dict, actual: dict, same_environment: bool) -> list[str]:
    """The differences between two fingerprints, as readable lines (empty: they agree).

    In the environment that wrote `expected` every array must be bit-identical. In another
    (other numpy or BLAS) rounding may differ, so only the summary numbers are compared,
    to a relative 1e-6.
    """
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            problems.append(f"{key}: missing from the run file")
        elif key not in expected:
            problems.append(f"{key}: new in the run file")
        elif expected[key]["sha256"] != actual[key]["sha256"]:
            want, got = expected[key]["summary"], actual[key]["summary"]
            if same_environment or want is None or want[2] != got[2]:
                problems.append(f"{key}: differs (sum {want and want[0]!r} → {got and got[0]!r})")
            elif not np.allclose(got[:2], want[:2], rtol=1e-6, atol=_atol(key)):
                problems.append(f"{key}: differs beyond rounding (sum {want[0]!r} → {got[0]!r}, "
                                f"norm {want[1]!r} → {got[1]!r})")
    return problems


def load() -> dict:
    return json.loads(FINGERPRINTS.read_text())


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "check"))
    parser.add_argument("--full", action="store_true", help="include the full default run")
    parser.add_argument("--only", nargs="*", help="only these cases")
    args = parser.parse_args(argv)
    todo = cases(args.full)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only}
    stored = load() if FINGERPRINTS.exists() else {"environment": environment(), "cases": {}}
    # a case rewritten on its own keeps the environment it was written in (BLAS kernels differ
    # in the last bits from one CPU to the next), the others the file's
    written_in = stored.setdefault("case_environments", {})
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in todo.items():
            got = run_case(name, spec, tmp)
            if args.action == "write":
                stored["cases"][name] = got
                if args.only:
                    written_in[name] = environment()
                else:
                    written_in.pop(name, None)
                print(f"{name}: written ({len(got)} arrays)")
                continue
            same = written_in.get(name, stored["environment"]) == environment()
            problems = compare(stored["cases"][name], got, same)
            failed += bool(problems)
            print(f"{name}: " + ("identical" if not problems else "DIFFERS"))
            for line in problems:
                print("   ", line)
    if args.action == "write":
        if not args.only:
            stored["environment"] = environment()
        FINGERPRINTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
