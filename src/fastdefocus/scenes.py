"""Synthetic scenes with known defocus: sharp procedural images and spatially varying blur.

Used by the demo command, the tests and the quality benchmark, so that the
truth is exact and nothing depends on outside data.
"""
from __future__ import annotations

import cv2
import numpy as np

from fastdefocus.blur import gaussian_blur


def dead_leaves(rng: np.random.Generator, size: int = 256, colour: bool = False,
                supersample: int = 1) -> np.ndarray:
    """Dead-leaves image: occluding discs with power-law radii (p(r) ~ r^-3), random
    grey levels (or colours), some filled with sharp texture. Perfectly sharp by construction.

    ``supersample`` s > 1 renders the same kind of scene at s times the resolution and
    area-averages it down: each pixel integrates its area as a camera's pixel does, so the
    image is as sharp as an ideal lens on a real sensor (1: point-sampled, aliased edges).

    Returns float32 in [0, 1], (size, size) or (size, size, 3) when ``colour``.
    """
    ss = int(supersample)
    if ss < 1:
        raise ValueError(f"supersample must be an integer >= 1, got {supersample!r}")
    base = size
    size = base * ss
    channels = 3 if colour else 1
    img = np.empty((size, size, channels), np.float32)
    img[:] = rng.uniform(0, 1, channels)
    rmin, rmax = 1.5 * ss, size / 3
    n = int(rng.integers(4000, 8000) * (base / 256) ** 2)
    # inverse CDF of p(r) ~ r^-3 on [rmin, rmax]
    u = rng.uniform(0, 1, n)
    radii = 1.0 / np.sqrt(1.0 / rmin**2 - u * (1.0 / rmin**2 - 1.0 / rmax**2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for r in radii:
        cx, cy = rng.uniform(-r, size + r, 2)
        x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, size))
        y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, size))
        if x0 >= x1 or y0 >= y1:
            continue
        sub_x, sub_y = xx[y0:y1, x0:x1], yy[y0:y1, x0:x1]
        mask = (sub_x - cx) ** 2 + (sub_y - cy) ** 2 <= r * r
        grey = rng.uniform(0, 1) if channels == 1 else rng.uniform(0, 1, channels)
        texture = rng.uniform()
        if texture < 0.15 and r > 6 * ss:  # grating
            period, angle = rng.uniform(2.5, 12) * ss, rng.uniform(0, np.pi)
            wave = np.sin(2 * np.pi * (sub_x * np.cos(angle) + sub_y * np.sin(angle)) / period)
            fill = np.asarray(grey)[..., None, None] + rng.uniform(0.05, 0.3) * wave
        elif texture < 0.3 and r > 6 * ss:  # white noise texture (its std after the area average)
            fill = np.asarray(grey)[..., None, None] + rng.normal(0, rng.uniform(0.03, 0.15) * ss, sub_x.shape)
        else:
            fill = np.broadcast_to(np.asarray(grey)[..., None, None], (channels,) + sub_x.shape)
        fill = np.clip(np.broadcast_to(fill, (channels,) + sub_x.shape), 0, 1)
        region = img[y0:y1, x0:x1]
        region[mask] = np.moveaxis(fill, 0, -1)[mask]
    if ss > 1:
        img = cv2.resize(img, (base, base), interpolation=cv2.INTER_AREA).reshape(base, base, channels)
    return img[..., 0] if channels == 1 else img


def blur_by_map(image: np.ndarray, sigma_map: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Blur each pixel by its own Gaussian sigma (px): a stack of whole-image blurs at
    ``step`` spacing, linearly interpolated per pixel. ``image`` is (H, W) or (H, W, C) float."""
    sigma_map = np.asarray(sigma_map, np.float32)
    lo_idx = np.floor(sigma_map / step).astype(np.int32)
    frac = (sigma_map / step - lo_idx).astype(np.float32)
    out = np.zeros(image.shape, np.float32)
    needed = np.unique(np.concatenate([lo_idx.ravel(), (lo_idx + 1)[frac > 1e-6].ravel()]))
    for k in needed:
        weight = np.where(lo_idx == k, 1.0 - frac, 0.0) + np.where(lo_idx + 1 == k, frac, 0.0)
        if not weight.any():
            continue
        blurred = gaussian_blur(image, k * step)
        out += blurred * (weight[..., None] if image.ndim == 3 else weight)
    return out


def layered_sigma_map(height: int, width: int, rng: np.random.Generator, sigmas=(0.0, 1.0, 2.0, 3.5),
                      ramp: bool = True, ramp_range=(0.5, 4.0)) -> np.ndarray:
    """A sigma map of a few depth layers with hard edges (random ellipses and a half-plane)
    over an optional smooth ramp background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if ramp:
        angle = rng.uniform(0, 2 * np.pi)
        t = (xx * np.cos(angle) + yy * np.sin(angle))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        sigma = (ramp_range[0] + t * (ramp_range[1] - ramp_range[0])).astype(np.float32)
    else:
        sigma = np.full((height, width), sigmas[-1], np.float32)
    order = list(sigmas[:-1]) if not ramp else list(sigmas)
    rng.shuffle(order)
    for s in order:
        cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
        ry, rx = rng.uniform(0.12, 0.35) * height, rng.uniform(0.12, 0.35) * width
        angle = rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        sigma[(u / rx) ** 2 + (v / ry) ** 2 <= 1.0] = s
    return sigma


def demo_scene(size=(480, 640), seed: int = 0):
    """The demo: a colour dead-leaves image blurred by a layered + ramp sigma map.
    Returns (blurred RGB uint8, true sigma map float32, sharp RGB uint8)."""
    rng = np.random.default_rng(seed)
    h, w = size
    sharp = dead_leaves(rng, size=max(h, w), colour=True)[:h, :w]
    sigma = layered_sigma_map(h, w, rng)
    blurred = blur_by_map(sharp, sigma)
    to8 = lambda x: np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    return to8(blurred), sigma, to8(sharp)
