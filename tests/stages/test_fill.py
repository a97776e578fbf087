"""The flat fill: patches too flat to carry blur evidence take their value from the textured
patches around them (fastdefocus.stages.fill; cpp/fill.cpp and kernels/fill.py are its twins)."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus._params import FILL_PRIOR
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.fill import edge_aware_mean, fill_flat, pass_sigmas, patch_means

SIGMA = 64.0  # EstimatorConfig.fill_sigma's default


def test_patch_means_are_the_windows_means():
    img = np.random.default_rng(0).random((72, 104)).astype(np.float32)
    means = patch_means(img, (6, 10), 32, 8)
    for i, j in [(0, 0), (5, 9), (2, 7)]:
        assert means[i, j] == pytest.approx(img[8 * i:8 * i + 32, 8 * j:8 * j + 32].astype(np.float64).mean(), abs=1e-12)


def test_pass_sigmas_add_up_to_the_fill_sigma():
    for stride in (4, 8, 16):
        sig = pass_sigmas(stride, sigma=64.0, iterations=3)
        assert sig[0] > sig[1] > sig[2]
        assert np.sqrt(np.sum(np.square(sig))) == pytest.approx(64.0 / stride)


def test_constant_values_stay_constant():
    rng = np.random.default_rng(1)
    values = np.full((12, 17), 2.5, np.float32)
    weights = rng.random((12, 17)) * (rng.random((12, 17)) > 0.5)
    out = fill_flat(values, weights, rng.random((12, 17)), 8, SIGMA)
    np.testing.assert_allclose(out, 2.5, rtol=1e-6)


def test_flat_patch_takes_the_confident_mean_of_its_neighbours():
    values = np.full((9, 9), 5.0, np.float32)
    weights = np.zeros((9, 9))
    guide = np.full((9, 9), 0.5)
    values[:, :3], weights[:, :3] = 1.0, 1.0  # left: confident 1 px
    values[:, 6:], weights[:, 6:] = 3.0, 1.0  # right: 3 px
    out = fill_flat(values, weights, guide, 32, SIGMA)  # a 2-patch sigma: narrower than the grid
    np.testing.assert_array_equal(out[weights > 0], values[weights > 0])  # evidence unchanged
    assert 1.0 < out[4, 3] < out[4, 4] < out[4, 5] < 3.0  # each flat patch leans to its nearer side
    assert out[4, 4] == pytest.approx(2.0, abs=0.01)  # the middle: both alike (the prior, 5 px, weighs 1e-3)


def test_evidence_does_not_cross_a_strong_edge():
    # left half (guide 0.2): evidence of 1 px at its far edge; right half (guide 0.8): evidence
    # of 3 px at its far edge; flat patches in between take their own side's value
    values = np.full((10, 20), 5.0, np.float32)
    weights = np.zeros((10, 20))
    guide = np.where(np.arange(20) < 10, 0.2, 0.8) * np.ones((10, 1))
    values[:, 0], weights[:, 0] = 1.0, 1.0
    values[:, 19], weights[:, 19] = 3.0, 1.0
    out = fill_flat(values, weights, guide, 8, SIGMA)
    assert out[5, 9] < 1.2 and out[5, 10] > 2.8
    blind = fill_flat(values, weights, np.full((10, 20), 0.5), 8, SIGMA)  # without the edge
    assert 1.3 < blind[5, 9] < blind[5, 10] < 2.7


def test_flat_area_far_from_texture_keeps_its_own_value():
    values = np.full((40, 200), 5.0, np.float32)
    weights = np.zeros((40, 200))
    values[:, :3], weights[:, :3] = 0.0, 1.0  # textured, sharp columns at the left
    out = fill_flat(values, weights, np.full((40, 200), 0.5), 8, SIGMA)  # sigma: 8 patches
    assert out[20, 4] < 0.5
    np.testing.assert_allclose(out[:, 150:], 5.0, rtol=1e-4)
    # where a little evidence reaches, the prior weighs FILL_PRIOR against it
    num, den = edge_aware_mean(weights * values, weights, np.full((40, 200), 0.5), 8, SIGMA)
    assert 0 < den[20, 40] < 0.1
    assert out[20, 40] == pytest.approx(5.0 * FILL_PRIOR / (den[20, 40] + FILL_PRIOR), rel=1e-5)


def test_no_flat_patch_no_change():
    rng = np.random.default_rng(1)
    values = rng.random((6, 7)).astype(np.float32)
    weights = rng.random((6, 7)) + 0.01
    np.testing.assert_array_equal(fill_flat(values, weights, rng.random((6, 7)), 8, SIGMA), values)


def test_native_fill_matches_the_reference():
    from fastdefocus import _native
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (3, 5), (40, 60), (7, 200), (1, 30), (30, 1)]:
        for stride in (1, 8, 16, 32):
            values = (rng.random(shape) * 6).astype(np.float32)
            guide = rng.random(shape)
            weights = rng.random(shape) * (rng.random(shape) > 0.4)
            for w in (weights, np.zeros(shape), weights + 0.1):
                np.testing.assert_allclose(_native.stage_fill_flat(values, w, guide, stride, SIGMA),
                                           fill_flat(values, w, guide, stride, SIGMA), rtol=1e-6, atol=1e-6)
    img = rng.random((72, 104)).astype(np.float32)
    np.testing.assert_allclose(_native.stage_patch_statistics(img, 6, 10, 32, 8, 0.02)["mean"],
                               patch_means(img, (6, 10), 32, 8), rtol=1e-12)
    with pytest.raises(ValueError, match="weights must have the shape"):
        _native.stage_fill_flat(np.zeros((3, 3), np.float32), np.zeros((3, 4)), np.zeros((3, 3)), 8)
    with pytest.raises(ValueError, match="finite and >= 0"):
        _native.stage_fill_flat(np.zeros((3, 3), np.float32), np.full((3, 3), -1.0), np.zeros((3, 3)), 8)
    with pytest.raises(ValueError, match="padded image must be"):
        _native.stage_patch_statistics(img, 7, 10, 32, 8, 0.02)


def square_scene(seed: int, size: int, blur: float = 0.0):
    """A sharp dead-leaves frame with a flat square of ``size`` px in the middle, blurred as a
    whole by ``blur`` px; the square's inside (4 px in from its edges)."""
    frame = dead_leaves(np.random.default_rng(seed), 320, supersample=2).astype(np.float32)
    y0 = (320 - size) // 2
    frame[y0:y0 + size, y0:y0 + size] = 0.5
    if blur:
        frame = gaussian_blur(frame, blur)
    return frame, np.s_[y0 + 4:y0 + size - 4, y0 + 4:y0 + size - 4]


