"""Cython kernels shipped as ``.pyx`` sources, compiled on first use into a lasting cache.

``pip install -e .`` installs no compiled code: a kernel such as
``bioprop/event_kernel.pyx`` is compiled with Cython and the C compiler the first time
a run needs it (Brian2's ``cython`` target needs both too), into
``$BIOPROP_CACHE/kernels`` (default ``~/.cache/bioprop/kernels``). The file's name holds
a hash of the source, the Python and Cython versions and the platform, so a changed
kernel or interpreter compiles afresh and every other run imports the cached one.
Builds go into a private folder and are moved into place in one step, so parallel
runs (a sweep's workers) never load half a file.

When compiling is impossible (no Cython, no compiler), :func:`load_kernel` warns once,
in one line, and returns None: the caller keeps its NumPy path.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .datasets import cache_dir

__all__ = ["load_kernel", "kernel_path", "KernelWarning"]


class KernelWarning(RuntimeWarning):
    """A kernel could not be compiled or loaded: the slower NumPy path runs instead."""


#: the compiled modules loaded in this process, by kernel name (None: not compilable here)
_loaded: dict = {}

#: no contraction of a * b + c into one fused multiply-add, so that a kernel rounds as
#: NumPy does and can be tested against it bit for bit; on x86-64 the vector instructions
#: of this CPU (AVX2 summed Wᵀ's rows up to twice as fast as SSE2), which is why the
#: cache key names the CPU
_COMPILE_ARGS = ["-O3", "-ffp-contract=off"] + (
    ["-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else [])


def kernel_path(name: str) -> Path:
    """Where the compiled kernel `name` (``bioprop/<name>.pyx``) is cached."""
    import Cython

    source = Path(__file__).with_name(f"{name}.pyx").read_bytes()
    key = hashlib.sha256(b"\0".join([
        source, " ".join(_COMPILE_ARGS).encode(), sys.version.encode(), Cython.__version__.encode(),
        platform.machine().encode(), platform.system().encode(), _cpu()])).hexdigest()[:16]
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return cache_dir() / "kernels" / f"{name}_{key}{suffix}"


def _cpu() -> bytes:
    """The CPU's model and instruction-set flags, as far as this system tells them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor().encode()
    return "\n".join(sorted({l for l in lines if l.startswith(("model name", "flags"))})).encode()


def load_kernel(name: str):
    """The compiled module of ``bioprop/<name>.pyx``, compiled first if it is not cached;
    None, after one warning, if it cannot be compiled or loaded."""
    if name not in _loaded:
        try:
            path = kernel_path(name)
            if not path.exists():
                _compile(name, path)
            _loaded[name] = _import(path)
        except Exception as error:  # any failure to build or load means: use the NumPy path
            reason = str(error).strip().splitlines()[-1:] or [type(error).__name__]
            warnings.warn(f"bioprop/{name}.pyx could not be compiled ({reason[0]}); "
                          "using the NumPy path instead", KernelWarning, stacklevel=2)
            _loaded[name] = None
    return _loaded[name]


def _import(path: Path):
    module_name = path.name.split(".")[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, path: Path):
    """Cythonize and build ``<name>.pyx`` as the module named by `path`, then move it there."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    module_name = path.name.split(".")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{module_name}.") as build:
        source = Path(build) / f"{module_name}.pyx"  # the module's init function takes this name
        shutil.copyfile(Path(__file__).with_name(f"{name}.pyx"), source)
        log = Path(build) / "build.log"
        with _output_to(log):
            extension = Extension(module_name, [str(source)], extra_compile_args=_COMPILE_ARGS)
            dist = Distribution({"ext_modules": cythonize([extension], quiet=True)})
            command = dist.get_command_obj("build_ext")
            command.build_lib, command.build_temp = build, str(Path(build) / "tmp")
            command.ensure_finalized()
            try:
                command.run()
            except BaseException as error:  # the compiler's last line says more than setuptools
                lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
                raise RuntimeError(lines[-1] if lines else str(error)) from error
        os.replace(command.get_ext_fullpath(module_name), path)  # atomic: no half-written file


@contextlib.contextmanager
def _output_to(log: Path):
    """Send this process's stdout and stderr (the compiler's too) into `log` meanwhile."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "w") as sink:
        os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
