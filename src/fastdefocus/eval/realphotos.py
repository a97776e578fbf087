"""Real photographs I: checks of the estimator on real photos, and a second classic peer.

- :func:`lbp_sharpness`, :func:`lbp_score`: the single-scale LBP sharpness metric of Yi and
  Eramian ("LBP-based segmentation of defocus blur", IEEE TIP 25(4), 2016), implemented from
  the paper: a peer of the defocus blur detection (DBD) sections.
- :func:`generated_dbd`: a DBD-like set with exact masks, as large as one likes: a sharp
  foreground object (textured, flat or a gentle gradient) in front of a background blurred
  by a lens-like kernel. :func:`dbd_generated` scores every method on it with the protocol
  of the ``dbd`` section (:func:`fastdefocus.eval.quality.score_dbd`).
- :func:`sharp_photos`: sigma read on sharp photos as they are and blurred by 0.5 px (what the
  estimator says where the truth is "in focus").
- :func:`large_blur`: sigma read on photos blurred far beyond the classifier's largest level
  (Gaussian sigma 8 and 12 px, discs of radius 16 and 24 px).

Each section returns a dict of numbers and has a ``*_markdown`` companion; the quality report
(:func:`fastdefocus.eval.quality.run_quality`) runs them as ``dbdgen``, ``sharp`` and ``largeblur``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fastdefocus.io import pictures
from fastdefocus.metrics.defocus import textured_mask
from fastdefocus.scenes import dead_leaves
from fastdefocus.blur import disc_blur, gaussian_blur
from fastdefocus.stages.ingest import to_luminance

__all__ = ["lbp_codes", "lbp_sharpness", "lbp_score", "generated_dbd", "generated_image", "dbd_generated",
           "sharp_photos", "sharp_photos_markdown", "large_blur", "large_blur_markdown", "blur_photo", "photo_files",
           "LBP"]

#: Name of the LBP peer in the reports.
LBP = "LBP sharpness (Yi and Eramian)"
#: The paper's T_LBP (grey levels in [0, 1]).
LBP_THRESHOLD = 0.016
#: The paper's local window side for the single-scale metric.
LBP_WINDOW = 21
#: The LBP^riu2_{8,1} codes that count as sharp: uniform patterns 6, 7, 8 and the non-uniform bin 9.
LBP_SHARP_CODES = (6, 7, 8, 9)
#: Display gamma of the sRGB <-> linear light approximation (as the training camera model).
GAMMA = 2.2
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


# ----------------------------------------------------------------------------- LBP sharpness


def lbp_codes(image, threshold: float = LBP_THRESHOLD) -> np.ndarray:
    """Rotation-invariant uniform LBP codes, LBP^riu2_{8,1}, of every pixel (uint8 (H, W), 0 to 9).

    The 8 neighbours g_p (p = 0 .. 7) lie on the circle of radius 1 around the centre g_c,
    counter-clockwise from the right; the diagonal ones are bilinearly interpolated. Borders
    replicate the edge pixels. Bit p is 1 when ``g_p - g_c >= threshold`` (grey levels in
    [0, 1], the luminance of :func:`fastdefocus.stages.ingest.to_luminance`). A pattern with at
    most 2 circular 0/1 transitions is uniform and its code is its number of 1 bits (0 to 8);
    every other pattern is code 9.
    """
    g = to_luminance(image)
    p = cv2.copyMakeBorder(g, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    c = p[1:-1, 1:-1]
    right, up, left, down = p[1:-1, 2:], p[:-2, 1:-1], p[1:-1, :-2], p[2:, 1:-1]
    up_right, up_left, down_left, down_right = p[:-2, 2:], p[:-2, :-2], p[2:, :-2], p[2:, 2:]
    # the diagonal neighbour at (+-sqrt(1/2), +-sqrt(1/2)): bilinear between the centre, its two
    # axial neighbours and the corner pixel
    d = np.float32(np.sqrt(0.5))
    w_c, w_axis, w_corner = (1 - d) * (1 - d), d * (1 - d), d * d
    centre = w_c * c
    neighbours = (right, centre + w_axis * (right + up) + w_corner * up_right,
                  up, centre + w_axis * (left + up) + w_corner * up_left,
                  left, centre + w_axis * (left + down) + w_corner * down_left,
                  down, centre + w_axis * (right + down) + w_corner * down_right)
    t = np.float32(threshold)
    bits = [(n - c) >= t for n in neighbours]
    ones = np.zeros(g.shape, np.uint8)
    transitions = np.zeros(g.shape, np.uint8)
    for i in range(8):
        ones += bits[i]
        transitions += bits[i] != bits[i - 1]  # circular: bit 0 against bit 7
    return np.where(transitions <= 2, ones, np.uint8(9)).astype(np.uint8)


def lbp_sharpness(image, s: int = LBP_WINDOW, threshold: float = LBP_THRESHOLD) -> np.ndarray:
    """The LBP sharpness metric m_LBP of Yi and Eramian (2016), single scale.

    ``m_LBP = (1 / N) * sum_{i=6..9} n(LBP^riu2_i)``: the share of the N = s x s pixels of the
    local window around each pixel whose LBP^riu2_{8,1} code (:func:`lbp_codes`, threshold
    T_LBP = ``threshold``) is 6, 7, 8 or 9. Window sums by a box filter (borders replicated).

    Parameters
    ----------
    image : array
        Anything :func:`fastdefocus.stages.ingest.to_luminance` accepts (gray or RGB, uint8,
        uint16 or float in [0, 1]).
    s : int
        Side of the square window, odd (the paper's scales are 11, 15 and 21).
    threshold : float
        T_LBP on grey levels in [0, 1] (the paper: 0.016).

    Returns
    -------
    float32 (H, W) in [0, 1]; higher = sharper. Not rescaled (see :func:`lbp_score`).
    """
    if int(s) != s or s < 1 or s % 2 == 0:
        raise ValueError(f"s must be an odd positive integer, got {s!r}")
    sharp = (lbp_codes(image, threshold) >= LBP_SHARP_CODES[0]).astype(np.float32)
    m = cv2.boxFilter(sharp, -1, (int(s), int(s)), normalize=True, borderType=cv2.BORDER_REPLICATE)
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def lbp_score(image, s: int = LBP_WINDOW, threshold: float = LBP_THRESHOLD) -> np.ndarray:
    """In-focus score for DBD: :func:`lbp_sharpness` rescaled min-max per image to [0, 1]
    (all 0 for a constant map), as the authors' code normalises its map. float32 (H, W)."""
    m = lbp_sharpness(image, s, threshold)
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros_like(m)


# ----------------------------------------------------------------------------- helpers


def photo_files(folder: Path, limit: int | None = None) -> list[Path]:
    """The image files of ``folder`` (sorted by name), at most ``limit``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)[:limit]


def _read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.power(np.clip(srgb, 0.0, 1.0), GAMMA, dtype=np.float32)


def _to_srgb8(linear: np.ndarray) -> np.ndarray:
    return np.clip(np.power(np.clip(linear, 0.0, 1.0), 1.0 / GAMMA) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blur_photo(rgb8: np.ndarray, sigma: float, kernel: str = "gaussian") -> np.ndarray:
    """A uint8 photo blurred in linear light (gamma 2.2) by a Gaussian of ``sigma`` px
    (:func:`~fastdefocus.blur.gaussian_blur`) or a uniform disc of radius ``2 * sigma``
    (:func:`~fastdefocus.blur.disc_blur`, the same second moment), back to uint8."""
    lin = _to_linear(rgb8.astype(np.float32) / 255.0)
    if kernel == "gaussian":
        lin = gaussian_blur(lin, sigma)
    elif kernel == "disc":
        lin = disc_blur(lin, sigma)
    else:
        raise ValueError(f"kernel must be 'gaussian' or 'disc', got {kernel!r}")
    return _to_srgb8(lin)


def _luminance(rgb8: np.ndarray) -> np.ndarray:
    return to_luminance(rgb8)


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "median": float(np.median(v)), "mean": float(v.mean())}


# ----------------------------------------------------------------------------- sharp photos

#: Conditions of :func:`sharp_photos`: name -> added Gaussian sigma (px).
SHARP_CONDITIONS = {"sharp": 0.0, "gaussian_0.5": 0.5}


def sharp_photos(est, folder: Path, limit: int | None = None, out_dir: Path | None = None,
                 downscale: int = 2) -> dict:
    """Sigma on sharp photos: each photo area-downscaled by ``downscale`` (2 by default; 1: as
    stored), then as it is (``sharp``) and blurred by a 0.5 px Gaussian in linear light
    (``gaussian_0.5``). A larger downscale hides more of the photo's own softness.

    Per photo and condition the figure is the median of sigma over the textured pixels
    (:func:`~fastdefocus.metrics.defocus.textured_mask` of the sharp photo's luminance).

    Returns
    -------
    dict
        ``folder``, ``images`` (photos used), ``conditions``: ``{name: {"added_sigma", "n",
        "median", "mean"}}`` (median and mean over photos of the per-photo medians),
        ``per_image``: ``[{"image", "textured_share", <condition>: median sigma}]``.
    """
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1, got {downscale!r}")
    rows = []
    example = None
    for path in photo_files(folder, limit):
        rgb = _read_rgb(path)
        if rgb is None:
            print(f"sharp photos: cannot read {path}; skipped", file=sys.stderr)
            continue
        h, w = rgb.shape[:2]
        if min(h, w) < 32 * downscale:
            print(f"sharp photos: {path.name} is too small ({w}x{h}) to downscale by {downscale}; skipped",
                  file=sys.stderr)
            continue
        small = rgb if downscale == 1 else cv2.resize(rgb, (w // downscale, h // downscale),
                                                      interpolation=cv2.INTER_AREA)
        tex = textured_mask(_luminance(small))
        if not tex.any():
            print(f"sharp photos: {path.name} has no textured pixels; skipped", file=sys.stderr)
            continue
        row = {"image": path.name, "textured_share": float(tex.mean())}
        maps = {}
        for name, added in SHARP_CONDITIONS.items():
            image = small if added == 0 else blur_photo(small, added)
            sigma = est.estimate(image).sigma
            row[name] = float(np.median(sigma[tex]))
            maps[name] = sigma
        rows.append(row)
        if example is None:
            example = (path.name, small, maps)
    out = {"folder": str(folder), "images": len(rows), "downscale": downscale,
           "conditions": {name: {"added_sigma": added, **_stats([r[name] for r in rows])}
                          for name, added in SHARP_CONDITIONS.items()},
           "per_image": rows}
    if out_dir is not None and example is not None:
        name, small, maps = example
        hh, vmax = 200, 3.0
        panels = [pictures.captioned(small, f"sharp photo {name}", hh)]
        panels += [pictures.captioned(pictures.sigma_picture(s, vmax), f"sigma: {k}", hh) for k, s in maps.items()]
        panels.append(pictures.captioned(pictures.colour_scale(vmax, hh), "", hh))
        pictures.write_png(Path(out_dir) / "sharp_example.png", pictures.side_by_side(panels))
        out["pictures"] = ["sharp_example.png"]
    return out


def sharp_photos_markdown(s: dict) -> str:
    scale = "as stored" if s.get("downscale", 2) == 1 else f"area-downscaled by {s.get('downscale', 2)}"
    lines = [f"### Sharp photos: {Path(s['folder']).name} ({s['images']} photos, {scale})\n",
             "| condition | added blur | median px | mean px |", "|---|---:|---:|---:|"]
    for name, r in s["conditions"].items():
        if not r.get("n"):
            lines.append(f"| {name} | {r['added_sigma']:.1f} px | n/a | n/a |")
            continue
        lines.append(f"| {name} | {r['added_sigma']:.1f} px | {r['median']:.3f} | {r['mean']:.3f} |")
    lines.append("\nPer photo: the median of sigma over its textured pixels (luminance std >= 0.02 in 15 x 15 of "
                 "the sharp photo); the table gives the median and the mean over photos. The 0.5 px Gaussian is "
                 "applied in linear light (gamma 2.2), back to 8 bits. The photos' own blur (lens, demosaicing, "
                 "JPEG) is unknown but small after the downscale: a correct reading is near 0 and about 0.5 px.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- large blur


def large_blur(est, folder: Path, sigmas=(8.0, 12.0), discs=(16.0, 24.0), limit: int | None = None,
               out_dir: Path | None = None) -> dict:
    """Sigma on photos (at their stored size) blurred uniformly far beyond the usual range:
    Gaussians of ``sigmas`` px and uniform discs of radius ``discs`` px (equivalent sigma R / 2),
    in linear light.

    Returns
    -------
    dict
        ``folder``, ``images``, ``levels_max`` (the classifier's largest sigma level),
        ``conditions``: ``{name: {"kernel", "size", "true_sigma", "all": {...}, "textured": {...}}}``
        where ``all`` / ``textured`` hold ``n``, ``median`` and ``mean`` over photos of the
        per-photo median sigma (over all pixels / the sharp photo's textured pixels) and
        ``ratio`` = median / true sigma; ``per_image``: ``[{"image", <condition>: {"all", "textured"}}]``.
    """
    conditions = {f"gaussian_{s:g}": ("gaussian", float(s), float(s)) for s in sigmas}
    conditions.update({f"disc_{r:g}": ("disc", float(r), float(r) / 2.0) for r in discs})
    rows = []
    example = None
    for path in photo_files(folder, limit):
        rgb = _read_rgb(path)
        if rgb is None:
            print(f"large blur: cannot read {path}; skipped", file=sys.stderr)
            continue
        tex = textured_mask(_luminance(rgb))
        row = {"image": path.name}
        for name, (kernel, _, true_sigma) in conditions.items():
            blurred = blur_photo(rgb, true_sigma, kernel)
            sigma = est.estimate(blurred).sigma
            row[name] = {"all": float(np.median(sigma)),
                         "textured": float(np.median(sigma[tex])) if tex.any() else float("nan")}
            if example is None or (example[0] == path.name and true_sigma >= example[3]):
                example = (path.name, blurred, sigma, true_sigma, name)
        rows.append(row)
    summary = {}
    for name, (kernel, size, true_sigma) in conditions.items():
        entry = {"kernel": kernel, "size": size, "true_sigma": true_sigma}
        for key in ("all", "textured"):
            vals = [r[name][key] for r in rows if np.isfinite(r[name][key])]
            st = _stats(vals)
            if st["n"]:
                st["ratio"] = st["median"] / true_sigma
            entry[key] = st
        summary[name] = entry
    levels = getattr(getattr(est, "info", None), "levels", None)
    out = {"folder": str(folder), "images": len(rows),
           "levels_max": float(levels[-1]) if levels is not None else None,
           "conditions": summary, "per_image": rows}
    if out_dir is not None and example is not None:
        name, blurred, sigma, true_sigma, cond = example
        hh, vmax = 200, max(12.0, true_sigma)
        panels = [pictures.captioned(blurred, f"{name}: {cond}", hh),
                  pictures.captioned(pictures.sigma_picture(sigma, vmax), f"sigma (truth {true_sigma:g} px)", hh),
                  pictures.captioned(pictures.colour_scale(vmax, hh), "", hh)]
        pictures.write_png(Path(out_dir) / "largeblur_example.png", pictures.side_by_side(panels))
        out["pictures"] = ["largeblur_example.png"]
    return out


def large_blur_markdown(d: dict) -> str:
    lines = [f"### Large blur: {Path(d['folder']).name} ({d['images']} photos at their stored size)\n",
             "| blur | true sigma px | median px (all) | ratio | median px (textured) | ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in d["conditions"].items():
        label = (f"Gaussian sigma {r['size']:g} px" if r["kernel"] == "gaussian"
                 else f"disc radius {r['size']:g} px")
        cells = []
        for key in ("all", "textured"):
            st = r[key]
            cells += ([f"{st['median']:.2f}", f"{st['ratio']:.2f}"] if st.get("n") else ["n/a", "n/a"])
        lines.append(f"| {label} | {r['true_sigma']:g} | " + " | ".join(cells) + " |")
    top = f" The classifier's largest level is {d['levels_max']:g} px." if d.get("levels_max") else ""
    lines.append("\nPer photo: the median of sigma over all pixels, and over the textured pixels of the sharp photo; "
                 "the table gives the median over photos and its ratio to the true sigma (a disc of radius R "
                 f"has sigma R / 2). Blur in linear light (gamma 2.2), back to 8 bits.{top}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- generated DBD set


def _photo_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour texture with the 1/f amplitude spectrum of natural photos (float32 (size, size, 3))."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    alpha = rng.uniform(0.9, 1.3)
    amp = f ** -alpha
    amp[0, 0] = 0.0

    def field():
        spec = amp * (rng.normal(size=amp.shape) + 1j * rng.normal(size=amp.shape))
        x = np.fft.irfft2(spec, s=(size, size))
        return (x - x.mean()) / max(float(x.std()), 1e-9)

    lum = 0.5 + rng.uniform(0.1, 0.22) * field()
    chroma = [rng.uniform(0.02, 0.08) * field() for _ in range(2)]
    tint = rng.uniform(-0.1, 0.1, 3)
    rgb = np.stack([lum + chroma[0] + tint[0], lum - 0.5 * chroma[0] + chroma[1] + tint[1],
                    lum - 0.5 * chroma[0] - chroma[1] + tint[2]], axis=-1)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _object_coverage(rng: np.random.Generator, size: int, supersample: int = 4) -> np.ndarray:
    """Coverage (float32 (size, size) in [0, 1]) of one to two random shapes (ellipse, smooth
    blob, polygon), rendered at ``supersample`` times the resolution and area-averaged: a
    sharp, anti-aliased boundary."""
    big = size * supersample
    canvas = np.zeros((big, big), np.uint8)
    yy, xx = (np.mgrid[0:big, 0:big].astype(np.float32) + 0.5) / supersample
    for _ in range(1 if rng.uniform() < 0.7 else 2):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        r0 = rng.uniform(0.22, 0.40) * size
        kind = rng.choice(["ellipse", "blob", "polygon"])
        if kind == "ellipse":
            ry, rx = r0 * rng.uniform(0.6, 1.2, 2)
            a = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
            v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
            inside = (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
        elif kind == "blob":
            theta = np.arctan2(yy - cy, xx - cx)
            radius = np.full(theta.shape, r0, np.float32)
            for k in range(2, 6):
                radius += r0 * rng.uniform(0, 0.3 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
            inside = np.hypot(yy - cy, xx - cx) <= radius
        else:
            m = int(rng.integers(4, 11))
            angles = np.sort(rng.uniform(0, 2 * np.pi, m))
            radii = r0 * rng.uniform(0.6, 1.15, m)
            pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1) * supersample
            poly = np.zeros((big, big), np.uint8)
            cv2.fillPoly(poly, [np.round(pts).astype(np.int32)], 1)
            inside = poly.astype(bool)
        canvas[inside] = 1
    cov = cv2.resize(canvas.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(cov, 0.0, 1.0)


def _foreground(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    kind = rng.choice(["textured", "flat", "gradient"], p=[0.6, 0.2, 0.2])
    if kind == "textured":
        return dead_leaves(rng, size=size, colour=True), "textured"
    c0 = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    if kind == "flat":
        return np.broadcast_to(c0, (size, size, 3)).astype(np.float32), "flat"
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = (xx * np.cos(a) + yy * np.sin(a))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c1 = np.clip(c0 + rng.uniform(-0.25, 0.25, 3), 0, 1).astype(np.float32)
    return (c0 + (c1 - c0) * t[..., None]).astype(np.float32), "gradient"


def generated_image(seed: int, index: int, size: int = 320) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image ``index`` of the generated DBD set of ``seed``: (RGB uint8, mask uint8 with 255 =
    in focus, what was drawn). The same (seed, index) always gives the same image."""
    rng = np.random.default_rng([int(seed), int(index), 20160401])
    for _ in range(20):  # an in-focus share like the real sets' (redrawn from the same stream)
        cov = _object_coverage(rng, size)
        if 0.12 <= float((cov >= 0.5).mean()) <= 0.65:
            break
    fg, fg_kind = _foreground(rng, size)
    bg_kind = "dead_leaves" if rng.uniform() < 0.5 else "photo_texture"
    bg = dead_leaves(rng, size=size, colour=True) if bg_kind == "dead_leaves" else _photo_texture(rng, size)
    kernel = "gaussian" if rng.uniform() < 0.5 else "disc"
    sigma = float(rng.uniform(1.5, 6.0))
    lin = _to_linear(bg)
    bg_blurred = gaussian_blur(lin, sigma) if kernel == "gaussian" else disc_blur(lin, sigma)
    bg_srgb = np.power(np.clip(bg_blurred, 0, 1), 1.0 / GAMMA)
    img = cov[..., None] * fg + (1.0 - cov[..., None]) * bg_srgb
    noise = float(rng.uniform(0.0, 0.005))
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    rgb = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    mask = np.where(cov >= 0.5, 255, 0).astype(np.uint8)
    return rgb, mask, {"foreground": fg_kind, "background": bg_kind, "kernel": kernel, "sigma": sigma,
                       "noise": noise, "in_focus_share": float((mask > 0).mean())}


def generated_dbd(n: int, seed: int = 0, size: int = 320) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n`` DBD-like images with exact masks: yields (RGB uint8 (size, size, 3), mask uint8
    (size, size), 255 = in focus).

    Each image: one or two in-focus foreground shapes (ellipse, smooth blob or polygon with a
    sharp anti-aliased boundary) filled with colour dead leaves (60 %), a flat colour (20 %) or
    a gentle gradient (20 %: textureless, hard for every detector), in front of a background
    (colour dead leaves, or a 1/f "photo-like" texture) blurred in linear light by a Gaussian
    or a uniform disc (equivalent sigma 1.5 to 6 px), with mild noise. Deterministic per
    (seed, index): the first k images of a set do not depend on ``n``.
    """
    for i in range(int(n)):
        rgb, mask, _ = generated_image(seed, i, size)
        yield rgb, mask


def dbd_generated(est, n: int = 100, seed: int = 0, out_dir: Path | None = None, peers: bool = True,
                  size: int = 320) -> dict:
    """The ``dbd`` protocol on :func:`generated_dbd` (``n`` images of ``seed``): the same methods,
    scores and metrics as :func:`fastdefocus.eval.quality.dbd`. Returns the same dict, with
    ``folder`` = "generated", ``title``, ``seed``, ``images_size`` and ``drawn`` (per-image draws)."""
    from fastdefocus.eval.quality import score_dbd  # the dbd section's runner (quality imports this module)
    drawn = []

    def items():
        for i in range(int(n)):
            rgb, mask, info = generated_image(seed, i, size)
            drawn.append({"image": f"gen{i:04d}", **info})
            yield f"gen{i:04d}", rgb, mask

    out = score_dbd(est, items(), peers=peers, out_dir=out_dir, picture="dbdgen_examples.png")
    return {"folder": "generated", "title": f"generated DBD-like set, seed {seed}",
            "seed": seed, "images_size": size, **out, "drawn": drawn}
