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
from .applications import enhance, fuse, magnify
from .estimator import DefocusEstimator, DefocusResult, estimate
from .filters import box_filter, extract_patches, guided_coefficients, guided_filter, iterative_guided_filter

__version__ = "0.1.0"

__all__ = [
    "DefocusEstimator", "DefocusResult", "estimate",
    "magnify", "enhance", "fuse",
    "box_filter", "guided_filter", "guided_coefficients", "iterative_guided_filter", "extract_patches",
]
