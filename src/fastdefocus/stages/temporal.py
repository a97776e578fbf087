"""Temporal filter of a stream's maps (``DefocusEstimator.stream(..., stable=True)``).

Per pixel, a running weighted mean of the frames' estimates:

    d      = |blur(lum_t) - blur(lum_(t-1))|          change of the image, blur TEMPORAL_LUMA_BLUR px
    keep   = exp(-(d / TEMPORAL_MOTION_TAU)^2)        1 where nothing moved, 0 where it did
    w_prev = W_(t-1) * keep                           the running mean's weight, kept where static
    w_new  = TEMPORAL_MIN_WEIGHT + confidence_t       the new estimate's weight
    S_t    = (w_prev S_(t-1) + w_new sigma_t) / (w_prev + w_new)      (confidence likewise)
    W_t    = min(w_prev + w_new, TEMPORAL_MAX_WEIGHT)

so a static scene's map averages over about TEMPORAL_MAX_WEIGHT frames (its flicker falls), a
confident new estimate counts more than a doubtful one, moving content and edges that moved
follow the new frame at once (edge-aware: the change is measured per pixel on the image), and
a cut (more than TEMPORAL_CUT_SHARE of the pixels changed) starts over from the new frame.
It replaces the uniform EMA ``smoothing``, which lags everywhere, also behind cuts.

This NumPy class is the reference; the CPU stream runs its C++ twin (cpp/temporal.cpp,
``fastdefocus._native.TemporalFilter``) and the CUDA stream ``fastdefocus.kernels.temporal``.
"""
from __future__ import annotations

import numpy as np

from fastdefocus._params import (TEMPORAL_CUT_SHARE, TEMPORAL_LUMA_BLUR, TEMPORAL_MAX_WEIGHT,
                                 TEMPORAL_MIN_WEIGHT, TEMPORAL_MOTION_TAU)
from fastdefocus.blur import gaussian_blur


class TemporalFilter:
    """The running state of one stream (float32 maps). ``update`` returns the filtered
    (sigma, confidence) and whether the frame was taken as a cut (the first frame is one)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sigma = self.confidence = self.weight = self.reference = None
        self.frames = 0

    def update(self, lum: np.ndarray, sigma: np.ndarray, confidence: np.ndarray):
        f32 = np.float32
        lum = np.asarray(lum, f32)
        sigma = np.asarray(sigma, f32)
        confidence = np.asarray(confidence, f32)
        if not (lum.shape == sigma.shape == confidence.shape) or lum.ndim != 2:
            raise ValueError(f"luminance, sigma and confidence must be 2-D of one shape, got {lum.shape}, "
                             f"{sigma.shape} and {confidence.shape}")
        smooth = gaussian_blur(lum, TEMPORAL_LUMA_BLUR)
        w_new = confidence + f32(TEMPORAL_MIN_WEIGHT)
        cut = self.reference is None or self.reference.shape != lum.shape
        if not cut:
            d = np.abs(smooth - self.reference)
            cut = np.count_nonzero(d > f32(TEMPORAL_MOTION_TAU)) > TEMPORAL_CUT_SHARE * d.size
        if cut:
            self.sigma, self.confidence = sigma.copy(), confidence.copy()
            self.weight = np.minimum(w_new, f32(TEMPORAL_MAX_WEIGHT))
        else:
            z = d * f32(1.0 / TEMPORAL_MOTION_TAU)
            w_prev = self.weight * np.exp(-(z * z))
            total = w_prev + w_new
            self.sigma = (w_prev * self.sigma + w_new * sigma) / total
            self.confidence = (w_prev * self.confidence + w_new * confidence) / total
            self.weight = np.minimum(total, f32(TEMPORAL_MAX_WEIGHT))
        self.reference = smooth
        self.frames += 1
        return self.sigma.copy(), self.confidence.copy(), bool(cut)
