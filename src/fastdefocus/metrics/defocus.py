"""Quality metrics for defocus maps against known truth.

Two kinds of truth:

- Exact sigma maps (synthetic scenes, SYNDOF): :func:`map_errors` (MAE, RMSE, bias,
  share within 0.5 px, Spearman), with :func:`boundary_mask` and :func:`textured_mask`
  to split the pixels.
- Binary defocus blur detection masks (CUHK, DUT; white = in focus): the protocol of
  the recent literature (Zhao et al., "Defocus blur detection via multi-stream
  bottom-top-bottom network", and the salient-object evaluation code it follows).
  Score maps and masks are resized to 320 x 320; :func:`fbeta_curve` gives F-beta
  (beta^2 = 0.3) at the 256 thresholds of the uint8-quantised map (its dataset mean's
  maximum is "F-beta max"), :func:`fbeta_adaptive` at the adaptive threshold
  ``min(2 * mean(score), 1)``, :func:`mae` the mean absolute difference of the score
  map and the mask. :func:`in_focus_score` turns a sigma map into the score those
  metrics expect with one fixed mapping for every image, so that the adaptive
  threshold and the MAE keep a meaning.
"""
from __future__ import annotations

import cv2
import numpy as np

from fastdefocus._params import IN_FOCUS_SIGMA

#: F-beta weight of precision used by the defocus blur detection literature.
BETA2 = 0.3
#: Side of the square both maps are resized to before scoring.
DBD_SIZE = 320
#: Logistic width (px): the score is 0.88 at 0.5 px and 0.12 at 1.5 px.
IN_FOCUS_WIDTH = 0.25


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


# --------------------------------------------------------------------- detection masks


def in_focus_score(sigma: np.ndarray, threshold: float = IN_FOCUS_SIGMA, width: float = IN_FOCUS_WIDTH) -> np.ndarray:
    """In-focus score in (0, 1) of a sigma map: ``1 / (1 + exp((sigma - threshold) / width))``.

    The same mapping for every image (no per-image rescaling), so a score of 0.5 always
    means ``sigma == threshold`` px.

    Parameters
    ----------
    sigma : array (H, W)
        Gaussian blur sigma in px (as ``DefocusResult.sigma``).
    threshold, width : float
        Centre and width of the logistic, in px; ``width > 0``.

    Returns
    -------
    float32 (H, W), 1 = sharp.
    """
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    z = (np.asarray(sigma, np.float64) - float(threshold)) / float(width)
    return (0.5 * (1.0 - np.tanh(0.5 * z))).astype(np.float32)  # the logistic, without overflow


def binary_mask(mask: np.ndarray, level: int = 128) -> np.ndarray:
    """Boolean in-focus mask from a grey or colour mask image (white = in focus):
    values >= ``level`` (uint8 scale; float masks in [0, 1] are scaled by 255)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype == bool:
        return m.copy()
    if np.issubdtype(m.dtype, np.floating):
        m = m * 255.0
    return m >= level


def _check_score(score: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(score, np.float32)
    truth = np.asarray(truth, bool)
    if score.shape != truth.shape:
        raise ValueError(f"score map and mask must have the same shape, got {score.shape} and {truth.shape} "
                         f"(resize both with resize_for_dbd first)")
    if score.size and not np.isfinite(score).all():
        raise ValueError("score map must hold finite values in [0, 1], got NaN or infinity")
    if score.size and (score.min() < 0 or score.max() > 1):
        raise ValueError(f"score map must hold values in [0, 1], got range [{score.min():.3g}, {score.max():.3g}]")
    return score, truth


def resize_for_dbd(score: np.ndarray, mask: np.ndarray, size: int = DBD_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Both maps at ``size`` x ``size``: the score bilinearly (clipped to [0, 1]), the mask
    image bilinearly then thresholded at 128 (:func:`binary_mask`)."""
    score = np.asarray(score, np.float32)
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    if mask.ndim == 3:
        mask = mask[..., 0]
    if score.shape != (size, size):
        score = cv2.resize(score, (size, size), interpolation=cv2.INTER_LINEAR)
    if mask.shape != (size, size):
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(score, 0.0, 1.0), binary_mask(mask)


def _fbeta(tp, fp, fn, beta2: float):
    tp, fp, fn = (np.asarray(x, np.float64) for x in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f = np.where(precision + recall > 0,
                     (1 + beta2) * precision * recall / (beta2 * precision + recall), 0.0)
    return f


def fbeta_curve(score: np.ndarray, truth: np.ndarray, beta2: float = BETA2) -> np.ndarray:
    """F-beta of ``score >= t / 255`` against ``truth`` for t = 0 .. 255 (float64, 256 values).

    ``score`` in [0, 1] is quantised to uint8 first (``round(255 * score)``), as the
    evaluation code of the literature does. Precision is 0 where nothing is predicted,
    recall 0 where the mask is empty, and F 0 where both are 0.
    """
    score, truth = _check_score(score, truth)
    q = np.rint(score * 255.0).astype(np.int64).ravel()
    t = truth.ravel()
    pos_hist = np.bincount(q[t], minlength=256)
    neg_hist = np.bincount(q[~t], minlength=256)
    # predicted positive at threshold k: q >= k
    tp = np.cumsum(pos_hist[::-1])[::-1]
    fp = np.cumsum(neg_hist[::-1])[::-1]
    fn = int(t.sum()) - tp
    return _fbeta(tp, fp, fn, beta2)


def fbeta_adaptive(score: np.ndarray, truth: np.ndarray, beta2: float = BETA2) -> float:
    """F-beta of ``score >= min(2 * mean(score), 1)`` against ``truth``.

    As in the literature's code, an all-zero map has threshold 0 and predicts every pixel
    in focus."""
    score, truth = _check_score(score, truth)
    pred = score >= min(2.0 * float(score.mean()), 1.0)
    tp = np.count_nonzero(pred & truth)
    fp = np.count_nonzero(pred & ~truth)
    fn = np.count_nonzero(~pred & truth)
    return float(_fbeta(tp, fp, fn, beta2))


def mae(score: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute difference of a [0, 1] score map and a binary mask."""
    score, truth = _check_score(score, truth)
    return float(np.abs(score.astype(np.float64) - truth).mean())


def dbd_scores(score: np.ndarray, mask: np.ndarray, size: int = DBD_SIZE) -> dict:
    """All detection metrics of one image: ``{"fbeta_curve", "fbeta_max", "fbeta_adaptive", "mae"}``
    after :func:`resize_for_dbd`. ``score`` is in [0, 1] with 1 = in focus; ``mask`` a mask
    image (white = in focus) or a boolean mask."""
    score, truth = resize_for_dbd(score, mask, size)
    curve = fbeta_curve(score, truth)
    return {"fbeta_curve": curve, "fbeta_max": float(curve.max()),
            "fbeta_adaptive": fbeta_adaptive(score, truth), "mae": mae(score, truth)}


def summarise_dbd(rows: list[dict]) -> dict:
    """Dataset figures from per-image :func:`dbd_scores`: F-beta max is the maximum of the
    mean F-beta curve (one threshold for the whole set); adaptive F-beta and MAE are means."""
    if not rows:
        return {"n": 0}
    mean_curve = np.mean([r["fbeta_curve"] for r in rows], axis=0)
    return {"n": len(rows), "fbeta_max": float(mean_curve.max()),
            "fbeta_max_threshold": int(mean_curve.argmax()),
            "fbeta_adaptive": float(np.mean([r["fbeta_adaptive"] for r in rows])),
            "mae": float(np.mean([r["mae"] for r in rows]))}
