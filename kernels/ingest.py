"""The ingest stage as Numba CUDA kernels (the GPU twin of :mod:`fastdefocus.stages.ingest`),
with the blur and padding every later GPU stage reads:

- :func:`luminance`: :func:`fastdefocus.stages.ingest.to_luminance` (Rec. 601 luma,
  :data:`fastdefocus._params.LUMA_WEIGHTS`, in float32; uint8 / uint16 / float input,
  clipped to [0, 1]);
- :func:`separable_filter` / :func:`gaussian_blur`:
  :func:`fastdefocus.blur.gaussian_blur` (discrete Gaussian, reflect-101);
- :func:`pad_reflect`: :func:`fastdefocus.stages.refine.pad_to`.

Every host function takes an optional ``stream`` and allocates nothing unless an output
is omitted, so a stream of same-sized frames reuses its buffers.
"""

from __future__ import annotations


import numpy as np

from fastdefocus._params import LUMA_WEIGHTS
from fastdefocus.blur import gaussian_kernel1d

from ._device import _device_const, _grid2, as_device, cuda
from .filters import _reflect  # one reflect-101 index rule for every kernel

__all__ = ["luminance", "separable_filter", "gaussian_blur", "pad_reflect"]


# ------------------------------------------------------------------------ luminance

#: Rec. 601 luma weights in float32, as the CPU ingest.
_LUMA = np.array(LUMA_WEIGHTS, dtype=np.float32)


@cuda.jit
def _luminance_rgb(frame, weights, scale, red, out):
    """``red``: the channel holding red (0 for RGB, 2 for BGR); blue is the other end."""
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        v = (np.float32(frame[y, x, red]) * weights[0] + np.float32(frame[y, x, 1]) * weights[1]
             + np.float32(frame[y, x, 2 - red]) * weights[2])
        v = v * scale
        out[y, x] = min(max(v, np.float32(0.0)), np.float32(1.0))


@cuda.jit
def _luminance_first(frame, scale, out):
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        v = np.float32(frame[y, x, 0]) * scale
        out[y, x] = min(max(v, np.float32(0.0)), np.float32(1.0))


def luminance(frame, out=None, stream=0, channel_order: str = "rgb"):
    """Luminance in [0, 1] (float32, (H, W)) of a device frame (H, W), (H, W, C) with
    C = 1..4: uint8, uint16 or float (RGB(A) -> Rec. 601 luma, else the first channel).
    ``channel_order``: "rgb" or "bgr" (OpenCV's order; the same luminance, bit for bit)."""
    func = "luminance"
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"{func}: channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
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
        _luminance_rgb[grid, tile, stream](img, _device_const("luma", _LUMA), scale,
                                           2 if channel_order == "bgr" else 0, out)
    else:
        _luminance_first[grid, tile, stream](img, scale, out)
    return out


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
    """:func:`fastdefocus.blur.gaussian_blur` on the GPU (sigma > 0)."""
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
