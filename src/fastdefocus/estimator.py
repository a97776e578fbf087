"""DefocusEstimator: an image in, a per-pixel defocus (Gaussian sigma, px) map out.

Stages (see docs/ARCHITECTURE.md): ingest -> patches -> classify -> splat -> refine.
"""
from __future__ import annotations

import math
import numbers
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .blur import gaussian_blur
from .classify import (PatchClassifier, apply_calibration, confidence_from_probs, expected_sigma_raw,
                       load_model_info)
from .filters import extract_patches
from .ingest import check_max_pixels, check_pixel_count, to_luminance
from .refine import SNAP_RADIUS, pad_to, refine, resize, snap_boundaries
from .splat import SPLAT_LIFT, energy_tables, patch_statistics, sharpness_maps, splat, tent_sum

#: Classifier runtimes on the CPU and on a CUDA device ("cpu" there: ONNX Runtime on the host).
CPU_BACKENDS = ("auto", "onnxruntime", "torch")
GPU_BACKENDS = ("tensorrt", "compile", "eager", "cpu")


def gpu_available(simulator: bool = False) -> bool:
    """True if an NVIDIA driver is present and Numba's CUDA target sees a GPU. Cheap on
    machines without a driver (Numba is not imported there). Numba's CUDA simulator
    (NUMBA_ENABLE_CUDASIM=1) counts only with ``simulator=True``: "auto" never picks it,
    an explicit device="cuda" may (the tests)."""
    import ctypes.util
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return False
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        if not simulator:
            return False
    elif ctypes.util.find_library("cuda") is None:
        return False
    try:
        from .kernels._compat import import_cuda
        return bool(import_cuda().is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install means: no GPU
        return False


@dataclass
class DefocusResult:
    """A defocus map and its confidence.

    Attributes
    ----------
    sigma : float32 (H, W)
        Gaussian blur sigma in pixels of the input image (0 = in focus).
    confidence : float32 (H, W)
        How much to trust ``sigma`` at each pixel, in [0, 1] (low on flat, textureless areas).
    sigma_max : float
        The largest sigma the model can report (its top level's bin edge), for fixed-scale views.
    timings : dict
        Seconds spent in each stage.
    """
    sigma: np.ndarray
    confidence: np.ndarray
    sigma_max: float
    timings: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.sigma.shape

    def normalized(self, vmax: float | None = None) -> np.ndarray:
        """sigma / vmax clipped to [0, 1] (float32); ``vmax`` defaults to the model's range,
        a fixed scale, so maps of different images stay comparable."""
        vmax = self.sigma_max if vmax is None else float(vmax)
        if not vmax > 0:
            raise ValueError(f"vmax must be > 0, got {vmax}")
        return np.clip(self.sigma / vmax, 0.0, 1.0).astype(np.float32)

    def in_focus(self, threshold: float = 1.0) -> np.ndarray:
        """Boolean mask of pixels whose sigma is at most ``threshold`` px."""
        return self.sigma <= float(threshold)

    def colorize(self, vmax: float | None = None, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
        """RGB uint8 picture of the map (dark = sharp, bright = blurred) on a fixed scale."""
        gray = (self.normalized(vmax) * 255 + 0.5).astype(np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(gray, colormap), cv2.COLOR_BGR2RGB)

    def sharpness(self) -> float:
        """One score for the whole image in (0, 1]: 1 / (1 + s10), where s10 is the
        confidence-weighted 10th percentile of sigma (how sharp the sharpest tenth is).
        1.0 means perfectly in focus somewhere; 0.5 means its sharpest part has sigma 1 px."""
        weights = self.confidence.ravel().astype(np.float64)
        values = self.sigma.ravel().astype(np.float64)
        if weights.sum() <= 1e-9:
            weights = np.ones_like(weights)
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(weights[order])
        s10 = values[order][np.searchsorted(cum, 0.1 * cum[-1])]
        return float(1.0 / (1.0 + max(s10, 0.0)))


def _check_int(name: str, value, low: int, allowed=None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} (type {type(value).__name__})")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value}")
    return value


def _check_float(name: str, value, low: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if value < low or (not inclusive and value == low):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {low}, got {value}")
    return value


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
    device : {"auto", "cpu", "cuda"}
        Where the classifier runs. "auto" picks the CPU (the GPU pipeline is a separate path).
    backend : {"auto", "onnxruntime", "torch"}
        Classifier runtime. "auto" picks ONNX Runtime on the CPU (the fastest measured there)
        and torch on CUDA. ``est.backend`` says which one runs.
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
        Half-width (px) of the boundary snap (:func:`fastdefocus.refine.snap_boundaries`,
        default 10): inside the ramp a 32-px patch leaves at a focus boundary, each pixel is
        put back on the side its own fine-scale sharpness matches. Layered scenes (100
        photos of BSDS500 val, ``benchmarks/quality.py --sections scenes``), near-boundary /
        textured MAE with the shipped weights: 0.672 / 0.421 px at 0 (off), 0.594 / 0.400 px
        at 10; on the 60 scenes other than the 40 its settings were chosen on, 0.662 / 0.410
        and 0.579 / 0.389. Where the image is flat, the map is left as it is.
    batch_size : int
        Patches per classifier call.
    weights : path, optional
        Folder with a model (blur_classifier.json + files); defaults to the shipped model.
    max_pixels : "auto", int or None
        Largest image (H x W pixels) accepted; larger ones raise ValueError before anything
        of their size is allocated. "auto": what fits in about 8 GiB of working memory at
        this stride (:func:`default_max_pixels`: 8192 x 8192 at stride 8, 2.06 Mpx at
        stride 1). None: no limit.
    """

    def __init__(self, device: str = "auto", backend: str = "auto", stride: int = 8, sigma0: float = 0.0,
                 radius: float = 4.0, eps: float = 1e-3, iterations: int = 1, snap: int = SNAP_RADIUS,
                 batch_size: int = 1024,
                 weights: str | os.PathLike | None = None, max_pixels: int | str | None = "auto"):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if backend not in CPU_BACKENDS + GPU_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(CPU_BACKENDS + GPU_BACKENDS)}, got {backend!r}")
        if device == "auto":
            device = "cuda" if gpu_available() and backend not in ("onnxruntime", "torch") else "cpu"
        if device == "cpu" and backend in GPU_BACKENDS[:-1]:
            raise ValueError(f"backend {backend!r} runs on a CUDA device; on the CPU use 'auto', "
                             "'onnxruntime' or 'torch'")
        if device == "cuda" and backend == "onnxruntime":
            raise ValueError("backend 'onnxruntime' is the CPU runtime; on a CUDA device use 'auto', "
                             "'tensorrt', 'compile', 'eager' or 'cpu' (ONNX Runtime on the host)")
        self.info = load_model_info(weights)
        self.patch_size = self.info.patch_size
        divisors = {d for d in range(1, self.patch_size + 1) if self.patch_size % d == 0}
        self.stride = _check_int("stride", stride, 1, divisors)
        self.sigma0 = _check_float("sigma0", sigma0, 0.0)
        self.radius = _check_float("radius", radius, 1.0)
        self.eps = _check_float("eps", eps, 0.0, inclusive=False)
        self.iterations = _check_int("iterations", iterations, 0)
        self.snap = _check_int("snap", snap, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if isinstance(max_pixels, str):
            if max_pixels != "auto":
                raise ValueError(f"max_pixels must be 'auto', None or an integer >= 1, got {max_pixels!r}")
            self.max_pixels = default_max_pixels(self.patch_size, self.stride)
        else:
            self.max_pixels = check_max_pixels(max_pixels)
        self.flat_std = float(self.info.metadata["data"].get("flat_std", 0.02))
        self.sigma_max = float(self.info.calibration[-1, 1])
        self._gpu = None
        if device == "cuda":
            if not gpu_available(simulator=True):
                raise RuntimeError("device='cuda' needs an NVIDIA GPU with Numba's CUDA target "
                                   "(pip install 'fastdefocus[gpu]'); none was found: use device='cpu'")
            from .gpu import GpuPipeline
            self._gpu = GpuPipeline(self, backend={"torch": "eager"}.get(backend, backend))
            self.classifier = None
        else:
            self.classifier = PatchClassifier(self.info, device="cpu", backend=backend,
                                              batch_size=self.batch_size)

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

    def estimate(self, image) -> DefocusResult:
        """Defocus map of one image.

        Parameters
        ----------
        image : array (H, W), (H, W, 3) RGB, (H, W, 4) RGBA or torch tensor (H, W) / (C, H, W)
            uint8, uint16 or float in [0, 1]; any size from 1 x 1 (images smaller than a
            patch are padded by reflection). On ``device="cuda"`` also a device array
            (CuPy, torch CUDA, Numba; (H, W) or (H, W, C)), used in place without a host
            round trip (its values are not validated there).

        Returns
        -------
        DefocusResult
            ``sigma`` and ``confidence`` of shape (H, W), float32.
        """
        if self._gpu is not None:
            return self._gpu.estimate(image)
        timings = {}
        t0 = time.perf_counter()
        lum = to_luminance(image, max_pixels=self.max_pixels)
        h, w = lum.shape
        p, s = self.patch_size, self.stride
        # thin images are padded to a patch in each direction: that is what costs memory
        # (one patch's worth is always allowed)
        if self.max_pixels is not None:
            check_pixel_count(max(h, p), max(w, p), max(self.max_pixels, p * p),
                              name=f"image padded to the {p}-px patch")
        source = gaussian_blur(lum, self.sigma0) if self.sigma0 > 0 else lum
        t1 = time.perf_counter()
        timings["ingest"] = t1 - t0
        patches, grid = extract_patches(source, size=p, stride=s, normalize=True, std_floor=self.info.std_floor)
        ny, nx = grid
        k = p // s
        padded_h, padded_w = (ny + k - 1) * s, (nx + k - 1) * s
        padded_source = pad_to(source, padded_h, padded_w)
        tables = energy_tables(padded_source)  # read by both statistics below
        texture, agreement = patch_statistics(padded_source, grid, p, s, self.flat_std, tables)
        t2 = time.perf_counter()
        timings["patches"] = t2 - t1
        probs = self.classifier.probabilities(patches)
        t3 = time.perf_counter()
        timings["classify"] = t3 - t2
        sigma_patch = apply_calibration(expected_sigma_raw(probs, self.info.levels), self.info.calibration)
        if self.sigma0 > 0:
            sigma_patch = np.sqrt(np.maximum(sigma_patch ** 2 - self.sigma0 ** 2, 0.0))
        texture_conf = np.clip((texture.ravel() - 0.5 * self.flat_std) / (1.5 * self.flat_std), 0.0, 1.0)
        conf_patch = (confidence_from_probs(probs) * texture_conf).reshape(grid)
        # patches straddling a focus boundary (their windows disagree) count less in the map,
        # but the reported confidence stays the classifier's and the texture's; such patches
        # look as sharp as their sharp side, so the splat is a soft maximum (SPLAT_LIFT)
        # and a patch sharper than a cell it covers counts less in that cell (the cell match)
        cell_sigma, cell_weight = splat(sigma_patch.reshape(grid), conf_patch * agreement, p, s,
                                        lift=SPLAT_LIFT, sharpness=sharpness_maps(padded_source, grid, p, s, tables))
        cell_conf = tent_sum(conf_patch, p, s) / tent_sum(np.ones(grid), p, s)
        t4 = time.perf_counter()
        timings["splat"] = t4 - t3
        guide = pad_to(lum, padded_h, padded_w)
        dense = refine(cell_sigma, cell_weight, guide, s, self.radius, self.eps, self.iterations)
        dense_conf = np.clip(resize(cell_conf.astype(np.float32), padded_h, padded_w), 0.0, 1.0)
        sigma = np.ascontiguousarray(np.clip(dense[:h, :w], 0.0, self.sigma_max))
        confidence = np.ascontiguousarray(dense_conf[:h, :w])
        t5 = time.perf_counter()
        timings["refine"] = t5 - t4
        if self.snap:  # within [local min, local max] of the clipped map: stays clipped
            sigma = snap_boundaries(sigma, lum, self.snap)
        timings["snap"] = time.perf_counter() - t5
        timings["total"] = time.perf_counter() - t0
        return DefocusResult(sigma=sigma, confidence=confidence, sigma_max=self.sigma_max, timings=timings)

    __call__ = estimate

    def stream(self, frames: Iterable | str | os.PathLike, smoothing: float = 0.0,
               prefetch: int = 2) -> Iterator[DefocusResult]:
        """Estimate a sequence of same-sized frames, yielding the results in order.

        Parameters
        ----------
        frames : iterable of images, or a video path
            Images as :meth:`estimate` takes them; a video is read with OpenCV (BGR
            converted to RGB). A frame of another size than the first raises ValueError
            before it is estimated.
        smoothing : float in [0, 1)
            Temporal smoothing of the map: ``sigma_k = s * sigma_(k-1) + (1 - s) * estimate_k``
            (0, the default: off). Damps flicker on video; lags behind fast focus changes.
        prefetch : int >= 1
            Frames read ahead. On the CPU a reader thread decodes the next frames while the
            current one is estimated; on a CUDA device this many frames are in flight, the
            upload of frame k+1, the work on frame k and the download of frame k-1 overlapping
            on separate CUDA streams. Either way memory stays bounded: the reader waits.
        """
        smoothing = _check_float("smoothing", smoothing, 0.0)
        if smoothing >= 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        prefetch = _check_int("prefetch", prefetch, 1)
        if isinstance(frames, (str, os.PathLike)):
            frames = _video_frames(Path(frames))
        elif not hasattr(frames, "__iter__"):
            raise TypeError(f"frames must be an iterable of images or a video path, got {type(frames).__name__}")
        if self._gpu is not None:
            yield from self._gpu.stream(_prefetched(frames, prefetch), smoothing=smoothing, depth=prefetch)
            return
        first_shape = None
        previous = None
        for index, frame in enumerate(_prefetched(frames, prefetch)):
            lum = to_luminance(frame, name=f"frame {index}", max_pixels=self.max_pixels)
            if first_shape is None:
                first_shape = lum.shape
            elif lum.shape != first_shape:
                raise ValueError(f"frame {index} has size {lum.shape}, but the stream started with "
                                 f"{first_shape}: all frames of a stream must have the same size")
            result = self.estimate(lum)  # lum is float32 in [0, 1]: its luminance is itself
            if smoothing > 0 and previous is not None:
                result.sigma = (smoothing * previous + (1.0 - smoothing) * result.sigma).astype(np.float32)
            previous = result.sigma
            yield result


_END = object()


def _prefetched(frames, depth: int) -> Iterator:
    """Iterate ``frames`` in a reader thread, at most ``depth`` items ahead; the reader's
    exceptions are raised here, in order. Closing the iterator stops the reader."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader():
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            items.put((_END, e))

    thread = threading.Thread(target=reader, name="fastdefocus-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}: not a video file OpenCV can read")
    try:
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # container's count; 0 if unknown
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if count == 0:
            raise ValueError(f"video {path} has no readable frames (corrupt or empty)")
        if expected > 0 and count < expected:  # containers often only estimate their count: warn
            warnings.warn(f"video {path} ended after {count} of the {expected} frames its header "
                          "announces: the file may be truncated or corrupt", RuntimeWarning, stacklevel=2)
    finally:
        cap.release()


def estimate(image, **options) -> DefocusResult:
    """One-call convenience: ``DefocusEstimator(**options).estimate(image)``.

    The few most recently used estimators (and their models) are kept, so repeated calls are cheap.
    """
    key = tuple(sorted(options.items()))
    with _ESTIMATORS_LOCK:
        est = _ESTIMATORS.pop(key, None)
        if est is None:
            est = DefocusEstimator(**options)
        _ESTIMATORS[key] = est  # most recently used last
        while len(_ESTIMATORS) > _ESTIMATOR_CACHE_SIZE:
            _ESTIMATORS.pop(next(iter(_ESTIMATORS)))
    return est.estimate(image)


#: The few most recently used estimators of ``estimate`` (each holds a model session).
_ESTIMATOR_CACHE_SIZE = 4
_ESTIMATORS: dict = {}
_ESTIMATORS_LOCK = threading.Lock()
