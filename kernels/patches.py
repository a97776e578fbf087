"""Patch extraction with per-patch normalisation as a Numba CUDA kernel.

Same grid, borders and normalisation as :func:`fastdefocus.stages.filters.extract_patches`:
``ny = ceil(max(H - size, 0) / stride) + 1`` rows of patches (``nx`` likewise),
the image reflect-101 padded (repeated) at the bottom and right, and each patch
optionally mapped to ``(p - mean) / max(std, std_floor)`` with its population
standard deviation, computed in double precision.

Layout: one block per patch, ``threads`` threads striding over its pixels;
the mean and then the sum of squared deviations are reduced in shared memory
(two passes over the patch, which stays in L1/L2), and the normalised values
are written straight into a preallocated batch (float32 or float16, the
classifier's input), so no intermediate patch array exists.
"""

from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import FLAT_STD

from ._device import as_device, cuda
from .filters import _reflect  # one reflect-101 index rule for every kernel

__all__ = ["patch_grid", "extract_patches", "dihedral_view", "accumulate_views"]

MAX_THREADS = 256  # size of the shared reduction buffer


@cuda.jit(device=True)
def _block_sum(buf, value):
    """Sum of ``value`` over the block (every thread gets the result)."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    step = 1
    while step < cuda.blockDim.x:
        step *= 2
    step //= 2
    while step > 0:
        if t < step and t + step < cuda.blockDim.x:
            buf[t] += buf[t + step]
        cuda.syncthreads()
        step //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


#: Largest patch (pixels) staged in shared memory; larger ones are read from global memory.
TILE_PIXELS = 1024


@cuda.jit
def _extract(gray, size, stride, nx, first, count, normalize, std_floor, out, want_std, std_out):
    b = cuda.blockIdx.x
    if b >= count:  # uniform per block, so no thread misses a syncthreads
        return
    buf = cuda.shared.array(MAX_THREADS, dtype=np.float64)
    tile = cuda.shared.array(TILE_PIXELS, dtype=np.float32)
    h, w = gray.shape
    index = first + b
    y0 = (index // nx) * stride
    x0 = (index % nx) * stride
    n = size * size
    staged = n <= TILE_PIXELS
    t = cuda.threadIdx.x
    step = cuda.blockDim.x
    # one read of the patch from global memory (reflect-101 only at the bottom/right)
    part = 0.0
    for j in range(t, n, step):
        v = gray[_reflect(y0 + j // size, h), _reflect(x0 + j % size, w)]
        if staged:
            tile[j] = v
        part += float(v)
    mean = _block_sum(buf, part) / n  # the block_sum's barrier also publishes the tile
    scale = 1.0
    if normalize or want_std:
        part = 0.0
        for j in range(t, n, step):
            if staged:
                d = float(tile[j]) - mean
            else:
                d = float(gray[_reflect(y0 + j // size, h), _reflect(x0 + j % size, w)]) - mean
            part += d * d
        std = math.sqrt(_block_sum(buf, part) / n)
        if want_std and t == 0:
            std_out[index] = std
        if normalize:
            scale = 1.0 / max(std, std_floor)
        else:
            mean = 0.0
    else:
        mean = 0.0
    for j in range(t, n, step):
        if staged:
            v = float(tile[j])
        else:
            v = float(gray[_reflect(y0 + j // size, h), _reflect(x0 + j % size, w)])
        out[b, j // size, j % size] = (v - mean) * scale


def patch_grid(shape, size: int = 32, stride: int = 8):
    """``(ny, nx)`` of the patch grid of an image of ``shape`` (H, W)."""
    h, w = shape
    return (math.ceil(max(h - size, 0) / stride) + 1, math.ceil(max(w - size, 0) / stride) + 1)


def extract_patches(gray, size: int = 32, stride: int = 8, normalize: bool = False,
                    std_floor: float = FLAT_STD, out=None, first: int = 0, dtype=np.float32,
                    threads: int = 128, std_out=None, stream=0):
    """Patches of a device image on a regular grid, written into a batch.

    Parameters
    ----------
    gray : device array, shape (H, W)
        Any real dtype (read as float64).
    size, stride : int
        Patch side and grid step, >= 1.
    normalize : bool
        ``(p - mean) / max(std, std_floor)`` per patch (population std).
    std_floor : float
        > 0; default :data:`fastdefocus._params.FLAT_STD`.
    out : device array, shape (N, size, size) or (N, 1, size, size), optional
        float32 or float16 batch (e.g. the classifier's fp16 input, shared
        through ``__cuda_array_interface__``); receives the patches
        ``first .. first + n - 1`` (row-major over the grid), with
        ``n = min(N, ny * nx - first)``, so large frames can be processed in
        chunks.  Allocated for all patches (of ``dtype``) if omitted.
    first : int
        Index of the first patch written.
    threads : int
        Threads per block (one block per patch), 1..256.
    std_out : device array, shape (ny * nx,), float32 or float64, optional
        Receives each written patch's standard deviation (before normalisation) at
        its grid index: the texture measure of the splat stage, for free.
    stream : CUDA stream, optional

    Returns
    -------
    out : device array
        The batch (the rows past ``n`` are left untouched).
    grid : tuple of int
        ``(ny, nx)``.
    """
    func = "extract_patches"
    img = as_device(func, "gray", gray)
    size, stride, first, threads = int(size), int(stride), int(first), int(threads)
    if size < 1 or stride < 1:
        raise ValueError(f"{func}: size and stride must be >= 1, got {size}, {stride}")
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"{func}: threads must be in 1..{MAX_THREADS}, got {threads}")
    std_floor = float(std_floor)
    if not math.isfinite(std_floor) or std_floor <= 0:
        raise ValueError(f"{func}: std_floor must be a finite number > 0, got {std_floor!r}")
    ny, nx = patch_grid(img.shape, size, stride)
    total = ny * nx
    if not 0 <= first < total:
        raise ValueError(f"{func}: first must be in 0..{total - 1}, got {first}")
    if out is None:
        out = cuda.device_array((total - first, size, size), dtype=dtype)
        batch = out
    else:
        ndim = getattr(out, "ndim", len(getattr(out, "shape", ())))
        out = as_device(func, "out", out, ndim=ndim)
        batch = out[:, 0] if ndim == 4 else out
        if batch.ndim != 3 or batch.shape[1:] != (size, size) or (ndim == 4 and out.shape[1] != 1):
            raise ValueError(f"{func}: out must have shape (N, {size}, {size}) or "
                             f"(N, 1, {size}, {size}), got {out.shape}")
        if batch.dtype not in (np.float32, np.float16):
            raise TypeError(f"{func}: out must be float32 or float16, got {batch.dtype}")
    count = min(batch.shape[0], total - first)
    want_std = std_out is not None
    if want_std:
        std_out = as_device(func, "std_out", std_out, ndim=1)
        if std_out.shape[0] != total:
            raise ValueError(f"{func}: std_out must have {total} elements (one per patch), "
                             f"got {std_out.shape[0]}")
    if count > 0:
        _extract[count, threads, stream](img, size, stride, nx, first, count, bool(normalize),
                                         std_floor, batch, want_std, std_out if want_std else batch)
    return out, (ny, nx)


@cuda.jit
def _dihedral(src, count, view, out):
    k, i = cuda.grid(2)
    size = src.shape[1]
    if k >= count or i >= size * size:
        return
    r = i // size
    c = i - r * size
    a = c if view & 4 else r
    b = r if view & 4 else c
    if view & 1:
        b = size - 1 - b
    if view & 2:
        a = size - 1 - a
    out[k, r, c] = src[k, a, b]


def _batch(func, name, arr):
    arr = as_device(func, name, arr, ndim=getattr(arr, "ndim", len(getattr(arr, "shape", ()))))
    batch = arr[:, 0] if arr.ndim == 4 else arr
    if batch.ndim != 3 or batch.shape[1] != batch.shape[2] or (arr.ndim == 4 and arr.shape[1] != 1):
        raise ValueError(f"{func}: {name} must have shape (N, P, P) or (N, 1, P, P), got {arr.shape}")
    return batch


def dihedral_view(src, view: int, out, count: int | None = None, stream=0):
    """View ``view`` (0-7) of the first ``count`` square patches of ``src`` into ``out``
    (:func:`fastdefocus.stages.classify.dihedral_view`: ``y[r, c] = x[a, b]``, ``(a, b)`` ``(r, c)``
    or ``(c, r)`` from view 4, ``b`` mirrored by bit 0 of ``view``, ``a`` by bit 1). Both device
    arrays (N, P, P) or (N, 1, P, P) of the same patch size; one thread per pixel."""
    func = "dihedral_view"
    a, b = _batch(func, "src", src), _batch(func, "out", out)
    view = int(view)
    if not 0 <= view < 8:
        raise ValueError(f"{func}: view must be in 0-7, got {view}")
    n = a.shape[0] if count is None else int(count)
    if a.shape[1:] != b.shape[1:] or not 0 <= n <= min(a.shape[0], b.shape[0]):
        raise ValueError(f"{func}: src {src.shape} and out {out.shape} must hold {n} patches of one size")
    if n:
        pixels = a.shape[1] * a.shape[2]
        _dihedral[(n, (pixels + 127) // 128), (1, 128), stream](a, n, view, b)
    return out


@cuda.jit
def _accumulate(acc, probs, count, first, scale):
    i, j = cuda.grid(2)
    if i >= count or j >= acc.shape[1]:
        return
    acc[i, j] = (probs[i, j] if first else acc[i, j] + probs[i, j]) * scale  # x 1.0 is exact


def accumulate_views(acc, probs, count: int, first: bool, scale: float = 1.0, stream=0):
    """``acc[:count] = (probs[:count] if first else acc[:count] + probs[:count]) * scale`` on
    float32 device arrays (N, L): the sum of a patch batch's probabilities over its views, in view
    order, and the division by the number of views (``scale`` 1 / views on the last one), as
    :func:`fastdefocus.stages.classify.dihedral_probabilities` computes them."""
    func = "accumulate_views"
    acc = as_device(func, "acc", acc, ndim=2)
    probs = as_device(func, "probs", probs, ndim=2)
    count = int(count)
    if acc.shape[1] != probs.shape[1] or not 0 <= count <= min(acc.shape[0], probs.shape[0]):
        raise ValueError(f"{func}: acc {acc.shape} and probs {probs.shape} must hold {count} rows of one width")
    if count:
        _accumulate[((count + 63) // 64, acc.shape[1]), (64, 1), stream](acc, probs, count, bool(first),
                                                                            np.float32(scale))
    return acc
