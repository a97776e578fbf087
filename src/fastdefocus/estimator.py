"""DefocusEstimator: an image in, a per-pixel defocus (Gaussian sigma, px) map out.

Stages (see docs/ARCHITECTURE.md): ingest -> patches -> classify -> splat -> refine.
"""
from __future__ import annotations

import collections
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fastdefocus._validate import check_channel_order, check_float, check_int
from fastdefocus.backends import gpu_available
from fastdefocus.backends.cpu import PatchClassifier, default_threads
from fastdefocus.config import EstimatorConfig
from fastdefocus.io.video import prefetched, video_frames
from fastdefocus.result import DefocusResult
from fastdefocus.stages.classify import MODEL_DIRS, load_model_info
from fastdefocus.stages.coarse import sigma_range
from fastdefocus.stages.pipeline import checked_native_image


#: Working memory that the default pixel limit allows one estimate, in bytes.
MEMORY_BUDGET = 8 << 30


def default_max_pixels(patch_size: int, stride: int) -> int:
    """Largest H x W whose estimate fits in MEMORY_BUDGET: about 64 bytes per pixel of maps and
    integral images, plus the float32 patch array, 4 * patch_size^2 / stride^2 bytes per pixel
    (peak RSS measured: 113 B/px at stride 8, 65 at 16, about 300 at 4).
    8192 x 8192 = 2**26 px at stride 8; 2.06 Mpx at stride 1."""
    return MEMORY_BUDGET // (64 + 4 * patch_size ** 2 // stride ** 2)


