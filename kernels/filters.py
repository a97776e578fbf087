"""Box filter and (weighted, iterative) guided filter as Numba CUDA kernels.

Same semantics as :mod:`fastdefocus.stages.filters` (the C++ kernels) and
:mod:`fastdefocus.testing.reference`: reflect-101 borders, repeated for windows larger
than the image, sums in double precision, cost per pixel independent of the
radius.

Layout: a window sum is separable, so every filter is built from two passes
over a stack of planes ``(C, H, W)`` in float64: ``_cols_sum`` (one thread per
(plane, column): a running sum down the column, coalesced across a warp) and
``_rows_sum`` (one thread per (plane, row): a running sum along the row).  The
first window of each line is summed as whole reflection periods plus a
remainder shorter than one period, so radii beyond the image cost O(length).
Element-wise kernels form the guided filter's products, its coefficients and
its output around them.
"""

from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import WEIGHT_FLOOR  # w_e = w + WEIGHT_FLOOR, as the CPU kernels

from ._device import THREADS, TILE, as_device, blocks, cuda

__all__ = ["box_filter", "guided_filter", "guided_coefficients", "iterative_guided_filter", "GuidedWork"]


# ------------------------------------------------------------------------ device code


@cuda.jit(device=True, inline=True)
def _reflect(i, n):
    """Index i of the reflect-101 extension of a length-n line (repeated)."""
    if 0 <= i < n:  # the common case: no integer division
        return i
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    if i < 0:
        i += period
    if i >= n:
        i = period - i
    return i


@cuda.jit(device=True)
def _slide(line, out, radius):
    """out[i] = sum of line over [i - r, i + r] of its reflect-101 extension."""
    n = line.shape[0]
    k = 2 * radius + 1
    total = 0.0
    lo = -radius
    if n == 1:
        total = k * float(line[0])
        lo = radius + 1
    else:
        period = 2 * (n - 1)
        whole = k // period
        if whole > 0:
            one_period = float(line[0]) + float(line[n - 1])
            for j in range(1, n - 1):
                one_period += 2.0 * float(line[j])
            total = whole * one_period
            lo = -radius + whole * period
    for j in range(lo, radius + 1):
        total += float(line[_reflect(j, n)])
    out[0] = total
    for i in range(1, n):
        total += float(line[_reflect(i + radius, n)]) - float(line[_reflect(i - radius - 1, n)])
        out[i] = total


@cuda.jit
def _cols_sum(src, dst, radius):
    x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    c = cuda.blockIdx.y
    if x < src.shape[2]:
        _slide(src[c, :, x], dst[c, :, x], radius)


@cuda.jit
def _rows_sum(src, dst, radius):
    y = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    c = cuda.blockIdx.y
    if y < src.shape[1]:
        _slide(src[c, y, :], dst[c, y, :], radius)


@cuda.jit
def _copy_plane(src, dst):
    x, y = cuda.grid(2)
    if y < src.shape[0] and x < src.shape[1]:
        dst[0, y, x] = src[y, x]


@cuda.jit
def _scale_plane(src, dst, scale):
    x, y = cuda.grid(2)
    if y < dst.shape[0] and x < dst.shape[1]:
        dst[y, x] = src[0, y, x] * scale


@cuda.jit(device=True, inline=True)
def _products(p, g, w, weighted, y, x):
    """(w_e, w_e I, w_e p, w_e I p, w_e I^2) at (y, x); w_e = w + WEIGHT_FLOOR, or 1 without weights."""
    gv = float(g[y, x])
    pv = float(p[y, x])
    we = 1.0
    if weighted:
        we = float(w[y, x]) + WEIGHT_FLOOR
    wg = we * gv
    return we, wg, we * pv, wg * pv, wg * gv


@cuda.jit(device=True, inline=True)
def _coefficients(s0, s1, s2, s3, s4, eps):
    """a, b of a window from the sums of its five products."""
    inv_w = 1.0 / s0
    mean_i = s1 * inv_w
    mean_p = s2 * inv_w
    cov_ip = s3 * inv_w - mean_i * mean_p
    var_i = max(s4 * inv_w - mean_i * mean_i, 0.0)
    a = cov_ip / (var_i + eps)
    return a, mean_p - a * mean_i


