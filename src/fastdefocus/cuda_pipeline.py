"""The GPU pipeline: the estimator's stages on a CUDA device, frame after frame.

Every stage runs as a Numba CUDA kernel of :mod:`fastdefocus.kernels` on device
arrays, with the semantics of the CPU stages (tests compare them under Numba's
CUDA simulator): luminance from the raw uploaded frame (uint8 RGB is 3 bytes a
pixel over PCIe), optional pre-filter, patch extraction with per-patch
normalisation written straight into the classifier backend's fp16 input batch
(chunks of at most ``max_batch`` patches, so a 4K frame fits in memory), the
patches' texture and quadrant agreement, calibrated sigma and confidence per
patch (with the CPU's texture gating: every patch is classified, but one too flat
to carry blur evidence takes the probabilities of a flat patch, as on the CPU,
which skips it), the flat fill (:mod:`fastdefocus.kernels.fill`: patches of
confidence 0 take the confidence-weighted, edge-aware sigma of their neighbourhood),
splat onto the stride cells, the confidence-weighted iterative guided filter on the working
grid, guided upsampling fused with the crop and clip, the boundary snap, and the
coarse levels (:mod:`fastdefocus.kernels.coarse`: the region's reduction, the one
host sync of a frame; the shrunk image run through a child pipeline at the coarse
scale; its map upsampled and merged in place).
:meth:`GpuPipeline.stream` with ``stable=True`` adds the temporal filter of the
maps (:mod:`fastdefocus.kernels.temporal`, after each frame's pipeline).

Buffers are allocated once per frame geometry and reused. :meth:`GpuPipeline.stream`
overlaps, for frames of one size, the upload of frame k+1 (own CUDA stream,
pinned host buffers), the work on frame k and the download of frame k-1, with at
most ``depth`` frames in flight (back-pressure on the producer).
"""
from __future__ import annotations

import collections
import math
import time

import numpy as np

from fastdefocus._params import AGREEMENT_TAU, SHARPNESS_BLUR, SPLAT_LIFT, UPSAMPLE_EPS, UPSAMPLE_RADIUS
from fastdefocus._validate import check_image
from fastdefocus.stages.coarse import sigma_range
from fastdefocus.stages.fill import fill_ratio, pass_sigmas
from fastdefocus.stages.refine import working_scale

#: Largest classifier batch (patches per call); a 1080p frame at stride 8 (32,400
#: patches) is one call, a 4K frame four.
MAX_BATCH = 32768
#: Batches are rounded up to a multiple of this (static shapes for compile / TensorRT).
BATCH_QUANTUM = 256
#: Sizes of the coarse levels' images whose buffers are kept (they follow the content: two a
#: frame with two levels; a video whose blurred area moves would otherwise add a set a frame).
_LEVEL_GEOMETRIES = 4


