"""Multi-focus fusion of two or more shots of one scene."""
from __future__ import annotations

import math

import cv2
import numpy as np

from fastdefocus._validate import check_channel_order, check_image, check_float, check_int, to_rgb_order
from fastdefocus.apps._common import _in_order, _scale_of, _split, _merge, _sigma_for
from fastdefocus.stages.filters import guided_filter
from fastdefocus.stages.ingest import to_luminance


#: Box radii (px) of the local Laplacian energies of the region decision (5 and 15 px windows).
_FOCUS_RADII = (2, 7)
#: Energy floor (luminance^2 units per pixel) inside the logarithm of the energy ratio.
_ENERGY_FLOOR = 1e-5
#: Patch stride of the default estimator of :func:`fuse` (and of ``fastdefocus fuse``).
FUSE_STRIDE = 16


def _laplacian_energy(lum: np.ndarray, radius: int) -> np.ndarray:
    lap = cv2.Laplacian(lum, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    energy = lap * lap
    return cv2.blur(energy, (2 * radius + 1,) * 2, borderType=cv2.BORDER_REFLECT_101) if radius else energy


def _remove_small_regions(labels: np.ndarray, scores: np.ndarray, min_area: int) -> np.ndarray:
    """Give each connected region (4-connected) of one winner that is smaller than ``min_area``
    pixels to the other shot with the highest summed score over it."""
    labels = labels.copy()
    for n in range(scores.shape[0]):
        count, regions, stats, _ = cv2.connectedComponentsWithStats((labels == n).astype(np.uint8),
                                                                    connectivity=4)
        small = stats[:, cv2.CC_STAT_AREA] < min_area
        small[0] = False  # background of the component labelling
        if not small.any():
            continue
        inside = small[regions]
        ids = regions[inside]
        sums = np.stack([np.bincount(ids, weights=s[inside], minlength=count) for s in scores])
        sums[n] = -np.inf
        labels[inside] = sums.argmax(axis=0)[ids]
    return labels


def fuse(images, estimator=None, *, sigma_maps=None, sigma_weight: float = 0.5, band: int = 8,
         radius: int = 8, eps: float = 1e-3, min_region: float = 0.01, channel_order: str = "rgb"):
    """Multi-focus fusion: one all-in-focus image from shots of one scene focused differently.

    1. Region decision: per pixel, each shot scores ``sum_r log(E_r + 1e-5) - sigma_weight
       * sigma``, where E_r is the local energy of the Laplacian of its luminance in windows
       of 5 and 15 px and sigma its defocus map (lower sigma wins). The best score wins; a
       winning region smaller than ``min_region`` of the image goes to the runner-up, so
       textureless areas follow their surroundings.
    2. Boundary refinement: the patch-based sigma maps and the 15-px windows both blur the
       decision where focus changes, so within ``band`` px of a change of winner the decision
       is taken again per pixel from the Laplacian energy alone (tiny islands removed).
    3. Seams: each shot's binary decision is smoothed by the guided filter with that shot's
       luminance as guide (``radius``, ``eps``), so transitions follow the image's edges, and
       the weights are normalised to sum to 1.

    Parameters
    ----------
    images : sequence of arrays, at least 2
        Same height, width and channels; uint8, uint16 or float in [0, 1]; gray, RGB or RGBA.
    estimator : DefocusEstimator, optional
        Computes the sigma maps unless ``sigma_maps`` is given. Default: the shipped model at
        stride 16 (the maps only steer region decisions, so the coarse grid suffices: on the
        Lytro pairs it scored the same as stride 8 with a quarter of the patches).
    sigma_maps : sequence of arrays (H, W) or DefocusResults, optional
        Precomputed defocus maps in px, one per image.
    sigma_weight : float, default 0.5
        Score per px of sigma, >= 0 (0 decides by the energies alone). The score sums the
        natural logs of the two energies, so 0.5 makes 1 px of sigma worth a factor
        exp(0.25) = 1.28 in both energies.
    band : int, default 8
        Half-width in px of the strip around decision boundaries that is decided per pixel;
        0 turns the refinement off.
    radius : int, default 8
        Guided filter radius in px of the seams.
    eps : float, default 1e-3
        Guided filter regularisation (luminance^2 units): smaller keeps seams on weaker edges.
    min_region : float, default 0.01
        Smallest area of a region decision, as a fraction of the image.
    channel_order : {"rgb", "bgr"}, default "rgb"
        The order of the images' colour channels ("bgr": OpenCV's); the fused image comes
        back in the same order.

    Returns
    -------
    fused : numpy.ndarray
        The fused image, shape and dtype of ``images[0]``.
    decision : numpy.ndarray, float32, shape (N, H, W)
        Weight of each shot per pixel, in [0, 1], summing to 1; ``decision.argmax(0)`` is the
        index of the shot that was chosen.

    Raises
    ------
    ValueError
        With fewer than 2 images, or images (or sigma maps) of different sizes.
    TypeError
        For an image of an unsupported type.

    Examples
    --------
    >>> fused, decision = fuse([near_focus, far_focus])  # doctest: +SKIP
    """
    if isinstance(images, np.ndarray) or not hasattr(images, "__len__"):
        raise TypeError("images must be a list or tuple of at least 2 images, got "
                        f"{type(images).__name__}")
    if len(images) < 2:
        raise ValueError(f"fuse needs at least 2 images of the same scene, got {len(images)}")
    order = check_channel_order(channel_order)
    arrays = [to_rgb_order(check_image(im, f"images[{i}]"), order) for i, im in enumerate(images)]
    first = arrays[0]
    for i, arr in enumerate(arrays[1:], start=1):
        if arr.shape != first.shape:
            raise ValueError(f"all images must have the same size and channels: images[0] has shape "
                             f"{first.shape}, images[{i}] has shape {arr.shape}")
    sigma_weight = check_float("sigma_weight", sigma_weight, 0.0)
    band = check_int("band", band, 0)
    radius = check_int("radius", radius, 0)
    eps = check_float("eps", eps, 0.0, inclusive=False)
    min_region = check_float("min_region", min_region, 0.0)
    if sigma_maps is not None and len(sigma_maps) != len(arrays):
        raise ValueError(f"sigma_maps must hold one map per image ({len(arrays)}), got {len(sigma_maps)}")
    if sigma_weight > 0:
        sigmas = [_sigma_for("fuse", arr, None if sigma_maps is None else sigma_maps[i], estimator, first.shape[:2],
                             stride=FUSE_STRIDE) for i, arr in enumerate(arrays)]
    else:
        sigmas = [np.zeros(first.shape[:2], np.float32)] * len(arrays)

    lums = [to_luminance(arr) for arr in arrays]
    scores = np.stack([sum(np.log(_laplacian_energy(lum, r) + _ENERGY_FLOOR) for r in _FOCUS_RADII)
                       - np.float32(sigma_weight) * sigma for lum, sigma in zip(lums, sigmas)])
    height, width = first.shape[:2]
    labels = scores.argmax(axis=0)
    if min_region > 0:
        labels = _remove_small_regions(labels, scores, int(min_region * height * width))
    if band > 0:
        labels = _refine_boundaries(labels, lums, band, max(1, int(5e-4 * height * width)))
    weights = np.stack([np.clip(guided_filter(lum, (labels == n).astype(np.float32), radius, eps), 0.0, 1.0)
                        for n, lum in enumerate(lums)])
    total = weights.sum(axis=0)
    # Where every weight was clipped to 0 (rare), fall back to the hard decision.
    hard = np.stack([(labels == n) for n in range(len(arrays))]).astype(np.float32)
    weights = np.where(total > 1e-6, weights / np.maximum(total, 1e-6), hard)

    fused, alpha = 0.0, None
    for w, arr in zip(weights, arrays):
        colour, shot_alpha = _split(arr)
        fused = fused + colour * w[..., None]
        if shot_alpha is not None:  # alphas mix like colour
            alpha = (0.0 if alpha is None else alpha) + w * (shot_alpha.astype(np.float32) / _scale_of(arr.dtype))
    if alpha is not None:
        alpha = _merge(alpha[..., None], None, first[..., -1:])[..., 0]
    return _in_order(_merge(fused, alpha, first), order), weights.astype(np.float32)


def _refine_boundaries(labels: np.ndarray, lums, band: int, min_area: int) -> np.ndarray:
    """Decide again per pixel, by the Laplacian energy, within ``band`` px of a change of winner."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    near = np.zeros(labels.shape, bool)
    for n in range(len(lums)):
        mask = (labels == n).astype(np.uint8)
        near |= cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    if not near.any():
        return labels
    fine = np.stack([np.log(_laplacian_energy(lum, 0) + _ENERGY_FLOOR) for lum in lums])
    refined = np.where(near, fine.argmax(axis=0), labels)
    return _remove_small_regions(refined, fine, min_area)