class DefocusEstimator:
    """Estimate per-pixel defocus maps.

    Parameters
    ----------
    config : EstimatorConfig, optional
        All options at once (:class:`fastdefocus.config.EstimatorConfig`, which holds every
        default); keyword options below override its fields. ``est.config`` is what is in use.
    device : {"auto", "cpu", "cuda"}
        Where the estimator runs. "auto" takes a CUDA GPU when one is usable (an NVIDIA driver
        and Numba's CUDA target; never the CUDA simulator) and the backend allows it, else the
        CPU. On "cuda" every stage runs as a CUDA kernel (:mod:`fastdefocus.cuda_pipeline`).
    backend : {"auto", "onnxruntime", "onnxruntime-int8", "torch", "tensorrt", "compile", "eager", "cpu"}
        Classifier runtime. "auto" picks ONNX Runtime on the CPU (the fastest measured there)
        and the best available of tensorrt, compile, eager, cpu on CUDA. "onnxruntime-int8"
        runs the model's int8 graph (static QDQ, stem and head in float; its held-out accuracy
        is in docs/MODEL.md). ``est.backend`` says which one runs.
    stride : int
        Patch grid step in pixels; must divide the patch size (32): 1, 2, 4, 8, 16 or 32.
        Smaller is finer and slower (patches grow as 1 / stride^2).
    sigma0 : float
        Gaussian noise pre-filter sigma in px (0 = off). The estimate is corrected for it:
        sigma = sqrt(max(s^2 - sigma0^2, 0)).
    radius : float
        Refinement guided-filter radius in pixels of the input (the filter runs on a grid of
        min(stride, 4)-pixel cells, so radii below that act as one cell). Small radii keep
        focus boundaries that do not follow image edges; larger ones smooth more. Unused
        with ``iterations`` 0.
    eps : float
        Guided-filter regularisation (luminance^2 units): edges with local luminance std well
        above sqrt(eps) are kept. Unused with ``iterations`` 0.
    iterations : int
        Passes of the confidence-weighted, luminance-guided filter on the working grid
        (default 1); 0: none, the cell map is interpolated bilinearly. The filter aligns the
        map with image edges, which helps where focus boundaries follow them (real photos:
        CUHK detection F-beta max / adaptive 0.821 / 0.527 at 0, 0.835 / 0.581 at 1,
        0.839 / 0.595 at 3) and smears boundaries that do not (layered scenes from BSDS500
        val, textured / near-boundary MAE without the snap: 0.397 / 0.633 px at 0, 0.407 /
        0.666 at 1, 0.415 / 0.684 at 3).
    snap : int
        Half-width (px) of the boundary snap (:func:`fastdefocus.stages.refine.snap_boundaries`,
        default 10): inside the ramp a 32-px patch leaves at a focus boundary, each pixel is
        put back on the side its own fine-scale sharpness matches. Layered scenes (100
        photos of BSDS500 val, ``benchmarks/quality.py --sections scenes``), near-boundary /
        textured MAE with the shipped weights: 0.672 / 0.421 px at 0 (off), 0.594 / 0.400 px
        at 10; on the 60 scenes other than the 40 its settings were chosen on, 0.662 / 0.410
        and 0.579 / 0.389. Where the image is flat, the map is left as it is.
    batch_size : int
        Patches per classifier call.
    model : {"default", "fast"}
        The shipped model: "default", the paper's MobileNetV2 (width 0.5), or "fast", a plain
        strided CNN distilled from it: 2-3x the frames per second, as accurate on generated
        patches, a little less on sharp photos and SYNDOF (its model card,
        docs/model_fast/MODEL.md, and the README's tables compare them). ``weights`` overrides it.
    weights : path, optional
        Folder with a model (blur_classifier.json + files); defaults to the shipped model.
    max_pixels : "auto", int or None
        Largest image (H x W pixels) accepted; larger ones raise ValueError before anything
        of their size is allocated. "auto": what fits in about 8 GiB of working memory at
        this stride (:func:`default_max_pixels`: 8192 x 8192 at stride 8, 2.06 Mpx at
        stride 1). None: no limit.
    threads : int
        CPU threads of ONNX Runtime (its intra-op pool) and of the native stages (patch
        extraction, the guided filters of the refinement) together; 0 (the default): the
        cores this process may use. OpenCV's own pool (``cv2.setNumThreads``) and torch's
        are process-wide and left alone.

    Threads
    -------
    One estimator may be shared by several threads: on the CPU, :meth:`estimate` (and
    ``__call__``) keeps all its work in local arrays, reads the estimator's options and
    model only, and runs the classifier through ONNX Runtime's ``InferenceSession.run``,
    which is thread-safe, so concurrent calls give the same maps as serial ones (tested).
    Each :meth:`stream` keeps its own state. On ``device="cuda"`` the device buffers are
    shared, so calls to :meth:`estimate` from several threads take turns (a lock); do not
    run a :meth:`stream` on a CUDA estimator while another thread estimates with it.
    """

    def __init__(self, config: EstimatorConfig | None = None, *, _classifier=None, **options):
        if config is None:
            config = EstimatorConfig(**options)
        elif not isinstance(config, EstimatorConfig):
            raise TypeError(f"config must be an EstimatorConfig (options go by keyword, e.g. "
                            f"DefocusEstimator(device='cpu')), got {config!r}")
        elif options:
            config = config.replace(**options)
        device, backend = config.device, config.backend
        if device == "auto":
            device = "cuda" if gpu_available() and backend not in ("onnxruntime", "onnxruntime-int8", "torch") else "cpu"
            config = config.replace(device=device)  # checks the backend against the device it resolved to
        self.info = load_model_info(config.weights if config.weights is not None else MODEL_DIRS[config.model])
        self.patch_size = self.info.patch_size
        divisors = {d for d in range(1, self.patch_size + 1) if self.patch_size % d == 0}
        check_int("stride", config.stride, 1, divisors)
        if config.max_pixels == "auto":
            config = config.replace(max_pixels=default_max_pixels(self.patch_size, config.stride))
        #: The options in use, validated (``device`` and ``max_pixels`` resolved).
        self.config = config
        self.stride, self.sigma0, self.radius, self.eps = config.stride, config.sigma0, config.radius, config.eps
        self.iterations, self.snap, self.batch_size = config.iterations, config.snap, config.batch_size
        self.coarse_levels = config.coarse_levels
        self._level = None  # the estimator of the coarse levels (made on first use)
        self.max_pixels, self.threads = config.max_pixels, config.threads
        #: the largest sigma reported: the model's top level's, doubled by each coarse level
        self.flat_std, self.sigma_max = self.info.flat_std, sigma_range(self.info.sigma_max, self.coarse_levels)
        self._gpu = None
        self._gpu_lock = threading.Lock()  # the CUDA pipeline's buffers are shared between calls
        self._workers = None  # stream(workers=N)'s copies of this estimator (made on first use)
        self._workers_lock = threading.Lock()
        if device == "cuda":
            if not gpu_available(simulator=True):
                raise RuntimeError("device='cuda' needs an NVIDIA GPU with Numba's CUDA target "
                                   "(pip install 'fastdefocus[gpu]'); none was found: use device='cpu'")
            from fastdefocus.cuda_pipeline import GpuPipeline
            self._gpu = GpuPipeline(self.config, self.info, backend={"torch": "eager"}.get(backend, backend))
            self.classifier = None
        else:
            self.classifier = _classifier if _classifier is not None else PatchClassifier(
                self.info, device="cpu", backend=backend, batch_size=self.batch_size, threads=self.threads)
            # the whole pipeline runs in the native C++ estimator (cpp/estimator.cpp, the same as C++
            # users get), which calls the runtime above for the patches it classifies; the image
            # is validated here (max_pixels: 0, no second limit there)
            from fastdefocus import _native
            self._native = _native.Estimator(str(self.info.onnx_path.parent), stride=self.stride,
                                             sigma0=self.sigma0, radius=self.radius, eps=self.eps,
                                             iterations=self.iterations, snap=self.snap,
                                             batch_size=self.batch_size, threads=self.threads, max_pixels=0,
                                             coarse_levels=self.coarse_levels, flat_gate=config.flat_gate,
                                             fill_sigma=config.fill_sigma, tta=config.tta,
                                             classifier=self.classifier.probabilities)

    def level_estimator(self) -> "DefocusEstimator":
        """The estimator that the coarse levels run at their scale: these options without the
        boundary snap, the pre-filter and coarse levels of its own, sharing this one's classifier."""
        if self._level is None:
            config = self.config.replace(sigma0=0.0, snap=0, coarse_levels=0, max_pixels=None)
            self._level = DefocusEstimator(config, _classifier=self.classifier)
        return self._level

    @property
    def backend(self) -> str:
        """The classifier runtime in use: 'onnxruntime' or 'torch-cpu' on the CPU; 'tensorrt',
        'compile', 'eager' or 'cpu' on a CUDA device (``backend_notes`` says why better ones
        were not taken)."""
        return self._gpu.backend_name if self._gpu is not None else self.classifier.name

    @property
    def backend_notes(self) -> list:
        return list(self._gpu.notes) if self._gpu is not None else []

    @property
    def device(self) -> str:
        return "cuda" if self._gpu is not None else "cpu"

    def __repr__(self) -> str:
        return (f"DefocusEstimator(device={self.device!r}, backend={self.backend!r}, stride={self.stride}, "
                f"sigma0={self.sigma0}, radius={self.radius}, eps={self.eps}, iterations={self.iterations}, "
                f"snap={self.snap})")

    def estimate(self, image, *, channel_order: str = "rgb") -> DefocusResult:
        """Defocus map of one image.

        Parameters
        ----------
        image : array (H, W), (H, W, 3) RGB, (H, W, 4) RGBA or torch tensor (H, W) / (C, H, W)
            uint8, uint16 or float in [0, 1]; any size from 1 x 1 (images smaller than a
            patch are padded by reflection). On ``device="cuda"`` also a device array
            (CuPy, torch CUDA, Numba; (H, W) or (H, W, C)), used in place without a host
            round trip (its values are not validated there).
        channel_order : {"rgb", "bgr"}, keyword only
            The order of the colour channels: "bgr" for OpenCV's (``cv2.imread``,
            ``cv2.VideoCapture``), so ``est.estimate(cv2.imread(path), channel_order="bgr")``
            gives the map of the RGB image, bit for bit. ValueError for other values.

        Returns
        -------
        DefocusResult
            ``sigma`` and ``confidence`` of shape (H, W), float32.
        """
        channel_order = check_channel_order(channel_order)
        if self._gpu is not None:
            with self._gpu_lock:
                return self._gpu.estimate(image, channel_order=channel_order)
        return self._estimate_cpu(image, channel_order)

    __call__ = estimate

    def _estimate_cpu(self, image, channel_order: str, cache=None, checked: bool = False,
                      bgr: bool = False) -> DefocusResult:
        """The CPU estimate (the native pipeline); ``cache``: a stream's ``_native.StreamCache``;
        ``checked``: ``image`` is what ``checked_native_image`` made of a frame the stream
        validated, ``bgr`` its flag (``channel_order`` is then not used)."""
        t0 = time.perf_counter()
        arr, bgr = (image, bgr) if checked else checked_native_image(self, image, channel_order)
        t1 = time.perf_counter()
        sigma, confidence, timings = self._native.estimate(arr, bgr=bgr, cache=cache)
        counts = {"patches": timings.pop("patches_total"), "classified": timings.pop("patches_classified"),
                  "reused": timings.pop("patches_reused"), "coarse_levels": timings.pop("coarse_levels_run")}
        timings["ingest"] += t1 - t0
        timings["total"] = time.perf_counter() - t0
        return DefocusResult(sigma=sigma, confidence=confidence, sigma_max=self.sigma_max, timings=timings,
                             counts=counts)

    def stream(self, frames: Iterable | str | os.PathLike, smoothing: float = 0.0,
               prefetch: int = 2, *, stable: bool = False, reuse: bool = True, max_frames: int | None = None,
               with_frames: bool = False, channel_order: str = "rgb", workers: int = 1) -> Iterator:
        """Estimate a sequence of same-sized frames, yielding the results in order.

        Parameters
        ----------
        frames : iterable of images, or a video path
            Images as :meth:`estimate` takes them; a video is read with OpenCV (BGR
            converted to RGB). A frame of another size than the first raises ValueError
            before it is estimated. Frames are read ahead and estimated after the iterator
            has moved on: a source must give a new array per frame, not refill one buffer.
        smoothing : float in [0, 1)
            Uniform temporal smoothing of the map: ``sigma_k = s * sigma_(k-1) + (1 - s) *
            estimate_k`` (0, the default: off). Damps flicker on video but lags everywhere, also
            behind moving content and cuts: prefer ``stable``.
        stable : bool, keyword only
            Temporal filter of the map that follows the scene
            (:mod:`fastdefocus.stages.temporal`): per pixel a running mean of the estimates
            weighted by their confidence, kept where the image did not change since the previous
            frame and dropped where it did (moving content, edges that moved), and dropped
            everywhere at a cut. On real clips it cuts the flicker to about a third; after a
            cut the map is the new frame's at once. Not together with ``smoothing``.
        reuse : bool, keyword only
            On the CPU, a patch whose pixels are bit for bit those of the previous frame keeps
            its classifier probabilities instead of being classified again (static cameras,
            screen content, letterboxes); the maps are the same either way (default True;
            ``result.counts["reused"]`` says how many). Camera noise changes every pixel, so
            live camera frames gain nothing from it.
        prefetch : int >= 1
            Frames read ahead. On the CPU a reader thread decodes the next frames while the
            current one is estimated; on a CUDA device this many frames are in flight, the
            upload of frame k+1, the work on frame k and the download of frame k-1 overlapping
            on separate CUDA streams. Either way memory stays bounded: the reader waits.
        max_frames : int >= 1 or None, keyword only
            Stop after this many frames (None, the default: all); no frame beyond them is read.
        with_frames : bool, keyword only
            Yield ``(frame, result)`` pairs instead of results: the frame as it was given (a
            video's frames: RGB uint8), for pictures or overlays without reading twice.
        channel_order : {"rgb", "bgr"}, keyword only
            The order of the colour channels of the frames given as arrays ("bgr": OpenCV's,
            as ``cv2.VideoCapture.read`` gives them). Frames read from a video path are RGB
            whatever this says.
        workers : int >= 1, keyword only
            On the CPU, frames estimated at the same time, each by its own copy of the estimator
            with ``threads / workers`` threads (default 1: one frame at a time on all threads).
            While one frame is in the classifier, the next one's native stages run: more frames
            per second where a frame alone does not keep every core busy (the int8 graph, the
            native stages), at the price of latency (each frame runs on fewer threads). The maps
            are the same; results still come in order, and ``stable`` and ``smoothing`` still
            see every frame in order. With ``reuse`` a worker compares a frame with the one it
            estimated before (``workers`` frames earlier). Not on a CUDA device, where
            ``prefetch`` frames are in flight instead.

        Yields
        ------
        DefocusResult, or (frame, DefocusResult) with ``with_frames``
        """
        smoothing = check_float("smoothing", smoothing, 0.0)
        if smoothing >= 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if not isinstance(stable, (bool, np.bool_)):
            raise TypeError(f"stable must be a bool, got {stable!r}")
        if not isinstance(reuse, (bool, np.bool_)):
            raise TypeError(f"reuse must be a bool, got {reuse!r}")
        if stable and smoothing > 0:
            raise ValueError("stable=True replaces smoothing: pass one of them, not both "
                             f"(got smoothing={smoothing})")
        prefetch = check_int("prefetch", prefetch, 1)
        workers = check_int("workers", workers, 1)
        if workers > 1 and self._gpu is not None:
            raise ValueError(f"workers={workers} runs frames side by side on the CPU; on a CUDA device frames "
                             "overlap through prefetch instead: leave workers at 1")
        if max_frames is not None:
            max_frames = check_int("max_frames", max_frames, 1)
        if not isinstance(with_frames, (bool, np.bool_)):
            raise TypeError(f"with_frames must be a bool, got {with_frames!r}")
        channel_order = check_channel_order(channel_order)
        if isinstance(frames, (str, os.PathLike)):
            frames = video_frames(Path(frames))
            channel_order = "rgb"  # decoded to RGB
        elif not hasattr(frames, "__iter__"):
            raise TypeError(f"frames must be an iterable of images or a video path, got {type(frames).__name__}")
        if max_frames is not None:
            frames = itertools.islice(frames, max_frames)
        return self._stream(frames, smoothing, prefetch, channel_order, with_frames, bool(stable), bool(reuse),
                            workers)

    def _stream_workers(self, workers: int) -> list:
        """``workers`` copies of this estimator (these options, threads shared out between them),
        made once per count and kept (the last count only)."""
        with self._workers_lock:
            if self._workers is None or len(self._workers) != workers:
                per = max(1, (self.threads or default_threads()) // workers)
                self._workers = [DefocusEstimator(self.config.replace(threads=per)) for _ in range(workers)]
            return self._workers

    def _stream(self, frames, smoothing: float, prefetch: int, channel_order: str, with_frames: bool,
                stable: bool = False, reuse: bool = True, workers: int = 1):
        """The generator of :meth:`stream` (its arguments validated)."""
        if self._gpu is not None:
            if with_frames:  # the reader thread records each frame as it hands it on; results come in order
                sent = collections.deque()
                frames = _recorded(frames, sent)
            results = self._gpu.stream(prefetched(frames, prefetch), smoothing=smoothing, depth=prefetch,
                                       channel_order=channel_order, stable=stable)
            for result in results:
                yield (sent.popleft(), result) if with_frames else result
            return
        from fastdefocus import _native

        first_shape = None
        previous = None
        # the C++ twin of stages.temporal.TemporalFilter (cpp/temporal.cpp)
        temporal = _native.TemporalFilter() if stable else None
        estimators = [self] if workers == 1 else self._stream_workers(workers)
        caches = [_native.StreamCache() if reuse else None for _ in estimators]
        pool = ThreadPoolExecutor(workers, thread_name_prefix="fastdefocus-stream") if workers > 1 else None
        pending: collections.deque = collections.deque()  # (frame, luminance, result or its future), in order

        def finish(frame, lum, result):
            nonlocal previous
            if pool is not None:
                result = result.result()
            if temporal is not None:
                t0 = time.perf_counter()
                result.sigma, result.confidence, _ = temporal.update(lum, result.sigma, result.confidence)
                result.timings["temporal"] = time.perf_counter() - t0
            if smoothing > 0 and previous is not None:
                result.sigma = (smoothing * previous + (1.0 - smoothing) * result.sigma).astype(np.float32)
            previous = result.sigma
            return (frame, result) if with_frames else result

        source = enumerate(prefetched(frames, prefetch))
        try:
            while True:
                try:
                    index, frame = next(source)
                    arr, bgr = checked_native_image(self, frame, channel_order, name=f"frame {index}")
                    # the temporal filter's guide: the native ingest's luminance (bit for bit
                    # to_luminance's); otherwise each estimate makes its own, on its worker
                    lum = _native.stage_luminance(arr, bgr=bgr, threads=self.threads) if stable else None
                    shape = tuple(arr.shape[:2])
                    if first_shape is None:
                        first_shape = shape
                    elif shape != first_shape:
                        raise ValueError(f"frame {index} has size {shape}, but the stream started with "
                                         f"{first_shape}: all frames of a stream must have the same size")
                except StopIteration:
                    break
                except Exception:  # a bad frame, or the source failing: the frames before it come out first
                    while pending:
                        yield finish(*pending.popleft())
                    raise
                # the frame was validated above: not validated again; with stable, its luminance
                # (made above) is what the estimate starts from
                image, image_bgr = (lum, False) if stable else (arr, bgr)
                k = index % workers
                if pool is None:
                    pending.append((frame, lum, self._estimate_cpu(image, channel_order, caches[0], checked=True,
                                                                   bgr=image_bgr)))
                else:  # worker k's previous frame (index - workers) is done: it is the oldest pending
                    pending.append((frame, lum, pool.submit(estimators[k]._estimate_cpu, image, channel_order,
                                                            caches[k], checked=True, bgr=image_bgr)))
                while len(pending) >= workers:
                    yield finish(*pending.popleft())
            while pending:
                yield finish(*pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _recorded(frames, sent: collections.deque):
    for frame in frames:
        sent.append(frame)
        yield frame


def estimate(image, *, channel_order: str = "rgb", **options) -> DefocusResult:
    """One-call convenience: ``DefocusEstimator(**options).estimate(image, channel_order=...)``.

    ``channel_order="bgr"`` for OpenCV's images (``cv2.imread``). The few most recently used
    estimators (and their models) are kept, so repeated calls are cheap; they may be used from
    several threads (see :class:`DefocusEstimator`).
    """
    channel_order = check_channel_order(channel_order)
    key = tuple(sorted(options.items()))
    with _ESTIMATORS_LOCK:
        est = _ESTIMATORS.pop(key, None)
        if est is None:
            est = DefocusEstimator(**options)
        _ESTIMATORS[key] = est  # most recently used last
        while len(_ESTIMATORS) > _ESTIMATOR_CACHE_SIZE:
            _ESTIMATORS.pop(next(iter(_ESTIMATORS)))
    return est.estimate(image, channel_order=channel_order)


#: The few most recently used estimators of ``estimate`` (each holds a model session).
_ESTIMATOR_CACHE_SIZE = 4
_ESTIMATORS: dict = {}
_ESTIMATORS_LOCK = threading.Lock()
