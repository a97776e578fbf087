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

from fastdefocus._params import UPSAMPLE_EPS, UPSAMPLE_RADIUS
from fastdefocus.stages.filters import guided_coefficients, iterative_guided_filter


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
           radius: float, eps: float, iterations: int, upsample_radius: float = UPSAMPLE_RADIUS,
           upsample_eps: float = UPSAMPLE_EPS, threads: int = 0):
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
    threads : int >= 0
        Threads of the native guided filters (0: their default).

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
    refined = iterative_guided_filter(guide, values, r_work, eps, weights=weights, iterations=iterations,
                                      threads=threads)
    r_up = max(1, int(round(upsample_radius / scale)))
    coef_a, coef_b = guided_coefficients(guide, refined, r_up, upsample_eps, threads=threads)
    dense = resize(coef_a, full_h, full_w) * luminance_padded + resize(coef_b, full_h, full_w)
    return dense.astype(np.float32, copy=False)
