"""Report pictures drawn with OpenCV and NumPy (no plotting library): captioned panels
side by side, a colour scale, and histograms as line plots.

Every function returns an RGB uint8 array (H, W, 3); :func:`write_png` saves one.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["as_rgb8", "sigma_picture", "score_picture", "captioned", "side_by_side", "colour_scale",
           "with_colour_scale", "histogram_plot", "write_png"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: Line colours of the series of one plot (RGB), in order.
SERIES_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def sigma_picture(sigma: np.ndarray, vmax: float) -> np.ndarray:
    """Sigma map (px) in the viridis colour map on the fixed scale [0, vmax] (dark = sharp)."""
    grey = (np.clip(np.asarray(sigma, np.float32) / float(vmax), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def score_picture(score: np.ndarray) -> np.ndarray:
    """A [0, 1] map (in-focus score, mask) in grey: white = 1."""
    grey = (np.clip(np.asarray(score, np.float32), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA, uint8 / uint16 / float in [0, 1] -> RGB uint8."""
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        arr = (arr / 257.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(arr[..., :3])


def captioned(image: np.ndarray, caption: str, height: int | None = None) -> np.ndarray:
    """``image`` (resized to ``height`` if given) under a white strip with ``caption``."""
    img = as_rgb8(image)
    if height is not None and img.shape[0] != height:
        width = max(1, int(round(img.shape[1] * height / img.shape[0])))
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    scale = 0.45
    (tw, th), base = cv2.getTextSize(caption, _FONT, scale, 1)
    while tw > img.shape[1] - 6 and scale > 0.25:
        scale -= 0.05
        (tw, th), base = cv2.getTextSize(caption, _FONT, scale, 1)
    strip = np.full((th + base + 8, img.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, caption, (3, th + 4), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, img], axis=0)


def side_by_side(panels, gap: int = 4) -> np.ndarray:
    """Panels (RGB uint8) in a row, top-aligned on a white background."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(parts, axis=1)


def colour_scale(vmax: float, height: int, width: int = 18, unit: str = "px", scale: float = 1.0) -> np.ndarray:
    """Vertical viridis scale from 0 (bottom) to ``vmax`` (top) with three labels; ``scale``
    enlarges the labels (and their margin) for large pictures."""
    ramp = np.linspace(vmax, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    bar = sigma_picture(ramp, vmax)
    label_w = int(round(64 * scale))
    canvas = np.full((height, width + label_w, 3), 255, np.uint8)
    canvas[:, :width] = bar
    thickness = max(1, int(round(scale)))
    for frac in (0.0, 0.5, 1.0):
        y = int(round((1 - frac) * (height - 1)))
        top = int(round(10 * scale))
        cv2.putText(canvas, f"{frac * vmax:.1f} {unit}",
                    (width + int(round(3 * scale)), min(max(y + int(round(4 * scale)), top), height - 3)),
                    _FONT, 0.38 * scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def with_colour_scale(picture: np.ndarray, vmax: float, unit: str = "px", gap: int = 4) -> np.ndarray:
    """``picture`` (RGB uint8) with a :func:`colour_scale` from 0 to ``vmax`` on its right, sized
    to its height (the labels grow with pictures taller than 400 px)."""
    height = picture.shape[0]
    k = max(1.0, height / 400.0)
    bar = colour_scale(vmax, height, width=int(round(18 * k)), unit=unit, scale=k)
    return side_by_side([as_rgb8(picture), bar], gap=gap)


def histogram_plot(series: dict, lo: float, hi: float, bins: int = 60, title: str = "", xlabel: str = "",
                   size=(360, 640)) -> np.ndarray:
    """Histograms of several samples as lines of density (share of the sample per bin).

    Parameters
    ----------
    series : dict name -> 1-D array
        Values outside [lo, hi] are counted in the end bins.
    lo, hi : float
        Range of the x axis.
    """
    h, w = size
    left, right, top, bottom = 56, 12, 28, 40
    img = np.full((h, w, 3), 255, np.uint8)
    edges = np.linspace(lo, hi, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    densities = {}
    for name, values in series.items():
        v = np.clip(np.asarray(values, np.float64).ravel(), lo, hi)
        if v.size:
            densities[name] = np.histogram(v, bins=edges)[0] / v.size
    ymax = max([d.max() for d in densities.values()] + [1e-9]) * 1.05
    x_of = lambda x: int(round(left + (x - lo) / (hi - lo) * (w - left - right)))  # noqa: E731
    y_of = lambda y: int(round(h - bottom - y / ymax * (h - top - bottom)))  # noqa: E731
    axis = (0, 0, 0)
    cv2.line(img, (left, h - bottom), (w - right, h - bottom), axis, 1)
    cv2.line(img, (left, top), (left, h - bottom), axis, 1)
    for x in np.linspace(lo, hi, 5):
        cv2.line(img, (x_of(x), h - bottom), (x_of(x), h - bottom + 4), axis, 1)
        cv2.putText(img, f"{x:g}", (x_of(x) - 10, h - bottom + 16), _FONT, 0.38, axis, 1, cv2.LINE_AA)
    if lo < 0 < hi:
        cv2.line(img, (x_of(0), top), (x_of(0), h - bottom), (200, 200, 200), 1)
    for y in np.linspace(0, ymax, 4):
        cv2.putText(img, f"{100 * y:.0f}%", (6, y_of(y) + 4), _FONT, 0.38, axis, 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (left, h - 8), _FONT, 0.42, axis, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 18), _FONT, 0.5, axis, 1, cv2.LINE_AA)
    for i, (name, d) in enumerate(densities.items()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        pts = np.array([(x_of(c), y_of(v)) for c, v in zip(centres, d)], np.int32)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        y = top + 14 + 16 * i
        cv2.line(img, (w - right - 200, y - 4), (w - right - 180, y - 4), colour, 2)
        cv2.putText(img, name[:30], (w - right - 175, y), _FONT, 0.4, axis, 1, cv2.LINE_AA)
    return img


def write_png(path, rgb: np.ndarray) -> Path:
    """Save an RGB uint8 picture as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(as_rgb8(rgb), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
