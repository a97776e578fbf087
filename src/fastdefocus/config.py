"""One frozen configuration of the estimator: every option, its default and its check.

A parameter enters once (the command line through :func:`fastdefocus.cli.options.config_from_args`,
the Python constructor, or another language's options generated from or tested against this
class), becomes an :class:`EstimatorConfig`, and flows unchanged to the CPU stages, the CUDA
pipeline and its kernels. No other module keeps its own copy of a default.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from fastdefocus._params import MAX_FILL_SIGMA, MIN_FILL_SIGMA, SNAP_RADIUS, TTA_VIEWS
from fastdefocus._validate import check_float, check_int, check_max_pixels

#: Where the classifier runs.
DEVICES = ("auto", "cpu", "cuda")
#: Classifier runtimes on the CPU ("auto": ONNX Runtime) ...
CPU_BACKENDS = ("auto", "onnxruntime", "onnxruntime-int8", "torch")
#: ... and on a CUDA device, best first ("cpu" there: ONNX Runtime on the host).
GPU_BACKENDS = ("tensorrt", "compile", "eager", "cpu")
BACKENDS = CPU_BACKENDS + GPU_BACKENDS
#: The shipped models: the paper's MobileNetV2 (width 0.5) and a faster StridedCNN distilled from it.
MODELS = ("default", "fast")
#: Most coarse levels (each halves the image: 4 reads blur to about 100 px).
MAX_COARSE_LEVELS = 4


@dataclass(frozen=True)
class EstimatorConfig:
    """Options of :class:`fastdefocus.DefocusEstimator`, validated on construction.

    The field docs (``metadata["help"]``) are also the command line's help texts.
    """
    device: str = field(default="auto", metadata={
        "help": "where the estimator runs; 'auto' takes a CUDA GPU when one is usable, else the CPU",
        "choices": DEVICES})
    backend: str = field(default="auto", metadata={
        "help": "classifier runtime: onnxruntime / onnxruntime-int8 (the int8 graph) / torch on the CPU; tensorrt / compile / eager / cpu on a "
                "CUDA device ('auto': the fastest available)", "choices": BACKENDS})
    stride: int = field(default=8, metadata={
        "help": "patch grid step in px; divides the patch size (32): 1, 2, 4, 8, 16 or 32"})
    sigma0: float = field(default=0.0, metadata={
        "help": "noise pre-filter sigma in px (0: off); the estimate is corrected for it in quadrature"})
    radius: float = field(default=4.0, metadata={"help": "refinement guided-filter radius in px of the input"})
    eps: float = field(default=1e-3, metadata={"help": "refinement guided-filter regularisation (luminance^2)"})
    iterations: int = field(default=1, metadata={
        "help": "weighted guided-filter passes on the working grid (0: bilinear interpolation only)"})
    snap: int = field(default=SNAP_RADIUS, metadata={
        "help": "boundary snap half-width in px (0: off)"})
    coarse_levels: int = field(default=2, metadata={
        "help": "coarse levels for blur past the classifier's 6 px: each halves the image and doubles the "
                "range (1: to 13 px, 2: to 26 px), run only where the finer map saturates (0: off)"})
    flat_gate: float = field(default=0.5, metadata={
        "help": "texture gating: patches whose luminance std is below this times the model's flat_std (0.02) "
                "are not classified (their weight in the map is 0 below 0.5); in [0, 0.5], 0: classify all"})
    fill_sigma: float = field(default=64.0, metadata={
        "help": "flat fill: patches too flat to carry blur evidence take the confidence-weighted, edge-aware "
                "value of the patches around them, within about this sigma in px (0: off, they keep the "
                "classifier's reading of a flat patch; else 1-10000)"})
    tta: int = field(default=1, metadata={
        "help": "test-time views: each patch is classified in this many of its dihedral views (mirrors, "
                "rotations) and the probabilities averaged; 1 (off), 2, 4 or 8. More accurate maps on "
                "real photos for that many times the classifier's work (see the README's quality table)",
        "choices": TTA_VIEWS})
    batch_size: int = field(default=1024, metadata={"help": "patches per classifier call"})
    threads: int = field(default=0, metadata={
        "help": "CPU threads of ONNX Runtime and of the native stages together (0: the cores this "
                "process may use)"})
    model: str = field(default="default", metadata={
        "help": "shipped model: 'default' (the paper's MobileNetV2, width 0.5) or 'fast' (a StridedCNN distilled "
                "from it: 2-3x the frames per second, see docs/model_fast/MODEL.md); weights= overrides it",
        "choices": MODELS})
    weights: str | None = field(default=None, metadata={
        "help": "model folder (blur_classifier.json + files; None: the shipped model named by model)"})
    max_pixels: int | str | None = field(default="auto", metadata={
        "help": "largest image (H x W px) accepted: 'auto' (what fits in about 8 GiB at this stride), "
                "an integer, or None (no limit)"})

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device == "cpu" and self.backend in GPU_BACKENDS[:-1]:
            raise ValueError(f"backend {self.backend!r} runs on a CUDA device; on the CPU use 'auto', "
                             "'onnxruntime', 'onnxruntime-int8' or 'torch'")
        if self.device == "cuda" and self.backend in ("onnxruntime", "onnxruntime-int8"):
            raise ValueError(f"backend {self.backend!r} is a CPU runtime; on a CUDA device use 'auto', "
                             "'tensorrt', 'compile', 'eager' or 'cpu' (ONNX Runtime on the host)")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got {self.model!r}")
        set_ = object.__setattr__  # frozen: normalise the types once, here
        set_(self, "stride", check_int("stride", self.stride, 1))
        set_(self, "sigma0", check_float("sigma0", self.sigma0, 0.0))
        set_(self, "radius", check_float("radius", self.radius, 1.0))
        set_(self, "eps", check_float("eps", self.eps, 0.0, inclusive=False))
        set_(self, "iterations", check_int("iterations", self.iterations, 0))
        set_(self, "snap", check_int("snap", self.snap, 0))
        set_(self, "coarse_levels", check_int("coarse_levels", self.coarse_levels, 0,
                                              range(MAX_COARSE_LEVELS + 1)))
        set_(self, "flat_gate", check_float("flat_gate", self.flat_gate, 0.0))
        if self.flat_gate > 0.5:
            raise ValueError(f"flat_gate must be in [0, 0.5], got {self.flat_gate}")
        set_(self, "fill_sigma", check_float("fill_sigma", self.fill_sigma, 0.0))
        if self.fill_sigma != 0 and not MIN_FILL_SIGMA <= self.fill_sigma <= MAX_FILL_SIGMA:
            raise ValueError(f"fill_sigma must be 0 (off) or in [{MIN_FILL_SIGMA:g}, {MAX_FILL_SIGMA:g}] px, "
                             f"got {self.fill_sigma}")
        set_(self, "tta", check_int("tta", self.tta, 1, TTA_VIEWS))
        set_(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        set_(self, "threads", check_int("threads", self.threads, 0))
        if self.weights is not None:
            if not isinstance(self.weights, (str, os.PathLike)):
                raise TypeError(f"weights must be a folder path or None, got {self.weights!r}")
            set_(self, "weights", os.fspath(self.weights))
        if isinstance(self.max_pixels, str):
            if self.max_pixels != "auto":
                raise ValueError(f"max_pixels must be 'auto', None or an integer >= 1, got {self.max_pixels!r}")
        else:
            set_(self, "max_pixels", check_max_pixels(self.max_pixels))

    def replace(self, **changes) -> "EstimatorConfig":
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def fields(cls) -> tuple:
        return dataclasses.fields(cls)

    def options(self) -> dict:
        """The options as keyword arguments of :class:`fastdefocus.DefocusEstimator`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
