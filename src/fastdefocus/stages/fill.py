"""The flat fill: patches too flat to carry blur evidence take their value from their
neighbourhood.

A patch whose confidence is 0 (texture confidence 0: its luminance std is below half of the
model's ``flat_std``; with texture gating it is not even classified) tells nothing about blur,
yet its value reaches the map wherever no textured patch covers a cell. Here each such patch
takes instead the confidence-weighted mean of the values around it, with weights that fall off
like a Gaussian of sigma :data:`~fastdefocus._params.FILL_SIGMA` px (three box passes on the
patch grid, zero outside the image), and keeps its own value as a prior of weight
:data:`~fastdefocus._params.FILL_PRIOR`. So a textureless surface inherits from the textured
patches at and around its edges (a plain in-focus shirt reads as sharp as its seams), and a flat
area far from any texture keeps the flat patch's value. Patches with any texture are unchanged.

This module is the float64 reference; cpp/fill.cpp and kernels/fill.py compute the same.
"""
from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import FILL_PRIOR, FILL_SIGMA


def fill_radius(stride: int, sigma: float = FILL_SIGMA) -> int:
    """Radius (in patches) of the three box passes whose weights have a sigma of ``sigma`` px:
    r (r + 1) = (sigma / stride)^2, rounded half up (floor(sqrt(q + 1/4))), at least 1."""
    return max(1, int(math.floor(math.sqrt((sigma / stride) ** 2 + 0.25))))


def _box_mean(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over 2r+1 along ``axis``, zeros outside (the window's sum / (2r + 1))."""
    n = x.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(x, pad), axis=axis)
    hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) / (2 * r + 1)


def neighbourhood_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Three box passes of radius ``r`` in y and x (zeros outside), float64."""
    out = np.asarray(x, np.float64)
    for _ in range(3):
        out = _box_mean(_box_mean(out, r, 0), r, 1)
    return out


def fill_flat(values: np.ndarray, weights: np.ndarray, stride: int) -> np.ndarray:
    """Patch values (float32 (ny, nx)) with every patch of weight <= 0 replaced by the
    ``weights``-weighted mean of the values around it (its own value a prior of weight
    FILL_PRIOR). ``weights``: the patches' confidences (>= 0)."""
    values = np.asarray(values, np.float32)
    weights = np.asarray(weights, np.float64)
    flat = weights <= 0
    if not flat.any():
        return values.copy()
    r = fill_radius(stride)
    num = neighbourhood_mean(weights * values, r)
    den = neighbourhood_mean(weights, r)
    filled = (num + FILL_PRIOR * values) / (den + FILL_PRIOR)
    return np.where(flat, filled, values).astype(np.float32)
