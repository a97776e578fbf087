"""Micro-benchmarks of the kernels and stages (pytest-benchmark).

    pytest benchmarks --benchmark-only [--benchmark-columns=min,median,ops]

Not collected by the plain test run (pyproject's testpaths is ["tests"]). Inputs are
640x480 (the refine stage's working grid at stride 8 is a quarter of that per side), so
the numbers show where a VGA frame's time goes; compare them within one run.
"""
import numpy as np
import pytest

pytest.importorskip("pytest_benchmark", reason="pip install pytest-benchmark (the bench extra)")

import fastdefocus  # noqa: E402
from fastdefocus.stages import filters  # noqa: E402
from fastdefocus.testing.reference import guided_filter_ref  # noqa: E402
from fastdefocus.blur import gaussian_blur  # noqa: E402
from fastdefocus.stages.ingest import to_luminance  # noqa: E402
from fastdefocus.stages.refine import refine  # noqa: E402
from fastdefocus.stages.splat import splat  # noqa: E402

H, W = 480, 640


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    lum = 0.5 + 0.25 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + 0.15 * rng.random((H, W), dtype=np.float32)
    rgb = np.clip(np.stack([lum, lum * 0.9, lum * 1.1], axis=2) * 255, 0, 255).astype(np.uint8)
    return rgb, to_luminance(rgb)


@pytest.fixture(scope="module")
def estimator():
    return fastdefocus.DefocusEstimator(stride=8)


def test_ingest_luminance(benchmark, frame):
    benchmark(to_luminance, frame[0])


@pytest.mark.parametrize("radius", [4, 16])
def test_box_filter(benchmark, frame, radius):
    benchmark(filters.box_filter, frame[1], radius)


@pytest.mark.parametrize("radius", [4, 16])
def test_guided_filter_native(benchmark, frame, radius):
    lum = frame[1]
    benchmark(filters.guided_filter, lum, gaussian_blur(lum, 2.0), radius, 1e-3)


def test_guided_filter_reference(benchmark, frame):
    lum = frame[1]
    benchmark.pedantic(guided_filter_ref, args=(lum, gaussian_blur(lum, 2.0), 16, 1e-3), rounds=3, iterations=1)


def test_guided_filter_opencv_ximgproc(benchmark, frame):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("cv2.ximgproc needs opencv-contrib-python-headless (in its own environment)")
    lum = frame[1]
    benchmark(cv2.ximgproc.guidedFilter, lum, gaussian_blur(lum, 2.0), 16, 1e-3)


def test_weighted_iterative_guided_filter(benchmark, frame):
    lum = frame[1][::4, ::4].copy()  # the refine stage's working grid at stride 8
    weights = np.random.default_rng(1).random(lum.shape, dtype=np.float32)
    benchmark(filters.iterative_guided_filter, lum, gaussian_blur(lum, 2.0), 4, 1e-3, weights=weights, iterations=3)


@pytest.mark.parametrize("stride", [8, 16])
def test_extract_patches(benchmark, frame, stride):
    benchmark(filters.extract_patches, frame[1], size=32, stride=stride, normalize=True, std_floor=0.02)


def test_gaussian_blur(benchmark, frame):
    benchmark(gaussian_blur, frame[1], 2.5)


def test_splat(benchmark):
    rng = np.random.default_rng(2)
    values, conf = rng.random((57, 77), dtype=np.float32) * 6, rng.random((57, 77), dtype=np.float32)
    benchmark(splat, values, conf, 32, 8)


def test_refine_stage(benchmark, frame):
    rng = np.random.default_rng(3)
    cells = rng.random((H // 8, W // 8), dtype=np.float32) * 6
    conf = rng.random((H // 8, W // 8), dtype=np.float32)
    benchmark(refine, cells, conf, frame[1], 8, 16.0, 1e-3, 3)


def test_classify_batch_1024(benchmark, estimator):
    patches = np.random.default_rng(4).standard_normal((1024, 32, 32)).astype(np.float32)
    benchmark.pedantic(estimator.classifier.probabilities, args=(patches,), rounds=3, iterations=1,
                       warmup_rounds=1)


def test_estimate_end_to_end(benchmark, estimator, frame):
    benchmark.pedantic(estimator.estimate, args=(frame[0],), rounds=3, iterations=1, warmup_rounds=1)
