"""The temporal filter of a stream's maps as Numba CUDA kernels (the GPU twin of
:class:`fastdefocus.stages.temporal.TemporalFilter`, ``DefocusEstimator.stream(..., stable=True)``):

- the luminance blurred by a Gaussian of :data:`~fastdefocus._params.TEMPORAL_LUMA_BLUR` px
  (:func:`fastdefocus.kernels.ingest.gaussian_blur`);
- :func:`changed_count`: the cut test's count of pixels whose blurred luminance changed by more
  than :data:`~fastdefocus._params.TEMPORAL_MOTION_TAU` since the previous frame (block
  reductions, then atomics), left on the device;
- :func:`temporal_update`: the running state (sigma, confidence, weight) updated elementwise
  with the reference's float32 formula, and the frame's maps replaced by the filtered ones in
  place; the cut decision (count > :data:`~fastdefocus._params.TEMPORAL_CUT_SHARE` x pixels)
  is read from the count on the device, so a frame needs no host sync;
- :class:`TemporalState`: the state of one stream (buffers allocated once) and its
  :meth:`~TemporalState.update`.

Every host function takes an optional ``stream``.
"""

from __future__ import annotations

import numpy as np

from fastdefocus._params import (TEMPORAL_CUT_SHARE, TEMPORAL_LUMA_BLUR, TEMPORAL_MAX_WEIGHT,
                                 TEMPORAL_MIN_WEIGHT, TEMPORAL_MOTION_TAU)

from ._device import SIMULATOR, THREADS, _grid2, as_device, blocks, cuda
from .ingest import gaussian_blur

__all__ = ["changed_count", "temporal_update", "TemporalState"]

#: Most blocks of the count's reduction (each thread strides over the map; one atomic a block);
#: few under the simulator, where every block's barrier costs Python threads.
_MAX_BLOCKS = 4 if SIMULATOR else 1024


# ---------------------------------------------------------------------- cut test


@cuda.jit
def _count_init(count):
    if cuda.grid(1) == 0:
        count[0] = 0


@cuda.jit
def _count_changed(smooth, reference, tau, count):
    h, w = smooth.shape
    n = h * w
    local = 0
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):  # consecutive threads, consecutive pixels
        y = i // w
        x = i - y * w
        if abs(smooth[y, x] - reference[y, x]) > tau:
            local += 1
    block = cuda.shared.array(1, np.int32)
    if cuda.threadIdx.x == 0:
        block[0] = 0
    cuda.syncthreads()
    if local > 0:
        cuda.atomic.add(block, 0, np.int32(local))
    cuda.syncthreads()
    if cuda.threadIdx.x == 0 and block[0] > 0:
        cuda.atomic.add(count, 0, block[0])


def changed_count(smooth, reference, out=None, tau: float = TEMPORAL_MOTION_TAU, stream=0):
    """The number of pixels with ``|smooth - reference| > tau`` (float32) into the device int32
    (1,) array ``out`` (allocated if omitted), left on the device. Returns ``out``."""
    func = "changed_count"
    smooth, reference = as_device(func, "smooth", smooth), as_device(func, "reference", reference)
    if tuple(smooth.shape) != tuple(reference.shape):
        raise ValueError(f"{func}: smooth and reference must have one shape, got {tuple(smooth.shape)} "
                         f"and {tuple(reference.shape)}")
    h, w = smooth.shape
    if out is None:
        out = cuda.device_array(1, dtype=np.int32, stream=stream)
    _count_init[1, 1, stream](out)
    _count_changed[min(blocks(h * w), _MAX_BLOCKS), THREADS, stream](smooth, reference, np.float32(tau), out)
    return out


# ---------------------------------------------------------------------- update


@cuda.jit
def _update(smooth, reference, count, limit, first, inv_tau, min_w, max_w, sigma, conf, state_sigma,
            state_conf, state_weight, cut_flag):
    x, y = cuda.grid(2)
    h, w = sigma.shape
    cut = first or float(count[0]) > limit
    if x == 0 and y == 0:
        cut_flag[0] = np.int32(1 if cut else 0)
    if y < h and x < w:
        s = sigma[y, x]
        c = conf[y, x]
        w_new = c + min_w
        if cut:
            state_sigma[y, x] = s
            state_conf[y, x] = c
            state_weight[y, x] = min(w_new, max_w)
        else:
            z = abs(smooth[y, x] - reference[y, x]) * inv_tau
            w_prev = state_weight[y, x] * np.float32(np.exp(-(z * z)))
            total = w_prev + w_new
            s_out = (w_prev * state_sigma[y, x] + w_new * s) / total
            c_out = (w_prev * state_conf[y, x] + w_new * c) / total
            state_sigma[y, x] = s_out
            state_conf[y, x] = c_out
            state_weight[y, x] = min(total, max_w)
            sigma[y, x] = s_out
            conf[y, x] = c_out


