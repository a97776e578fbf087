"""The flat fill: patches too flat to carry blur evidence take their value from the patches
they are connected to.

A patch whose confidence is 0 (texture confidence 0: its luminance std is below half of the
model's ``flat_std``; with texture gating it is not even classified) tells nothing about blur,
yet its value reaches the map wherever no textured patch covers a cell. Here each such patch
takes instead the confidence-weighted mean of the values around it, its own value a prior of
weight :data:`~fastdefocus._params.FILL_PRIOR`. The weights are edge-aware: a normalised
domain-transform recursive filter (Gastal and Oliveira, SIGGRAPH 2011) on the patch grid, of
spatial sigma ``EstimatorConfig.fill_sigma`` (64 px; 0: no fill) and range sigma
:data:`~fastdefocus._params.FILL_SIGMA_R` on the patches' mean luminance, so evidence spreads
within a surface and hardly across a strong change of brightness. A textureless surface thus
inherits from the patches on its own edges (a flat in-focus object reads as sharp as its
outline, not as the blurred background around it), and a flat area far from any evidence keeps
the flat patch's value. Patches with any texture are unchanged.

This module is the float64 reference; cpp/fill.cpp and kernels/fill.py compute the same, in the
same order.
"""
from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import FILL_ITERATIONS, FILL_PRIOR, FILL_SIGMA_R
from fastdefocus.stages.splat import _integral, _window_sums


def patch_means(padded: np.ndarray, grid, patch: int, stride: int) -> np.ndarray:
    """Mean luminance (float64 (ny, nx)) of each patch of the grid of a padded image (patch
    (i, j) covers rows i * stride .. i * stride + patch - 1), from a float64 integral image
    (the window sums of :func:`fastdefocus.stages.splat.patch_statistics`; C++:
    ``PatchStatistics::mean``)."""
    ny, nx = grid
    return _window_sums(_integral(padded), np.arange(ny) * stride, np.arange(nx) * stride, patch) / float(patch * patch)


def pass_sigmas(stride: int, sigma: float, iterations: int = FILL_ITERATIONS):
    """Spatial sigma (patches) of each iteration's passes: sigma / stride x sqrt(3) x 2^(N-1-i) /
    sqrt(4^N - 1), so that the N iterations together have sigma / stride."""
    s = sigma / stride
    return [s * math.sqrt(3.0) * 2.0 ** (iterations - 1 - i) / math.sqrt(4.0 ** iterations - 1.0)
            for i in range(iterations)]


def fill_ratio(stride: int, sigma: float) -> float:
    """Extra distance (in patches) per unit of mean-luminance change between neighbouring patches:
    the spatial sigma over the range sigma, (sigma / stride) / FILL_SIGMA_R."""
    return (sigma / stride) / FILL_SIGMA_R


def _recursive_pass(num: np.ndarray, den: np.ndarray, guide: np.ndarray, a: float, ratio: float) -> None:
    """One causal and one anti-causal pass along axis 1 (in place): J[x] += w (J[x -/+ 1] - J[x])
    with w = a^(1 + ratio |guide[x + 1] - guide[x]|)."""
    w = a ** (1.0 + ratio * np.abs(np.diff(guide, axis=1)))
    n = num.shape[1]
    for x in range(1, n):
        num[:, x] += w[:, x - 1] * (num[:, x - 1] - num[:, x])
        den[:, x] += w[:, x - 1] * (den[:, x - 1] - den[:, x])
    for x in range(n - 2, -1, -1):
        num[:, x] += w[:, x] * (num[:, x + 1] - num[:, x])
        den[:, x] += w[:, x] * (den[:, x + 1] - den[:, x])


def edge_aware_mean(num: np.ndarray, den: np.ndarray, guide: np.ndarray, stride: int, sigma: float):
    """(num, den) each filtered by the domain transform: per iteration a horizontal then a
    vertical pair of passes (float64, new arrays)."""
    num = np.array(num, np.float64)
    den = np.array(den, np.float64)
    guide = np.asarray(guide, np.float64)
    ratio = fill_ratio(stride, sigma)
    num_t, den_t, guide_t = num.T.copy(), den.T.copy(), guide.T.copy()
    for sig in pass_sigmas(stride, sigma):
        a = math.exp(-math.sqrt(2.0) / sig)
        _recursive_pass(num, den, guide, a, ratio)
        num_t[...], den_t[...] = num.T, den.T
        _recursive_pass(num_t, den_t, guide_t, a, ratio)
        num[...], den[...] = num_t.T, den_t.T
    return num, den


def fill_flat(values: np.ndarray, weights: np.ndarray, guide: np.ndarray, stride: int, sigma: float) -> np.ndarray:
    """Patch values (float32 (ny, nx)) with every patch of weight <= 0 replaced by the
    ``weights``-weighted, edge-aware mean of the values around it (its own value a prior of
    weight FILL_PRIOR). ``weights``: the patches' confidences (>= 0); ``guide``: their mean
    luminance (:func:`patch_means`); ``sigma``: the spatial sigma in px (0: no fill)."""
    values = np.asarray(values, np.float32)
    weights = np.asarray(weights, np.float64)
    flat = weights <= 0
    if sigma <= 0 or not flat.any():
        return values.copy()
    num, den = edge_aware_mean(weights * values, weights, guide, stride, sigma)
    filled = (num + FILL_PRIOR * values.astype(np.float64)) / (den + FILL_PRIOR)
    return np.where(flat, filled, values).astype(np.float32)
