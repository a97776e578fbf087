"""A degradation model of real cameras for the training generator.

The label of a training patch is the blur of the *lens* (the equivalent Gaussian sigma of its
point-spread function, in pixels). Everything a camera does after the lens -- the colour filter
array and its demosaicing, photon and read noise, the tone curve, in-camera sharpening, JPEG,
and a user's downscale -- changes how a patch looks but not its label, so the classifier learns
to see through it: a sharp but noisy phone patch reads sharp, a blurred then sharpened one reads
blurred.

Order, as in a camera: scene (sRGB source, made linear) -> lens PSF (in linear light) ->
exposure -> Bayer mosaic -> Poisson-Gaussian noise -> demosaic -> tone curve (back to sRGB) ->
sharpening -> 8 bits -> JPEG (colour, 4:2:0) -> luminance (the estimator's luma weights).

Lens PSFs, all scaled to the drawn sigma by their second moment (sigma^2 = (var_x + var_y) / 2,
so a uniform disc of radius R is sigma R / 2 as everywhere in the project): Gaussian, uniform
disc, disc with a soft edge, disc with a bright rim (over-corrected spherical aberration, the
"soap bubble" bokeh), cat-eye (a disc clipped by a second, offset disc: vignetting at the
frame's edges), and mild aberration (an elliptical Gaussian, astigmatism).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fastdefocus.blur import gaussian_blur, gaussian_kernel1d

PSF_NAMES = ("gaussian", "disc", "soft_disc", "rim_disc", "cat_eye", "astigmatic")
#: Rec. 601 luma, the weights the estimator's ingest uses.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class CameraConfig:
    """Probabilities and ranges of the camera model (each draw is independent per patch)."""
    psf_probs: tuple = (0.35, 0.2, 0.1, 0.1, 0.1, 0.15)
    #: share of patches through the full camera (mosaic, noise, demosaic, sharpening, JPEG);
    #: the rest see an ideal lens on area-integrating pixels with mild noise and JPEG only.
    camera_prob: float = 0.75
    #: photons at full scale, log-uniform (high ISO ~ 100, base ISO ~ 10,000)
    full_well: tuple = (150.0, 12000.0)
    read_noise: tuple = (0.0, 0.004)
    exposure: tuple = (0.35, 1.0)
    sharpen_prob: float = 0.45
    sharpen_amount: tuple = (0.2, 1.6)
    sharpen_radius: tuple = (0.5, 1.5)
    jpeg_prob: float = 0.75
    jpeg_quality: tuple = (55, 97)
    #: share of patches rendered at twice the size and area-downscaled by 2 at the end
    #: (a photo the user downscaled: its demosaicing and JPEG traces shrink too)
    downscale_prob: float = 0.3


def _second_moment_sigma(kernel: np.ndarray) -> float:
    h, w = kernel.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    k = kernel / kernel.sum()
    my, mx = (k * y).sum(), (k * x).sum()
    return math.sqrt(0.5 * ((k * (y - my) ** 2).sum() + (k * (x - mx) ** 2).sum()))


def _shape_kernel(name: str, radius: float, params: dict, supersample: int = 8) -> np.ndarray:
    """A PSF of the given shape and outer radius, integrated over each pixel (supersampled)."""
    half = int(math.ceil(radius)) + 1
    n = 2 * half + 1
    off = (np.arange(n * supersample) + 0.5) / supersample - (half + 0.5)
    yy, xx = np.meshgrid(off, off, indexing="ij")
    r = np.sqrt(xx * xx + yy * yy) / radius
    if name == "disc":
        val = (r <= 1.0).astype(np.float64)
    elif name == "soft_disc":
        edge = params["edge"]  # the edge ramps down over the outer `edge` of the radius
        val = np.clip((1.0 - r) / edge, 0.0, 1.0)
    elif name == "rim_disc":
        val = (r <= 1.0) * (1.0 + params["rim"] * r ** 4)
    elif name == "cat_eye":
        dx, dy = params["offset"] * radius * math.cos(params["angle"]), params["offset"] * radius * math.sin(params["angle"])
        r2 = np.sqrt((xx - dx) ** 2 + (yy - dy) ** 2) / radius
        val = ((r <= 1.0) & (r2 <= 1.0)).astype(np.float64)
    else:
        raise ValueError(f"unknown PSF shape {name!r}")
    kernel = val.reshape(n, supersample, n, supersample).sum(axis=(1, 3))
    return kernel / kernel.sum()


def psf_kernel(name: str, sigma: float, rng: np.random.Generator) -> np.ndarray | None:
    """A 2-D PSF of ``name`` whose equivalent Gaussian sigma is ``sigma`` (float64, sums to 1).

    ``None`` for the isotropic Gaussian (applied separably by the caller). Shapes that a pixel
    grid cannot resolve (outer radius under 1 px) fall back to the Gaussian too.
    """
    if name == "gaussian" or sigma <= 0:
        return None
    if name == "astigmatic":
        ratio = rng.uniform(1.0, 1.6)  # sigma_major / sigma_minor
        minor = sigma * math.sqrt(2.0 / (1.0 + ratio * ratio))
        major = ratio * minor
        if minor < 0.3:
            return None
        angle = rng.uniform(0, math.pi)
        half = int(math.ceil(4 * major + 1))
        ky, kx = gaussian_kernel1d(major), gaussian_kernel1d(minor)
        size = 2 * half + 1
        base = np.zeros((size, size))
        cy = (len(ky) - 1) // 2
        cx = (len(kx) - 1) // 2
        block = np.outer(ky, kx)
        base[half - cy:half + cy + 1, half - cx:half + cx + 1] = block
        rot = cv2.getRotationMatrix2D((half, half), math.degrees(angle), 1.0)
        kernel = cv2.warpAffine(base, rot, (size, size), flags=cv2.INTER_LINEAR)
        kernel = np.maximum(kernel, 0)
        return kernel / kernel.sum()
    params = {"edge": rng.uniform(0.3, 0.8), "rim": rng.uniform(0.8, 3.0),
              "offset": rng.uniform(0.3, 0.9), "angle": rng.uniform(0, 2 * math.pi)}
    radius = 2.0 * sigma  # a first guess (exact for the uniform disc), rescaled by the moment
    if radius < 1.0:
        return None
    unit = _shape_kernel(name, radius, params)
    radius *= sigma / max(_second_moment_sigma(unit), 1e-6)
    if radius < 1.0:
        return None
    return _shape_kernel(name, radius, params)


def apply_psf(image: np.ndarray, sigma: float, kernel: np.ndarray | None) -> np.ndarray:
    """Blur (H, W) or (H, W, C) float32 linear light with the PSF (reflect-101 borders)."""
    if sigma <= 0:
        return image.astype(np.float32, copy=True)
    if kernel is None:
        return gaussian_blur(image, sigma)
    return cv2.filter2D(image.astype(np.float32, copy=False), cv2.CV_32F, kernel.astype(np.float32),
                        borderType=cv2.BORDER_REFLECT_101)


def psf_margin(sigma: float, kernel: np.ndarray | None) -> int:
    """Pixels blurred around a patch before it is cut: the kernel's reach (3 sigma for the
    Gaussian) plus 4 px for demosaicing, sharpening and JPEG blocks."""
    reach = int(math.ceil(3 * sigma)) if kernel is None else kernel.shape[0] // 2
    return reach + 4


def to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.power(np.clip(srgb, 0.0, 1.0), 2.2, dtype=np.float32)


def mosaic_noise_demosaic(linear_rgb: np.ndarray, cfg: CameraConfig, rng: np.random.Generator) -> np.ndarray:
    """Bayer RGGB sampling, Poisson-Gaussian noise, and demosaicing (bilinear or edge-aware)
    of linear RGB (H, W, 3) float32; returns linear RGB."""
    h, w, _ = linear_rgb.shape
    raw = np.empty((h, w), np.float32)
    raw[0::2, 0::2] = linear_rgb[0::2, 0::2, 0]
    raw[0::2, 1::2] = linear_rgb[0::2, 1::2, 1]
    raw[1::2, 0::2] = linear_rgb[1::2, 0::2, 1]
    raw[1::2, 1::2] = linear_rgb[1::2, 1::2, 2]
    exposure = rng.uniform(*cfg.exposure)
    full_well = math.exp(rng.uniform(math.log(cfg.full_well[0]), math.log(cfg.full_well[1])))
    electrons = rng.poisson(np.clip(raw * exposure, 0, 1) * full_well).astype(np.float32)
    raw = electrons / full_well + rng.normal(0, rng.uniform(*cfg.read_noise), raw.shape).astype(np.float32)
    raw = np.clip(raw / exposure, 0.0, 1.0)
    raw16 = (raw * 65535.0 + 0.5).astype(np.uint16)
    # OpenCV names the pattern by the 2x2 block starting at the second row and column
    code = cv2.COLOR_BayerBG2RGB_EA if rng.uniform() < 0.6 else cv2.COLOR_BayerBG2RGB
    return cv2.cvtColor(raw16, code).astype(np.float32) / 65535.0


def sharpen(rgb: np.ndarray, cfg: CameraConfig, rng: np.random.Generator) -> np.ndarray:
    """Unsharp mask, as phone pipelines apply it: halos, no change of the lens blur label."""
    amount = rng.uniform(*cfg.sharpen_amount)
    radius = rng.uniform(*cfg.sharpen_radius)
    return rgb + amount * (rgb - gaussian_blur(rgb, radius))


def luminance_u8(rgb8: np.ndarray) -> np.ndarray:
    r, g, b = (rgb8[..., i].astype(np.float32) for i in range(3))
    return np.clip(LUMA[0] * r + LUMA[1] * g + LUMA[2] * b + 0.5, 0, 255).astype(np.uint8)


def render(crop_srgb: np.ndarray, sigma: float, kernel: np.ndarray | None, cfg: CameraConfig,
           rng: np.random.Generator) -> np.ndarray:
    """Photograph a sharp sRGB crop (H, W, 3) float32 in [0, 1] through a lens of ``sigma`` with
    PSF ``kernel`` (from :func:`psf_kernel`; None: the Gaussian) and a camera drawn from ``cfg``.
    Returns the uint8 luminance (H, W)."""
    linear = apply_psf(to_linear(crop_srgb), sigma, kernel)
    if rng.uniform() < cfg.camera_prob:
        linear = mosaic_noise_demosaic(linear, cfg, rng)
        gamma = rng.uniform(2.0, 2.5)
        srgb = np.power(np.clip(linear, 0, 1), 1.0 / gamma)
        if rng.uniform() < cfg.sharpen_prob:
            srgb = sharpen(srgb, cfg, rng)
    else:
        srgb = np.power(np.clip(linear, 0, 1), 1.0 / 2.2)
        noise = rng.choice([0.0, 0.0, 0.002, 0.005, 0.01])
        if noise > 0:
            srgb = srgb + rng.normal(0, noise, srgb.shape).astype(np.float32)
    rgb8 = np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.uniform() < cfg.jpeg_prob:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
        rgb8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return luminance_u8(rgb8)
