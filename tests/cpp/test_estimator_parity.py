"""The C++ estimator (cpp/estimator.cpp through fastdefocus._native) against the Python CPU
estimator on generated scenes: fed the exact probabilities Python computed, the maps agree to
0.01 px (in practice to float rounding); with OpenCV's DNN as the classifier, 99.9 % of the
pixels agree to 0.01 px and the mean difference is under 0.001 px."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus.scenes import demo_scene

try:
    from fastdefocus._native import has_opencv_dnn as HAS_OPENCV_DNN
except ImportError:  # no native module, or one without the C++ estimator
    HAS_OPENCV_DNN = False

#: (height, width, seed): even and odd sizes, one smaller than a patch in one direction.
SCENES = [(160, 224, 1), (151, 203, 2), (29, 150, 3)]


@pytest.fixture(scope="module", params=SCENES, ids=lambda s: f"{s[0]}x{s[1]}")
def scene(request):
    h, w, seed = request.param
    image, _, _ = demo_scene((max(h, 32), max(w, 32)), seed=seed)
    return np.ascontiguousarray(image[:h, :w])


def diff_stats(a, b) -> dict:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"max": float(d.max()), "p99.9": float(np.percentile(d, 99.9)), "mean": float(d.mean())}


@pytest.mark.parametrize("stride", [8, 16])
@pytest.mark.parametrize("snap", [10, 0])
@pytest.mark.parametrize("sigma0", [0.0, 0.5])
def test_cpp_pipeline_matches_python_given_its_probabilities(native, weights_dir, python_estimate, scene, stride,
                                                             snap, sigma0):
    # the given probabilities are the fine level's, all of them (no gating): coarse levels would
    # classify more patches
    result, probs = python_estimate(scene, stride=stride, snap=snap, sigma0=sigma0, coarse_levels=0, flat_gate=0.0)
    est = native.Estimator(weights_dir, stride=stride, snap=snap, sigma0=sigma0, coarse_levels=0, flat_gate=0.0)
    assert probs.shape[0] == int(np.prod(est.patch_grid(*scene.shape[:2])))
    sigma, confidence, timings = est.estimate_from_probabilities(scene, probs)
    assert sigma.shape == confidence.shape == scene.shape[:2]
    assert sigma.dtype == confidence.dtype == np.float32
    stats = diff_stats(sigma, result.sigma)
    assert stats["max"] <= 0.01, stats
    assert diff_stats(confidence, result.confidence)["max"] <= 1e-4
    assert 0.0 <= sigma.min() and sigma.max() <= est.sigma_max == result.sigma_max
    assert set(timings) == {"ingest", "patches", "classify", "splat", "refine", "snap", "coarse", "total",
                            "patches_total", "patches_classified", "coarse_levels_run", "patches_reused"}
    assert timings["classify"] == 0.0
    assert timings["patches_classified"] == 0 and timings["patches_total"] == probs.shape[0]


@pytest.mark.parametrize("layout", ["bgr", "gray-u8", "rgba-u16", "rgb-float32", "strided"])
def test_cpp_pipeline_matches_python_on_other_layouts(native, weights_dir, python_estimate, layout):
    image, _, _ = demo_scene((96, 128), seed=4)
    if layout == "bgr":
        py_image, cpp_image, bgr = image, np.ascontiguousarray(image[..., ::-1]), True
    elif layout == "gray-u8":
        py_image = cpp_image = np.ascontiguousarray(image[..., 1]); bgr = False
    elif layout == "rgba-u16":
        rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2).astype(np.uint16) * 257
        py_image = cpp_image = rgba; bgr = False
    elif layout == "rgb-float32":
        py_image = cpp_image = image.astype(np.float32) / 255.0; bgr = False
    else:  # a strided view: the binding makes it contiguous
        big = np.zeros((96, 256, 3), np.uint8)
        big[:, ::2] = image
        py_image = cpp_image = big[:, ::2]; bgr = False
    result, probs = python_estimate(py_image, coarse_levels=0, flat_gate=0.0)
    sigma, confidence, _ = native.Estimator(weights_dir, coarse_levels=0, flat_gate=0.0).estimate_from_probabilities(
        cpp_image, probs, bgr=bgr)
    assert diff_stats(sigma, result.sigma)["max"] <= 0.01


def test_cpp_with_a_python_classifier_matches_python(native, weights_dir, python_estimate, scene):
    """A user-supplied classifier (here the Python estimator's ONNX Runtime session) plugs into
    the C++ pipeline; it gets exactly the patches Python classifies."""
    result, _ = python_estimate(scene, coarse_levels=0)
    import fastdefocus

    runtime = fastdefocus.DefocusEstimator(device="cpu").classifier
    seen = []

    def classify(patches):
        assert patches.dtype == np.float32 and patches.ndim == 3
        seen.append(len(patches))
        return runtime.probabilities(patches)

    est = native.Estimator(weights_dir, classifier=classify, batch_size=100, coarse_levels=0)
    sigma, _, timings = est.estimate(scene)
    assert est.classifier_name == "python"
    assert sum(seen) == int(np.prod(est.patch_grid(*scene.shape[:2])))
    assert max(seen) <= 100
    assert diff_stats(sigma, result.sigma)["max"] <= 0.01


def test_cpp_coarse_levels_match_python(native, weights_dir, python_estimate):
    """Blur past the classifier's top level: the C++ coarse levels (classifying the shrunk image
    through the classifier given) give the NumPy reference's map; a sharp image runs none."""
    import fastdefocus
    from fastdefocus.blur import gaussian_blur
    from fastdefocus.scenes import dead_leaves

    sharp = dead_leaves(np.random.default_rng(11), 224)[:200].astype(np.float32)
    image = sharp.copy()
    image[:, 100:] = gaussian_blur(sharp, 11.0)[:, 100:]
    runtime = fastdefocus.DefocusEstimator(device="cpu").classifier
    seen = []

    def classify(patches):
        seen.append(len(patches))
        return runtime.probabilities(patches)

    est = native.Estimator(weights_dir, classifier=classify)
    assert est.sigma_max == pytest.approx(4 * native.Estimator(weights_dir, coarse_levels=0).sigma_max)
    sigma, confidence, timings = est.estimate(image)
    result, _ = python_estimate(image)
    assert np.median(result.sigma[:, 140:]) > 7.5
    assert sum(seen) > int(np.prod(est.patch_grid(*image.shape)))  # the coarse levels classified more
    assert diff_stats(sigma, result.sigma)["max"] <= 0.01
    assert diff_stats(confidence, result.confidence)["max"] <= 1e-4
    assert timings["coarse"] > 0
    seen.clear()
    est.estimate(sharp)
    assert sum(seen) == int(np.prod(est.patch_grid(*sharp.shape)))
    from fastdefocus.stages.filters import extract_patches

    probs = runtime.probabilities(extract_patches(image, 32, 8, normalize=True)[0])
    with pytest.raises(ValueError, match="coarse_levels=0"):  # no classifier for the coarse levels
        native.Estimator(weights_dir).estimate_from_probabilities(image, probs)
    with pytest.raises(ValueError, match="coarse_levels"):
        native.Estimator(weights_dir, coarse_levels=5)


