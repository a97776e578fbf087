"""The C++ estimator's stages one by one (fastdefocus._native.stage_*) against the Python stages.

Tolerances allow for float32 rounding only: the C++ stages follow NumPy's float32 order and
OpenCV's filter and resize arithmetic, so most agree bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus._params import SPLAT_LIFT
from fastdefocus.blur import gaussian_blur, gaussian_kernel1d
from fastdefocus.scenes import demo_scene
from fastdefocus.stages.classify import apply_calibration, confidence_from_probs, expected_sigma_raw, load_model_info
from fastdefocus.stages.filters import extract_patches
from fastdefocus.stages.ingest import to_luminance
from fastdefocus.stages.refine import pad_to, refine, resize
from fastdefocus.stages.snap import snap_boundaries, snap_evidence
from fastdefocus.stages.splat import energy_tables, patch_statistics, sharpness_maps, splat, tent_sum


def maxdiff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.fixture(scope="module")
def lum():
    image, _, _ = demo_scene((131, 197), seed=7)
    return to_luminance(image)


@pytest.fixture(scope="module")
def info():
    return load_model_info()


@pytest.mark.parametrize("make", [
    lambda rng: rng.integers(0, 256, (21, 33, 3), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (21, 33, 4), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (21, 33), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (21, 33, 2), dtype=np.uint8),
    lambda rng: rng.integers(0, 65536, (21, 33, 3), dtype=np.uint16),
    lambda rng: rng.uniform(0, 1, (21, 33, 3)).astype(np.float32),
    lambda rng: rng.uniform(0, 1, (21, 33)).astype(np.float64),
])
def test_luminance_is_bit_exact(native, rng, make):
    image = make(rng)
    np.testing.assert_array_equal(native.stage_luminance(image), to_luminance(image))
    if image.ndim == 3 and image.shape[2] >= 3:
        bgr = np.ascontiguousarray(image[..., [2, 1, 0] + list(range(3, image.shape[2]))])
        np.testing.assert_array_equal(native.stage_luminance(bgr, bgr=True), to_luminance(image))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 5), np.uint8), "at least 1 x 1"),
    (np.zeros((4, 5, 5), np.uint8), "1 to 4 channels"),
    (np.full((4, 5), np.nan, np.float32), "NaN or infinite"),
    (np.full((4, 5), 2.0, np.float32), r"expected \[0, 1\]"),
])
def test_luminance_refuses_bad_images(native, bad, match):
    with pytest.raises(ValueError, match=match):
        native.stage_luminance(bad)


@pytest.mark.parametrize("sigma", [0.0, 0.3, 0.5, 1.0, 2.3, 7.0])
def test_discrete_gaussian(native, lum, sigma):
    k = np.asarray(native.gaussian_kernel1d(sigma))
    np.testing.assert_allclose(k, gaussian_kernel1d(sigma), rtol=0, atol=1e-15)
    assert abs(float(k.sum()) - 1.0) < 1e-12 and np.array_equal(k, k[::-1])
    assert maxdiff(native.stage_gaussian_blur(lum, sigma), gaussian_blur(lum, sigma)) <= 1e-6


@pytest.mark.parametrize("shape", [(5, 4), (10, 8), (40, 32), (9, 13), (1, 7), (60, 3)])
def test_resize_linear_is_opencv(native, rng, shape):
    src = rng.random((5, 4), dtype=np.float32)
    assert maxdiff(native.stage_resize(src, *shape), resize(src, *shape)) <= 1e-6


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_resize_area_is_opencv(native, rng, factor):
    src = rng.random((48, 36), dtype=np.float32)
    got = native.stage_resize(src, 48 // factor, 36 // factor, area=True)
    assert maxdiff(got, resize(src, 48 // factor, 36 // factor, area=True)) <= 1e-6
    with pytest.raises(ValueError, match="integer shrink"):
        native.stage_resize(src, 47, 36, area=True)


@pytest.mark.parametrize("stride", [4, 8, 16, 32])
def test_patch_statistics_and_sharpness(native, lum, info, stride):
    p = info.patch_size
    _, grid = extract_patches(lum, size=p, stride=stride)
    ny, nx = grid
    k = p // stride
    padded = pad_to(lum, (ny + k - 1) * stride, (nx + k - 1) * stride)
    np.testing.assert_array_equal(native.stage_pad(lum, *padded.shape), padded)
    tables = energy_tables(padded)
    texture, agreement = patch_statistics(padded, grid, p, stride, info.flat_std, tables)
    patch_sharp, cell_sharp = sharpness_maps(padded, grid, p, stride, tables)
    got = native.stage_patch_statistics(padded, ny, nx, p, stride, info.flat_std)
    # the C++ window sums come from block sums, Python's from whole-image integral tables
    # (whose cancellation the flat cells' log ratios feel at about 1e-4)
    assert maxdiff(got["texture"], texture) <= 1e-9
    assert maxdiff(got["agreement"], agreement) <= 1e-6
    assert maxdiff(got["patch_sharpness"], patch_sharp) <= 1e-6
    assert maxdiff(got["cell_sharpness"], cell_sharp) <= 1e-3


@pytest.mark.parametrize("stride", [8, 16])
@pytest.mark.parametrize("lift,match", [(SPLAT_LIFT, True), (0.0, False), (SPLAT_LIFT, False)])
def test_splat_and_tent_sum(native, lum, info, rng, stride, lift, match):
    p = info.patch_size
    _, grid = extract_patches(lum, size=p, stride=stride)
    ny, nx = grid
    k = p // stride
    padded = pad_to(lum, (ny + k - 1) * stride, (nx + k - 1) * stride)
    values = rng.uniform(0, 5, grid).astype(np.float32)
    weights = rng.random(grid) * (rng.random(grid) > 0.2)
    sharp = sharpness_maps(padded, grid, p, stride) if match else None
    want = splat(values, weights, p, stride, lift=lift, sharpness=sharp)
    got = native.stage_splat(values, weights, p, stride, lift, *(sharp if match else (None, None)))
    assert maxdiff(got[0], want[0]) <= 1e-6 and maxdiff(got[1], want[1]) <= 1e-6
    np.testing.assert_allclose(native.stage_tent_sum(weights, p, stride), tent_sum(weights, p, stride), rtol=1e-12)


def test_classify_outputs(native, info, rng, weights_dir):
    probs = rng.dirichlet(np.full(len(info.levels), 0.3), size=500).astype(np.float32)
    probs[:5] = 0
    probs[:5, [0, 19, 3, 4, 10]] = 1  # the ends and exact knots
    raw, calibrated, confidence = native.stage_classify(probs, weights_dir)
    np.testing.assert_allclose(raw, expected_sigma_raw(probs, info.levels), rtol=0, atol=1e-12)
    want = apply_calibration(expected_sigma_raw(probs, info.levels), info.calibration)
    assert maxdiff(calibrated.astype(np.float32), want) <= 1e-6
    np.testing.assert_array_equal(confidence, confidence_from_probs(probs))


@pytest.mark.parametrize("stride", [2, 4, 8, 16])
@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_refine(native, lum, rng, stride, iterations):
    hc, wc = lum.shape[0] // stride + 1, lum.shape[1] // stride + 1
    guide = pad_to(lum, hc * stride, wc * stride)
    values = rng.uniform(0, 4, (hc, wc)).astype(np.float32)
    weights = rng.random((hc, wc)).astype(np.float32)
    want = refine(values, weights, guide, stride, 4.0, 1e-3, iterations)
    got = native.stage_refine(values, weights, guide, stride, 4.0, 1e-3, iterations)
    assert maxdiff(got, want) <= 1e-5


@pytest.mark.parametrize("radius", [0, 3, 10])
def test_snap(native, lum, radius):
    h, w = lum.shape
    sigma = np.where(np.arange(w)[None, :] < w // 2, 0.5, 3.0) * np.ones((h, 1))
    sigma = resize(resize(sigma.astype(np.float32), h // 8, w // 8, area=False), h, w)  # a ramp
    assert maxdiff(native.stage_snap_evidence(lum), snap_evidence(lum)) <= 1e-5
    want = snap_boundaries(sigma, lum, radius)
    got = native.stage_snap(sigma, lum, radius)
    d = np.abs(got.astype(np.float64) - want)
    assert np.mean(d > 1e-4) <= 1e-3 and d.mean() <= 1e-4  # a threshold may flip on a rounding


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (5, 40), (33, 17), (96, 130)])
@pytest.mark.parametrize("radius", [0, 1, 2, 3, 7, 8, 10, 16, 50])
def test_min_max_filter_is_erode_and_dilate(native, rng, shape, radius):
    """The snap's window extrema (rows by doubling, columns by van Herk) are OpenCV's erode and
    dilate over a (2r + 1)^2 square with the outside ignored, exactly, for windows of every
    length against the powers of two and larger than the image."""
    import cv2

    src = (rng.random(shape) * 4).astype(np.float32)
    src[rng.random(shape) < 0.05] = 7.0  # ties and a few far extremes
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    for threads in (1, 3):
        lo, hi = native.stage_min_max(src, radius, threads=threads)
        np.testing.assert_array_equal(lo, cv2.erode(src, kernel))
        np.testing.assert_array_equal(hi, cv2.dilate(src, kernel))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (3, 2)])
def test_snap_evidence_small_images(native, rng, shape):
    """The snap's 3x3 means at the reflect-101 borders of tiny images."""
    lum = rng.random(shape).astype(np.float32)
    assert maxdiff(native.stage_snap_evidence(lum), snap_evidence(lum)) <= 1e-5


