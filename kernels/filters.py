"""Box filter and (weighted, iterative) guided filter as Numba CUDA kernels.

Same semantics as :mod:`fastdefocus.filters` (the C++ kernels) and
:mod:`fastdefocus._reference`: reflect-101 borders, repeated for windows larger
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

from ._device import THREADS, TILE, as_device, blocks, cuda

__all__ = ["box_filter", "guided_filter", "guided_coefficients", "iterative_guided_filter"]

WEIGHT_FLOOR = 1e-6  # w_e = w + 1e-6, as the CPU kernels


# ------------------------------------------------------------------------ device code


@cuda.jit(device=True, inline=True)
def _reflect(i, n):
    """Index i of the reflect-101 extension of a length-n line (repeated)."""
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
    y, x = cuda.grid(2)
    if y < src.shape[0] and x < src.shape[1]:
        dst[0, y, x] = src[y, x]


@cuda.jit
def _scale_plane(src, dst, scale):
    y, x = cuda.grid(2)
    if y < dst.shape[0] and x < dst.shape[1]:
        dst[y, x] = src[0, y, x] * scale


@cuda.jit
def _guided_products(p, g, w, weighted, stack):
    """stack = (w_e, w_e I, w_e p, w_e I p, w_e I^2); w_e = 1 without weights."""
    y, x = cuda.grid(2)
    if y < p.shape[0] and x < p.shape[1]:
        gv = float(g[y, x])
        pv = float(p[y, x])
        we = 1.0
        if weighted:
            we = float(w[y, x]) + WEIGHT_FLOOR
        wg = we * gv
        stack[0, y, x] = we
        stack[1, y, x] = wg
        stack[2, y, x] = we * pv
        stack[3, y, x] = wg * pv
        stack[4, y, x] = wg * gv


@cuda.jit
def _guided_ab(sums, eps, ab):
    """Per-window a, b from the window sums of the five products."""
    y, x = cuda.grid(2)
    if y < ab.shape[1] and x < ab.shape[2]:
        inv_w = 1.0 / sums[0, y, x]
        mean_i = sums[1, y, x] * inv_w
        mean_p = sums[2, y, x] * inv_w
        cov_ip = sums[3, y, x] * inv_w - mean_i * mean_p
        var_i = max(sums[4, y, x] * inv_w - mean_i * mean_i, 0.0)
        a = cov_ip / (var_i + eps)
        ab[0, y, x] = a
        ab[1, y, x] = mean_p - a * mean_i


@cuda.jit
def _guided_apply(sums_ab, g, inv_area, out):
    """q = box(a) I + box(b)."""
    y, x = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        out[y, x] = (sums_ab[0, y, x] * float(g[y, x]) + sums_ab[1, y, x]) * inv_area


@cuda.jit
def _guided_split(sums_ab, inv_area, coef_a, coef_b):
    y, x = cuda.grid(2)
    if y < coef_a.shape[0] and x < coef_a.shape[1]:
        coef_a[y, x] = sums_ab[0, y, x] * inv_area
        coef_b[y, x] = sums_ab[1, y, x] * inv_area


# ------------------------------------------------------------------------- host side

_TILE = TILE


def _grid2(h, w):
    return (blocks(h, _TILE[0]), blocks(w, _TILE[1])), _TILE


def _inv_area(radius: int) -> float:
    side = 2.0 * float(radius) + 1.0
    return 1.0 / (side * side)


def _window_sums(stack, tmp, radius):
    """stack <- separable window sums of every plane (tmp: same-shaped scratch)."""
    c, h, w = stack.shape
    _cols_sum[(blocks(w), c), THREADS](stack, tmp, radius)
    _rows_sum[(blocks(h), c), THREADS](tmp, stack, radius)


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


def box_filter(src, radius: int, out=None):
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
    stack = cuda.device_array((1, h, w), dtype=np.float64)
    tmp = cuda.device_array((1, h, w), dtype=np.float64)
    grid, tile = _grid2(h, w)
    _copy_plane[grid, tile](img, stack)
    _window_sums(stack, tmp, r)
    _scale_plane[grid, tile](stack, out, _inv_area(r))
    return out


class _GuidedWork:
    """Scratch buffers of one guided filter call, reusable across iterations."""

    def __init__(self, h, w):
        self.products = cuda.device_array((5, h, w), dtype=np.float64)
        self.products_tmp = cuda.device_array((5, h, w), dtype=np.float64)
        self.ab = cuda.device_array((2, h, w), dtype=np.float64)
        self.ab_tmp = cuda.device_array((2, h, w), dtype=np.float64)


def _guided_sums_ab(p, g, w, r, eps, work):
    """work.ab <- window sums of (a, b)."""
    h, wd = p.shape
    grid, tile = _grid2(h, wd)
    weighted = w is not None
    _guided_products[grid, tile](p, g, w if weighted else g, weighted, work.products)
    _window_sums(work.products, work.products_tmp, r)
    _guided_ab[grid, tile](work.products, eps, work.ab)
    _window_sums(work.ab, work.ab_tmp, r)


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


def guided_coefficients(src, guide, radius: int, eps: float, weights=None):
    """``(A, B) = (box(a), box(b))`` of the (weighted) guided filter on the GPU.

    Same definition as :func:`fastdefocus.filters.guided_coefficients`
    (``w_e = w + 1e-6``); returns two float32 device arrays of shape (H, W).
    """
    func = "guided_coefficients"
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    h, wd = p.shape
    work = _GuidedWork(h, wd)
    _guided_sums_ab(p, g, w, r, e, work)
    coef_a = cuda.device_array((h, wd), dtype=np.float32)
    coef_b = cuda.device_array((h, wd), dtype=np.float32)
    grid, tile = _grid2(h, wd)
    _guided_split[grid, tile](work.ab, _inv_area(r), coef_a, coef_b)
    return coef_a, coef_b


def guided_filter(src, guide, radius: int, eps: float, weights=None, out=None):
    """(Weighted) guided filter ``q = box(a) I + box(b)`` on the GPU.

    Same semantics as :func:`fastdefocus.filters.guided_filter`; returns a
    float32 device array of shape (H, W) (``out`` if given).
    """
    return iterative_guided_filter(src, guide, radius, eps, weights, 1, out=out)


def iterative_guided_filter(src, guide, radius: int, eps: float, weights=None,
                            iterations: int = 1, out=None):
    """``iterations`` guided filter passes with a fixed guide and weights, on the GPU.

    Scratch buffers are allocated once for all passes; returns a float32
    device array of shape (H, W) (``out`` if given).
    """
    func = "iterative_guided_filter"
    if isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 1:
        raise ValueError(f"{func}: iterations must be an int >= 1, got {iterations!r}")
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    h, wd = p.shape
    out = _out_array(func, out, (h, wd))
    work = _GuidedWork(h, wd)
    grid, tile = _grid2(h, wd)
    inv_area = _inv_area(r)
    # ping-pong so that every pass reads the previous one and out gets the last
    other = cuda.device_array((h, wd), dtype=np.float32) if iterations > 1 else None
    current = p
    for it in range(int(iterations)):
        target = out if (iterations - 1 - it) % 2 == 0 else other
        _guided_sums_ab(current, g, w, r, e, work)
        _guided_apply[grid, tile](work.ab, g, inv_area, target)
        current = target
    return out
