"""The estimator's stages as Numba CUDA kernels (the GPU pipeline of
:mod:`fastdefocus.cuda_pipeline`), with the semantics of the CPU stages they mirror:

- :func:`luminance`: :func:`fastdefocus.stages.ingest.to_luminance` (Rec. 601 luma in
  float32, uint8 / uint16 / float input, clipped to [0, 1]);
- :func:`separable_filter` / :func:`gaussian_blur`:
  :func:`fastdefocus.stages.blur.gaussian_blur` (discrete Gaussian, reflect-101);
- :func:`pad_reflect`: :func:`fastdefocus.stages.refine.pad_to`;
- :func:`patch_statistics`: the agreement half of
  :func:`fastdefocus.stages.splat.patch_statistics` (its texture half, the patch
  standard deviation, comes from :func:`fastdefocus.kernels.patches.extract_patches`)
  and :func:`fastdefocus.stages.splat.sharpness_maps`, from one pass over the image;
- :func:`patch_outputs`: calibrated expected sigma, confidence and splat weight
  per patch (:mod:`fastdefocus.stages.classify` and the estimator);
- :func:`splat`: :func:`fastdefocus.stages.splat.splat` and ``tent_sum`` (one thread
  per cell gathering its covering patches, no atomics);
- :func:`resize_linear`, :func:`area_guide`, :func:`upsample_apply`: the
  resizes of :func:`fastdefocus.stages.refine.refine` (OpenCV's INTER_LINEAR and
  integer-factor INTER_AREA) and its guided upsampling, fused with the crop,
  clip and confidence map of the estimator;
- :func:`snap_boundaries`: :func:`fastdefocus.stages.refine.snap_boundaries` (the boundary
  snap after the upsampling), with :class:`SnapWork` holding its scratch planes;
- :func:`blend`: temporal smoothing of a stream.

Every host function takes an optional ``stream`` and allocates nothing unless
an output is omitted, so a stream of same-sized frames reuses its buffers.
"""

from __future__ import annotations

import math

import numpy as np

from ._device import THREADS, TILE, as_device, blocks, cuda  # noqa: F401 (as_device: re-exported)
from .filters import _reflect

__all__ = ["luminance", "separable_filter", "gaussian_blur", "pad_reflect", "patch_statistics",
           "patch_outputs", "splat", "resize_linear", "area_guide", "upsample_apply", "snap_boundaries",
           "SnapWork", "blend"]


def _grid2(h, w):
    # cuda.grid(2) gives (x, y) with x the fastest index in a warp: x runs along a row (w),
    # so a warp reads consecutive addresses (kernels take ``x, y = cuda.grid(2)``)
    return (blocks(w, TILE[1]), blocks(h, TILE[0])), (TILE[1], TILE[0])


def _grid1(n):
    return blocks(n), THREADS


# ------------------------------------------------------------------------ luminance

