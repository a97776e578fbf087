"""The int8 graph (backend "onnxruntime-int8"): listed, verified, and accurate against the float
model and the truth on generated patches of known blur."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.backends.cpu import PatchClassifier
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.classify import MODEL_DIRS, apply_calibration, expected_sigma_raw, load_model_info
from fastdefocus.stages.filters import extract_patches


@pytest.fixture(scope="module", params=["default", "fast"])
def info(request):
    """Both shipped models carry an int8 graph made by python -m fastdefocus.train.quantize."""
    return load_model_info(MODEL_DIRS[request.param])


@pytest.fixture(scope="module")
def patches(info):
    """Textured patches of dead-leaves images blurred at every level, with their level."""
    rng = np.random.default_rng(0)
    xs, levels = [], []
    for level, sigma in enumerate(info.levels):
        img = dead_leaves(rng, 128).astype(np.float32)
        img = gaussian_blur(img, float(sigma)) if sigma > 0 else img
        raw, _ = extract_patches(img, 32, 16)
        keep = raw.reshape(len(raw), -1).std(axis=1) >= info.flat_std
        norm, _ = extract_patches(img, 32, 16, normalize=True, std_floor=info.std_floor)
        xs.append(norm[keep][:24])
        levels += [level] * len(norm[keep][:24])
    return np.concatenate(xs), np.array(levels)


def test_the_shipped_model_lists_a_verified_int8_graph(info):
    assert info.onnx_int8_path is not None and info.onnx_int8_path.exists()
    held = info.metadata["metrics_heldout_int8"]
    assert held["int8"]["within1"] >= held["fp32"]["within1"] - 0.01  # the gate it was made with
    assert held["int8"]["mae"] <= held["fp32"]["mae"] + 0.01


def test_int8_accuracy_floor(info, patches):
    x, level = patches
    fp32 = PatchClassifier(info, backend="onnxruntime").probabilities(x)
    int8 = PatchClassifier(info, backend="onnxruntime-int8").probabilities(x)
    assert int8.shape == fp32.shape and np.allclose(int8.sum(1), 1.0, atol=1e-4)
    s32 = apply_calibration(expected_sigma_raw(fp32, info.levels), info.calibration)
    s8 = apply_calibration(expected_sigma_raw(int8, info.levels), info.calibration)
    truth = info.levels[level]
    within = lambda p: float((np.abs(p.argmax(1) - level) <= 1).mean())  # noqa: E731
    assert within(int8) >= within(fp32) - 0.03, (within(int8), within(fp32))
    assert np.abs(s8 - truth).mean() <= np.abs(s32 - truth).mean() + 0.03
    assert np.abs(s8 - s32).mean() <= 0.1  # per patch, the two graphs read alike
    assert (np.abs(int8.argmax(1) - fp32.argmax(1)) <= 1).mean() >= 0.95


def test_int8_estimator_runs_and_names_its_backend(info):
    est = DefocusEstimator(device="cpu", backend="onnxruntime-int8", weights=str(info.onnx_path.parent))
    assert est.backend == "onnxruntime-int8"
    img = dead_leaves(np.random.default_rng(1), 96).astype(np.float32)
    r = est.estimate(img)
    ref = DefocusEstimator(device="cpu", weights=str(info.onnx_path.parent)).estimate(img)
    assert np.abs(r.sigma - ref.sigma).mean() < 0.15


def test_int8_is_refused_on_cuda_and_without_the_graph(tmp_path, info):
    with pytest.raises(ValueError, match="CPU runtime"):
        DefocusEstimator(device="cuda", backend="onnxruntime-int8")
    import json
    import shutil
    for name in ("blur_classifier.json", info.onnx_path.name, info.safetensors_path.name):
        shutil.copy(info.onnx_path.parent / name, tmp_path / name)
    meta = json.loads((tmp_path / "blur_classifier.json").read_text())
    meta["files"].pop("onnx_int8")
    (tmp_path / "blur_classifier.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="has none"):
        PatchClassifier(load_model_info(tmp_path), backend="onnxruntime-int8")


def test_float_nodes_are_the_stem_and_the_head_of_either_network():
    pytest.importorskip("onnx")
    from fastdefocus.train.quantize import float_nodes

    default = float_nodes(MODEL_DIRS["default"] / "blur_classifier.onnx")
    assert default == ["/net/features/features.0/features.0.0/Conv", "/net/GlobalAveragePool", "/net/Flatten",
                       "/net/classifier/classifier.1/Gemm", "/Softmax"]  # as the shipped int8 graph was made
    fast = float_nodes(MODEL_DIRS["fast"] / "blur_classifier.onnx")
    assert fast == ["/net/features/features.0/features.0.0/Conv", "/net/GlobalAveragePool", "/net/Flatten",
                    "/net/classifier/Gemm", "/Softmax"]
    assert load_model_info(MODEL_DIRS["fast"]).metadata["metrics_heldout_int8"]["quantization"]["float_nodes"] == fast


def test_unit_pooling_is_removed_with_the_same_outputs(tmp_path):
    """drop_unit_pooling takes out a global average pooling over 1 x 1 (the default model's head)
    and keeps one over more (the fast model's 2 x 2); the graph's outputs stay the same exactly."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastdefocus.train.quantize import drop_unit_pooling

    default = tmp_path / "default.onnx"
    default.write_bytes((MODEL_DIRS["default"] / "blur_classifier.onnx").read_bytes())
    assert drop_unit_pooling(default) == ["/net/GlobalAveragePool"]
    assert "GlobalAveragePool" not in {n.op_type for n in onnx.load(str(default)).graph.node}
    x = np.random.default_rng(0).standard_normal((64, 1, 32, 32)).astype(np.float32)
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"patches": x})[0]
    np.testing.assert_array_equal(run(default), run(MODEL_DIRS["default"] / "blur_classifier.onnx"))
    assert drop_unit_pooling(default) == []  # nothing left to remove
    fast = tmp_path / "fast.onnx"
    fast.write_bytes((MODEL_DIRS["fast"] / "blur_classifier.onnx").read_bytes())
    assert drop_unit_pooling(fast) == []
    assert fast.read_bytes() == (MODEL_DIRS["fast"] / "blur_classifier.onnx").read_bytes()


def test_the_shipped_int8_graphs_pool_only_where_the_map_is_larger_than_one_pixel():
    onnx = pytest.importorskip("onnx")
    ops = lambda name: {n.op_type for n in onnx.load(str(load_model_info(MODEL_DIRS[name]).onnx_int8_path)).graph.node}
    assert "GlobalAveragePool" not in ops("default")
    assert "GlobalAveragePool" in ops("fast")
    assert load_model_info(MODEL_DIRS["default"]).metadata["metrics_heldout_int8"]["quantization"]["removed_nodes"] == [
        "/net/GlobalAveragePool"]
