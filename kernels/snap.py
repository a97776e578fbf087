"""The boundary snap as Numba CUDA kernels (the GPU twin of :mod:`fastdefocus.stages.snap`):
:func:`snap_boundaries` after the upsampling, with :class:`SnapWork` holding its scratch
planes. Its settings (``SNAP_*``, :data:`~fastdefocus._params.SHARPNESS_BLUR`) come from
:mod:`fastdefocus._params`, where their provenance is.

Every host function takes an optional ``stream`` and allocates nothing unless an output
(or the work planes) is omitted, so a stream of same-sized frames reuses its buffers.
"""

from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import (SHARPNESS_BLUR, SNAP_BAND, SNAP_ENERGY_FLOOR, SNAP_MIN_CONTRAST, SNAP_MIN_SHARE,
                                 SNAP_MIN_SPAN, SNAP_REFERENCE, SNAP_REFERENCE_MARGIN)

from ._device import _grid2, cuda
from .ingest import gaussian_blur, separable_filter

__all__ = ["snap_boundaries", "SnapWork"]


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
    """:func:`fastdefocus.stages.snap.snap_boundaries` on the GPU: ``sigma`` and ``lum`` float32
    (H, W) device arrays; ``out`` must not be ``sigma`` (the snap reads its neighbours)."""
    h, w = sigma.shape
    if out is None:
        out = cuda.device_array((h, w), dtype=np.float32, stream=stream)
    if work is None or work.shape != (h, w):
        work = SnapWork(h, w, stream)
    p = work.planes
    energy, blurred, tmp, q, lo, hi, lo_rows, hi_rows = (p[i] for i in range(8))
    g, t = _grid2(h, w)
    box3 = np.full(3, 1.0 / 3.0)
    # the evidence: 3 x 3 sums of the pair energy of the image and of its SHARPNESS_BLUR-px blur
    _pair_energy[g, t, stream](lum, tmp)
    separable_filter(tmp, box3, out=energy, scratch=lo, stream=stream)
    gaussian_blur(lum, SHARPNESS_BLUR, out=hi, scratch=lo, stream=stream)
    _pair_energy[g, t, stream](hi, tmp)
    separable_filter(tmp, box3, out=blurred, scratch=lo, stream=stream)
    _evidence[g, t, stream](energy, blurred, np.float32(SNAP_ENERGY_FLOOR), q)
    # the two sides: the window's minimum and maximum (outside the image ignored)
    _minmax_rows[g, t, stream](sigma, int(radius), lo_rows, hi_rows)
    _minmax_cols[g, t, stream](lo_rows, hi_rows, int(radius), lo, hi)
    min_span = np.float32(SNAP_MIN_SPAN)
    _snap_references[g, t, stream](sigma, lo, hi, q, min_span, np.float32(SNAP_REFERENCE), work.refs)
    k = 2 * (int(radius) + SNAP_REFERENCE_MARGIN) + 1
    mean_taps = np.full(k, 1.0 / k)
    for i in range(4):
        separable_filter(work.refs[i], mean_taps, out=work.means[i], scratch=tmp, stream=stream)
    _snap_share[g, t, stream](q, work.means, energy)
    separable_filter(energy, box3, out=blurred, scratch=tmp, stream=stream)
    _snap_apply[g, t, stream](sigma, lo, hi, blurred, work.means, min_span, np.float32(SNAP_BAND),
                              np.float32(SNAP_MIN_SHARE), np.float32(SNAP_MIN_CONTRAST), out)
    return out