#: Rec. 601 luma weights, float32 as in fastdefocus.ingest.LUMA_RGB.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@cuda.jit
def _luminance_rgb(frame, weights, scale, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        v = (np.float32(frame[y, x, 0]) * weights[0] + np.float32(frame[y, x, 1]) * weights[1]
             + np.float32(frame[y, x, 2]) * weights[2])
        v = v * scale
        out[y, x] = min(max(v, np.float32(0.0)), np.float32(1.0))


@cuda.jit
def _luminance_first(frame, scale, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        v = np.float32(frame[y, x, 0]) * scale
        out[y, x] = min(max(v, np.float32(0.0)), np.float32(1.0))


def luminance(frame, out=None, stream=0):
    """Luminance in [0, 1] (float32, (H, W)) of a device frame (H, W), (H, W, C) with
    C = 1..4: uint8, uint16 or float (RGB(A) -> Rec. 601 luma, else the first channel)."""
    func = "luminance"
    ndim = len(frame.shape)
    if ndim not in (2, 3):
        raise ValueError(f"{func}: frame must be (H, W) or (H, W, C), got shape {frame.shape}")
    img = as_device(func, "frame", frame, ndim=ndim)
    if ndim == 2:
        try:
            img = img.reshape(img.shape[0], img.shape[1], 1)
        except NotImplementedError:
            # Numba's device arrays refuse to reshape a non-contiguous view (e.g. a torch
            # ``rgb[..., 0]``); a unit axis needs no copy: the same memory with one more stride
            img = type(img)(shape=(img.shape[0], img.shape[1], 1),
                            strides=tuple(img.strides) + (img.dtype.itemsize,),
                            dtype=img.dtype, gpu_data=img.gpu_data)
    h, w, c = img.shape
    if not 1 <= c <= 4:
        raise ValueError(f"{func}: frame must have 1 to 4 channels, got {c}")
    if img.dtype == np.uint16:
        scale = np.float32(1.0 / 65535.0)
    elif img.dtype.kind == "f":
        scale = np.float32(1.0)
    else:
        scale = np.float32(1.0 / 255.0)
    if out is None:
        out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    grid, tile = _grid2(h, w)
    if c >= 3:
        _luminance_rgb[grid, tile, stream](img, _device_const("luma", _LUMA), scale, out)
    else:
        _luminance_first[grid, tile, stream](img, scale, out)
    return out


_CONSTANTS: dict = {}


def _device_const(key, values: np.ndarray):
    """A small constant array uploaded once per process (per key and content)."""
    full_key = (key, values.dtype.str, values.tobytes())
    arr = _CONSTANTS.get(full_key)
    if arr is None:
        arr = _CONSTANTS[full_key] = cuda.to_device(values)
    return arr


# ------------------------------------------------------------------ filters, padding


@cuda.jit
def _conv_rows(src, taps, radius, dst):
    x, y = cuda.grid(2)
    h, w = src.shape
    if y < h and x < w:
        acc = 0.0
        for k in range(-radius, radius + 1):
            acc += taps[k + radius] * float(src[y, _reflect(x + k, w)])
        dst[y, x] = acc


@cuda.jit
def _conv_cols(src, taps, radius, dst):
    x, y = cuda.grid(2)
    h, w = src.shape
    if y < h and x < w:
        acc = 0.0
        for k in range(-radius, radius + 1):
            acc += taps[k + radius] * float(src[_reflect(y + k, h), x])
        dst[y, x] = acc


def separable_filter(src, taps: np.ndarray, out=None, scratch=None, stream=0):
    """Correlate a device image with ``taps`` along rows then columns (odd length,
    reflect-101 borders), float32 out; ``scratch``: a float32 (H, W) device array."""
    func = "separable_filter"
    img = as_device(func, "src", src)
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 1 or len(taps) % 2 != 1:
        raise ValueError(f"{func}: taps must be 1-D of odd length, got shape {taps.shape}")
    h, w = img.shape
    if out is None:
        out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    if scratch is None:
        scratch = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    d_taps = _device_const("taps", taps)
    grid, tile = _grid2(h, w)
    radius = len(taps) // 2
    _conv_rows[grid, tile, stream](img, d_taps, radius, scratch)
    _conv_cols[grid, tile, stream](scratch, d_taps, radius, out)
    return out


def gaussian_blur(src, sigma: float, out=None, scratch=None, stream=0):
    """:func:`fastdefocus.stages.blur.gaussian_blur` on the GPU (sigma > 0)."""
    from fastdefocus.stages.blur import gaussian_kernel1d

    if not sigma > 0:
        raise ValueError(f"gaussian_blur: sigma must be > 0, got {sigma!r}")
    return separable_filter(src, gaussian_kernel1d(float(sigma)), out, scratch, stream)


@cuda.jit
def _pad(src, dst):
    x, y = cuda.grid(2)
    if y < dst.shape[0] and x < dst.shape[1]:
        dst[y, x] = src[_reflect(y, src.shape[0]), _reflect(x, src.shape[1])]


def pad_reflect(src, height: int, width: int, out=None, stream=0):
    """Reflect-101 padding (repeated) at the bottom and right to (height, width)."""
    img = as_device("pad_reflect", "src", src)
    if out is None:
        out = cuda.device_array((height, width), dtype=img.dtype, stream=stream)
    grid, tile = _grid2(height, width)
    _pad[grid, tile, stream](img, out)
    return out


# ----------------------------------------------------------------- patch statistics


# Every window the statistics need (the 16-px half-patch windows, the 32-px patches, the
# stride cells) is a union of g x g "base cells" (g = gcd of the stride and the window
# offsets: 8 at strides 8, 16 and 32). One pass measures each base cell once: the sums of
# the values and their squares, the squared neighbour differences inside it (of the image
# and of its 1-px blur), and those across its right and bottom edges. A window's sums are
# then the sums over its base cells, plus the edge terms between its own cells only:
# exactly the window sums of fastdefocus.stages.splat, each pixel read about once in all.
_S1, _S2, _FINE, _COARSE, _FINE_R, _COARSE_R, _FINE_D, _COARSE_D = range(8)


@cuda.jit
def _base_cells(padded, coarse, g, stats):
    cx, cy = cuda.grid(2)
    if cy >= stats.shape[1] or cx >= stats.shape[2]:
        return
    h, w = padded.shape
    y0 = cy * g
    x0 = cx * g
    s1 = 0.0
    s2 = 0.0
    fine = 0.0
    blurred = 0.0
    fine_r = 0.0
    blurred_r = 0.0
    fine_d = 0.0
    blurred_d = 0.0
    for y in range(y0, y0 + g):
        for x in range(x0, x0 + g):
            v = float(padded[y, x])
            c = float(coarse[y, x])
            s1 += v
            s2 += v * v
            if x + 1 < w:
                d = float(padded[y, x + 1]) - v
                e = float(coarse[y, x + 1]) - c
                if x + 1 < x0 + g:
                    fine += d * d
                    blurred += e * e
                else:
                    fine_r += d * d
                    blurred_r += e * e
            if y + 1 < h:
                d = float(padded[y + 1, x]) - v
                e = float(coarse[y + 1, x]) - c
                if y + 1 < y0 + g:
                    fine += d * d
                    blurred += e * e
                else:
                    fine_d += d * d
                    blurred_d += e * e
    stats[_S1, cy, cx] = s1
    stats[_S2, cy, cx] = s2
    stats[_FINE, cy, cx] = fine
    stats[_COARSE, cy, cx] = blurred
    stats[_FINE_R, cy, cx] = fine_r
    stats[_COARSE_R, cy, cx] = blurred_r
    stats[_FINE_D, cy, cx] = fine_d
    stats[_COARSE_D, cy, cx] = blurred_d


@cuda.jit(device=True, inline=True)
def _window_energy(stats, inner, right, down, cy, cx, m):
    """Squared neighbour differences inside the window of m x m base cells at (cy, cx)."""
    e = 0.0
    for a in range(m):
        for b in range(m):
            e += stats[inner, cy + a, cx + b]
            if b + 1 < m:
                e += stats[right, cy + a, cx + b]
            if a + 1 < m:
                e += stats[down, cy + a, cx + b]
    return e


@cuda.jit
def _patch_windows(stats, nx, stride, g, offsets, half, patch, min_std, tau, floor, agreement, patch_sharp):
    i = cuda.grid(1)
    if i >= agreement.shape[0]:
        return
    y0 = (i // nx) * stride
    x0 = (i % nx) * stride
    m = half // g
    n = float(half * half)
    hi = -math.inf
    lo = math.inf
    count = 0
    for a in range(offsets.shape[0]):
        cy = (y0 + offsets[a]) // g
        for b in range(offsets.shape[0]):
            cx = (x0 + offsets[b]) // g
            s1 = 0.0
            s2 = 0.0
            for u in range(m):
                for v in range(m):
                    s1 += stats[_S1, cy + u, cx + v]
                    s2 += stats[_S2, cy + u, cx + v]
            mean = s1 / n
            if math.sqrt(max(s2 / n - mean * mean, 0.0)) >= min_std:
                fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, cy, cx, m)
                blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, cy, cx, m)
                sharp = math.log(max(fine, 1e-12) / max(blurred, 1e-12))
                count += 1
                hi = max(hi, sharp)
                lo = min(lo, sharp)
    log_ratio = hi - lo if count >= 2 else 0.0
    r = log_ratio / tau
    agreement[i] = math.exp(-r * r)
    mp = patch // g
    fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, y0 // g, x0 // g, mp)
    blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, y0 // g, x0 // g, mp)
    patch_sharp[i] = math.log((fine + floor) / (blurred + floor))


@cuda.jit
def _stride_cells(stats, m, floor, out):
    cx, cy = cuda.grid(2)
    if cy < out.shape[0] and cx < out.shape[1]:
        fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, cy * m, cx * m, m)
        blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, cy * m, cx * m, m)
        out[cy, cx] = math.log((fine + floor) / (blurred + floor))