def temporal_update(smooth, reference, count, first: bool, sigma, conf, state_sigma, state_conf, state_weight,
                    cut_flag, cut_share: float = TEMPORAL_CUT_SHARE, tau: float = TEMPORAL_MOTION_TAU,
                    min_weight: float = TEMPORAL_MIN_WEIGHT, max_weight: float = TEMPORAL_MAX_WEIGHT, stream=0):
    """One frame of the filter, elementwise on float32 (H, W) device maps: a cut (``first``, or
    the device count of :func:`changed_count` above ``cut_share`` x pixels) starts the state over
    from ``sigma`` / ``conf``; otherwise the state becomes the weighted mean of itself (its
    weight kept by ``exp(-(|smooth - reference| / tau)^2)``) and the frame's maps (weight
    ``conf + min_weight``), and ``sigma`` / ``conf`` are overwritten with it. ``cut_flag``
    (device int32 (1,)) receives 1 on a cut, else 0."""
    h, w = sigma.shape
    g, t = _grid2(h, w)
    _update[g, t, stream](smooth, reference, count, float(cut_share) * h * w, bool(first), np.float32(1.0 / tau),
                          np.float32(min_weight), np.float32(max_weight), sigma, conf, state_sigma, state_conf,
                          state_weight, cut_flag)


class TemporalState:
    """The device state of one stream's temporal filter (float32 maps of one size, allocated
    once; a frame of another size starts over, as the reference). :meth:`update` filters a
    frame's maps in place on ``stream``."""

    def __init__(self, shape=None, stream=0):
        self.shape = None
        self.frames = 0
        if shape is not None:
            self._allocate(tuple(shape), stream)

    def _allocate(self, shape, stream):
        d = lambda dtype=np.float32: cuda.device_array(shape, dtype=dtype, stream=stream)  # noqa: E731
        self.shape = shape
        self.sigma, self.conf, self.weight = d(), d(), d()
        self.reference, self.smooth, self.scratch = d(), d(), d()
        self.count = cuda.device_array(1, dtype=np.int32, stream=stream)
        self.cut_flag = cuda.device_array(1, dtype=np.int32, stream=stream)
        self.frames = 0

    def reset(self) -> None:
        """Forget the past frames: the next one is a cut."""
        self.frames = 0

    def update(self, lum, sigma, conf, stream=0) -> None:
        """Filter one frame: ``lum`` its luminance, ``sigma`` / ``conf`` its maps (float32 (H, W)
        device arrays, overwritten with the filtered maps)."""
        func = "TemporalState.update"
        lum, sigma, conf = as_device(func, "lum", lum), as_device(func, "sigma", sigma), as_device(func, "conf", conf)
        shape = tuple(lum.shape)
        if not (shape == tuple(sigma.shape) == tuple(conf.shape)):
            raise ValueError(f"{func}: luminance, sigma and confidence must have one shape, got {shape}, "
                             f"{tuple(sigma.shape)} and {tuple(conf.shape)}")
        if shape != self.shape:
            self._allocate(shape, stream)
        first = self.frames == 0
        gaussian_blur(lum, TEMPORAL_LUMA_BLUR, out=self.smooth, scratch=self.scratch, stream=stream)
        if not first:
            changed_count(self.smooth, self.reference, out=self.count, stream=stream)
        temporal_update(self.smooth, self.reference, self.count, first, sigma, conf, self.sigma, self.conf,
                        self.weight, self.cut_flag, stream=stream)
        self.reference, self.smooth = self.smooth, self.reference  # stream-ordered: the next blur comes after
        self.frames += 1

    def last_cut(self, stream=0) -> bool:
        """Whether the last frame was taken as a cut (copies one int to the host and waits)."""
        if self.frames == 0:
            raise RuntimeError("TemporalState.last_cut: no frame yet")
        flag = self.cut_flag.copy_to_host(stream=stream)
        if hasattr(stream, "synchronize"):
            stream.synchronize()
        return bool(flag[0])
