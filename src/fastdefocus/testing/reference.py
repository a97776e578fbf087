"""Plain float64 NumPy reference implementations of :mod:`fastdefocus.stages.filters`.

Obvious rather than fast; used by the tests and the benchmark.  The guided filters take
their arguments in the public order, OpenCV's ``(guide, src, radius, eps)``.  Borders are
``np.pad(mode="reflect")`` (reflect-101), which repeats the reflection for pads
larger than the image, exactly like the native kernels.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "box_filter_ref",
    "guided_filter_ref",
    "guided_coefficients_ref",
    "iterative_guided_filter_ref",
    "guided_coefficients_colour_ref",
    "guided_filter_colour_ref",
    "extract_patches_ref",
]


def box_filter_ref(src, radius: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window, reflect-101 borders, float64."""
    a = np.asarray(src, dtype=np.float64)
    r = int(radius)
    h, w = a.shape
    padded = np.pad(a, r, mode="reflect")
    integral = np.zeros((h + 2 * r + 1, w + 2 * r + 1))
    integral[1:, 1:] = padded.cumsum(axis=0).cumsum(axis=1)
    k = 2 * r + 1
    window = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
    return window / float(k * k)


def guided_coefficients_ref(guide, src, radius: int, eps: float, weights=None):
    """Mean coefficients ``(A, B) = (box(a), box(b))`` of the (weighted) guided filter, float64.

    With ``weights`` w: w_e = w + 1e-6, m_w(X) = box(w_e X) / box(w_e),
    a = (m_w(I p) - m_w(I) m_w(p)) / (m_w(I^2) - m_w(I)^2 + eps),
    b = m_w(p) - a m_w(I); without, m_w is the plain box mean.
    """
    p = np.asarray(src, dtype=np.float64)
    g = np.asarray(guide, dtype=np.float64)
    if weights is None:
        mean_i = box_filter_ref(g, radius)
        mean_p = box_filter_ref(p, radius)
        corr_ip = box_filter_ref(g * p, radius)
        corr_ii = box_filter_ref(g * g, radius)
    else:
        we = np.asarray(weights, dtype=np.float64) + 1e-6
        sum_w = box_filter_ref(we, radius)
        mean_i = box_filter_ref(we * g, radius) / sum_w
        mean_p = box_filter_ref(we * p, radius) / sum_w
        corr_ip = box_filter_ref(we * g * p, radius) / sum_w
        corr_ii = box_filter_ref(we * g * g, radius) / sum_w
    cov_ip = corr_ip - mean_i * mean_p
    var_i = np.maximum(corr_ii - mean_i * mean_i, 0.0)
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter_ref(a, radius), box_filter_ref(b, radius)


def guided_filter_ref(guide, src, radius: int, eps: float, weights=None) -> np.ndarray:
    """(Weighted) guided filter with a gray guide, float64: q = A I + B with
    ``(A, B) = guided_coefficients_ref(guide, src, radius, eps, weights)``."""
    coef_a, coef_b = guided_coefficients_ref(guide, src, radius, eps, weights)
    return coef_a * np.asarray(guide, dtype=np.float64) + coef_b


def iterative_guided_filter_ref(guide, src, radius: int, eps: float, weights=None,
                                iterations: int = 1) -> np.ndarray:
    """``iterations`` applications of :func:`guided_filter_ref` (fixed guide/weights)."""
    p = np.asarray(src, dtype=np.float64)
    for _ in range(int(iterations)):
        p = guided_filter_ref(guide, p, radius, eps, weights)
    return p


def guided_coefficients_colour_ref(guide, src, radius: int, eps: float, weights=None):
    """``(A, B)`` of the colour guided filter (He et al., "Guided image filtering", TPAMI 2013,
    section 3.5), float64: guide (H, W, 3), src (H, W); A (H, W, 3), B (H, W).

    Per window k: mu_k (3,) the mean colour, Sigma_k (3, 3) the colour covariance,
    a_k = (Sigma_k + eps U)^-1 (m(I p) - mu_k m(p)), b_k = m(p) - a_k . mu_k; with ``weights``
    every window mean m is weighted by w + 1e-6 as in :func:`guided_coefficients_ref`.
    A and B are the plain box means of a and b."""
    g = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    if weights is None:
        def mean(x):
            return box_filter_ref(x, radius)
    else:
        we = np.asarray(weights, dtype=np.float64) + 1e-6
        sum_w = box_filter_ref(we, radius)

        def mean(x):
            return box_filter_ref(we * x, radius) / sum_w
    mu = np.stack([mean(g[..., c]) for c in range(3)], axis=-1)
    mean_p = mean(p)
    cov_ip = np.stack([mean(g[..., c] * p) for c in range(3)], axis=-1) - mu * mean_p[..., None]
    sigma = np.empty(g.shape[:2] + (3, 3))
    for c in range(3):
        for d in range(3):
            sigma[..., c, d] = mean(g[..., c] * g[..., d]) - mu[..., c] * mu[..., d]
    a = np.linalg.solve(sigma + eps * np.eye(3), cov_ip[..., None])[..., 0]
    b = mean_p - (a * mu).sum(axis=-1)
    coef_a = np.stack([box_filter_ref(a[..., c], radius) for c in range(3)], axis=-1)
    return coef_a, box_filter_ref(b, radius)


def guided_filter_colour_ref(guide, src, radius: int, eps: float, weights=None) -> np.ndarray:
    """Colour guided filter, float64: q = A . I + B with
    ``(A, B) = guided_coefficients_colour_ref(guide, src, radius, eps, weights)``."""
    coef_a, coef_b = guided_coefficients_colour_ref(guide, src, radius, eps, weights)
    return (coef_a * np.asarray(guide, dtype=np.float64)).sum(axis=-1) + coef_b


def extract_patches_ref(gray, size: int = 32, stride: int = 8, normalize: bool = False,
                        std_floor: float = 0.02):
    """Patches of a bottom/right reflect-padded image on a regular grid.

    Returns ``(patches, (ny, nx))`` with float64 patches of shape
    ``(ny * nx, size, size)``, row-major over the grid.
    """
    a = np.asarray(gray, dtype=np.float64)
    h, w = a.shape
    ny = math.ceil(max(h - size, 0) / stride) + 1
    nx = math.ceil(max(w - size, 0) / stride) + 1
    hp = (ny - 1) * stride + size
    wp = (nx - 1) * stride + size
    padded = np.pad(a, ((0, hp - h), (0, wp - w)), mode="reflect")
    patches = np.empty((ny * nx, size, size))
    for iy in range(ny):
        for ix in range(nx):
            y0, x0 = iy * stride, ix * stride
            patches[iy * nx + ix] = padded[y0:y0 + size, x0:x0 + size]
    if normalize:
        mean = patches.mean(axis=(1, 2), keepdims=True)
        std = patches.std(axis=(1, 2), keepdims=True)
        patches = (patches - mean) / np.maximum(std, std_floor)
    return patches, (ny, nx)