def patch_statistics(padded, coarse, grid, patch: int, stride: int, flat_std: float, tau: float,
                     agreement=None, patch_sharp=None, cell_sharp=None, scratch=None, stream=0):
    """The splat's statistics of every patch and cell, from one pass over the image:

    - ``agreement`` (ny * nx,): how well each patch's half-patch windows agree on sharpness
      (:func:`fastdefocus.stages.splat.patch_statistics`);
    - ``patch_sharp`` (ny * nx,) and ``cell_sharp`` (the stride cells): log sharpness of
      each patch and cell (:func:`fastdefocus.stages.splat.sharpness_maps`).

    ``padded``: the source padded to the grid; ``coarse``: it blurred by a 1-px Gaussian;
    ``scratch``: a dict keeping the base-cell buffer between calls. Returns the three
    float32 device arrays."""
    from fastdefocus.stages.splat import SHARPNESS_FLOOR, window_offsets

    ny, nx = grid
    k = patch // stride
    cells = (ny + k - 1, nx + k - 1)
    alloc = lambda shape: cuda.device_array(shape, dtype=np.float32, stream=stream)  # noqa: E731
    agreement = alloc(ny * nx) if agreement is None else agreement
    patch_sharp = alloc(ny * nx) if patch_sharp is None else patch_sharp
    cell_sharp = alloc(cells) if cell_sharp is None else cell_sharp
    half = patch // 2
    offsets = np.asarray(window_offsets(patch), np.int64)
    g = math.gcd(stride, patch, *[int(o) for o in offsets if o]) if half >= 2 else math.gcd(stride, patch)
    base = (padded.shape[0] // g, padded.shape[1] // g)
    scratch = {} if scratch is None else scratch
    stats = scratch.get(("base", base))
    if stats is None:
        stats = scratch[("base", base)] = cuda.device_array((8,) + base, dtype=np.float64, stream=stream)
    gr, t = _grid2(*base)
    _base_cells[gr, t, stream](padded, coarse, g, stats)
    if half >= 2:
        _patch_windows[_grid1(ny * nx) + (stream,)](stats, nx, stride, g, _device_const("offsets", offsets),
                                                    half, patch, 2.0 * flat_std, float(tau), SHARPNESS_FLOOR,
                                                    agreement, patch_sharp)
    else:  # no differences inside a window: nothing to compare (as the CPU path)
        _fill[_grid1(ny * nx) + (stream,)](agreement, 1.0)
        _patch_sharp_only[_grid1(ny * nx) + (stream,)](stats, nx, stride, g, patch, SHARPNESS_FLOOR, patch_sharp)
    gr, t = _grid2(*cells)
    _stride_cells[gr, t, stream](stats, stride // g, SHARPNESS_FLOOR, cell_sharp)
    return agreement, patch_sharp, cell_sharp


@cuda.jit
def _patch_sharp_only(stats, nx, stride, g, patch, floor, patch_sharp):
    i = cuda.grid(1)
    if i < patch_sharp.shape[0]:
        y0 = (i // nx) * stride
        x0 = (i % nx) * stride
        mp = patch // g
        fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, y0 // g, x0 // g, mp)
        blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, y0 // g, x0 // g, mp)
        patch_sharp[i] = math.log((fine + floor) / (blurred + floor))


@cuda.jit
def _fill(out, value):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = value


@cuda.jit
def _patch_outputs(probs, first, levels, knots_x, knots_y, sigma0, std, agreement, flat_std,
                   sigma_out, conf_out, weight_out):
    b = cuda.grid(1)
    if b >= probs.shape[0]:
        return
    i = first + b
    if i >= sigma_out.shape[0]:
        return
    n = probs.shape[1]
    raw = 0.0
    best = 0
    best_p = -1.0
    for j in range(n):
        p = float(probs[b, j])
        raw += p * levels[j]
        if p > best_p:
            best_p = p
            best = j
    conf = 0.0
    for j in range(max(best - 1, 0), min(best + 2, n)):
        conf += float(probs[b, j])
    conf = min(max(conf, 0.0), 1.0)
    # np.interp: clamped at both ends, linear between the knots
    k = knots_x.shape[0]
    if raw <= knots_x[0]:
        s = knots_y[0]
    elif raw >= knots_x[k - 1]:
        s = knots_y[k - 1]
    else:
        j = 1
        while knots_x[j] < raw:
            j += 1
        x0 = knots_x[j - 1]
        x1 = knots_x[j]
        t = (raw - x0) / (x1 - x0) if x1 > x0 else 0.0
        s = knots_y[j - 1] + t * (knots_y[j] - knots_y[j - 1])
    s32 = np.float32(s)
    if sigma0 > 0:
        s32 = np.float32(math.sqrt(max(float(s32) * float(s32) - sigma0 * sigma0, 0.0)))
    texture = min(max((float(std[i]) - 0.5 * flat_std) / (1.5 * flat_std), 0.0), 1.0)
    c = np.float32(conf) * texture
    sigma_out[i] = s32
    conf_out[i] = c
    weight_out[i] = c * float(agreement[i])


def patch_outputs(probs, first: int, levels, knots, sigma0: float, std, agreement, flat_std: float,
                  sigma_out, conf_out, weight_out, stream=0):
    """Patches ``first .. first + len(probs) - 1``: calibrated expected sigma (minus the
    pre-filter in quadrature), confidence (probability within one level of the best,
    times the texture ramp of the estimator) and splat weight (confidence x agreement)."""
    d_levels = _device_const("levels", np.asarray(levels, np.float64))
    d_kx = _device_const("knots_x", np.ascontiguousarray(knots[:, 0], np.float64))
    d_ky = _device_const("knots_y", np.ascontiguousarray(knots[:, 1], np.float64))
    n = probs.shape[0]
    _patch_outputs[_grid1(n) + (stream,)](probs, int(first), d_levels, d_kx, d_ky, float(sigma0), std,
                                          agreement, float(flat_std), sigma_out, conf_out, weight_out)


# ---------------------------------------------------------------------------- splat


@cuda.jit
def _splat(values, weights, conf, ny, nx, tent, eps, lift, lift_max, match, patch_sharp, cell_sharp,
           match_tau, cell_values, cell_weights, cell_conf):
    cx, cy = cuda.grid(2)
    hc, wc = cell_values.shape
    if cy >= hc or cx >= wc:
        return
    k = tent.shape[0]
    num = 0.0
    den = 0.0
    mix_den = 0.0
    plain = 0.0
    cover = 0.0
    csum = 0.0
    for a in range(k):
        py = cy - a
        if py < 0 or py >= ny:
            continue
        for b in range(k):
            px = cx - b
            if px < 0 or px >= nx:
                continue
            t = tent[a] * tent[b]
            i = py * nx + px
            v = float(values[i])
            wt = float(weights[i])
            mix = wt
            if lift > 0:
                mix = wt * math.exp(min(lift * v, lift_max))
            tm = t
            if match:
                excess = max(float(patch_sharp[i]) - float(cell_sharp[cy, cx]), 0.0) / match_tau
                tm = t * math.exp(-excess * excess)
            num += tm * mix * v
            mix_den += tm * mix
            den += tm * wt
            plain += t * v
            cover += t
            csum += t * float(conf[i])
    if den > eps:
        cell_values[cy, cx] = num / max(mix_den, 2.2250738585072014e-308)
    else:
        cell_values[cy, cx] = plain / cover
    cell_weights[cy, cx] = den / cover
    cell_conf[cy, cx] = csum / cover


def splat(values, weights, conf, grid, patch: int, stride: int, cell_values=None, cell_weights=None,
          cell_conf=None, eps: float = 1e-6, lift: float = 0.0, sharpness=None, match_tau=None, stream=0):
    """Per-patch (ny * nx,) values, weights and confidences onto the (ny + k - 1, nx + k - 1)
    cells (:func:`fastdefocus.stages.splat.splat`, and the tent mean of the confidence).
    ``sharpness``: (patch sharpness (ny * nx,), cell sharpness (cells)) for the cell match."""
    from fastdefocus.stages.splat import LIFT_EXP_MAX, MATCH_TAU, tent_weights

    ny, nx = grid
    k = patch // stride
    shape = (ny + k - 1, nx + k - 1)
    outs = [o if o is not None else cuda.device_array(shape, dtype=np.float32, stream=stream)
            for o in (cell_values, cell_weights, cell_conf)]
    tent = _device_const("tent", tent_weights(patch, stride).astype(np.float64))
    g, t = _grid2(*shape)
    match = sharpness is not None
    patch_sharp, cell_sharp = sharpness if match else (values, outs[0])
    tau = float(MATCH_TAU if match_tau is None else match_tau)
    _splat[g, t, stream](values, weights, conf, ny, nx, tent, float(eps), float(lift), LIFT_EXP_MAX, match,
                         patch_sharp, cell_sharp, tau, *outs)
    return tuple(outs)


# -------------------------------------------------------------------------- resizing


@cuda.jit(device=True, inline=True)
def _linear_coord(d, src_n, dst_n):
    """OpenCV INTER_LINEAR source index and weight of destination index d."""
    f = np.float32((d + 0.5) * (src_n / dst_n) - 0.5)
    s = int(math.floor(f))
    f = float(f) - s
    if s < 0:
        s = 0
        f = 0.0
    if s >= src_n - 1:
        s = src_n - 1
        f = 0.0
    return s, f


@cuda.jit(device=True, inline=True)
def _bilinear(src, y, x, dst_h, dst_w):
    h, w = src.shape
    sy, fy = _linear_coord(y, h, dst_h)
    sx, fx = _linear_coord(x, w, dst_w)
    sy1 = min(sy + 1, h - 1)
    sx1 = min(sx + 1, w - 1)
    top = (1.0 - fx) * float(src[sy, sx]) + fx * float(src[sy, sx1])
    bottom = (1.0 - fx) * float(src[sy1, sx]) + fx * float(src[sy1, sx1])
    return (1.0 - fy) * top + fy * bottom


@cuda.jit
def _resize_pair(a, b, clip_b, out_a, out_b):
    x, y = cuda.grid(2)
    h, w = out_a.shape
    if y < h and x < w:
        out_a[y, x] = _bilinear(a, y, x, h, w)
        vb = _bilinear(b, y, x, h, w)
        out_b[y, x] = max(vb, 0.0) if clip_b else vb


def resize_linear(a, height: int, width: int, b=None, out_a=None, out_b=None, clip_b=False,
                  stream=0):
    """OpenCV INTER_LINEAR resize of ``a`` (and of ``b``, of the same shape, clipped at 0 if
    ``clip_b``) to (height, width), float32. Returns ``out_a`` or ``(out_a, out_b)``."""
    pair = b is not None
    if out_a is None:
        out_a = cuda.device_array((height, width), dtype=np.float32, stream=stream)
    if pair and out_b is None:
        out_b = cuda.device_array((height, width), dtype=np.float32, stream=stream)
    g, t = _grid2(height, width)
    _resize_pair[g, t, stream](a, b if pair else a, bool(clip_b), out_a, out_b if pair else out_a)
    return (out_a, out_b) if pair else out_a


@cuda.jit
def _area(lum, scale, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        h, w = lum.shape
        acc = 0.0
        for dy in range(scale):
            yy = _reflect(y * scale + dy, h)
            for dx in range(scale):
                acc += float(lum[yy, _reflect(x * scale + dx, w)])
        out[y, x] = acc / (scale * scale)


def area_guide(lum, height: int, width: int, scale: int, out=None, stream=0):
    """The luminance reflect-padded to (height * scale, width * scale) and averaged over
    scale x scale blocks (INTER_AREA at an integer factor): the working grid's guide."""
    if out is None:
        out = cuda.device_array((height, width), dtype=np.float32, stream=stream)
    g, t = _grid2(height, width)
    _area[g, t, stream](lum, int(scale), out)
    return out


@cuda.jit
def _upsample_apply(coef_a, coef_b, lum, cell_conf, full_h, full_w, sigma_max, sigma_out, conf_out):
    x, y = cuda.grid(2)
    h, w = sigma_out.shape
    if y < h and x < w:
        a = np.float32(_bilinear(coef_a, y, x, full_h, full_w))
        b = np.float32(_bilinear(coef_b, y, x, full_h, full_w))
        s = a * lum[y, x] + b
        sigma_out[y, x] = min(max(s, np.float32(0.0)), np.float32(sigma_max))
        c = np.float32(_bilinear(cell_conf, y, x, full_h, full_w))
        conf_out[y, x] = min(max(c, np.float32(0.0)), np.float32(1.0))


def upsample_apply(coef_a, coef_b, lum, cell_conf, full_shape, sigma_max: float, sigma_out=None,
                   conf_out=None, stream=0):
    """Guided upsampling, crop and clip in one pass: ``sigma = clip(up(A) * I + up(B), 0,
    sigma_max)`` and ``confidence = clip(up(cell_conf), 0, 1)`` on the (H, W) of ``lum``, where
    ``up`` is INTER_LINEAR to the padded ``full_shape`` (the estimator's last stage)."""
    h, w = lum.shape
    if sigma_out is None:
        sigma_out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    if conf_out is None:
        conf_out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    g, t = _grid2(h, w)
    _upsample_apply[g, t, stream](coef_a, coef_b, lum, cell_conf, int(full_shape[0]), int(full_shape[1]),
                                  float(sigma_max), sigma_out, conf_out)
    return sigma_out, conf_out


@cuda.jit
def _blend(state, current, alpha, first):
    x, y = cuda.grid(2)
    if y < state.shape[0] and x < state.shape[1]:
        if first:
            state[y, x] = current[y, x]
        else:
            v = alpha * state[y, x] + (np.float32(1.0) - alpha) * current[y, x]
            state[y, x] = v
            current[y, x] = v


def blend(state, current, alpha: float, first: bool, stream=0):
    """Temporal smoothing: ``current <- alpha * state + (1 - alpha) * current``, then
    ``state <- current`` (on the first frame only the copy)."""
    g, t = _grid2(*current.shape)
    _blend[g, t, stream](state, current, np.float32(alpha), bool(first))


# ------------------------------------------------------------------- boundary snap


@cuda.jit
def _pair_energy(lum, out):
    x, y = cuda.grid(2)
    h, w = lum.shape
    if y < h and x < w:
        v = lum[y, x]
        e = np.float32(0.0)
        if x + 1 < w:
            d = lum[y, x + 1] - v
            e += d * d
        if y + 1 < h:
            d = lum[y + 1, x] - v
            e += d * d
        out[y, x] = e


@cuda.jit
def _evidence(energy, blurred, floor, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        out[y, x] = math.log((blurred[y, x] + floor) / (energy[y, x] + floor))


@cuda.jit
def _minmax_rows(src, radius, lo, hi):
    x, y = cuda.grid(2)
    h, w = src.shape
    if y < h and x < w:
        a = src[y, x]
        b = a
        for k in range(max(x - radius, 0), min(x + radius + 1, w)):
            v = src[y, k]
            a = min(a, v)
            b = max(b, v)
        lo[y, x] = a
        hi[y, x] = b


@cuda.jit
def _minmax_cols(lo_rows, hi_rows, radius, lo, hi):
    x, y = cuda.grid(2)
    h, w = lo_rows.shape
    if y < h and x < w:
        a = lo_rows[y, x]
        b = hi_rows[y, x]
        for k in range(max(y - radius, 0), min(y + radius + 1, h)):
            a = min(a, lo_rows[k, x])
            b = max(b, hi_rows[k, x])
        lo[y, x] = a
        hi[y, x] = b


@cuda.jit
def _snap_references(sigma, lo, hi, q, min_span, ref, planes):
    # planes: near_lo, near_hi, q * near_lo, q * near_hi
    x, y = cuda.grid(2)
    if y < sigma.shape[0] and x < sigma.shape[1]:
        span = hi[y, x] - lo[y, x]
        pos = (sigma[y, x] - lo[y, x]) / max(span, np.float32(1e-6))
        zone = span > min_span
        a = np.float32(1.0) if zone and pos < ref else np.float32(0.0)
        b = np.float32(1.0) if zone and pos > np.float32(1.0) - ref else np.float32(0.0)
        planes[0, y, x] = a
        planes[1, y, x] = b
        planes[2, y, x] = q[y, x] * a
        planes[3, y, x] = q[y, x] * b


@cuda.jit
def _snap_share(q, means, t):
    x, y = cuda.grid(2)
    if y < q.shape[0] and x < q.shape[1]:
        q_lo = means[2, y, x] / max(means[0, y, x], np.float32(1e-6))
        q_hi = means[3, y, x] / max(means[1, y, x], np.float32(1e-6))
        v = (q[y, x] - q_lo) / max(q_hi - q_lo, np.float32(1e-6))
        t[y, x] = min(max(v, np.float32(0.0)), np.float32(1.0))


@cuda.jit
def _snap_apply(sigma, lo, hi, t, means, min_span, band, min_share, min_contrast, out):
    x, y = cuda.grid(2)
    if y < sigma.shape[0] and x < sigma.shape[1]:
        s = sigma[y, x]
        span = hi[y, x] - lo[y, x]
        pos = (s - lo[y, x]) / max(span, np.float32(1e-6))
        n_lo = means[0, y, x]
        n_hi = means[1, y, x]
        contrast = means[3, y, x] / max(n_hi, np.float32(1e-6)) - means[2, y, x] / max(n_lo, np.float32(1e-6))
        if (span > min_span and n_lo > min_share and n_hi > min_share and contrast > min_contrast
                and pos > band and pos < np.float32(1.0) - band):
            s = lo[y, x] + t[y, x] * span
        out[y, x] = s


class SnapWork:
    """Scratch planes of :func:`snap_boundaries` on (h, w) maps, reusable across frames."""

    def __init__(self, h, w, stream=0):
        self.shape = (h, w)
        self.planes = cuda.device_array((8, h, w), dtype=np.float32, stream=stream)
        self.refs = cuda.device_array((4, h, w), dtype=np.float32, stream=stream)
        self.means = cuda.device_array((4, h, w), dtype=np.float32, stream=stream)


def snap_boundaries(sigma, lum, radius: int, out=None, work=None, stream=0):
    """:func:`fastdefocus.stages.refine.snap_boundaries` on the GPU: ``sigma`` and ``lum`` float32
    (H, W) device arrays; ``out`` must not be ``sigma`` (the snap reads its neighbours)."""
    from fastdefocus.stages import snap as cpu

    h, w = sigma.shape
    if out is None:
        out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    if work is None or work.shape != (h, w):
        work = SnapWork(h, w, stream)
    p = work.planes
    energy, blurred, tmp, q, lo, hi, lo_rows, hi_rows = (p[i] for i in range(8))
    g, t = _grid2(h, w)
    box3 = np.full(3, 1.0 / 3.0)
    # the evidence: 3 x 3 sums of the pair energy of the image and of its 1-px blur
    _pair_energy[g, t, stream](lum, tmp)
    separable_filter(tmp, box3, out=energy, scratch=lo, stream=stream)
    gaussian_blur(lum, 1.0, out=hi, scratch=lo, stream=stream)
    _pair_energy[g, t, stream](hi, tmp)
    separable_filter(tmp, box3, out=blurred, scratch=lo, stream=stream)
    _evidence[g, t, stream](energy, blurred, np.float32(cpu.SNAP_ENERGY_FLOOR), q)
    # the two sides: the window's minimum and maximum (outside the image ignored)
    _minmax_rows[g, t, stream](sigma, int(radius), lo_rows, hi_rows)
    _minmax_cols[g, t, stream](lo_rows, hi_rows, int(radius), lo, hi)
    min_span = np.float32(cpu.SNAP_MIN_SPAN)
    _snap_references[g, t, stream](sigma, lo, hi, q, min_span, np.float32(cpu.SNAP_REFERENCE), work.refs)
    k = 2 * (int(radius) + cpu.SNAP_REFERENCE_MARGIN) + 1
    mean_taps = np.full(k, 1.0 / k)
    for i in range(4):
        separable_filter(work.refs[i], mean_taps, out=work.means[i], scratch=tmp, stream=stream)
    _snap_share[g, t, stream](q, work.means, energy)
    separable_filter(energy, box3, out=blurred, scratch=tmp, stream=stream)
    _snap_apply[g, t, stream](sigma, lo, hi, blurred, work.means, min_span, np.float32(cpu.SNAP_BAND),
                              np.float32(cpu.SNAP_MIN_SHARE), np.float32(cpu.SNAP_MIN_CONTRAST), out)
    return out
