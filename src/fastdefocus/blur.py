"""Blur kernels and blur levels: the physics the classifier is trained on.

The Gaussian here is the *discrete* Gaussian of Lindeberg (the sampled solution
of the heat equation on the integer grid): its variance is exactly ``sigma**2``
for every sigma, small ones included, and blurring by s1 then s2 equals
blurring by sqrt(s1**2 + s2**2) exactly. A sampled continuous Gaussian misses
both below about 0.8 px (at sigma 0.35 its real standard deviation is 0.18),
which is exactly where in-focus decisions are made.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

#: Default levels: 0 (sharp), then 19 levels spaced geometrically from 0.35 to 6 px.
#: Only training uses this; everything else reads the levels stored with the weights.
DEFAULT_LEVELS = np.concatenate([[0.0], np.geomspace(0.35, 6.0, 19)]).astype(np.float64)


def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """Discrete Gaussian kernel with variance exactly ``sigma**2`` (float64, odd length)."""
    if sigma <= 0:
        return np.ones(1)
    radius = max(1, int(math.ceil(4.0 * sigma + 1.0)))
    n = 1 << int(math.ceil(math.log2(8 * radius + 16)))
    omega = 2.0 * np.pi * np.arange(n) / n
    # Fourier transform of the discrete Gaussian is exp(t (cos w - 1)), t = sigma^2.
    kernel = np.fft.ifft(np.exp(sigma * sigma * (np.cos(omega) - 1.0))).real
    kernel = np.concatenate([kernel[-radius:], kernel[: radius + 1]])
    return kernel / kernel.sum()


def disc_kernel(radius: float, supersample: int = 16) -> np.ndarray:
    """Uniform disc (pillbox) of the given radius, anti-aliased by supersampling.

    A disc of radius R has standard deviation R / 2 along each axis, so it stands
    for a Gaussian of sigma R / 2.
    """
    if radius <= 0:
        return np.ones((1, 1))
    half = int(math.ceil(radius))
    n = 2 * half + 1
    offsets = (np.arange(n * supersample) + 0.5) / supersample - (half + 0.5)
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float64)
    kernel = inside.reshape(n, supersample, n, supersample).sum(axis=(1, 3))
    if kernel.sum() == 0:  # radius below the supersampling step
        return np.ones((1, 1))
    return kernel / kernel.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blur a float image with the discrete Gaussian (reflect-101 borders)."""
    if sigma <= 0:
        return image.astype(np.float32, copy=True)
    k = gaussian_kernel1d(sigma)
    return cv2.sepFilter2D(image.astype(np.float32, copy=False), cv2.CV_32F, k, k,
                           borderType=cv2.BORDER_REFLECT_101)


def disc_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blur with a uniform disc of radius ``2 * sigma`` (equivalent Gaussian sigma)."""
    if sigma <= 0:
        return image.astype(np.float32, copy=True)
    return cv2.filter2D(image.astype(np.float32, copy=False), cv2.CV_32F, disc_kernel(2.0 * sigma),
                        borderType=cv2.BORDER_REFLECT_101)


def level_position(sigma, levels) -> np.ndarray:
    """Continuous level index of ``sigma``: linear in sigma below the first non-zero
    level, linear in log(sigma) above it, clipped to [0, len(levels) - 1]."""
    levels = np.asarray(levels, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    positive = levels[1:]
    log_pos = np.interp(np.log(np.maximum(sigma, 1e-12)), np.log(positive), np.arange(1, len(levels)))
    return np.where(sigma < positive[0], sigma / positive[0], log_pos)


def level_bins(levels) -> np.ndarray:
    """Bin edges (len(levels) + 1) in sigma: geometric midpoints between levels, level 0
    owns [0, first edge)."""
    levels = np.asarray(levels, dtype=np.float64)
    positive = levels[1:]
    ratio = positive[1] / positive[0]
    mids = np.sqrt(positive[:-1] * positive[1:])
    return np.concatenate([[0.0, positive[0] / math.sqrt(ratio)], mids, [positive[-1] * math.sqrt(ratio)]])