@pytest.fixture(scope="module")
def estimator():
    return DefocusEstimator(device="cpu")


@pytest.mark.parametrize("size", [48, 96, 128])
def test_flat_in_focus_square_in_a_sharp_frame_reads_sharp(estimator, size):
    image, inside = square_scene(size, size)
    sigma = estimator.estimate(image).sigma[inside]
    assert np.median(sigma) < 0.5  # read 2.7-4.5 px before the fill
    assert np.percentile(sigma, 95) < 0.8


@pytest.mark.parametrize("size", [64, 128])
def test_flat_square_in_a_blurred_frame_reads_blurred(estimator, size):
    image, inside = square_scene(size, size, blur=3.0)  # square and frame blurred alike
    assert np.median(estimator.estimate(image).sigma[inside]) > 2.0


@pytest.mark.parametrize("seed", [0, 1])
def test_flat_in_focus_disc_before_a_blurred_background_reads_sharp(estimator, seed):
    # the generated DBD set's hard case: a textureless object with a sharp outline in front of
    # a blurred textured background (most textured patches around it are the background's)
    image = gaussian_blur(dead_leaves(np.random.default_rng(seed), 320, supersample=2).astype(np.float32), 3.0)
    yy, xx = np.mgrid[:320, :320]
    r2 = (yy - 160) ** 2 + (xx - 160) ** 2
    image[r2 < 70 ** 2] = 0.8
    sigma = estimator.estimate(image).sigma
    assert np.median(sigma[r2 < 60 ** 2]) < 0.6
    assert np.median(sigma[r2 > 90 ** 2]) > 2.0  # the background stays blurred


def test_fill_sigma_zero_turns_the_fill_off():
    image, inside = square_scene(1, 96)
    est = DefocusEstimator(device="cpu", fill_sigma=0)
    assert np.median(est.estimate(image).sigma[inside]) > 2.0  # the flat patch's reading
    values = np.full((4, 4), 5.0, np.float32)
    np.testing.assert_array_equal(fill_flat(values, np.zeros((4, 4)), np.zeros((4, 4)), 8, 0.0), values)
    with pytest.raises(ValueError, match="fill_sigma"):
        DefocusEstimator(device="cpu", fill_sigma=-1)


@pytest.mark.parametrize("bad", [0.5, 2e4, float("nan"), float("inf")])
def test_fill_sigma_out_of_range_is_refused_in_python_and_native(bad):
    from fastdefocus import _native
    with pytest.raises(ValueError, match="fill_sigma"):
        DefocusEstimator(device="cpu", fill_sigma=bad)
    with pytest.raises(ValueError, match="fill_sigma"):
        _native.Estimator(fill_sigma=bad)


def test_native_options_carry_fill_sigma():
    assert DefocusEstimator(device="cpu", fill_sigma=32)._native.options["fill_sigma"] == 32.0
    assert DefocusEstimator(device="cpu")._native.options["fill_sigma"] == 64.0


def test_given_probabilities_must_be_finite():
    from fastdefocus import _native
    est = _native.Estimator(coarse_levels=0)
    image = np.zeros((32, 32), np.float32)
    ny, nx = est.patch_grid(32, 32)
    probs = np.full((ny * nx, 20), np.nan, np.float32)
    with pytest.raises(ValueError, match="probabilities must be finite"):
        est.estimate_from_probabilities(image, probs)


def test_numpy_pipeline_fills_like_the_native_one(estimator):
    from fastdefocus.stages.pipeline import estimate_numpy
    image, inside = square_scene(3, 96)
    sigma, _, _ = estimate_numpy(estimator, image)
    native = estimator.estimate(image).sigma
    assert np.median(sigma[inside]) < 0.5
    np.testing.assert_allclose(sigma, native, atol=1e-5)
