"""The refine stage: coarse cell map -> dense, edge-aligned map at full resolution.

The iterative confidence-weighted guided filter runs on a working grid a few
pixels coarse (``working_scale``), guided by the area-downsampled luminance;
then guided upsampling (He and Sun, "Fast guided filter", 2015) carries the
result to full resolution: the local linear coefficients of a last guided
filter are upsampled and applied to the full-resolution luminance, so edges
come from the image itself. With ``iterations`` 0 the cell map is only interpolated
bilinearly: focus boundaries need not follow image edges, and where they do not the
luminance guide smears them (the estimator's default, 1 iteration, is the compromise
measured in DefocusEstimator's docstring).
"""
from __future__ import annotations

import cv2
import numpy as np

from .filters import guided_coefficients, iterative_guided_filter


def working_scale(stride: int) -> int:
    """Pixels per working-grid pixel: fine enough for edges, coarse enough to be cheap."""
    return min(stride, 4)


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad (reflect-101, repeated as needed) at the bottom and right."""
    h, w = image.shape
    if (h, w) == (height, width):
        return image
    return np.pad(image, ((0, height - h), (0, width - w)), mode="reflect")


def resize(image: np.ndarray, height: int, width: int, area: bool = False) -> np.ndarray:
    interp = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def refine(cell_values: np.ndarray, cell_weights: np.ndarray, luminance_padded: np.ndarray, stride: int,
           radius: float, eps: float, iterations: int, upsample_radius: float = 4.0,
           upsample_eps: float = 1e-2):
    """Refine a cell map into a dense map of the padded image's size.

    Parameters
    ----------
    cell_values, cell_weights : float32 (Hc, Wc)
        The splatted map and how much to trust each cell (>= 0), one value per stride x stride cell.
    luminance_padded : float32 (Hc * stride, Wc * stride), values in [0, 1]
        The guide.
    radius, upsample_radius : float
        Guided filter radii in full-resolution pixels.
    iterations : int >= 0
        Guided-filter passes on the working grid; 0: bilinear interpolation of the cells
        (radius, eps and the guide unused).

    Returns
    -------
    dense_values : float32 (Hc * stride, Wc * stride)
    """
    hc, wc = cell_values.shape
    full_h, full_w = hc * stride, wc * stride
    if iterations == 0:  # no guided filter: bilinear interpolation of the cell map
        return resize(np.asarray(cell_values, np.float32), full_h, full_w)
    scale = working_scale(stride)
    work_h, work_w = full_h // scale, full_w // scale
    guide = resize(luminance_padded, work_h, work_w, area=True)
    values = resize(cell_values, work_h, work_w)
    weights = np.maximum(resize(cell_weights, work_h, work_w), 0.0)
    r_work = max(1, int(round(radius / scale)))
    refined = iterative_guided_filter(values, guide, r_work, eps, weights=weights, iterations=iterations)
    r_up = max(1, int(round(upsample_radius / scale)))
    coef_a, coef_b = guided_coefficients(refined, guide, r_up, upsample_eps)
    dense = resize(coef_a, full_h, full_w) * luminance_padded + resize(coef_b, full_h, full_w)
    return dense.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- boundary snap
#
# A 32-px patch near a focus boundary sees both sides, so the splatted map turns a sharp
# step of sigma into a ramp some 20 px wide. Inside such a ramp each pixel is put back on
# one side, from evidence at its own scale: how much gradient energy a further 1-px blur
# removes in its 3 x 3 neighbourhood (``SNAP_EVIDENCE``: about 0 where the image is already
# blurred, strongly negative where it is sharp). The settings below were chosen on the first
# 40 layered scenes of the quality benchmark (BSDS500 val, default options): near-boundary MAE
# 0.678 -> 0.612 px, textured 0.424 -> 0.402 px; on the other 60 scenes 0.658 -> 0.578 and
# 0.396 -> 0.370. With the retrained classifier (photos downscaled by 4) SNAP_REFERENCE was
# re-chosen on the same 40 scenes (0.25 -> 0.35: near-boundary 0.627 -> 0.616 px; 0.687 off);
# over all 100 the snap then takes it from 0.672 (off) to 0.594 px, on the other 60 from 0.662
# to 0.579 (benchmarks/quality.py --sections scenes --limit 40 / 100, --snap 0 / 10).
# With the true side of every pixel instead of this evidence the same snap
# reaches 0.44 px: the evidence, not the plateau values, is what limits it. Tried and not
# better: wider windows (14-20 px), 1x1 or 5x5 evidence windows, snapping along the map's
# gradient, an energy-weighted or dilated evidence, hard (0/1) sides, a second pass.

#: Half-width (px) of the window whose minimum and maximum of the map are the two sides.
SNAP_RADIUS = 10
#: Smallest max - min of the map in that window (px) for a pixel to be snapped.
SNAP_MIN_SPAN = 0.3
#: Pixels in the outer share of [min, max] on each side are that side's references; the
#: pixels within SNAP_BAND of either end are left as they are.
SNAP_REFERENCE = 0.35
SNAP_BAND = 0.1
#: Extra half-width of the window the references are averaged over.
SNAP_REFERENCE_MARGIN = 4
#: Gradient-energy floor of the evidence (luminance^2 per pixel pair).
SNAP_ENERGY_FLOOR = 1e-4
#: Least share of each side's reference pixels in the window, and least evidence contrast
#: between the sides, for a pixel to be snapped.
SNAP_MIN_SHARE = 0.02
SNAP_MIN_CONTRAST = 0.05


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
    from .blur import gaussian_blur

    lum = np.asarray(luminance, np.float32)
    energy = _pair_energy(lum)
    blurred = _pair_energy(gaussian_blur(lum, 1.0))
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
