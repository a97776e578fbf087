"""Quality metrics for defocus maps against known truth."""
from __future__ import annotations

import cv2
import numpy as np


def boundary_mask(sigma_true: np.ndarray, distance: int = 8, jump: float = 0.25) -> np.ndarray:
    """Pixels within ``distance`` px of a focus boundary: a jump of more than ``jump`` px of
    sigma between neighbouring pixels (the hard edges of depth layers, not smooth ramps)."""
    dy = np.abs(np.diff(sigma_true, axis=0)) > jump
    dx = np.abs(np.diff(sigma_true, axis=1)) > jump
    edges = np.zeros(sigma_true.shape, np.uint8)
    edges[:-1][dy] = 1
    edges[1:][dy] = 1
    edges[:, :-1][dx] = 1
    edges[:, 1:][dx] = 1
    if distance > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * distance + 1, 2 * distance + 1))
        edges = cv2.dilate(edges, kernel)
    return edges.astype(bool)


def textured_mask(luminance: np.ndarray, radius: int = 7, min_std: float = 0.02) -> np.ndarray:
    """Pixels whose neighbourhood (in the sharp image) has luminance std >= ``min_std``."""
    lum = luminance.astype(np.float32)
    k = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.blur(lum, k, borderType=cv2.BORDER_REFLECT_101)
    sq = cv2.blur(lum * lum, k, borderType=cv2.BORDER_REFLECT_101)
    return np.sqrt(np.maximum(sq - mean * mean, 0)) >= min_std


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(x):
        x = np.asarray(x, np.float64).ravel()
        order = np.argsort(x, kind="mergesort")
        sorted_x = x[order]
        r = np.empty(len(x))
        # average rank for ties
        boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
        starts = np.concatenate([[0], boundaries])
        ends = np.concatenate([boundaries, [len(x)]])
        avg = (starts + ends - 1) / 2.0
        r[order] = np.repeat(avg, ends - starts)
        return r
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def map_errors(sigma_est: np.ndarray, sigma_true: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """MAE, RMSE, share within 0.5 px and Spearman correlation over ``mask`` (all pixels if None)."""
    if mask is None:
        mask = np.ones(sigma_true.shape, bool)
    err = (sigma_est - sigma_true)[mask].astype(np.float64)
    if err.size == 0:
        return {"pixels": 0}
    return {"pixels": int(err.size), "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "bias": float(err.mean()), "within_0_5": float((np.abs(err) <= 0.5).mean()),
            "spearman": spearman(sigma_est[mask], sigma_true[mask])}
