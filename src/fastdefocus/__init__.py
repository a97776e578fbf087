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