def test_model_info(native, info, weights_dir):
    got = native.model_info(weights_dir)
    assert got["levels"] == list(info.levels)
    assert [list(k) for k in got["calibration"]] == info.calibration.tolist()
    assert got["patch_size"] == info.patch_size and got["std_floor"] == info.std_floor
    assert got["flat_std"] == info.flat_std and got["sigma_max"] == info.sigma_max
    with pytest.raises(RuntimeError, match="model metadata not found"):
        native.model_info(weights_dir + "/nowhere")


@pytest.mark.parametrize("option,value,match", [
    ("stride", 3, r"stride must divide the model's patch size 32 \(one of 1, 2, 4, 8, 16, 32\), got 3"),
    ("stride", 0, "stride must divide"),
    ("sigma0", -1.0, "sigma0 must be a finite number >= 0"),
    ("sigma0", float("nan"), "sigma0 must be a finite number"),
    ("radius", 0.5, "radius must be a finite number >= 1"),
    ("eps", 0.0, "eps must be a finite number > 0"),
    ("iterations", -1, "iterations must be >= 0"),
    ("snap", -2, "snap must be >= 0"),
    ("batch_size", 0, "batch_size must be >= 1"),
    ("threads", -1, "threads must be >= 0"),
    ("max_pixels", -5, "max_pixels must be -1"),
])
def test_bad_options_name_the_option(native, weights_dir, option, value, match):
    with pytest.raises(ValueError, match=match):
        native.Estimator(weights_dir, **{option: value})


