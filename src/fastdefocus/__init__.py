"""fastdefocus: per-pixel defocus maps (Gaussian blur sigma, in pixels) from one image.

Implements and extends Galetto and Deng, "Single image defocus map estimation
through patch blurriness classification and its applications" (arXiv 2107.14443):
a MobileNetV2 classifies 32x32 patches into blur levels, and an iterative
confidence-weighted guided filter refines the patch map into a dense map.

>>> import fastdefocus
>>> result = fastdefocus.estimate(image)          # doctest: +SKIP
>>> result.sigma.shape == image.shape[:2]         # doctest: +SKIP
True
"""
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("fastdefocus")  # one place: pyproject.toml's [project] version
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Public names and the modules that define them, imported on first use: ``import fastdefocus``
#: loads nothing heavy, and ``estimate`` loads only the product's layers (no cli, eval, train,
#: torch or numba).
_EXPORTS = {
    "DefocusEstimator": "fastdefocus.estimator", "estimate": "fastdefocus.estimator",
    "DefocusResult": "fastdefocus.result", "EstimatorConfig": "fastdefocus.config",
    "magnify": "fastdefocus.apps", "enhance": "fastdefocus.apps", "fuse": "fastdefocus.apps",
    "box_filter": "fastdefocus.stages.filters", "guided_filter": "fastdefocus.stages.filters",
    "guided_coefficients": "fastdefocus.stages.filters",
    "iterative_guided_filter": "fastdefocus.stages.filters", "extract_patches": "fastdefocus.stages.filters",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastdefocus' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)


# ---- which build of the native module: fastdefocus._native is the baseline x86-64 build, or,
# where the CPU has AVX2 and FMA, its x86-64-v3 build (file _native_x86_64_v3*, the same module
# compiled with -march=x86-64-v3, built on Linux only, where /proc/cpuinfo tells the CPU's
# features; the same maps, the native stages about a fifth faster; not a module of its own name:
# its init function is _native's). Chosen when fastdefocus._native is first imported;
# FASTDEFOCUS_NATIVE=baseline or x86-64-v3 forces one (auto, the default: the best this CPU
# runs). `fastdefocus._native.arch` says which is loaded.

_NATIVE_ENV = "FASTDEFOCUS_NATIVE"
_NATIVE_CHOICES = ("auto", "baseline", "x86-64-v3")
#: /proc/cpuinfo flags of the x86-64-v3 level (AVX, AVX2, BMI1/2, F16C, FMA, LZCNT as abm, MOVBE,
#: XSAVE) that -march=x86-64-v3 lets the compiler use.
_X86_64_V3_FLAGS = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})


def _cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _native_choice() -> str:
    import os

    choice = os.environ.get(_NATIVE_ENV, "auto").strip().lower() or "auto"
    if choice not in _NATIVE_CHOICES:
        raise ImportError(f"{_NATIVE_ENV}={choice!r} is not a build of fastdefocus._native: expected one of "
                          f"{', '.join(_NATIVE_CHOICES)}")
    return choice


class _NativeFinder:
    """Meta path finder of ``fastdefocus._native``: the x86-64-v3 build where it is installed and
    the CPU runs it (or ``FASTDEFOCUS_NATIVE`` says so), else None (the normal import: the
    baseline build)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != __name__ + "._native":
            return None
        choice = _native_choice()
        if choice == "baseline":
            return None
        import importlib.util

        v3 = importlib.util.find_spec(__name__ + "._native_x86_64_v3")
        if v3 is None or v3.origin is None:
            if choice == "x86-64-v3":
                raise ImportError(f"{_NATIVE_ENV}=x86-64-v3, but this install has no x86-64-v3 build of "
                                  "fastdefocus._native (built without FASTDEFOCUS_DISPATCH, or not on x86-64)")
            return None
        flags = _cpu_flags()
        missing = _X86_64_V3_FLAGS - flags
        if missing:
            if choice == "x86-64-v3":
                why = (f"this CPU lacks {', '.join(sorted(missing))}" if flags else
                       "this CPU's features cannot be read (/proc/cpuinfo)")
                raise ImportError(f"{_NATIVE_ENV}=x86-64-v3, but {why}: use auto or baseline")
            return None
        # the same module compiled for x86-64-v3: its init function is PyInit__native
        return importlib.util.spec_from_file_location(name, v3.origin)


def _install_native_finder():
    import sys

    if not any(f is _NativeFinder for f in sys.meta_path):
        sys.meta_path.insert(0, _NativeFinder)


_install_native_finder()
