"""The splat stage: per-patch values on the stride grid -> a map of stride-sized cells.

Patch (i, j) covers cells i .. i + k - 1 (k = patch / stride). Each cell takes the
confidence-weighted average of the patches covering it, and a patch counts more
in the cells near its centre (a tent over the patch): at a focus boundary the
patches centred on the pixel's own side then dominate, which keeps a sharp
neighbour from pulling a blurred region's estimate down.
"""
from __future__ import annotations

import numpy as np


def tent_weights(patch: int, stride: int) -> np.ndarray:
    """Weight of each of the k = patch / stride cells of a patch, highest at its centre."""
    k = patch // stride
    centres = (np.arange(k) + 0.5) * stride
    half = patch / 2.0
    return np.maximum(1.0 - np.abs(centres - half) / half, 1.0 / (2 * k))


def splat(values: np.ndarray, confidence: np.ndarray, patch: int, stride: int, eps: float = 1e-6):
    """Splat (ny, nx) patch values and confidences onto the (ny + k - 1, nx + k - 1) cell grid.

    Returns
    -------
    cell_values : float32 (ny + k - 1, nx + k - 1)
        Weighted mean of the covering patches' values (weights: confidence x tent).
    cell_confidence : float32, same shape
        Tent-weighted mean confidence of the covering patches, in [0, 1].
    """
    ny, nx = values.shape
    w = tent_weights(patch, stride)
    k = len(w)
    shape = (ny + k - 1, nx + k - 1)
    num = np.zeros(shape, np.float64)
    den = np.zeros(shape, np.float64)
    tent_sum = np.zeros(shape, np.float64)
    weighted = confidence.astype(np.float64) * values
    for a in range(k):
        for b in range(k):
            wab = w[a] * w[b]
            num[a:a + ny, b:b + nx] += wab * weighted
            den[a:a + ny, b:b + nx] += wab * confidence
            tent_sum[a:a + ny, b:b + nx] += wab
    # where no covering patch is confident, fall back to the plain tent-weighted mean
    plain = np.zeros(shape, np.float64)
    for a in range(k):
        for b in range(k):
            plain[a:a + ny, b:b + nx] += w[a] * w[b] * values
    cell_values = np.where(den > eps, num / np.maximum(den, eps), plain / tent_sum)
    return cell_values.astype(np.float32), (den / tent_sum).astype(np.float32)
