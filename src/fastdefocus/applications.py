"""What the defocus map is for: magnification, adaptive enhancement, multi-focus fusion.

- :func:`magnify`: a shallower depth of field. A point blurred by sigma goes to
  ``amount * sigma`` (counted beyond an in-focus level); a few whole-image blurs
  (layers) are blended per pixel.
- :func:`enhance`: unsharp masking whose gain falls with sigma, so what is in
  focus gets crisper and the bokeh (and its noise) is left alone.
- :func:`fuse`: multi-focus fusion of two or more shots of one scene.

Every function takes images as :func:`fastdefocus.ingest.check_image` accepts
them (uint8, uint16 or float in [0, 1]; gray, RGB or RGBA) and returns NumPy
arrays of the input's dtype and shape; alpha passes through untouched. A sigma
map (Gaussian sigma in px, as :class:`fastdefocus.DefocusResult` holds it) may be
given; without one the shipped estimator computes it.

The command line registers ``fastdefocus magnify``, ``enhance`` and ``fuse``
through :func:`add_commands`.
"""
from __future__ import annotations

import math
import numbers
import sys
from pathlib import Path

import cv2
import numpy as np

from .blur import gaussian_blur
from .filters import _as_image, guided_filter
from .ingest import check_image, to_luminance

__all__ = ["magnify", "enhance", "fuse", "add_commands"]


# --------------------------------------------------------------------------- helpers


def _check_number(name: str, value, low: float, inclusive: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r} (type {type(value).__name__})")
    value = float(value)
    if value < low or (not inclusive and value == low):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {low}, got {value}")
    return value


