"""The boundary snap: inside the ramp a 32-px patch leaves at a focus boundary, each pixel is
put back on the side its own fine-scale sharpness matches (constants and their provenance in
:mod:`fastdefocus._params`)."""
from __future__ import annotations

import cv2
import numpy as np

from fastdefocus._params import SHARPNESS_BLUR, SNAP_RADIUS, SNAP_MIN_SPAN, SNAP_REFERENCE, SNAP_BAND, SNAP_REFERENCE_MARGIN, SNAP_ENERGY_FLOOR, SNAP_MIN_SHARE, SNAP_MIN_CONTRAST


def _pair_energy(lum: np.ndarray) -> np.ndarray:
    """Squared forward differences to the right and down neighbours, summed; 0 beyond the
    last row / column; then summed over a 3 x 3 box (reflect-101)."""
    e = np.zeros_like(lum)
    dx = np.diff(lum, axis=1)
    dy = np.diff(lum, axis=0)
    e[:, :-1] += dx * dx
    e[:-1] += dy * dy
    return cv2.blur(e, (3, 3), borderType=cv2.BORDER_REFLECT_101)


def snap_evidence(luminance: np.ndarray) -> np.ndarray:
    """log of the gradient energy left after a 1-px Gaussian blur over the energy before, per
    pixel (3 x 3 neighbourhood): near 0 where the image is blurred, negative where it is sharp."""
    from fastdefocus.blur import gaussian_blur

    lum = np.asarray(luminance, np.float32)
    energy = _pair_energy(lum)
    blurred = _pair_energy(gaussian_blur(lum, SHARPNESS_BLUR))
    return np.log((blurred + SNAP_ENERGY_FLOOR) / (energy + SNAP_ENERGY_FLOOR)).astype(np.float32)


def snap_boundaries(sigma: np.ndarray, luminance: np.ndarray, radius: int = SNAP_RADIUS) -> np.ndarray:
    """Sharpen the ramps the patch size leaves at focus boundaries (see the notes above).

    Where the map spans more than ``SNAP_MIN_SPAN`` within ``radius`` px, a pixel in the ramp
    gets ``lo + t * (hi - lo)``, ``lo``/``hi`` the window's minimum and maximum and ``t`` its
    evidence placed between the mean evidence of the pixels near ``lo`` and near ``hi``
    (clipped to [0, 1], then a 3 x 3 mean). The output stays within [lo, hi]. ``radius`` 0:
    the map unchanged.
    """
    sigma = np.asarray(sigma, np.float32)
    if radius <= 0:
        return sigma
    q = snap_evidence(luminance)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    lo = cv2.erode(sigma, kernel)   # outside the image ignored
    hi = cv2.dilate(sigma, kernel)
    span = hi - lo
    pos = (sigma - lo) / np.maximum(span, 1e-6)
    zone = span > SNAP_MIN_SPAN
    near_lo = (zone & (pos < SNAP_REFERENCE)).astype(np.float32)
    near_hi = (zone & (pos > 1.0 - SNAP_REFERENCE)).astype(np.float32)
    k = 2 * (radius + SNAP_REFERENCE_MARGIN) + 1

    def mean(x):
        return cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT_101)

    n_lo, n_hi = mean(near_lo), mean(near_hi)
    q_lo = mean(q * near_lo) / np.maximum(n_lo, 1e-6)
    q_hi = mean(q * near_hi) / np.maximum(n_hi, 1e-6)
    contrast = q_hi - q_lo
    t = np.clip((q - q_lo) / np.maximum(contrast, 1e-6), 0.0, 1.0)
    t = cv2.blur(t, (3, 3), borderType=cv2.BORDER_REFLECT_101)
    snap = (zone & (n_lo > SNAP_MIN_SHARE) & (n_hi > SNAP_MIN_SHARE) & (contrast > SNAP_MIN_CONTRAST)
            & (pos > SNAP_BAND) & (pos < 1.0 - SNAP_BAND))
    return np.where(snap, lo + t * span, sigma).astype(np.float32)
