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

from fastdefocus._params import FLAT_STD

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: The shipped models' folders (``EstimatorConfig.model``).
MODEL_DIRS = {"default": WEIGHTS_DIR, "fast": WEIGHTS_DIR.parent / "weights_fast"}
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


def dihedral_view(patches: np.ndarray, view: int) -> np.ndarray:
    """View ``view`` (0-7) of square patches (..., P, P): ``y[r, c] = x[a, b]`` with ``(a, b)``
    ``(r, c)``, or ``(c, r)`` for views 4-7, then ``b`` mirrored (``P - 1 - b``) when bit 0 of
    ``view`` is set and ``a`` when bit 1 is. 0 is the patch itself; 0-1 the patch and its mirror;
    0-3 the group of both mirrors and the 180-degree rotation; 0-7 all eight dihedral views."""
    if not 0 <= view < 8:
        raise ValueError(f"view must be in 0-7, got {view}")
    x = patches[..., :, ::-1] if view & 1 else patches
    if view & 2:
        x = x[..., ::-1, :]
    return np.ascontiguousarray(np.swapaxes(x, -1, -2) if view & 4 else x)


def dihedral_probabilities(classify, patches: np.ndarray, views: int) -> np.ndarray:
    """The mean of ``classify``'s probabilities (N, L) float32 over the first ``views`` dihedral
    views of the patches (:func:`dihedral_view`), summed in view order in float32 and divided by
    ``views`` (as the native estimator does); ``views`` 1: ``classify(patches)``."""
    out = np.asarray(classify(patches), np.float32)
    if views == 1:
        return out
    out = out.copy()
    for v in range(1, views):
        out += np.asarray(classify(dihedral_view(patches, v)), np.float32)
    out /= np.float32(views)
    return out


@dataclass(frozen=True)
class ModelInfo:
    """What the shipped model file says about itself."""
    levels: np.ndarray
    std_floor: float
    patch_size: int
    #: the ``architecture`` entry of the model file: which network, with its settings
    #: (:func:`fastdefocus.backends.networks.build_network` builds it)
    architecture: dict
    calibration: np.ndarray
    onnx_path: Path
    safetensors_path: Path
    metadata: dict
    #: The int8 ONNX graph (``files.onnx_int8``; ``backend="onnxruntime-int8"``), None when the
    #: model has none.
    onnx_int8_path: Path | None = None

    @property
    def width_mult(self) -> float | None:
        """The MobileNetV2 width multiplier, None for another network."""
        value = self.architecture.get("width_mult")
        return None if value is None else float(value)

    @property
    def flat_std(self) -> float:
        """The flat-patch threshold the model was trained with (intensity std in [0, 1])."""
        return float(self.metadata["data"].get("flat_std", FLAT_STD))

    @property
    def sigma_max(self) -> float:
        """The largest sigma (px) the model reports: the top of its calibration."""
        return float(self.calibration[-1, 1])


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
    for key in ("onnx", "safetensors", "onnx_int8"):
        if key == "onnx_int8" and key not in meta["files"]:
            continue
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
                     architecture=dict(meta["architecture"]),
                     calibration=np.asarray(meta["calibration"]["knots"], dtype=np.float64),
                     onnx_path=files["onnx"], safetensors_path=files["safetensors"], metadata=meta,
                     onnx_int8_path=files.get("onnx_int8"))
