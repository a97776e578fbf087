"""Adaptive enhancement: unsharp masking whose gain falls with the defocus sigma."""
from __future__ import annotations

import math

import cv2
import numpy as np

from fastdefocus._validate import check_channel_order, check_image, check_float, to_rgb_order
from fastdefocus.apps._common import _in_order, _split, _merge, _sigma_for
from fastdefocus.blur import gaussian_blur
from fastdefocus.stages.ingest import to_luminance


def enhance(image, sigma_map=None, amount: float = 1.0, *, estimator=None, radius: float = 1.0,
            sigma_limit: float = 1.5, channel_order: str = "rgb") -> np.ndarray:
    """Adaptive enhancement: sharpen what is in focus, leave the out-of-focus parts alone.

    Unsharp masking of the luminance detail, ``out = image + gain * (L - G_radius * L)``
    (the same detail added to every colour channel, so hues do not shift), with a gain
    that falls smoothly with the defocus sigma::

        gain = amount * (1 + cos(pi * min(sigma / sigma_limit, 1))) / 2

    full at sigma 0, half at ``sigma_limit / 2``, and exactly zero from ``sigma_limit`` on:
    bokeh and the noise in it are not amplified.

    Parameters
    ----------
    image : array (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA
        uint8, uint16, or float in [0, 1]; alpha passes through.
    sigma_map : array (H, W) or DefocusResult, optional
        Defocus sigma in px, >= 0. Estimated when omitted.
    amount : float, default 1.0
        Strength, >= 0 (1 doubles the fine detail of sharp regions; 0 returns the image).
    estimator : DefocusEstimator, optional
        Used when ``sigma_map`` is omitted.
    radius : float, default 1.0
        Sigma in px of the Gaussian whose residual is the detail that gets amplified, > 0.
    sigma_limit : float, default 1.5
        Defocus sigma in px from which pixels are left untouched, > 0.
    channel_order : {"rgb", "bgr"}, default "rgb"
        The order of the image's colour channels ("bgr": OpenCV's); the result comes back
        in the same order.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image`` (values clipped to the dtype's range).

    Examples
    --------
    >>> from fastdefocus.scenes import demo_scene
    >>> blurred, sigma, _ = demo_scene()
    >>> enhance(blurred, sigma).dtype
    dtype('uint8')
    """
    order = check_channel_order(channel_order)
    arr = to_rgb_order(check_image(image), order)
    amount = check_float("amount", amount, 0.0)
    radius = check_float("radius", radius, 0.0, inclusive=False)
    sigma_limit = check_float("sigma_limit", sigma_limit, 0.0, inclusive=False)
    sigma = _sigma_for("enhance", arr, sigma_map, estimator, arr.shape[:2])
    colour, alpha = _split(arr)
    lum = to_luminance(arr)
    detail = lum - gaussian_blur(lum, radius)
    gain = np.float32(0.5 * amount) * (1.0 + np.cos(np.pi * np.minimum(sigma / np.float32(sigma_limit), 1.0)))
    out = colour + (gain * detail)[..., None]
    return _in_order(_merge(out, alpha, arr), order)
