"""The methods fastdefocus is measured against, run in the same benchmark run.

- :func:`official_structure`: the structure of Galetto and Deng's published code, built
  from this package's parts: every patch classified on its own, the argmax class's sigma
  (no expected value, no calibration, no confidence weighting), patch values averaged
  over their overlap, one plain guided filter at full resolution, and the map rescaled
  to [0, 1] per image. Its sigma map before that rescaling is returned too, so that its
  errors can be stated in px.
- :func:`hifst_score`: HiFST (Golestaneh and Karam, "Spatially-varying blur detection
  based on multiscale fused and sorted transform coefficients of gradient magnitudes",
  CVPR 2017) through the PyPI package ``blur-detector`` (benchmark-only; see
  :data:`HIFST_INSTALL`).
"""
from __future__ import annotations

import time
import warnings

import cv2
import numpy as np

from fastdefocus.stages.filters import extract_patches, guided_filter
from fastdefocus.stages.ingest import to_luminance

__all__ = ["official_structure", "hifst_score", "hifst_available", "HIFST_INSTALL"]

#: How to install the HiFST peer. blur-detector declares opencv-python as a dependency,
#: which would clobber the opencv-python-headless (or opencv-contrib) build that provides
#: ``cv2`` here, so it goes in without dependencies; the one it really needs beyond
#: NumPy and OpenCV is scikit-image (its entropy filter).
HIFST_INSTALL = "pip install scikit-image && pip install --no-deps blur-detector"


def _overlap_average(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the patch values covering each stride cell: (ny, nx) -> (ny + k - 1, nx + k - 1)."""
    ny, nx = values.shape
    total = np.zeros((ny + k - 1, nx + k - 1), np.float64)
    count = np.zeros_like(total)
    for a in range(k):
        for b in range(k):
            total[a:a + ny, b:b + nx] += values
            count[a:a + ny, b:b + nx] += 1.0
    return (total / count).astype(np.float32)


_TORCH_MODELS: dict = {}


def patch_labels_one_at_a_time(patches: np.ndarray, estimator) -> np.ndarray:
    """Argmax class of each normalised patch (N, P, P), one network call per patch, in
    eager torch when it is installed (as the official code ran its network), else through
    the estimator's own runtime with batches of one."""
    try:
        import torch

        from fastdefocus.backends.cpu import load_torch_model
    except ImportError:
        run = estimator.classifier._run
        return np.array([int(run(p[None, None]).argmax()) for p in patches], np.int64)
    key = str(estimator.info.safetensors_path)
    model = _TORCH_MODELS.get(key)
    if model is None:
        model = _TORCH_MODELS[key] = load_torch_model(estimator.info)
    labels = np.empty(len(patches), np.int64)
    with torch.inference_mode():
        for i in range(len(patches)):
            labels[i] = int(model(torch.from_numpy(patches[i][None, None])).argmax())
    return labels


def official_structure(image, estimator, one_at_a_time: bool = False, timings: dict | None = None):
    """Defocus map of ``image`` by the official method's structure.

    Parameters
    ----------
    image : array
        Anything :func:`fastdefocus.stages.ingest.to_luminance` accepts.
    estimator : DefocusEstimator
        Supplies the model, stride, guided-filter radius and eps.
    one_at_a_time : bool
        Classify every patch with its own network call (the official loop; slow). False
        classifies in the estimator's batches: the labels are the same, only the time differs.
    timings : dict, optional
        Filled with the seconds of each stage ("patches", "classify", "refine", "total").
        The first one-at-a-time call also loads the torch model (call once to warm up).

    Returns
    -------
    sigma : float32 (H, W)
        The map in px before the final rescaling.
    normalised : float32 (H, W)
        ``sigma`` rescaled to [0, 1] (min to 0, max to 1; all 0 for a constant map), the
        official output.
    """
    t0 = time.perf_counter()
    lum = to_luminance(image)
    h, w = lum.shape
    p, s = estimator.patch_size, estimator.stride
    patches, grid = extract_patches(lum, size=p, stride=s, normalize=True, std_floor=estimator.info.std_floor)
    t1 = time.perf_counter()
    if one_at_a_time:
        labels = patch_labels_one_at_a_time(patches, estimator)
    else:
        labels = estimator.classifier.probabilities(patches).argmax(axis=1)
    t2 = time.perf_counter()
    cells = _overlap_average(estimator.info.levels[labels].reshape(grid), p // s)
    # cells cover the padded image (>= H x W) in stride-sized blocks
    dense = cv2.resize(cells, (cells.shape[1] * s, cells.shape[0] * s), interpolation=cv2.INTER_LINEAR)
    dense = np.ascontiguousarray(dense[:h, :w])
    radius = int(round(estimator.radius))
    sigma = np.maximum(guided_filter(lum, dense, radius, estimator.eps), 0.0).astype(np.float32)
    lo, hi = float(sigma.min()), float(sigma.max())
    normalised = (sigma - lo) / (hi - lo) if hi > lo else np.zeros_like(sigma)
    t3 = time.perf_counter()
    if timings is not None:
        timings.update(patches=t1 - t0, classify=t2 - t1, refine=t3 - t2, total=t3 - t0)
    return sigma, normalised.astype(np.float32)


def hifst_available() -> bool:
    try:
        _import_hifst()
    except ImportError:
        return False
    return True


def _import_hifst():
    try:
        import blur_detector
        import skimage  # noqa: F401  (blur_detector imports it lazily inside)
    except ImportError as e:
        raise ImportError(f"the HiFST peer needs the PyPI package blur-detector and scikit-image "
                          f"({e}); install them with: {HIFST_INSTALL}") from e
    return blur_detector


def hifst_score(image, downsampling_factor: int = 4) -> np.ndarray:
    """HiFST in-focus score of ``image``: float32 (H, W) in [0, 1], 1 = sharpest (the
    package divides its map by its maximum). Package defaults otherwise (4 scales of 7 to
    63 px, the map computed every ``downsampling_factor`` px and resized)."""
    blur_detector = _import_hifst()
    lum = to_luminance(image)
    gray = np.clip(lum * 255.0 + 0.5, 0, 255).astype(np.uint8)
    with warnings.catch_warnings():  # its float -> uint8 entropy-filter conversion warns every call
        warnings.simplefilter("ignore")
        score = blur_detector.detectBlur(gray, downsampling_factor=downsampling_factor, show_progress=False)
    return np.clip(np.nan_to_num(score.astype(np.float32)), 0.0, 1.0)
