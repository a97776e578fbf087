"""The second shipped model (model="fast"): a StridedCNN distilled from the default MobileNetV2,
selectable by name."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.classify import MODEL_DIRS, load_model_info


def test_fast_model_is_shipped_smaller_and_as_accurate():
    fast, default = load_model_info(MODEL_DIRS["fast"]), load_model_info(MODEL_DIRS["default"])
    assert fast.architecture["name"] == "StridedCNN" and fast.width_mult is None
    assert default.architecture["name"] == "MobileNetV2" and default.width_mult == 0.5
    assert fast.metadata["training"]["config"]["teacher"]  # distilled from the default
    assert list(fast.levels) == list(default.levels) and fast.patch_size == default.patch_size
    assert fast.onnx_path.stat().st_size < default.onnx_path.stat().st_size / 3

    def heldout(info):
        rows = info.metadata["metrics_heldout"]["textured"]  # per level, held-out textured patches
        n = sum(r["n"] for r in rows)
        return sum(r["n"] * r["within1"] for r in rows) / n, sum(r["n"] * r["mae"] for r in rows) / n

    (w_fast, mae_fast), (w_default, mae_default) = heldout(fast), heldout(default)
    # as accurate as its teacher on held-out generated patches, within a point / 0.01 px
    assert w_fast >= 0.87 and w_fast >= w_default - 0.01, (w_fast, w_default)
    assert mae_fast <= 0.25 and mae_fast <= mae_default + 0.01, (mae_fast, mae_default)


def test_fast_model_estimates_and_is_selected_by_name():
    est = DefocusEstimator(device="cpu", model="fast")
    assert est.info.onnx_path.parent == MODEL_DIRS["fast"] and est.config.model == "fast"
    img = dead_leaves(np.random.default_rng(2), 192)[:160, :192].astype(np.float32)
    img[:, 96:] = gaussian_blur(img, 3.0)[:, 96:]
    r = est.estimate(img)
    assert np.median(r.sigma[:, :64]) < 1.0 < 2.0 < np.median(r.sigma[:, 128:]) < 4.5
    # weights= overrides the name
    assert DefocusEstimator(device="cpu", model="fast", weights=str(MODEL_DIRS["default"])).info.width_mult == 0.5


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="model must be one of 'default', 'fast'"):
        DefocusEstimator(device="cpu", model="tiny")