def test_pixel_limit(native, weights_dir):
    est = native.Estimator(weights_dir, max_pixels=5000)
    with pytest.raises(ValueError, match="more than the limit"):
        est.estimate_from_probabilities(np.zeros((100, 100), np.uint8), np.zeros((1, 20), np.float32))
    # the default is Python's default_max_pixels
    from fastdefocus.estimator import default_max_pixels

    assert native.Estimator(weights_dir, stride=4).options["max_pixels"] == default_max_pixels(32, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coarse_stages_match_numpy(native, seed):
    from fastdefocus.stages.coarse import coarse_region, gate, merge

    rng = np.random.default_rng(seed)
    h, w = 90 + seed, 130 - seed
    sigma = rng.uniform(0.0, 7.0, (h, w)).astype(np.float32)
    sigma[: 20 * seed] = 0.0
    for level in (1, 2, 3):
        assert native.stage_coarse_gate(level) == pytest.approx(gate(level), abs=0)
        lo = gate(level)[0]
        for margin, area in [(0, 1), (32, 1024), (200, 10 ** 6)]:
            assert native.stage_coarse_region(sigma, lo, 2 ** level, margin, area) == \
                coarse_region(sigma, lo, 2 ** level, margin, area)
    conf, coarse, cconf = (rng.uniform(0, s, (h, w)).astype(np.float32) for s in (1.0, 14.0, 1.2))
    s, c = sigma.copy(), conf.copy()
    merge(s, c, coarse, np.clip(cconf, 0, 1), *gate(1))
    got_s, got_c = native.stage_merge_coarse(sigma, conf, coarse, cconf, *gate(1))
    np.testing.assert_allclose(got_s, s, atol=1e-6)
    np.testing.assert_allclose(got_c, c, atol=1e-6)
