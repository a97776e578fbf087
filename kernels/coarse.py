"""The coarse levels' stages as Numba CUDA kernels (the GPU twin of :mod:`fastdefocus.stages.coarse`;
the estimator at the coarse scale is the GPU pipeline itself, run on the shrunk image):

- :func:`region_box`: the count, first / last row and first / last column of the map's pixels
  past a level's gate (block reductions, then atomics), copied to the host: the one host
  sync of the stage; :func:`fastdefocus.stages.coarse.box_region` turns it into the region;
- :func:`shrink`: f x f block means of the region's luminance reflect-padded (reflect-101, as
  :func:`fastdefocus.stages.refine.pad_to`) to multiples of f (OpenCV's INTER_AREA at an
  integer factor);
- :func:`upsample_merge`: the coarse sigma (times f) and confidence (clipped to [0, 1])
  resized with OpenCV's INTER_LINEAR to the padded region, fused with
  :func:`fastdefocus.stages.coarse.merge` (float32) in place on the map.

Every host function takes an optional ``stream`` and allocates nothing unless an output
is omitted.
"""

from __future__ import annotations

import numpy as np

from fastdefocus._params import COARSE_CONF

from ._device import SIMULATOR, THREADS, _grid2, as_device, blocks, cuda
from .filters import _reflect  # one reflect-101 index rule for every kernel
from .refine import _bilinear  # OpenCV's INTER_LINEAR, as the refine stage

__all__ = ["region_box", "shrink", "upsample_merge", "shrunk_shape"]

#: Most blocks of the reduction (each thread strides over the map; one set of atomics a block);
#: few under the simulator, where every block's barrier costs Python threads.
_MAX_BLOCKS = 4 if SIMULATOR else 1024


# ------------------------------------------------------------------------- region


@cuda.jit
def _box_init(box, h, w):
    if cuda.grid(1) == 0:
        box[0] = 0
        box[1] = h
        box[2] = -1
        box[3] = w
        box[4] = -1


@cuda.jit
def _box_reduce(sigma, lo, box):
    h, w = sigma.shape
    n = h * w
    count = 0
    y_min, y_max, x_min, x_max = h, -1, w, -1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):  # consecutive threads, consecutive pixels
        y = i // w
        x = i - y * w
        if sigma[y, x] > lo:
            count += 1
            y_min = min(y_min, y)
            y_max = max(y_max, y)
            x_min = min(x_min, x)
            x_max = max(x_max, x)
    block = cuda.shared.array(5, np.int32)
    if cuda.threadIdx.x == 0:
        block[0] = 0
        block[1] = h
        block[2] = -1
        block[3] = w
        block[4] = -1
    cuda.syncthreads()
    if count > 0:
        cuda.atomic.add(block, 0, np.int32(count))
        cuda.atomic.min(block, 1, np.int32(y_min))
        cuda.atomic.max(block, 2, np.int32(y_max))
        cuda.atomic.min(block, 3, np.int32(x_min))
        cuda.atomic.max(block, 4, np.int32(x_max))
    cuda.syncthreads()
    if cuda.threadIdx.x == 0 and block[0] > 0:
        cuda.atomic.add(box, 0, block[0])
        cuda.atomic.min(box, 1, block[1])
        cuda.atomic.max(box, 2, block[2])
        cuda.atomic.min(box, 3, block[3])
        cuda.atomic.max(box, 4, block[4])


def region_box(sigma, lo: float, out=None, host=None, stream=0) -> tuple[int, int, int, int, int]:
    """(count, first row, last row, first column, last column) of the pixels of the device map
    ``sigma`` (float32 (H, W)) with sigma > ``lo`` (compared in float32; the box is (H, -1, W,
    -1) when there are none). ``out``: a device int32 (5,) scratch, ``host``: a (pinned) host
    int32 (5,) buffer. Waits for ``stream``: the values are on the host when it returns."""
    func = "region_box"
    sigma = as_device(func, "sigma", sigma)
    h, w = sigma.shape
    if out is None:
        out = cuda.device_array(5, dtype=np.int32, stream=stream)
    _box_init[1, 1, stream](out, h, w)
    n_blocks = min(blocks(h * w), _MAX_BLOCKS)
    _box_reduce[n_blocks, THREADS, stream](sigma, np.float32(lo), out)
    if host is None:
        host = out.copy_to_host(stream=stream)
    else:
        out.copy_to_host(host, stream=stream)
    if hasattr(stream, "synchronize"):
        stream.synchronize()
    return tuple(int(v) for v in host)


# ------------------------------------------------------------------------- shrink