def _check_radius(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0, got {value!r} (type {type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value}")
    return int(value)


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


def _sigma_for(func: str, image, sigma_map, estimator, shape, stride: int = 8) -> np.ndarray:
    """The sigma map to use: the given one (array or DefocusResult), validated, or an estimate
    (by ``estimator``, else by the shipped model at ``stride``, cached)."""
    if sigma_map is None:
        if estimator is None:
            from .estimator import estimate
            return estimate(image, stride=stride).sigma
        return estimator.estimate(image).sigma
    sigma = getattr(sigma_map, "sigma", sigma_map)
    sigma_shape = np.shape(sigma)
    if tuple(sigma_shape) != tuple(shape):
        raise ValueError(f"{func}: sigma_map must have the image's height and width {tuple(shape)}, "
                         f"got shape {tuple(sigma_shape)}")
    return _as_image(func, "sigma_map", sigma, nonnegative=True)


# ------------------------------------------------------------------------- magnify

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
            guide_radius: int = 4, guide_eps: float = 1e-3, max_extra_sigma: float = 32.0) -> np.ndarray:
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
    arr = check_image(image)
    amount = _check_number("amount", amount, 1.0)
    in_focus = _check_number("in_focus", in_focus, 0.0)
    guide_radius = _check_radius("guide_radius", guide_radius)
    guide_eps = _check_number("guide_eps", guide_eps, 0.0, inclusive=False)
    max_extra_sigma = _check_number("max_extra_sigma", max_extra_sigma, 0.0)
    sigma = _sigma_for("magnify", arr, sigma_map, estimator, arr.shape[:2])
    colour, alpha = _split(arr)
    beyond_focus = np.sqrt(np.maximum(sigma * sigma - np.float32(in_focus * in_focus), 0.0)) if in_focus else sigma
    extra = beyond_focus * np.float32(math.sqrt(amount * amount - 1.0))
    if guide_radius > 0 and extra.max() > 0:
        extra = guided_filter(extra, to_luminance(arr), guide_radius, guide_eps)
    extra = np.clip(extra, 0.0, max_extra_sigma)
    # Small ripples of the guided filter must not blur what is in focus.
    extra[extra < 0.05 * _LAYER_FIRST] = 0.0
    layers = _layer_sigmas(float(extra.max()))
    if len(layers) == 1:
        return _merge(colour, alpha, arr)
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
    return _merge(out, alpha, arr)


# -------------------------------------------------------------------------- enhance


def enhance(image, sigma_map=None, amount: float = 1.0, *, estimator=None, radius: float = 1.0,
            sigma_limit: float = 1.5) -> np.ndarray:
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
    arr = check_image(image)
    amount = _check_number("amount", amount, 0.0)
    radius = _check_number("radius", radius, 0.0, inclusive=False)
    sigma_limit = _check_number("sigma_limit", sigma_limit, 0.0, inclusive=False)
    sigma = _sigma_for("enhance", arr, sigma_map, estimator, arr.shape[:2])
    colour, alpha = _split(arr)
    lum = to_luminance(arr)
    detail = lum - gaussian_blur(lum, radius)
    gain = np.float32(0.5 * amount) * (1.0 + np.cos(np.pi * np.minimum(sigma / np.float32(sigma_limit), 1.0)))
    out = colour + (gain * detail)[..., None]
    return _merge(out, alpha, arr)


# ----------------------------------------------------------------------------- fuse

#: Box radii (px) of the local Laplacian energies of the region decision (5 and 15 px windows).
_FOCUS_RADII = (2, 7)
#: Energy floor (luminance^2 units per pixel) inside the logarithm of the energy ratio.
_ENERGY_FLOOR = 1e-5
#: Patch stride of the default estimator of :func:`fuse` (and of ``fastdefocus fuse``).
FUSE_STRIDE = 16


def _laplacian_energy(lum: np.ndarray, radius: int) -> np.ndarray:
    lap = cv2.Laplacian(lum, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    energy = lap * lap
    return cv2.blur(energy, (2 * radius + 1,) * 2, borderType=cv2.BORDER_REFLECT_101) if radius else energy


def _remove_small_regions(labels: np.ndarray, scores: np.ndarray, min_area: int) -> np.ndarray:
    """Give each connected region (4-connected) of one winner that is smaller than ``min_area``
    pixels to the other shot with the highest summed score over it."""
    labels = labels.copy()
    for n in range(scores.shape[0]):
        count, regions, stats, _ = cv2.connectedComponentsWithStats((labels == n).astype(np.uint8),
                                                                    connectivity=4)
        small = stats[:, cv2.CC_STAT_AREA] < min_area
        small[0] = False  # background of the component labelling
        if not small.any():
            continue
        inside = small[regions]
        ids = regions[inside]
        sums = np.stack([np.bincount(ids, weights=s[inside], minlength=count) for s in scores])
        sums[n] = -np.inf
        labels[inside] = sums.argmax(axis=0)[ids]
    return labels


def fuse(images, estimator=None, *, sigma_maps=None, sigma_weight: float = 0.5, band: int = 8,
         radius: int = 8, eps: float = 1e-3, min_region: float = 0.01):
    """Multi-focus fusion: one all-in-focus image from shots of one scene focused differently.

    1. Region decision: per pixel, each shot scores ``sum_r log(E_r + 1e-5) - sigma_weight
       * sigma``, where E_r is the local energy of the Laplacian of its luminance in windows
       of 5 and 15 px and sigma its defocus map (lower sigma wins). The best score wins; a
       winning region smaller than ``min_region`` of the image goes to the runner-up, so
       textureless areas follow their surroundings.
    2. Boundary refinement: the patch-based sigma maps and the 15-px windows both blur the
       decision where focus changes, so within ``band`` px of a change of winner the decision
       is taken again per pixel from the Laplacian energy alone (tiny islands removed).
    3. Seams: each shot's binary decision is smoothed by the guided filter with that shot's
       luminance as guide (``radius``, ``eps``), so transitions follow the image's edges, and
       the weights are normalised to sum to 1.

    Parameters
    ----------
    images : sequence of arrays, at least 2
        Same height, width and channels; uint8, uint16 or float in [0, 1]; gray, RGB or RGBA.
    estimator : DefocusEstimator, optional
        Computes the sigma maps unless ``sigma_maps`` is given. Default: the shipped model at
        stride 16 (the maps only steer region decisions, so the coarse grid suffices: on the
        Lytro pairs it scored the same as stride 8 with a quarter of the patches).
    sigma_maps : sequence of arrays (H, W) or DefocusResults, optional
        Precomputed defocus maps in px, one per image.
    sigma_weight : float, default 0.5
        Score per px of sigma, >= 0 (0 decides by the energies alone). The score sums the
        natural logs of the two energies, so 0.5 makes 1 px of sigma worth a factor
        exp(0.25) = 1.28 in both energies.
    band : int, default 8
        Half-width in px of the strip around decision boundaries that is decided per pixel;
        0 turns the refinement off.
    radius : int, default 8
        Guided filter radius in px of the seams.
    eps : float, default 1e-3
        Guided filter regularisation (luminance^2 units): smaller keeps seams on weaker edges.
    min_region : float, default 0.01
        Smallest area of a region decision, as a fraction of the image.

    Returns
    -------
    fused : numpy.ndarray
        The fused image, shape and dtype of ``images[0]``.
    decision : numpy.ndarray, float32, shape (N, H, W)
        Weight of each shot per pixel, in [0, 1], summing to 1; ``decision.argmax(0)`` is the
        index of the shot that was chosen.

    Raises
    ------
    ValueError
        With fewer than 2 images, or images (or sigma maps) of different sizes.
    TypeError
        For an image of an unsupported type.

    Examples
    --------
    >>> fused, decision = fuse([near_focus, far_focus])  # doctest: +SKIP
    """
    if isinstance(images, np.ndarray) or not hasattr(images, "__len__"):
        raise TypeError("images must be a list or tuple of at least 2 images, got "
                        f"{type(images).__name__}")
    if len(images) < 2:
        raise ValueError(f"fuse needs at least 2 images of the same scene, got {len(images)}")
    arrays = [check_image(im, f"images[{i}]") for i, im in enumerate(images)]
    first = arrays[0]
    for i, arr in enumerate(arrays[1:], start=1):
        if arr.shape != first.shape:
            raise ValueError(f"all images must have the same size and channels: images[0] has shape "
                             f"{first.shape}, images[{i}] has shape {arr.shape}")
    sigma_weight = _check_number("sigma_weight", sigma_weight, 0.0)
    band = _check_radius("band", band)
    radius = _check_radius("radius", radius)
    eps = _check_number("eps", eps, 0.0, inclusive=False)
    min_region = _check_number("min_region", min_region, 0.0)
    if sigma_maps is not None and len(sigma_maps) != len(arrays):
        raise ValueError(f"sigma_maps must hold one map per image ({len(arrays)}), got {len(sigma_maps)}")
    if sigma_weight > 0:
        sigmas = [_sigma_for("fuse", arr, None if sigma_maps is None else sigma_maps[i], estimator, first.shape[:2],
                             stride=FUSE_STRIDE) for i, arr in enumerate(arrays)]
    else:
        sigmas = [np.zeros(first.shape[:2], np.float32)] * len(arrays)

    lums = [to_luminance(arr) for arr in arrays]
    scores = np.stack([sum(np.log(_laplacian_energy(lum, r) + _ENERGY_FLOOR) for r in _FOCUS_RADII)
                       - np.float32(sigma_weight) * sigma for lum, sigma in zip(lums, sigmas)])
    height, width = first.shape[:2]
    labels = scores.argmax(axis=0)
    if min_region > 0:
        labels = _remove_small_regions(labels, scores, int(min_region * height * width))
    if band > 0:
        labels = _refine_boundaries(labels, lums, band, max(1, int(5e-4 * height * width)))
    weights = np.stack([np.clip(guided_filter((labels == n).astype(np.float32), lum, radius, eps), 0.0, 1.0)
                        for n, lum in enumerate(lums)])
    total = weights.sum(axis=0)
    # Where every weight was clipped to 0 (rare), fall back to the hard decision.
    hard = np.stack([(labels == n) for n in range(len(arrays))]).astype(np.float32)
    weights = np.where(total > 1e-6, weights / np.maximum(total, 1e-6), hard)

    fused, alpha = 0.0, None
    for w, arr in zip(weights, arrays):
        colour, shot_alpha = _split(arr)
        fused = fused + colour * w[..., None]
        if shot_alpha is not None:  # alphas mix like colour
            alpha = (0.0 if alpha is None else alpha) + w * (shot_alpha.astype(np.float32) / _scale_of(arr.dtype))
    if alpha is not None:
        alpha = _merge(alpha[..., None], None, first[..., -1:])[..., 0]
    return _merge(fused, alpha, first), weights.astype(np.float32)


def _refine_boundaries(labels: np.ndarray, lums, band: int, min_area: int) -> np.ndarray:
    """Decide again per pixel, by the Laplacian energy, within ``band`` px of a change of winner."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    near = np.zeros(labels.shape, bool)
    for n in range(len(lums)):
        mask = (labels == n).astype(np.uint8)
        near |= cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    if not near.any():
        return labels
    fine = np.stack([np.log(_laplacian_energy(lum, 0) + _ENERGY_FLOOR) for lum in lums])
    refined = np.where(near, fine.argmax(axis=0), labels)
    return _remove_small_regions(refined, fine, min_area)


# ------------------------------------------------------------------------- commands


def _read_sigma_map(path: str) -> np.ndarray:
    """A sigma map written by ``fastdefocus estimate``: .npy, float TIFF, or 16-bit PNG."""
    from .cli import SIGMA_PNG_SCALE
    from .imageio import read_image
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


def _refuse_overwrite(args, *paths) -> bool:
    existing = [str(p) for p in paths if p is not None and Path(p).exists()]
    if existing and not args.force:
        print(f"error: would overwrite {', '.join(existing)}; pass --force to overwrite", file=sys.stderr)
        return True
    return False


def _sigma_or_estimator(args):
    from .cli import _estimator_from
    if args.sigma_map:
        return _read_sigma_map(args.sigma_map), None
    return None, _estimator_from(args)


def _cmd_magnify(args) -> int:
    from .imageio import read_image, write_image
    if _refuse_overwrite(args, args.output):
        return 2
    image = read_image(args.image)
    sigma, est = _sigma_or_estimator(args)
    out = magnify(image, sigma, amount=args.amount, in_focus=args.in_focus, estimator=est)
    write_image(args.output, out, force=args.force)
    print(f"{args.image}: defocus x{args.amount:g} -> {args.output}")
    return 0


def _cmd_enhance(args) -> int:
    from .imageio import read_image, write_image
    if _refuse_overwrite(args, args.output):
        return 2
    image = read_image(args.image)
    sigma, est = _sigma_or_estimator(args)
    out = enhance(image, sigma, amount=args.amount, estimator=est, radius=args.radius,
                  sigma_limit=args.sigma_limit)
    write_image(args.output, out, force=args.force)
    print(f"{args.image}: enhanced (amount {args.amount:g}, sharpening stops at sigma "
          f"{args.sigma_limit:g} px) -> {args.output}")
    return 0


def _cmd_fuse(args) -> int:
    from .cli import _estimator_from
    from .imageio import read_image, write_image
    if _refuse_overwrite(args, args.output, args.decision):
        return 2
    images = [read_image(path) for path in args.images]
    est = _estimator_from(args) if args.sigma_weight > 0 else None
    fused, decision = fuse(images, est, sigma_weight=args.sigma_weight)
    write_image(args.output, fused, force=args.force)
    message = f"fused {len(images)} images -> {args.output}"
    if args.decision:
        # Grey level of the chosen shot: 0 for the first, 255 for the last.
        index = decision.argmax(axis=0).astype(np.float32)
        write_image(args.decision, np.rint(index * 255.0 / (len(images) - 1)).astype(np.uint8), force=args.force)
        message += f", decision map -> {args.decision}"
    print(message)
    return 0


def add_commands(subparsers) -> None:
    """Register ``magnify``, ``enhance`` and ``fuse`` on the CLI's subparsers
    (``argparse._SubParsersAction``), each with the estimator options of ``estimate``."""
    from .cli import _add_estimator_options

    p = subparsers.add_parser("magnify", help="shallower depth of field: blur what is blurred more",
                              description="Multiply the defocus blur of every pixel by --amount (in-focus "
                                          "pixels stay sharp) and write the image.")
    p.add_argument("image", help="image file")
    p.add_argument("-o", "--output", required=True, help="output image file (.png, .tif, .jpg)")
    p.add_argument("--amount", type=float, default=2.0, help="blur multiplier >= 1 (default 2)")
    p.add_argument("--in-focus", type=float, default=0.7,
                   help="sigma in px counted as in focus; the blur beyond it is multiplied (default 0.7)")
    p.add_argument("--sigma-map", default=None,
                   help="defocus map from `fastdefocus estimate` (.tiff, .npy or _sigma16.png) instead of "
                        "estimating it")
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_magnify)

    p = subparsers.add_parser("enhance", help="sharpen the in-focus parts, leave the bokeh alone",
                              description="Unsharp masking whose gain falls with the defocus sigma and is zero "
                                          "from --sigma-limit on.")
    p.add_argument("image", help="image file")
    p.add_argument("-o", "--output", required=True, help="output image file")
    p.add_argument("--amount", type=float, default=1.0, help="sharpening strength >= 0 (default 1)")
    p.add_argument("--radius", type=float, default=1.0, help="unsharp-mask Gaussian sigma in px (default 1)")
    p.add_argument("--sigma-limit", type=float, default=1.5,
                   help="defocus sigma in px from which pixels are left untouched (default 1.5)")
    p.add_argument("--sigma-map", default=None, help="defocus map from `fastdefocus estimate`")
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_enhance)

    p = subparsers.add_parser("fuse", help="all-in-focus image from shots focused differently",
                              description="Multi-focus fusion of two or more same-size shots of one scene. "
                                          f"Here --stride defaults to {FUSE_STRIDE}: the defocus maps only "
                                          "steer region decisions.")
    p.add_argument("images", nargs="+", help="two or more image files of the same size")
    p.add_argument("-o", "--output", required=True, help="fused image file")
    p.add_argument("--decision", default=None,
                   help="also write the decision map here (grey level of the chosen shot, first = 0, last = 255)")
    p.add_argument("--sigma-weight", type=float, default=0.5,
                   help="weight of the defocus maps against the Laplacian energy (default 0.5; 0: energy only)")
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_fuse, stride=FUSE_STRIDE)
