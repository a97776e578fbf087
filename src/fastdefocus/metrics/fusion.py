"""Objective quality metrics of image fusion: Q^AB/F, Q_MI and Q_CB.

Each metric compares a fused image F with its two sources A and B, on
luminance (colour images are reduced with the Rec. 601 weights of
:func:`fastdefocus.stages.ingest.to_luminance`; ``channel_order="bgr"`` for
OpenCV's images), and returns one float.

- :func:`q_abf`: edge information preserved (Xydeas and Petrovic, "Objective
  image fusion performance measure", Electronics Letters 36(4), 2000).
- :func:`q_mi`: normalised mutual information (Hossny, Nahavandi and Creighton,
  "Comments on 'Information measure for performance of image fusion'",
  Electronics Letters 44(18), 2008).
- :func:`q_cb`: human-perception metric of Chen and Blum ("A new automated
  quality assessment algorithm for image fusion", Image and Vision Computing
  27(10), 2009).

Numbers from different metric code are not comparable (border handling,
histogram binning, the contrast sensitivity function chosen for Q_CB differ);
compare methods measured with the same code in the same run.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from fastdefocus.stages.ingest import to_luminance

__all__ = ["q_abf", "q_mi", "q_cb", "fusion_scores", "Q_ABF_MAX"]

# Q^AB/F constants of Xydeas and Petrovic (2000).
_GAMMA_G, _KAPPA_G, _SIGMA_G = 0.9994, -15.0, 0.5
_GAMMA_A, _KAPPA_A, _SIGMA_A = 0.9879, -22.0, 0.8

#: Q^AB/F of a perfect fusion (F equal to A and B): the product of the two sigmoids at
#: full preservation (strength ratio 1, orientation agreement 1). The paper's constants put
#: it a little below 1.
Q_ABF_MAX = (_GAMMA_G / (1.0 + math.exp(_KAPPA_G * (1.0 - _SIGMA_G)))
             * _GAMMA_A / (1.0 + math.exp(_KAPPA_A * (1.0 - _SIGMA_A))))


def _luminances(fused, a, b, channel_order: str = "rgb"):
    """Validate the three images and return their luminances as float64 (H, W)."""
    lum_a = to_luminance(a, "source A", channel_order=channel_order).astype(np.float64)
    lum_b = to_luminance(b, "source B", channel_order=channel_order).astype(np.float64)
    lum_f = to_luminance(fused, "fused", channel_order=channel_order).astype(np.float64)
    if not lum_a.shape == lum_b.shape == lum_f.shape:
        raise ValueError(f"fused image and sources must have the same height and width, got fused "
                         f"{lum_f.shape}, A {lum_a.shape}, B {lum_b.shape}")
    return lum_f, lum_a, lum_b


# ----------------------------------------------------------------------------- Q^AB/F


def _sobel(lum):
    """Sobel gradient magnitude and orientation atan(sy / sx) in [-pi/2, pi/2] (0 where flat)."""
    sx = cv2.Sobel(lum, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    sy = cv2.Sobel(lum, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    strength = np.hypot(sx, sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        orientation = np.arctan(sy / sx)
    orientation = np.where((sx == 0) & (sy == 0), 0.0, orientation)  # atan(+-inf) = +-pi/2 stays
    return strength, orientation


def _edge_preservation(g_src, a_src, g_fused, a_fused):
    """Q^XF per pixel: sigmoid of the strength ratio times sigmoid of the orientation agreement."""
    hi = np.maximum(g_src, g_fused)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(hi > 0, np.minimum(g_src, g_fused) / hi, 1.0)
    orientation = 1.0 - np.abs(a_src - a_fused) / (np.pi / 2)
    q_g = _GAMMA_G / (1.0 + np.exp(_KAPPA_G * (strength - _SIGMA_G)))
    q_a = _GAMMA_A / (1.0 + np.exp(_KAPPA_A * (orientation - _SIGMA_A)))
    return q_g * q_a


def q_abf(fused, a, b, *, channel_order: str = "rgb") -> float:
    """Q^AB/F: how much of the sources' edge strength and orientation the fused image keeps.

    Sobel gradients (3 x 3, reflect-101 borders) give a strength g and an orientation
    alpha = atan(s_y / s_x) per pixel. For a source X, G^XF = min(g_X, g_F) / max(g_X, g_F)
    and A^XF = 1 - |alpha_X - alpha_F| / (pi / 2) pass through the paper's sigmoids
    (Gamma_g = 0.9994, kappa_g = -15, sigma_g = 0.5; Gamma_a = 0.9879, kappa_a = -22,
    sigma_a = 0.8) and multiply into Q^XF; the score is the mean of Q^AF and Q^BF weighted
    by the source strengths (L = 1)::

        Q = sum(Q^AF g_A + Q^BF g_B) / sum(g_A + g_B)

    Parameters
    ----------
    fused, a, b : array (H, W) or (H, W, C)
        The fused image and its two sources, same height and width; uint8, uint16 or
        float in [0, 1] (see :func:`fastdefocus._validate.check_image`).

    Returns
    -------
    float
        In [0, :data:`Q_ABF_MAX`] (about 0.9748, reached when F equals both sources);
        higher is better. 1.0 when neither source has any edge (nothing to preserve).

    Raises
    ------
    ValueError, TypeError
        For invalid images or different sizes.
    """
    lum_f, lum_a, lum_b = _luminances(fused, a, b, channel_order)
    g_f, o_f = _sobel(lum_f)
    g_a, o_a = _sobel(lum_a)
    g_b, o_b = _sobel(lum_b)
    total = float((g_a + g_b).sum())
    if total <= 0.0:
        return 1.0
    kept = (_edge_preservation(g_a, o_a, g_f, o_f) * g_a + _edge_preservation(g_b, o_b, g_f, o_f) * g_b).sum()
    return float(kept / total)


# ------------------------------------------------------------------------------- Q_MI


def _grey_levels(lum):
    """Luminance in [0, 1] -> integer grey levels 0..255 (the histogram bins)."""
    return np.clip(np.rint(lum * 255.0), 0, 255).astype(np.int64)


def _entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _mutual_information(x, y):
    """MI(X; Y) and the entropies H(X), H(Y) in bits from the 256 x 256 joint histogram."""
    joint = np.bincount((x * 256 + y).ravel(), minlength=256 * 256).reshape(256, 256).astype(np.float64)
    h_x, h_y = _entropy(joint.sum(axis=1)), _entropy(joint.sum(axis=0))
    return h_x + h_y - _entropy(joint.ravel()), h_x, h_y


def q_mi(fused, a, b, *, channel_order: str = "rgb") -> float:
    """Q_MI: normalised mutual information between the fused image and each source (Hossny 2008).

    ``Q_MI = 2 * (MI(A, F) / (H(A) + H(F)) + MI(B, F) / (H(B) + H(F)))`` with entropies and
    mutual information in bits, from histograms of 256 grey levels (luminance rounded to
    0..255).

    Parameters
    ----------
    fused, a, b : array (H, W) or (H, W, C)
        The fused image and its two sources, same height and width; uint8, uint16 or
        float in [0, 1].

    Returns
    -------
    float
        In [0, 2]: 2 when F is a one-to-one relabelling of the grey levels of both sources
        (for example F = A = B), 0 when F is independent of both (for example constant while
        the sources are not). A source and F that are both constant count as fully
        preserved (their term is 1/2 of the maximum).
    """
    lum_f, lum_a, lum_b = _luminances(fused, a, b, channel_order)
    levels_f = _grey_levels(lum_f)
    score = 0.0
    for lum in (lum_a, lum_b):
        mi, h_src, h_f = _mutual_information(_grey_levels(lum), levels_f)
        score += mi / (h_src + h_f) if h_src + h_f > 0 else 0.5
    return float(2.0 * score)


# ------------------------------------------------------------------------------- Q_CB

# Contrast sensitivity function: the difference of Gaussians (Ahumada) of the common
# implementation of Chen and Blum's metric, frequencies in cycles per degree with the image
# spanning size / 30 cycles per degree at Nyquist; local contrast from Gaussians of sigma 2
# and 4 px; contrast masking C' = k C^p / (h C^q + Z).
_CSF_F0, _CSF_F1, _CSF_A = 15.3870, 1.3456, 0.7622
_CB_K, _CB_H, _CB_P, _CB_Q, _CB_Z = 1.0, 1.0, 3.0, 2.0, 1e-4
_CB_SIGMAS = (2.0, 4.0)
_CB_TINY = 1e-12  # masked contrasts below this count as zero (0 / 0 = full preservation)


def _csf_filter(lum):
    h, w = lum.shape
    u = np.fft.fftfreq(w, 0.5)[None, :] * (w / 30.0)
    v = np.fft.fftfreq(h, 0.5)[:, None] * (h / 30.0)
    r = np.sqrt(u * u + v * v)
    csf = np.exp(-(r / _CSF_F0) ** 2) - _CSF_A * np.exp(-(r / _CSF_F1) ** 2)
    return np.fft.ifft2(np.fft.fft2(lum) * csf).real


def _masked_contrast(lum):
    filtered = _csf_filter(lum)
    fine, coarse = (cv2.GaussianBlur(filtered, (31, 31), s, borderType=cv2.BORDER_REFLECT_101)
                    for s in _CB_SIGMAS)
    with np.errstate(divide="ignore", invalid="ignore"):
        contrast = np.abs(np.where(coarse != 0, fine / coarse - 1.0, 0.0))
    return _CB_K * contrast ** _CB_P / (_CB_H * contrast ** _CB_Q + _CB_Z)


def _contrast_preservation(c_src, c_fused):
    hi = np.maximum(c_src, c_fused)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi > _CB_TINY, np.minimum(c_src, c_fused) / hi, 1.0)


def q_cb(fused, a, b, *, channel_order: str = "rgb") -> float:
    """Q_CB: contrast preserved as a human observer sees it (Chen and Blum 2009).

    Each image is filtered by a contrast sensitivity function (a difference of Gaussians
    in frequency), its local contrast is the ratio of two Gaussian blurs (sigma 2 and 4 px)
    minus one, masked as C' = C^3 / (C^2 + 1e-4). Per pixel the preservation of each source
    is min(C'_X, C'_F) / max(C'_X, C'_F), weighted by the saliency
    C'_A^2 / (C'_A^2 + C'_B^2) (resp. B); the score is the mean over the image.

    Parameters
    ----------
    fused, a, b : array (H, W) or (H, W, C)
        The fused image and its two sources, same height and width; uint8, uint16 or
        float in [0, 1].

    Returns
    -------
    float
        In [0, 1]; 1 when F equals both sources (and for constant images, which have no
        contrast to lose).
    """
    lum_f, lum_a, lum_b = _luminances(fused, a, b, channel_order)
    c_f, c_a, c_b = (_masked_contrast(lum) for lum in (lum_f, lum_a, lum_b))
    salience = c_a * c_a + c_b * c_b
    with np.errstate(divide="ignore", invalid="ignore"):
        weight_a = np.where(salience > _CB_TINY ** 2, c_a * c_a / salience, 0.5)
    quality = weight_a * _contrast_preservation(c_a, c_f) + (1.0 - weight_a) * _contrast_preservation(c_b, c_f)
    return float(quality.mean())


def fusion_scores(fused, a, b, *, channel_order: str = "rgb") -> dict:
    """All three metrics: ``{"q_abf": ..., "q_mi": ..., "q_cb": ...}``."""
    return {"q_abf": q_abf(fused, a, b, channel_order=channel_order),
            "q_mi": q_mi(fused, a, b, channel_order=channel_order),
            "q_cb": q_cb(fused, a, b, channel_order=channel_order)}