class _Geometry:
    """Sizes of one frame shape at one stride."""

    def __init__(self, h, w, patch, stride):
        from fastdefocus.kernels.patches import patch_grid

        self.h, self.w = h, w
        self.grid = patch_grid((h, w), patch, stride)
        ny, nx = self.grid
        self.n = ny * nx
        k = patch // stride
        self.cells = (ny + k - 1, nx + k - 1)
        self.full = (self.cells[0] * stride, self.cells[1] * stride)
        self.scale = working_scale(stride)
        self.work = (self.full[0] // self.scale, self.full[1] // self.scale)


class _Buffers:
    """Device buffers of one frame geometry (allocated once, reused by every frame)."""

    def __init__(self, cuda, geo: _Geometry, prefilter: bool, snap: bool = False):
        f32 = np.float32
        d = cuda.device_array
        self.lum = d((geo.h, geo.w), f32)
        self.source = d((geo.h, geo.w), f32) if prefilter else self.lum
        self.scratch = d((geo.h, geo.w), f32) if prefilter else None
        self.padded = d(geo.full, f32)
        self.coarse = d(geo.full, f32)
        self.coarse_tmp = d(geo.full, f32)
        self.std = d(geo.n, f32)
        self.agreement = d(geo.n, f32)
        self.sigma_p = d(geo.n, f32)
        self.conf_p = d(geo.n, f32)
        self.weight_p = d(geo.n, f32)
        self.cell_sigma = d(geo.cells, f32)
        self.cell_weight = d(geo.cells, f32)
        self.cell_conf = d(geo.cells, f32)
        self.cell_sharp = d(geo.cells, f32)
        self.patch_sharp = d(geo.n, f32)
        self.zero_cells = cuda.to_device(np.zeros(geo.cells, f32))
        self.guide = d(geo.work, f32)
        self.values = d(geo.work, f32)
        self.weights = d(geo.work, f32)
        self.refined = d(geo.work, f32)
        self.refined_tmp = d(geo.work, f32)
        self.coef_a = d(geo.work, f32)
        self.coef_b = d(geo.work, f32)
        self.windows: dict = {}
        self.work_gf = None
        self.work_up = None
        # the boundary snap reads the upsampled map's neighbours: it cannot run in place
        self.unsnapped = d((geo.h, geo.w), f32) if snap else None
        self.snap_work = None
        self.fill_work = None


class GpuPipeline:
    """Defocus maps on a CUDA device; built by :class:`fastdefocus.DefocusEstimator`
    (``device="cuda"``), which validates the options."""

    def __init__(self, config, info, backend: str = "auto", max_batch: int = MAX_BATCH):
        from fastdefocus.kernels import coarse as k_coarse
        from fastdefocus.kernels import filters as kf
        from fastdefocus.kernels import fill as k_fill
        from fastdefocus.kernels import ingest as k_ingest
        from fastdefocus.kernels import patches as kp
        from fastdefocus.kernels import refine as k_refine
        from fastdefocus.kernels import snap as k_snap
        from fastdefocus.kernels import splat as k_splat
        from fastdefocus.kernels import temporal as k_temporal
        from fastdefocus.kernels._compat import import_cuda

        from fastdefocus.kernels._device import SIMULATOR

        self.cuda = import_cuda()
        # threads per patch block: 128 on a GPU; few under the simulator (a Python thread each)
        self.patch_threads = 16 if SIMULATOR else 128
        #: the kernel modules, one per stage (fastdefocus.kernels.<stage>, like fastdefocus.stages)
        self.kf, self.kp = kf, kp
        self.k_ingest, self.k_splat, self.k_refine, self.k_snap = k_ingest, k_splat, k_refine, k_snap
        self.k_coarse, self.k_temporal, self.k_fill = k_coarse, k_temporal, k_fill
        #: the estimator's EstimatorConfig (validated there) and its model
        self.cfg, self.info = config, info
        #: ``sigma_max``: where the fine level clips (the model's top level); ``result_sigma_max``:
        #: the largest sigma of the map, doubled by each coarse level (``DefocusResult.sigma_max``)
        self.patch_size, self.flat_std, self.sigma_max = info.patch_size, info.flat_std, info.sigma_max
        #: the flat fill's domain transform at this stride: the spatial sigma (patches) of each
        #: iteration and the extra distance per unit of patch-mean step (stages.fill.edge_aware_mean)
        self.fill_sigmas = pass_sigmas(config.stride, config.fill_sigma)
        self.fill_ratio = fill_ratio(config.stride, config.fill_sigma)
        self.result_sigma_max = sigma_range(info.sigma_max, config.coarse_levels)
        from fastdefocus.backends.cuda import resolve_backend

        self.max_batch = int(max_batch)
        self._backends: dict = {}
        self._buffers: dict = {}
        self._requested = backend
        # which backend will run (built, and for compile / TensorRT compiled, on the first frame,
        # when the batch shape is known); a named backend that cannot run fails here
        self.backend_name, self.notes = resolve_backend(backend)
        self._compute = None  # the CUDA stream of the work, made on first use
        # the coarse levels: the pipeline at the coarse scale (made on first use), the region's
        # reduction buffers, the shrunk images and their maps by size
        self._child = None
        self._box = self._box_host = None
        self._level_maps: dict = {}
        # geometries kept (None: all); the child's sizes follow the content, so it keeps a few
        self._max_geometries = None
        # whether a classifier batch larger than needed may serve (the child: no new build per size)
        self._reuse_larger_batch = False
        # texture gating: patches with std below this take the probabilities of a flat patch
        # (0: none), the classifier's on an all-zero patch, computed once (the coarse levels'
        # child takes its parent's)
        self.gate_std = float(config.flat_gate) * self.flat_std
        self._flat = None
        self._parent = None
        # test-time views (config.tta > 1): per classifier backend, a copy of its input batch and
        # the sum of the views' probabilities
        self._views: dict = {}

    def _view_mean(self, backend, probs, count, stream):
        """The probabilities of the batch in ``backend.input`` averaged over ``cfg.tta`` dihedral
        views (``probs``: view 0's), summed in view order and divided by the number of views, as
        :func:`fastdefocus.stages.classify.dihedral_probabilities` does on the CPU."""
        kp, views = self.kp, self.cfg.tta
        bufs = self._views.get(id(backend))
        if bufs is None:
            p = self.patch_size
            bufs = self._views[id(backend)] = (
                self.cuda.device_array((backend.batch, 1, p, p), backend.input.dtype),
                self.cuda.device_array((backend.batch, len(self.info.levels)), np.float32))
        source, total = bufs
        kp.dihedral_view(backend.input, 0, source, count, stream=stream)  # view 0: a copy of the batch
        kp.accumulate_views(total, probs, count, first=True, stream=stream)
        for v in range(1, views):
            kp.dihedral_view(source, v, backend.input, count, stream=stream)
            kp.accumulate_views(total, backend.run(count, stream), count, first=False,
                                scale=1.0 / views if v == views - 1 else 1.0, stream=stream)
        return total[:count]

    def _compute_stream(self):
        """One compute stream for the pipeline's life: torch's caching allocator keys its
        blocks by stream, so a new stream per frame would strand the classifier's cached
        activations (GBs for a full batch) and make it allocate them again every frame."""
        if self._compute is None:
            self._compute = self.cuda.stream()
        return self._compute

    # ------------------------------------------------------------------ set-up

    def _backend_for(self, n_patches: int):
        from fastdefocus.backends.cuda import make_backend

        batch = min(self.max_batch, -(-n_patches // BATCH_QUANTUM) * BATCH_QUANTUM)
        backend = self._backends.get(batch)
        if backend is None and self._reuse_larger_batch:
            larger = [size for size in self._backends if size >= batch]
            if larger:
                backend = self._backends[min(larger)]
        if backend is None:
            # the first build may still fall back (auto); later ones use what the first got
            name = self._requested if not self._backends else self.backend_name
            backend = self._backends[batch] = make_backend(name, self.info, batch)
            self.backend_name = backend.name
            self.notes = list(dict.fromkeys(self.notes + backend.notes))
        return backend

    def _setup(self, h, w):
        key = (h, w)
        entry = self._buffers.pop(key, None)  # re-inserted: the most recent last
        if entry is None:
            if self._max_geometries is not None:
                while len(self._buffers) >= self._max_geometries:
                    del self._buffers[next(iter(self._buffers))]  # the least recently used
            geo = _Geometry(h, w, self.patch_size, self.cfg.stride)
            bufs = _Buffers(self.cuda, geo, self.cfg.sigma0 > 0, self.cfg.snap > 0)
            entry = (geo, bufs)
        self._buffers[key] = entry
        return entry

    def _coarse_child(self):
        """The pipeline at the coarse scale: these options without the snap, the pre-filter and
        coarse levels of its own, sharing this pipeline's classifier backends (made on first
        use, after this one's first classifier call, so it takes the backend that one got)."""
        if self._child is None:
            config = self.cfg.replace(snap=0, sigma0=0.0, coarse_levels=0, max_pixels=None)
            child = GpuPipeline(config, self.info, backend=self.backend_name, max_batch=self.max_batch)
            child._backends = self._backends  # one dict: nothing is built twice
            child._max_geometries = _LEVEL_GEOMETRIES
            child._reuse_larger_batch = True
            child._parent = self  # the same flat probabilities
            self._child = child
        return self._child

    def _flat_probabilities(self, backend, stream):
        """The classifier's probabilities of a flat (all-zero, once normalised) patch: a float32
        (L,) device array, computed once per pipeline by ``backend`` itself (row 0 of its input
        zeroed, one call, one host sync), so that gated patches get what this backend would give
        them (the CPU pipeline's rule: :func:`fastdefocus.stages.pipeline.estimate_numpy`). The
        coarse levels' child takes its parent's. None when gating is off."""
        if self.gate_std <= 0:
            return None
        if self._parent is not None:
            return self._parent._flat_probabilities(backend, stream)
        if self._flat is None:
            p = self.patch_size
            backend.input[:1].copy_to_device(np.zeros((1,) + tuple(backend.input.shape[1:]), backend.input.dtype),
                                             stream=stream)
            probs = backend.run(1, stream)
            row = np.ascontiguousarray(probs[:1].copy_to_host(stream=stream)[0], dtype=np.float32)
            if hasattr(stream, "synchronize"):
                stream.synchronize()
            if row.shape != (len(self.info.levels),) or not np.isfinite(row).all():
                raise RuntimeError(f"the classifier ({backend.name}) gave no probabilities of a flat "
                                   f"{p} x {p} patch: {row!r}")
            self._flat = self.cuda.to_device(row)
        return self._flat

    # ------------------------------------------------------------------ one frame

    def run(self, frame_dev, sigma_out, conf_out, stream=0, events=None, channel_order: str = "rgb"):
        """Enqueue one frame (a device array (H, W[, C])) on ``stream``; the map and the
        confidence land in ``sigma_out`` / ``conf_out`` (float32 (H, W) device arrays).
        ``events``: a dict that receives CUDA events after each stage (for timing);
        ``channel_order``: "rgb" or "bgr" (validated by the caller)."""
        ingest, splat, refine, kp, kf = self.k_ingest, self.k_splat, self.k_refine, self.kp, self.kf
        h, w = frame_dev.shape[:2]
        geo, b = self._setup(h, w)
        p, s = self.patch_size, self.cfg.stride

        def mark(name):
            if events is not None:
                try:
                    ev = self.cuda.event(timing=True)
                except TypeError:  # the simulator's events take no arguments
                    ev = self.cuda.event()
                ev.record(stream)
                events[name] = ev

        mark("start")
        ingest.luminance(frame_dev, out=b.lum, stream=stream, channel_order=channel_order)
        if self.cfg.sigma0 > 0:
            ingest.gaussian_blur(b.lum, self.cfg.sigma0, out=b.source, scratch=b.scratch, stream=stream)
        mark("ingest")
        ingest.pad_reflect(b.source, *geo.full, out=b.padded, stream=stream)
        ingest.gaussian_blur(b.padded, SHARPNESS_BLUR, out=b.coarse, scratch=b.coarse_tmp, stream=stream)
        splat.patch_statistics(b.padded, b.coarse, geo.grid, p, s, self.flat_std, AGREEMENT_TAU,
                               agreement=b.agreement, patch_sharp=b.patch_sharp, cell_sharp=b.cell_sharp,
                               scratch=b.windows, stream=stream)
        mark("statistics")
        backend = self._backend_for(geo.n)
        flat = self._flat_probabilities(backend, stream)
        for first in range(0, geo.n, backend.batch):
            kp.extract_patches(b.source, p, s, normalize=True, std_floor=self.info.std_floor,
                               out=backend.input, first=first, std_out=b.std, stream=stream,
                               threads=self.patch_threads)
            count = min(backend.batch, geo.n - first)
            probs = backend.run(count, stream)
            if self.cfg.tta > 1:
                probs = self._view_mean(backend, probs, count, stream)
            splat.patch_outputs(probs, first, self.info.levels, self.info.calibration, self.cfg.sigma0, b.std,
                                b.agreement, self.flat_std, b.sigma_p, b.conf_p, b.weight_p, stream=stream,
                                flat=flat, gate_std=self.gate_std)
        mark("classify")
        # flat patches (confidence 0: the classifier's x the texture's, before the agreement)
        # take the confidence-weighted, edge-aware sigma of their neighbourhood, guided by the
        # patches' mean luminance (stages.pipeline.estimate_numpy)
        if self.cfg.fill_sigma > 0:  # 0: no fill
            if b.fill_work is None:
                b.fill_work = self.k_fill.FillWork(*geo.grid, stream=stream)
            self.k_fill.patch_means(b.padded, geo.grid, p, s, out=b.fill_work.guide, stream=stream)
            self.k_fill.fill_flat(b.sigma_p, b.conf_p, b.fill_work.guide, self.fill_sigmas, self.fill_ratio,
                                  grid=geo.grid, work=b.fill_work, stream=stream)
        splat.splat(b.sigma_p, b.weight_p, b.conf_p, geo.grid, p, s, b.cell_sigma, b.cell_weight,
                    b.cell_conf, lift=SPLAT_LIFT, sharpness=(b.patch_sharp, b.cell_sharp), stream=stream)
        mark("splat")
        upsampled = b.unsnapped if self.cfg.snap else sigma_out
        if self.cfg.iterations == 0:  # no guided filter: the cells interpolated bilinearly
            refine.upsample_apply(b.zero_cells, b.cell_sigma, b.lum, b.cell_conf, geo.full, self.sigma_max,
                                  sigma_out=upsampled, conf_out=conf_out, stream=stream)
            mark("upsample")
            self._snap(b, sigma_out, stream, mark)
            self._coarse(b.lum, sigma_out, conf_out, stream, mark)
            return sigma_out, conf_out
        refine.area_guide(b.lum, *geo.work, geo.scale, out=b.guide, stream=stream)
        refine.resize_linear(b.cell_sigma, *geo.work, b=b.cell_weight, out_a=b.values, out_b=b.weights,
                             clip_b=True, stream=stream)
        r_work = max(1, int(round(self.cfg.radius / geo.scale)))
        if b.work_gf is None:
            b.work_gf = kf.GuidedWork(*geo.work, r_work)
        kf.iterative_guided_filter(b.guide, b.values, r_work, self.cfg.eps, weights=b.weights,
                                   iterations=self.cfg.iterations, out=b.refined, stream=stream,
                                   work=b.work_gf, scratch=b.refined_tmp)
        mark("refine")
        r_up = max(1, int(round(UPSAMPLE_RADIUS / geo.scale)))
        if b.work_up is None:
            b.work_up = kf.GuidedWork(*geo.work, r_up)
        kf.guided_coefficients(b.guide, b.refined, r_up, UPSAMPLE_EPS, out=(b.coef_a, b.coef_b), stream=stream,
                               work=b.work_up)
        refine.upsample_apply(b.coef_a, b.coef_b, b.lum, b.cell_conf, geo.full, self.sigma_max,
                              sigma_out=upsampled, conf_out=conf_out, stream=stream)
        mark("upsample")
        self._snap(b, sigma_out, stream, mark)
        self._coarse(b.lum, sigma_out, conf_out, stream, mark)
        return sigma_out, conf_out

    def _snap(self, b, sigma_out, stream, mark):
        """The boundary snap from ``b.unsnapped`` into ``sigma_out`` (nothing when it is off)."""
        if self.cfg.snap:
            if b.snap_work is None:
                b.snap_work = self.k_snap.SnapWork(*b.unsnapped.shape, stream=stream)
            self.k_snap.snap_boundaries(b.unsnapped, b.lum, self.cfg.snap, out=sigma_out, work=b.snap_work,
                                        stream=stream)
            mark("snap")
        return sigma_out

    def _coarse(self, lum, sigma_out, conf_out, stream, mark):
        """The coarse levels (:func:`fastdefocus.stages.coarse.raise_with_coarse_levels`) on the
        finished map, in place: per level, the region from the map (the one host sync), the
        region's luminance shrunk, the child pipeline on it, its map upsampled and merged.
        Returns the levels that ran."""
        levels = self.cfg.coarse_levels
        if not levels:
            return []
        from fastdefocus.stages.coarse import box_region, gate

        kc, cuda = self.k_coarse, self.cuda
        if self._box is None:
            self._box = cuda.device_array(5, np.int32)
            self._box_host = cuda.pinned_array(5, dtype=np.int32)
        ran = []
        for level in range(1, levels + 1):
            f = 2 ** level
            lo, hi = gate(level)
            box = kc.region_box(sigma_out, hi, out=self._box, host=self._box_host, stream=stream)
            region = box_region(box, sigma_out.shape, f, self.patch_size * f)
            if region is None:
                break
            small, c_sigma, c_conf = self._level_buffers(kc.shrunk_shape(region, f))
            kc.shrink(lum, region, f, out=small, stream=stream)
            self._coarse_child().run(small, c_sigma, c_conf, stream)
            kc.upsample_merge(c_sigma, c_conf, region, f, lo, hi, sigma_out, conf_out, stream=stream)
            ran.append(level)
        mark("coarse")
        return ran

    def _level_buffers(self, shape):
        """(shrunk image, its sigma, its confidence): float32 device arrays of ``shape``, kept for
        the few sizes used last. (Any earlier level's work is done when this runs: the region's
        reduction waited for the stream.)"""
        entry = self._level_maps.pop(shape, None)
        if entry is None:
            while len(self._level_maps) >= _LEVEL_GEOMETRIES:
                del self._level_maps[next(iter(self._level_maps))]
            entry = tuple(self.cuda.device_array(shape, np.float32) for _ in range(3))
        self._level_maps[shape] = entry
        return entry

    def estimate(self, image, channel_order: str = "rgb"):
        """One host image in, a DefocusResult (host arrays) out; the GPU timings per stage
        (CUDA events) are in ``result.timings``. ``channel_order``: "rgb" or "bgr"."""
        from fastdefocus.kernels._device import as_device
        from fastdefocus.result import DefocusResult

        from fastdefocus.stages.filters import _on_device

        cuda = self.cuda
        t0 = time.perf_counter()
        stream = self._compute_stream()
        if _on_device(image):  # a CuPy array / torch CUDA tensor / Numba array: no host round trip
            frame = as_device("estimate", "image", image, ndim=len(image.shape))
            if len(frame.shape) == 3 and frame.shape[0] in (1, 3, 4) and frame.shape[2] not in (1, 3, 4):
                raise ValueError(f"device image of shape {tuple(frame.shape)} looks channel-first; "
                                 "pass (H, W) or (H, W, C)")
        else:
            frame = cuda.to_device(_host_frame(image, self.cfg.max_pixels), stream=stream)
        h, w = frame.shape[:2]
        sigma = cuda.device_array((h, w), np.float32, stream=stream)
        conf = cuda.device_array((h, w), np.float32, stream=stream)
        events: dict = {}
        self.run(frame, sigma, conf, stream, events, channel_order=channel_order)
        out_sigma, out_conf = sigma.copy_to_host(stream=stream), conf.copy_to_host(stream=stream)
        stream.synchronize()
        timings = _event_timings(cuda, events)
        timings["total"] = time.perf_counter() - t0
        return DefocusResult(sigma=out_sigma, confidence=out_conf, sigma_max=self.result_sigma_max,
                             timings=timings)

    # ------------------------------------------------------------------ streaming

    def stream(self, frames, smoothing: float = 0.0, depth: int = 2, channel_order: str = "rgb",
               stable: bool = False):
        """Results of same-sized host frames, in order, with upload / compute / download
        overlapped on three CUDA streams and at most ``depth`` frames in flight.
        ``smoothing``: the uniform EMA of the map; ``stable``: the temporal filter of the maps
        (:mod:`fastdefocus.kernels.temporal`, the twin of :mod:`fastdefocus.stages.temporal`),
        applied in place to each frame's maps on the compute stream; not both."""
        from fastdefocus.result import DefocusResult

        if stable and smoothing > 0:
            raise ValueError("stable=True replaces smoothing: pass one of them, not both "
                             f"(got smoothing={smoothing})")
        cuda = self.cuda
        up, compute, down = cuda.stream(), self._compute_stream(), cuda.stream()
        slots = None
        pending = collections.deque()
        state = None
        temporal = None
        first_shape = None

        def finish(entry):
            index, slot, t_submit = entry
            slot["downloaded"].synchronize()
            return DefocusResult(sigma=slot["h_sigma"].copy(), confidence=slot["h_conf"].copy(),
                                 sigma_max=self.result_sigma_max,
                                 timings={"latency": time.perf_counter() - t_submit})

        for index, frame in enumerate(frames):
            try:
                arr = _host_frame(frame, self.cfg.max_pixels, name=f"frame {index}")
                if first_shape is not None and arr.shape[:2] != first_shape[:2]:
                    raise ValueError(f"frame {index} has size {arr.shape[:2]}, but the stream started with "
                                     f"{first_shape[:2]}: all frames of a stream must have the same size")
            except Exception:
                while pending:  # the frames before the bad one still come out, in order
                    yield finish(pending.popleft())
                raise
            if first_shape is None:
                first_shape = arr.shape
                h, w = arr.shape[:2]
                slots = [_slot(cuda, arr, h, w) for _ in range(max(1, int(depth)))]
                if smoothing > 0:
                    state = cuda.device_array((h, w), np.float32)
                if stable:  # the filter's state: allocated once per stream
                    temporal = self.k_temporal.TemporalState((h, w), stream=compute)
            if len(pending) >= len(slots):  # back-pressure: the oldest frame must be out first
                yield finish(pending.popleft())
            slot = slots[index % len(slots)]
            if slot["h_in"].shape != arr.shape or slot["h_in"].dtype != arr.dtype:
                # same size, another layout (gray after RGB, uint16 after uint8): this slot's
                # upload buffers follow the frame (the slot is free: its frame is out)
                slot["h_in"] = cuda.pinned_array(arr.shape, dtype=arr.dtype)
                slot["d_in"] = cuda.device_array(arr.shape, dtype=arr.dtype)
            t_submit = time.perf_counter()
            np.copyto(slot["h_in"], arr)
            slot["d_in"].copy_to_device(slot["h_in"], stream=up)
            slot["uploaded"].record(up)
            slot["uploaded"].wait(compute)
            self.run(slot["d_in"], slot["d_sigma"], slot["d_conf"], compute, channel_order=channel_order)
            if temporal is not None:  # on the frame's luminance (the pipeline's buffer of this size)
                temporal.update(self._setup(h, w)[1].lum, slot["d_sigma"], slot["d_conf"], stream=compute)
            if state is not None:
                self.k_refine.blend(state, slot["d_sigma"], smoothing, index == 0, stream=compute)
            slot["computed"].record(compute)
            slot["computed"].wait(down)
            slot["d_sigma"].copy_to_host(slot["h_sigma"], stream=down)
            slot["d_conf"].copy_to_host(slot["h_conf"], stream=down)
            slot["downloaded"].record(down)
            pending.append((index, slot, t_submit))
        while pending:
            yield finish(pending.popleft())


def _slot(cuda, arr, h, w):
    return {"h_in": cuda.pinned_array(arr.shape, dtype=arr.dtype),
            "d_in": cuda.device_array(arr.shape, dtype=arr.dtype),
            "d_sigma": cuda.device_array((h, w), np.float32),
            "d_conf": cuda.device_array((h, w), np.float32),
            "h_sigma": cuda.pinned_array((h, w), dtype=np.float32),
            "h_conf": cuda.pinned_array((h, w), dtype=np.float32),
            "uploaded": cuda.event(), "computed": cuda.event(), "downloaded": cuda.event()}


def _host_frame(image, max_pixels, name: str = "image") -> np.ndarray:
    """A validated host frame as uploaded: (H, W) or (H, W, C) of uint8, uint16 or float32;
    other integer dtypes as uint8, float64 as float32 (the checks of check_image)."""
    arr = check_image(image, name, max_pixels)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu" and arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.uint8)  # check_image guarantees 0-255
    elif arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def _event_timings(cuda, events: dict) -> dict:
    """Seconds between consecutive stage events."""
    names = list(events)
    out = {}
    for a, b in zip(names, names[1:]):
        try:
            out[b] = cuda.event_elapsed_time(events[a], events[b]) / 1e3
        except Exception:  # the simulator's events carry no time
            out[b] = math.nan
    return out