@cuda.jit
def _guided_products(p, g, w, weighted, stack):
    """stack = the five products of every pixel (``_products``)."""
    x, y = cuda.grid(2)
    if y < p.shape[0] and x < p.shape[1]:
        v0, v1, v2, v3, v4 = _products(p, g, w, weighted, y, x)
        stack[0, y, x] = v0
        stack[1, y, x] = v1
        stack[2, y, x] = v2
        stack[3, y, x] = v3
        stack[4, y, x] = v4


@cuda.jit
def _guided_ab(sums, eps, ab):
    """Per-window a, b from the window sums of the five products."""
    x, y = cuda.grid(2)
    if y < ab.shape[1] and x < ab.shape[2]:
        a, b = _coefficients(sums[0, y, x], sums[1, y, x], sums[2, y, x], sums[3, y, x], sums[4, y, x], eps)
        ab[0, y, x] = a
        ab[1, y, x] = b


@cuda.jit
def _guided_apply(sums_ab, g, inv_area, out):
    """q = box(a) I + box(b)."""
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        out[y, x] = (sums_ab[0, y, x] * float(g[y, x]) + sums_ab[1, y, x]) * inv_area


@cuda.jit
def _guided_split(sums_ab, inv_area, coef_a, coef_b):
    x, y = cuda.grid(2)
    if y < coef_a.shape[0] and x < coef_a.shape[1]:
        coef_a[y, x] = sums_ab[0, y, x] * inv_area
        coef_b[y, x] = sums_ab[1, y, x] * inv_area


@cuda.jit
def _guided_ab_direct(p, g, w, weighted, radius, eps, ab):
    """a, b of every window, its five sums taken directly over the (2r+1)^2 pixels:
    for the small radii of the refinement this is one coalesced pass instead of
    four serial line scans."""
    x, y = cuda.grid(2)
    h, wd = p.shape
    if y < h and x < wd:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        for dy in range(-radius, radius + 1):
            yy = _reflect(y + dy, h)
            for dx in range(-radius, radius + 1):
                xx = _reflect(x + dx, wd)
                v0, v1, v2, v3, v4 = _products(p, g, w, weighted, yy, xx)
                s0 += v0
                s1 += v1
                s2 += v2
                s3 += v3
                s4 += v4
        a, b = _coefficients(s0, s1, s2, s3, s4, eps)
        ab[0, y, x] = a
        ab[1, y, x] = b


@cuda.jit
def _ab_sums_direct(ab, radius, sums):
    """Window sums of the a and b planes, taken directly (small radii)."""
    x, y = cuda.grid(2)
    h, wd = ab.shape[1], ab.shape[2]
    if y < h and x < wd:
        sa = 0.0
        sb = 0.0
        for dy in range(-radius, radius + 1):
            yy = _reflect(y + dy, h)
            for dx in range(-radius, radius + 1):
                xx = _reflect(x + dx, wd)
                sa += ab[0, yy, xx]
                sb += ab[1, yy, xx]
        sums[0, y, x] = sa
        sums[1, y, x] = sb


# ------------------------------------------------------------------------- host side

#: Largest radius whose window sums are taken directly ((2r+1)^2 reads per pixel);
#: larger ones use the separable running sums, whose cost does not depend on r.
DIRECT_MAX_RADIUS = 3

_TILE = TILE


def _grid2(h, w):
    # x (the fastest index in a warp, first in cuda.grid(2)) runs along a row: coalesced
    return (blocks(w, _TILE[1]), blocks(h, _TILE[0])), (_TILE[1], _TILE[0])


def _inv_area(radius: int) -> float:
    side = 2.0 * float(radius) + 1.0
    return 1.0 / (side * side)