def shrunk_shape(region, factor: int) -> tuple[int, int]:
    """(rows, columns) of the shrunk image of ``region`` = (y0, y1, x0, x1): its size rounded up
    to multiples of ``factor``, divided by ``factor``."""
    y0, y1, x0, x1 = region
    return -(-(y1 - y0) // factor), -(-(x1 - x0) // factor)


@cuda.jit
def _shrink(lum, y0, x0, rh, rw, f, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        acc = 0.0
        for dy in range(f):
            yy = y0 + _reflect(y * f + dy, rh)
            for dx in range(f):
                acc += float(lum[yy, x0 + _reflect(x * f + dx, rw)])
        out[y, x] = acc / (f * f)


def shrink(lum, region, factor: int, out=None, stream=0):
    """The f x f block means (f = ``factor``) of ``lum[y0:y1, x0:x1]`` (``region`` = (y0, y1,
    x0, x1)) reflect-padded at the bottom and right to multiples of f: a float32 device array
    of :func:`shrunk_shape` (``cv2.resize(pad_to(crop), ..., INTER_AREA)``)."""
    func = "shrink"
    lum = as_device(func, "lum", lum)
    y0, y1, x0, x1 = (int(v) for v in region)
    f = int(factor)
    if not (0 <= y0 < y1 <= lum.shape[0] and 0 <= x0 < x1 <= lum.shape[1]) or f < 1:
        raise ValueError(f"{func}: region {tuple(region)} / factor {factor} do not fit a map of shape "
                         f"{tuple(lum.shape)}")
    shape = shrunk_shape((y0, y1, x0, x1), f)
    if out is None:
        out = cuda.device_array(shape, dtype=np.float32, stream=stream)
    elif tuple(out.shape) != shape:
        raise ValueError(f"{func}: out must have shape {shape}, got {tuple(out.shape)}")
    g, t = _grid2(*shape)
    _shrink[g, t, stream](lum, y0, x0, y1 - y0, x1 - x0, f, out)
    return out


# ------------------------------------------------------------------------- upsample + merge


@cuda.jit
def _upsample_merge(coarse_sigma, coarse_conf, y0, x0, rh, rw, ph, pw, f, lo, inv, kinv, sigma, conf):
    x, y = cuda.grid(2)
    if y < rh and x < rw:
        zero, one = np.float32(0.0), np.float32(1.0)
        up_s = np.float32(_bilinear(coarse_sigma, y, x, ph, pw)) * f
        up_c = min(max(np.float32(_bilinear(coarse_conf, y, x, ph, pw)), zero), one)
        s = sigma[y0 + y, x0 + x]
        g = min(max((s - lo) * inv, zero), one)
        k = min(up_c * kinv, one)
        wgt = g * k
        raise_ = max(up_s - s, zero)
        if wgt > zero and raise_ > zero:
            sigma[y0 + y, x0 + x] = s + wgt * raise_
            conf[y0 + y, x0 + x] = max(conf[y0 + y, x0 + x], wgt * up_c)


def upsample_merge(coarse_sigma, coarse_conf, region, factor: int, lo: float, hi: float, sigma, conf,
                   conf_full: float = COARSE_CONF, stream=0):
    """Merge a coarse level into the map in place: ``coarse_sigma`` / ``coarse_conf`` (the
    estimate of :func:`shrink`'s image) resized with INTER_LINEAR to the padded ``region``,
    sigma times ``factor`` and confidence clipped to [0, 1], raise ``sigma`` / ``conf``
    (float32 device maps) in ``region`` by :func:`fastdefocus.stages.coarse.merge`'s rule
    with the gate (``lo``, ``hi``). Returns ``(sigma, conf)``."""
    func = "upsample_merge"
    coarse_sigma = as_device(func, "coarse_sigma", coarse_sigma)
    coarse_conf = as_device(func, "coarse_conf", coarse_conf)
    sigma, conf = as_device(func, "sigma", sigma), as_device(func, "conf", conf)
    y0, y1, x0, x1 = (int(v) for v in region)
    f = int(factor)
    shape = shrunk_shape((y0, y1, x0, x1), f)
    if tuple(coarse_sigma.shape) != shape or tuple(coarse_conf.shape) != shape:
        raise ValueError(f"{func}: the coarse maps must have shape {shape}, got {tuple(coarse_sigma.shape)} "
                         f"and {tuple(coarse_conf.shape)}")
    if not hi > lo or not conf_full > 0:
        raise ValueError(f"{func}: needs hi > lo and conf_full > 0, got lo {lo}, hi {hi}, conf_full {conf_full}")
    rh, rw = y1 - y0, x1 - x0
    g, t = _grid2(rh, rw)
    _upsample_merge[g, t, stream](coarse_sigma, coarse_conf, y0, x0, rh, rw, shape[0] * f, shape[1] * f,
                                  np.float32(f), np.float32(lo), np.float32(1.0 / (hi - lo)),
                                  np.float32(1.0 / conf_full), sigma, conf)
    return sigma, conf
