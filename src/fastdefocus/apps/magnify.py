"""Defocus magnification: a shallower depth of field from one photo and its defocus map."""
from __future__ import annotations

import math

import cv2
import numpy as np

from fastdefocus._validate import check_channel_order, check_image, check_float, to_rgb_order, check_int
from fastdefocus.apps._common import _in_order, _split, _merge, _sigma_for
from fastdefocus.blur import gaussian_blur
from fastdefocus.stages.filters import guided_filter
from fastdefocus.stages.ingest import to_luminance


#: Extra-blur layers: 0, then geometric steps of sqrt(2) from 0.5 px; per pixel the two
#: layers around its extra sigma are mixed linearly in variance.
_LAYER_FIRST, _LAYER_RATIO = 0.5, math.sqrt(2.0)


def _layer_sigmas(largest: float) -> np.ndarray:
    sigmas = [0.0]
    s = _LAYER_FIRST
    while sigmas[-1] < largest:
        sigmas.append(s)
        s *= _LAYER_RATIO
    return np.array(sigmas)


def _large_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, computed on a 2^k times smaller image when sigma is large (>= 4 px).

    Area downsampling by f and bilinear upsampling add a variance of about (f^2 - 1) / 4 px^2,
    taken out of the blur done at the small scale, which stays >= 2 px there."""
    factor = 1
    while sigma / (2 * factor) >= 2.0:
        factor *= 2
    if factor == 1:
        return gaussian_blur(image, sigma)
    h, w = image.shape[:2]
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor
    pad = ((0, ph - h), (0, pw - w)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect") if (ph, pw) != (h, w) else image
    small = cv2.resize(padded, (pw // factor, ph // factor), interpolation=cv2.INTER_AREA)
    small_sigma = math.sqrt(sigma * sigma - (factor * factor - 1) / 4.0) / factor
    big = cv2.resize(gaussian_blur(small, small_sigma), (pw, ph), interpolation=cv2.INTER_LINEAR)
    return big.reshape(padded.shape)[:h, :w]


def _normalised_blur(colour: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``colour`` that only gathers from pixels where ``mask`` is on
    (normalised convolution), so sharp foreground does not bleed into blurred background."""
    stacked = np.concatenate([colour * mask[..., None], mask[..., None]], axis=2)
    blurred = _large_blur(stacked, sigma)
    weight = blurred[..., -1:]
    np.maximum(weight, np.float32(1e-4), out=weight)
    return blurred[..., :-1] / weight


def magnify(image, sigma_map=None, amount: float = 2.0, *, in_focus: float = 0.7, estimator=None,
            guide_radius: int = 4, guide_eps: float = 1e-3, max_extra_sigma: float = 32.0,
            channel_order: str = "rgb") -> np.ndarray:
    """Defocus magnification: a shallower depth of field from one photo and its defocus map.

    With ``in_focus=0`` a point blurred by sigma ``s`` comes out blurred by ``amount * s``:
    it receives an extra Gaussian blur of ``s * sqrt(amount**2 - 1)``. What is sharp
    (s = 0) stays exactly as it was; everything else gets more blurred, monotonically in
    ``s``. A sigma map estimated from a photo puts in-focus parts at a few tenths of a
    pixel rather than 0, so by default the blur beyond ``in_focus`` (in quadrature) is
    what gets multiplied: ``sqrt(out**2 - t**2) = amount * sqrt(s**2 - t**2)`` with
    ``t = in_focus``, and pixels with ``s <= t`` are left as they are.

    The extra-blur map is first guided-filtered with the image luminance as guide, so its
    steps sit on the image's edges. The image is then blurred by a few fixed amounts
    (0, then 0.5 px and steps of sqrt(2)); each pixel mixes the two layers around its own
    extra sigma. Every layer only gathers from pixels that are themselves blurred at least
    half as much as the layer (normalised convolution), so a sharp subject does not smear
    into the background around it: no dark or bright halos.

    Parameters
    ----------
    image : array (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA
        uint8, uint16, or float in [0, 1]; alpha passes through.
    sigma_map : array (H, W) or DefocusResult, optional
        Defocus sigma in px, >= 0, finite. Estimated with ``estimator`` (the shipped
        model by default) when omitted.
    amount : float, default 2.0
        Blur multiplier, >= 1 (1 returns the image unchanged).
    in_focus : float, default 0.7
        Sigma in px counted as in focus, >= 0 (0: the plain law ``s -> amount * s``).
    estimator : DefocusEstimator, optional
        Used when ``sigma_map`` is omitted.
    guide_radius : int, default 4
        Radius in px of the guided filter that aligns the extra-blur map with the image
        edges; 0 uses the map as given.
    guide_eps : float, default 1e-3
        Its regularisation (luminance^2 units).
    max_extra_sigma : float, default 32.0
        Cap of the extra blur in px (bounds the cost of the largest layer).
    channel_order : {"rgb", "bgr"}, default "rgb"
        The order of the image's colour channels ("bgr": OpenCV's); the result comes back
        in the same order.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.

    Raises
    ------
    TypeError, ValueError
        For an invalid image, a sigma map of another size or with negative or non-finite
        values, or ``amount < 1``.

    Examples
    --------
    >>> from fastdefocus.scenes import demo_scene
    >>> blurred, sigma, _ = demo_scene()
    >>> magnify(blurred, sigma, amount=2.0).shape == blurred.shape
    True
    """
    order = check_channel_order(channel_order)
    arr = to_rgb_order(check_image(image), order)
    amount = check_float("amount", amount, 1.0)
    in_focus = check_float("in_focus", in_focus, 0.0)
    guide_radius = check_int("guide_radius", guide_radius, 0)
    guide_eps = check_float("guide_eps", guide_eps, 0.0, inclusive=False)
    max_extra_sigma = check_float("max_extra_sigma", max_extra_sigma, 0.0)
    sigma = _sigma_for("magnify", arr, sigma_map, estimator, arr.shape[:2])
    colour, alpha = _split(arr)
    beyond_focus = np.sqrt(np.maximum(sigma * sigma - np.float32(in_focus * in_focus), 0.0)) if in_focus else sigma
    extra = beyond_focus * np.float32(math.sqrt(amount * amount - 1.0))
    if guide_radius > 0 and extra.max() > 0:
        extra = guided_filter(to_luminance(arr), extra, guide_radius, guide_eps)
    extra = np.clip(extra, 0.0, max_extra_sigma)
    # Small ripples of the guided filter must not blur what is in focus.
    extra[extra < 0.05 * _LAYER_FIRST] = 0.0
    layers = _layer_sigmas(float(extra.max()))
    if len(layers) == 1:
        return _in_order(_merge(colour, alpha, arr), order)
    upper = np.clip(np.searchsorted(layers, extra, side="right"), 1, len(layers) - 1)
    lo_var, hi_var = layers[upper - 1] ** 2, layers[upper] ** 2
    frac = np.clip((extra.astype(np.float64) ** 2 - lo_var) / (hi_var - lo_var), 0.0, 1.0).astype(np.float32)
    out = np.zeros_like(colour)
    zero = np.float32(0.0)
    for k, s in enumerate(layers):
        weight = np.where(upper == k, frac, zero) + np.where(upper - 1 == k, 1.0 - frac, zero)
        if not weight.any():
            continue
        if s == 0:
            layer = colour
        else:
            gather = np.clip((extra - np.float32(0.5 * s)) / np.float32(0.5 * s), 0.0, 1.0)
            layer = _normalised_blur(colour, gather, s)
        out += layer * weight[..., None]
    return _in_order(_merge(out, alpha, arr), order)


# -------------------------------------------------------------------------- enhance