def _window_sums(stack, tmp, radius, stream=0):
    """stack <- separable window sums of every plane (tmp: same-shaped scratch)."""
    c, h, w = stack.shape
    _cols_sum[(blocks(w), c), THREADS, stream](stack, tmp, radius)
    _rows_sum[(blocks(h), c), THREADS, stream](tmp, stack, radius)


def _check_radius(func, radius):
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, np.integer)):
        raise TypeError(f"{func}: radius must be an int >= 0, got {radius!r}")
    if radius < 0:
        raise ValueError(f"{func}: radius must be an int >= 0, got {radius}")
    return int(radius)


def _check_eps(func, eps):
    eps = float(eps)
    if not math.isfinite(eps) or eps <= 0.0:
        raise ValueError(f"{func}: eps must be a finite number > 0, got {eps!r}")
    return eps


def _out_array(func, out, shape):
    if out is None:
        return cuda.device_array(shape, dtype=np.float32)
    out = as_device(func, "out", out)
    if out.shape != shape or out.dtype != np.float32:
        raise ValueError(
            f"{func}: out must be float32 of shape {shape}, got {out.dtype} of shape {out.shape}"
        )
    return out


def box_filter(src, radius: int, out=None, stream=0):
    """Mean over the (2r+1) x (2r+1) window, reflect-101 borders, on the GPU.

    Parameters
    ----------
    src : device array, shape (H, W)
        Any real dtype (read as float64).
    radius : int
        r >= 0, may exceed the image.
    out : device array, shape (H, W), float32, optional
        Written in place if given.

    Returns
    -------
    Numba device array, shape (H, W), float32
    """
    func = "box_filter"
    r = _check_radius(func, radius)
    img = as_device(func, "src", src)
    h, w = img.shape
    out = _out_array(func, out, (h, w))
    stack = cuda.device_array((1, h, w), dtype=np.float64, stream=stream)
    tmp = cuda.device_array((1, h, w), dtype=np.float64, stream=stream)
    grid, tile = _grid2(h, w)
    _copy_plane[grid, tile, stream](img, stack)
    _window_sums(stack, tmp, r, stream)
    _scale_plane[grid, tile, stream](stack, out, _inv_area(r))
    return out


class GuidedWork:
    """Scratch buffers of guided filter calls on (h, w) images with radius r, reusable
    across iterations and frames (the streaming pipeline allocates them once)."""

    def __init__(self, h, w, radius, stream=0):
        self.shape = (h, w)
        self.direct = radius <= DIRECT_MAX_RADIUS
        if not self.direct:
            self.products = cuda.device_array((5, h, w), dtype=np.float64, stream=stream)
            self.products_tmp = cuda.device_array((5, h, w), dtype=np.float64, stream=stream)
        self.ab = cuda.device_array((2, h, w), dtype=np.float64, stream=stream)
        self.ab_tmp = cuda.device_array((2, h, w), dtype=np.float64, stream=stream)


def _guided_sums_ab(p, g, w, r, eps, work, stream=0):
    """Window sums of (a, b), in ``work.ab`` (separable) or ``work.ab_tmp`` (direct); returned."""
    h, wd = p.shape
    grid, tile = _grid2(h, wd)
    weighted = w is not None
    if r <= DIRECT_MAX_RADIUS:
        _guided_ab_direct[grid, tile, stream](p, g, w if weighted else g, weighted, r, eps, work.ab)
        _ab_sums_direct[grid, tile, stream](work.ab, r, work.ab_tmp)
        return work.ab_tmp
    _guided_products[grid, tile, stream](p, g, w if weighted else g, weighted, work.products)
    _window_sums(work.products, work.products_tmp, r, stream)
    _guided_ab[grid, tile, stream](work.products, eps, work.ab)
    _window_sums(work.ab, work.ab_tmp, r, stream)
    return work.ab