def test_classifier_errors_are_reported(native, weights_dir, scene):
    with pytest.raises(ValueError, match="no classifier"):
        native.Estimator(weights_dir).estimate(scene)
    with pytest.raises(ValueError, match="probabilities of shape"):
        native.Estimator(weights_dir, classifier=lambda p: np.zeros((1, 2), np.float32)).estimate(scene)
    with pytest.raises(ZeroDivisionError):
        native.Estimator(weights_dir, classifier=lambda p: 1 / 0).estimate(scene)
    with pytest.raises(ValueError, match=r"probabilities must be \d+ x 20"):
        native.Estimator(weights_dir).estimate_from_probabilities(scene, np.zeros((3, 20), np.float32))


@pytest.mark.skipif(not HAS_OPENCV_DNN, reason="fastdefocus._native built without OpenCV "
                                                "(-C cmake.define.FASTDEFOCUS_OPENCV=ON)")
@pytest.mark.parametrize("stride", [8, 16])
def test_opencv_dnn_classifier_matches_onnxruntime(native, weights_dir, python_estimate, stride):
    image, _, _ = demo_scene((192, 256), seed=5)
    result, _ = python_estimate(image, stride=stride)
    est = native.Estimator(weights_dir, stride=stride, classifier="opencv")
    assert est.classifier_name == "opencv-dnn"
    sigma, _, _ = est.estimate(image)
    stats = diff_stats(sigma, result.sigma)
    assert stats["p99.9"] <= 0.01 and stats["mean"] <= 0.001, stats


@pytest.mark.skipif(not HAS_OPENCV_DNN, reason="fastdefocus._native built without OpenCV "
                                                "(-C cmake.define.FASTDEFOCUS_OPENCV=ON)")
def test_opencv_dnn_runs_the_fast_model_as_onnxruntime_does(native):
    """The fast model (a StridedCNN) through OpenCV DNN in the C++ estimator: the maps of the
    Python estimator with ONNX Runtime, as for the default model."""
    from fastdefocus import DefocusEstimator
    from fastdefocus.stages.classify import MODEL_DIRS

    image, _, _ = demo_scene((192, 256), seed=6)
    result = DefocusEstimator(device="cpu", model="fast", stride=8).estimate(image)
    est = native.Estimator(str(MODEL_DIRS["fast"]), stride=8, classifier="opencv")
    assert est.classifier_name == "opencv-dnn"
    sigma, _, _ = est.estimate(image)
    stats = diff_stats(sigma, result.sigma)
    assert stats["p99.9"] <= 0.01 and stats["mean"] <= 0.001, stats
