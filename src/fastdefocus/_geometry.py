"""Patch and cell geometry shared by the CPU splat (fastdefocus.stages.splat) and its CUDA twin
(fastdefocus.kernels.splat)."""
from __future__ import annotations

import numpy as np


def tent_weights(patch: int, stride: int) -> np.ndarray:
    """Weight of each of the k = patch / stride cells of a patch, highest at its centre."""
    k = patch // stride
    centres = (np.arange(k) + 0.5) * stride
    half = patch / 2.0
    return np.maximum(1.0 - np.abs(centres - half) / half, 1.0 / (2 * k))


def window_offsets(patch: int) -> tuple:
    """Offsets (each axis) of the half-patch windows whose sharpness a patch compares: the
    four quadrants plus the windows between them, 3 x 3 half-overlapping windows."""
    return tuple(sorted({0, patch // 4, patch // 2}))
