"""Helpers shared by the applications: checks, colour/alpha split, the sigma map to use."""
from __future__ import annotations

import math
import numbers

import cv2
import numpy as np

from fastdefocus._validate import check_float, check_image, check_int, to_rgb_order
from fastdefocus.blur import gaussian_blur
from fastdefocus.stages.filters import _as_image, guided_filter
from fastdefocus.stages.ingest import to_luminance


def _scale_of(dtype) -> float:
    """Full-scale value of an image dtype (what 1.0 means)."""
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    return 255.0


def _split(arr: np.ndarray):
    """Image -> (colour float32 (H, W, C) in [0, 1] with C in {1, 3}, alpha or None)."""
    x = arr.astype(np.float32) / np.float32(_scale_of(arr.dtype))
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] in (2, 4):  # gray + alpha, RGB + alpha
        return np.ascontiguousarray(x[..., :-1]), arr[..., -1]
    return np.ascontiguousarray(x), None


def _merge(colour: np.ndarray, alpha, like: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_split`: back to the dtype and shape of ``like``."""
    colour = np.clip(colour, 0.0, 1.0)
    if np.issubdtype(like.dtype, np.floating):
        out = colour.astype(like.dtype)
    else:
        out = np.rint(colour * _scale_of(like.dtype)).astype(like.dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha[..., None].astype(out.dtype)], axis=2)
    return out[..., 0] if like.ndim == 2 else out


def _in_order(image: np.ndarray, channel_order: str) -> np.ndarray:
    """An RGB(A) result back in the caller's channel order ("bgr": BGR(A)), C-contiguous."""
    return image if channel_order == "rgb" else np.ascontiguousarray(to_rgb_order(image, channel_order))


def _sigma_for(func: str, image, sigma_map, estimator, shape, stride: int = 8) -> np.ndarray:
    """The sigma map to use: the given one (array or DefocusResult), validated, or an estimate
    (by ``estimator``, else by the shipped model at ``stride``, cached)."""
    if sigma_map is None:
        if estimator is None:
            from fastdefocus.estimator import estimate
            return estimate(image, stride=stride).sigma
        return estimator.estimate(image).sigma
    sigma = getattr(sigma_map, "sigma", sigma_map)
    sigma_shape = np.shape(sigma)
    if tuple(sigma_shape) != tuple(shape):
        raise ValueError(f"{func}: sigma_map must have the image's height and width {tuple(shape)}, "
                         f"got shape {tuple(sigma_shape)}")
    return _as_image(func, "sigma_map", sigma, nonnegative=True)
