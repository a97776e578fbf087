"""The second shipped model (model="fast"): a MobileNetV2 of width 0.25, selectable by name."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.classify import MODEL_DIRS, load_model_info


def test_fast_model_is_shipped_and_slimmer():
    fast, default = load_model_info(MODEL_DIRS["fast"]), load_model_info(MODEL_DIRS["default"])
    assert fast.width_mult == 0.25 < default.width_mult
    assert list(fast.levels) == list(default.levels) and fast.patch_size == default.patch_size
    rows = fast.metadata["metrics_heldout"]["textured"]  # per level, held-out textured patches
    n = sum(r["n"] for r in rows)
    within1 = sum(r["n"] * r["within1"] for r in rows) / n
    mae = sum(r["n"] * r["mae"] for r in rows) / n
    assert within1 >= 0.82 and mae <= 0.27, (within1, mae)


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
