"""Sigma-map files: float32 TIFF or .npy (sigma in px), and the 16-bit PNG scale."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fastdefocus.io.images import read_image

#: 16-bit PNG sigma maps store value = round(SIGMA_PNG_SCALE x sigma in px) (1 / 1000 px steps,
#: up to 65.535 px).
SIGMA_PNG_SCALE = 1000


def to_png16(sigma: np.ndarray) -> np.ndarray:
    """A sigma map (px) as the uint16 array of its 16-bit PNG file."""
    return np.clip(np.rint(sigma * SIGMA_PNG_SCALE), 0, 65535).astype(np.uint16)


def read_sigma_map(path: str) -> np.ndarray:
    """A sigma map written by ``fastdefocus estimate``: .npy, float TIFF, or 16-bit PNG (float32 px)."""
    if Path(path).suffix.lower() == ".npy":
        if not Path(path).exists():
            raise FileNotFoundError(f"sigma map not found: {path}")
        sigma = np.load(path)
    else:
        sigma = read_image(path)
        if sigma.dtype == np.uint16:
            sigma = sigma.astype(np.float32) / SIGMA_PNG_SCALE
        elif not np.issubdtype(sigma.dtype, np.floating):
            raise ValueError(f"{path}: a sigma map must be float (TIFF, .npy) or 16-bit PNG "
                             f"(value = {SIGMA_PNG_SCALE} x sigma px), got {sigma.dtype}")
    if sigma.ndim == 3 and sigma.shape[2] == 1:
        sigma = sigma[..., 0]
    return sigma