def _guided_args(func, src, guide, radius, eps, weights):
    r = _check_radius(func, radius)
    e = _check_eps(func, eps)
    p = as_device(func, "src", src)
    g = as_device(func, "guide", guide)
    if g.shape != p.shape:
        raise ValueError(f"{func}: guide must have the shape of src {p.shape}, got {g.shape}")
    w = None
    if weights is not None:
        w = as_device(func, "weights", weights)
        if w.shape != p.shape:
            raise ValueError(f"{func}: weights must have the shape of src {p.shape}, got {w.shape}")
    return p, g, w, r, e


def guided_coefficients(guide, src, radius: int, eps: float, weights=None, out=None,
                        stream=0, work=None):
    """``(A, B) = (box(a), box(b))`` of the (weighted) guided filter on the GPU.

    Arguments in OpenCV's order, ``(guide, src, radius, eps)``, as the CPU twin (gray guide
    (H, W) and source (H, W) here).

    Same definition as :func:`fastdefocus.stages.filters.guided_coefficients`
    (``w_e = w + WEIGHT_FLOOR``, :data:`fastdefocus._params.WEIGHT_FLOOR`); returns two
    float32 device arrays of shape (H, W) (``out``, a pair of them, if given). ``stream``:
    the CUDA stream to launch on; ``work``: a :class:`GuidedWork` to reuse.
    """
    func = "guided_coefficients"
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    h, wd = p.shape
    work = _work_for(work, h, wd, r, stream)
    sums = _guided_sums_ab(p, g, w, r, e, work, stream)
    if out is None:
        out = (cuda.device_array((h, wd), dtype=np.float32, stream=stream),
               cuda.device_array((h, wd), dtype=np.float32, stream=stream))
    coef_a, coef_b = (_out_array(func, o, (h, wd)) for o in out)
    grid, tile = _grid2(h, wd)
    _guided_split[grid, tile, stream](sums, _inv_area(r), coef_a, coef_b)
    return coef_a, coef_b


def _work_for(work, h, wd, r, stream):
    if work is None or work.shape != (h, wd) or work.direct != (r <= DIRECT_MAX_RADIUS):
        return GuidedWork(h, wd, r, stream)
    return work


def guided_filter(guide, src, radius: int, eps: float, weights=None, out=None, stream=0):
    """(Weighted) guided filter ``q = box(a) I + box(b)`` on the GPU.

    Same semantics and argument order as :func:`fastdefocus.stages.filters.guided_filter`
    (OpenCV's ``(guide, src, radius, eps)``; gray guide (H, W) and source (H, W) here); returns
    a float32 device array of shape (H, W) (``out`` if given).
    """
    return iterative_guided_filter(guide, src, radius, eps, weights, 1, out=out, stream=stream)


def iterative_guided_filter(guide, src, radius: int, eps: float, weights=None,
                            iterations: int = 1, out=None, stream=0, work=None, scratch=None):
    """``iterations`` guided filter passes with a fixed guide and weights, on the GPU
    (arguments in OpenCV's order, ``(guide, src, radius, eps)``).

    Scratch buffers are allocated once for all passes (or taken from ``work``, a
    :class:`GuidedWork`, and ``scratch``, a float32 (H, W) device array); returns
    a float32 device array of shape (H, W) (``out`` if given). ``stream``: the
    CUDA stream to launch on.
    """
    func = "iterative_guided_filter"
    if isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 1:
        raise ValueError(f"{func}: iterations must be an int >= 1, got {iterations!r}")
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    h, wd = p.shape
    out = _out_array(func, out, (h, wd))
    work = _work_for(work, h, wd, r, stream)
    grid, tile = _grid2(h, wd)
    inv_area = _inv_area(r)
    # ping-pong so that every pass reads the previous one and out gets the last
    other = None
    if iterations > 1:
        other = scratch if scratch is not None else cuda.device_array((h, wd), dtype=np.float32,
                                                                      stream=stream)
    current = p
    for it in range(int(iterations)):
        target = out if (iterations - 1 - it) % 2 == 0 else other
        sums = _guided_sums_ab(current, g, w, r, e, work, stream)
        _guided_apply[grid, tile, stream](sums, g, inv_area, target)
        current = target
    return out
