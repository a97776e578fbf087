"""Coarse levels: blur past the classifier's top level, read on the image halved and quartered.

The classifier's largest level is 6 px, so stronger blur saturates there. Level L (1, 2, ...)
estimates the image shrunk by f = 2**L (block means), where blur of sigma s reads s / f, and
merges that estimate (times f, upsampled) into the map so far with three rules:

- it may only raise the map (a sharp area never reads blurred because of it);
- only where the map so far saturates: the weight ramps from 0 at
  ``2**(L-1) * COARSE_GATE[0]`` px to 1 at ``2**(L-1) * COARSE_GATE[1]`` px;
- only as far as the coarse estimate is confident (weight ``min(confidence / COARSE_CONF, 1)``),
  so textureless areas, which read as strong blur at coarse scales, stay as they were.

A level runs only when at least :data:`COARSE_MIN_AREA` pixels are past its gate's full point
(5 px at level 1: where the fine level truly saturates), and only on the bounding box of those
pixels widened by one coarse patch, within which the gate ramps from its start: a sharp photo,
or one blurred by 4 px, pays nothing. Every implementation chains the same functions (the NumPy ones here are the
reference; cpp/coarse.cpp and fastdefocus.kernels.coarse are their twins):

    for level in 1..levels:
        lo, hi = gate(level)
        region = coarse_region(sigma, hi, factor, margin)       # None: stop
        small = downsample(pad_to(lum[region], multiple of f))  # INTER_AREA, f x f block means
        s, c = <the estimator at the coarse scale>(small)       # no snap, no pre-filter
        up_s = f * resize(s, region padded), up_c = resize(c)   # INTER_LINEAR
        merge(sigma[region], confidence[region], up_s, up_c, lo, hi)
"""
from __future__ import annotations

import numpy as np

from fastdefocus._params import COARSE_CONF, COARSE_GATE, COARSE_MIN_AREA


def sigma_range(model_sigma_max: float, levels: int) -> float:
    """The largest sigma (px) a map with ``levels`` coarse levels reports: the model's top
    (its calibration's), doubled by each level."""
    return float(model_sigma_max) * 2 ** int(levels)


def gate(level: int) -> tuple[float, float]:
    """(start, full) of level ``level``'s saturation gate, in px of the input."""
    scale = float(2 ** (level - 1))
    return scale * COARSE_GATE[0], scale * COARSE_GATE[1]


def coarse_region(sigma: np.ndarray, lo: float, factor: int, margin: int,
                  min_area: int = COARSE_MIN_AREA) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) that a coarse level of shrink ``factor`` works on: the bounding box of
    the pixels with sigma > ``lo`` widened by ``margin`` px and clipped to the image, its start
    aligned down to a multiple of ``factor``; None when fewer than ``min_area`` pixels are
    past ``lo`` (:func:`box_region` of their count and box)."""
    above = sigma > lo
    count = int(np.count_nonzero(above))
    if count == 0:
        return None
    rows = np.flatnonzero(above.any(axis=1))
    cols = np.flatnonzero(above.any(axis=0))
    box = (count, int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
    return box_region(box, sigma.shape, factor, margin, min_area)


def box_region(box, shape, factor: int, margin: int,
               min_area: int = COARSE_MIN_AREA) -> tuple[int, int, int, int] | None:
    """The region rule of :func:`coarse_region` on ``box`` = (count, first row, last row, first
    column, last column) of the pixels past the gate (what the GPU's reduction,
    ``fastdefocus.kernels.coarse.region_box``, returns) in a map of ``shape`` (H, W)."""
    count, row0, row1, col0, col1 = (int(v) for v in box)
    if count < max(min_area, 1):
        return None
    h, w = shape
    y0 = max(0, row0 - margin) // factor * factor
    x0 = max(0, col0 - margin) // factor * factor
    y1 = min(h, row1 + 1 + margin)
    x1 = min(w, col1 + 1 + margin)
    return y0, y1, x0, x1


def padded_size(n: int, factor: int) -> int:
    """n rounded up to a multiple of factor."""
    return -(-n // factor) * factor


def merge(sigma: np.ndarray, confidence: np.ndarray, coarse_sigma: np.ndarray, coarse_conf: np.ndarray,
          lo: float, hi: float, conf_full: float = COARSE_CONF) -> None:
    """Raise ``sigma`` towards ``coarse_sigma`` in place (float32 arithmetic): by the weight
    gate(sigma) x min(coarse_conf / conf_full, 1) where the coarse value is larger; the
    confidence becomes max(confidence, weight x coarse_conf) there."""
    f32 = np.float32
    g = np.clip((sigma - f32(lo)) * f32(1.0 / (hi - lo)), f32(0), f32(1))
    k = np.minimum(coarse_conf * f32(1.0 / conf_full), f32(1))
    wgt = g * k
    raise_ = np.maximum(coarse_sigma - sigma, f32(0))
    up = (wgt > 0) & (raise_ > 0)
    sigma[up] = (sigma + wgt * raise_)[up]
    confidence[up] = np.maximum(confidence, wgt * coarse_conf)[up]


def raise_with_coarse_levels(sigma: np.ndarray, confidence: np.ndarray, lum: np.ndarray, levels: int,
                             patch: int, estimate_level) -> list[int]:
    """Chain the coarse levels 1..``levels`` on the map (``sigma``, ``confidence``, changed in
    place) of the luminance ``lum``; ``estimate_level(small)`` is the estimator at the coarse
    scale, (sigma, confidence) of a float32 luminance. Returns the levels that ran."""
    import cv2

    from fastdefocus.stages.refine import pad_to

    ran = []
    for level in range(1, levels + 1):
        f = 2 ** level
        lo, hi = gate(level)
        region = coarse_region(sigma, hi, f, patch * f)
        if region is None:
            break
        y0, y1, x0, x1 = region
        rh, rw = y1 - y0, x1 - x0
        ph, pw = padded_size(rh, f), padded_size(rw, f)
        crop = pad_to(np.ascontiguousarray(lum[y0:y1, x0:x1]), ph, pw)
        small = cv2.resize(crop, (pw // f, ph // f), interpolation=cv2.INTER_AREA)
        s_small, c_small = estimate_level(small)
        up_s = cv2.resize(np.ascontiguousarray(s_small, np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
        up_c = cv2.resize(np.ascontiguousarray(c_small, np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
        up_s = up_s[:rh, :rw] * np.float32(f)
        sub_s, sub_c = sigma[y0:y1, x0:x1], confidence[y0:y1, x0:x1]
        merge(sub_s, sub_c, up_s, np.clip(up_c[:rh, :rw], 0.0, 1.0), lo, hi)
        ran.append(level)
    return ran
