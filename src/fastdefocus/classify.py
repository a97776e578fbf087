"""The classify stage: patch batch -> class probabilities -> sigma and confidence.

The trained model travels as ``weights/blur_classifier.json`` (levels, input
normalisation, calibration, metrics, checksums) beside the ONNX graph (CPU
runtime, C++ users) and the safetensors state dict (torch backends). Every
consumer reads the levels from the metadata, never from code.
"""
from __future__ import annotations

import hashlib
import os
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
METADATA_NAME = "blur_classifier.json"


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable or does not match its recorded checksum."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_sigma_raw(probs: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Probability-weighted mean of the levels (biased towards the middle at both ends)."""
    return probs @ levels


def apply_calibration(raw_sigma: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Monotone piecewise-linear map from the raw expected sigma to calibrated sigma.
    ``knots`` is (K, 2): raw values (increasing) and calibrated values."""
    return np.interp(raw_sigma, knots[:, 0], knots[:, 1]).astype(np.float32)


def confidence_from_probs(probs: np.ndarray) -> np.ndarray:
    """Probability mass within one level of the most likely level, in [0, 1]."""
    best = probs.argmax(axis=1)
    n = probs.shape[1]
    conf = np.zeros(len(probs), dtype=np.float64)
    rows = np.arange(len(probs))
    for offset in (-1, 0, 1):
        idx = best + offset
        valid = (idx >= 0) & (idx < n)
        conf[valid] += probs[rows[valid], idx[valid]]
    return np.clip(conf, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ModelInfo:
    """What the shipped model file says about itself."""
    levels: np.ndarray
    std_floor: float
    patch_size: int
    width_mult: float
    calibration: np.ndarray
    onnx_path: Path
    safetensors_path: Path
    metadata: dict


def load_model_info(weights_dir: Path | str | None = None, verify: bool = True) -> ModelInfo:
    """Read the model metadata and verify the checksums of the weight files."""
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    meta_path = weights_dir / METADATA_NAME
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as e:
        raise ModelFileError(f"model metadata not found: {meta_path} (is the package installed completely?)") from e
    except json.JSONDecodeError as e:
        raise ModelFileError(f"model metadata {meta_path} is not valid JSON: {e}") from e
    missing = [k for k in ("files", "levels", "input", "architecture", "calibration") if k not in meta]
    if missing:
        raise ModelFileError(f"model metadata {meta_path} lacks {', '.join(missing)}: not a fastdefocus model file")
    files = {}
    for key in ("onnx", "safetensors"):
        entry = meta["files"][key]
        path = weights_dir / entry["name"]
        if verify:
            if not path.exists():
                raise ModelFileError(f"model file missing: {path}")
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                raise ModelFileError(
                    f"model file {path} does not match its checksum (expected sha256 {entry['sha256']}, "
                    f"got {digest}): the file is corrupt or was modified; reinstall fastdefocus")
        files[key] = path
    return ModelInfo(levels=np.asarray(meta["levels"], dtype=np.float64),
                     std_floor=float(meta["input"]["std_floor"]),
                     patch_size=int(meta["input"]["patch_size"]),
                     width_mult=float(meta["architecture"]["width_mult"]),
                     calibration=np.asarray(meta["calibration"]["knots"], dtype=np.float64),
                     onnx_path=files["onnx"], safetensors_path=files["safetensors"], metadata=meta)


def load_torch_model(info: ModelInfo | None = None):
    """The classifier as a torch module (eval mode) with the shipped weights."""
    from safetensors.torch import load_file

    from .model import MobileNetV2

    info = info or load_model_info()
    model = MobileNetV2(num_classes=len(info.levels), width_mult=info.width_mult)
    model.load_state_dict(load_file(str(info.safetensors_path)))
    return model.eval()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class PatchClassifier:
    """Runs the classifier on batches of normalised patches through one runtime.

    ``onnxruntime`` (CPU, the default there: it ran these patches about twice as fast as
    eager torch on 2 cores) or ``torch`` (eager; on CUDA in fp16, channels_last).
    """

    def __init__(self, info: ModelInfo, device: str = "auto", backend: str = "auto", batch_size: int = 1024):
        self.info = info
        self.batch_size = batch_size
        if device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise RuntimeError("device='cuda' was requested but torch sees no CUDA device; use device='cpu'")
        self.device = "cpu" if device == "auto" else device
        if backend == "auto":
            backend = "onnxruntime" if self.device == "cpu" and _onnxruntime_available() else "torch"
        if backend == "onnxruntime":
            if self.device != "cpu":
                raise ValueError("backend='onnxruntime' runs on the CPU; use backend='torch' for device='cuda'")
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # the cores this process may use (containers and affinity), not the host's
            opts.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(info.onnx_path), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
            self.name = "onnxruntime"
            self._run = self._run_onnx
        else:
            import torch
            self._torch = torch
            model = load_torch_model(info).to(self.device).to(memory_format=torch.channels_last)
            self._half = self.device == "cuda"
            self._model = model.half() if self._half else model
            self.name = f"torch-{self.device}"
            self._run = self._run_torch

    def _run_onnx(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"patches": batch})[0]

    def _run_torch(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            x = (x.half() if self._half else x).contiguous(memory_format=torch.channels_last)
            return torch.softmax(self._model(x).float(), dim=1).cpu().numpy()

    def probabilities(self, patches: np.ndarray) -> np.ndarray:
        """Class probabilities (N, L) float32 for normalised patches (N, P, P) float32."""
        n = len(patches)
        out = np.empty((n, len(self.info.levels)), np.float32)
        x = patches.reshape(n, 1, patches.shape[-2], patches.shape[-1])
        for start in range(0, n, self.batch_size):
            out[start:start + self.batch_size] = self._run(x[start:start + self.batch_size])
        return out
