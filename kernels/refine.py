"""The refine stage's resizes and its guided upsampling as Numba CUDA kernels (the GPU twin
of :mod:`fastdefocus.stages.refine`; the guided filter itself is :mod:`fastdefocus.kernels.filters`):

- :func:`resize_linear`, :func:`area_guide`, :func:`upsample_apply`: the resizes of
  :func:`fastdefocus.stages.refine.refine` (OpenCV's INTER_LINEAR and integer-factor
  INTER_AREA) and its guided upsampling, fused with the crop, clip and confidence map
  of the estimator;
- :func:`blend`: temporal smoothing of a stream.

Every host function takes an optional ``stream`` and allocates nothing unless an output
is omitted, so a stream of same-sized frames reuses its buffers.
"""

from __future__ import annotations

import math

import numpy as np

from ._device import _grid2, cuda
from .filters import _reflect  # one reflect-101 index rule for every kernel

__all__ = ["resize_linear", "area_guide", "upsample_apply", "blend"]


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

