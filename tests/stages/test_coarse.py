"""The coarse levels (fastdefocus.stages.coarse): blur past the classifier's top level."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus._params import COARSE_CONF, COARSE_GATE, COARSE_MIN_AREA
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.coarse import coarse_region, gate, merge, padded_size
from fastdefocus.stages.pipeline import estimate_numpy


def test_gate_doubles_per_level():
    assert gate(1) == COARSE_GATE
    assert gate(2) == (2 * COARSE_GATE[0], 2 * COARSE_GATE[1])
    assert gate(3) == (4 * COARSE_GATE[0], 4 * COARSE_GATE[1])


def test_region_is_none_below_the_gate_or_too_small():
    sigma = np.full((100, 120), 3.9, np.float32)
    assert coarse_region(sigma, 4.0, 2, 64) is None
    side = int(np.sqrt(COARSE_MIN_AREA)) - 1  # one pixel short of the area, each way
    sigma[10:10 + side, 10:10 + side] = 6.0
    assert coarse_region(sigma, 4.0, 2, 64) is None


def test_region_is_the_widened_aligned_box():
    sigma = np.zeros((300, 400), np.float32)
    sigma[101:151, 203:263] = 6.0  # 50 x 60 px above the gate
    assert coarse_region(sigma, 4.0, 4, 16) == (84, 167, 184, 279)  # starts aligned down to 4
    assert coarse_region(sigma, 4.0, 2, 200) == (0, 300, 2, 400)  # clipped to the image
    assert padded_size(83, 4) == 84 and padded_size(84, 4) == 84


def _maps(shape, seed=0):
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.0, 7.0, shape).astype(np.float32)
    conf = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    coarse = rng.uniform(0.0, 14.0, shape).astype(np.float32)
    cconf = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    return sigma, conf, coarse, cconf


def test_merge_only_raises_where_saturated_and_confident():
    sigma, conf, coarse, cconf = _maps((64, 64))
    s, c = sigma.copy(), conf.copy()
    lo, hi = gate(1)
    merge(s, c, coarse, cconf, lo, hi)
    assert (s >= sigma).all() and (c >= conf).all()
    below = sigma <= lo
    np.testing.assert_array_equal(s[below], sigma[below])  # not saturated: untouched
    lower = coarse <= sigma
    np.testing.assert_array_equal(s[lower], sigma[lower])  # never lowered
    # float64 reference of the rule
    g = np.clip((sigma.astype(np.float64) - lo) / (hi - lo), 0, 1)
    k = np.minimum(cconf / COARSE_CONF, 1.0)
    want = sigma + g * k * np.maximum(coarse - sigma.astype(np.float64), 0)
    np.testing.assert_allclose(s, want, atol=1e-5)
    full = (sigma >= hi) & (cconf >= COARSE_CONF) & (coarse > sigma)
    assert full.any()
    np.testing.assert_allclose(s[full], coarse[full], atol=1e-5)  # fully saturated, confident: the coarse value


def test_merge_leaves_textureless_areas():
    """At coarse scales flat areas read as strong blur with no confidence: they do not count."""
    sigma = np.full((8, 8), 6.0, np.float32)
    conf = np.full((8, 8), 0.1, np.float32)
    s = sigma.copy()
    merge(s, conf.copy(), np.full((8, 8), 20.0, np.float32), np.zeros((8, 8), np.float32), *gate(1))
    np.testing.assert_array_equal(s, sigma)


class Counting:
    """A classifier that counts the patches it classifies."""

    def __init__(self, inner):
        self.inner, self.patches = inner, 0
        self.name = inner.name

    def probabilities(self, patches):
        self.patches += len(patches)
        return self.inner.probabilities(patches)


@pytest.fixture(scope="module")
def texture():
    return dead_leaves(np.random.default_rng(7), 256).astype(np.float32)


@pytest.fixture(scope="module")
def shipped():
    return DefocusEstimator(device="cpu")


def counting_estimator(shipped, **options):
    counter = Counting(shipped.classifier)
    return DefocusEstimator(device="cpu", _classifier=counter, **options), counter


def test_large_blur_reads_past_the_top_level(shipped, texture):
    blurred = gaussian_blur(texture, 12.0)
    off = DefocusEstimator(device="cpu", coarse_levels=0, _classifier=shipped.classifier).estimate(blurred)
    assert np.median(off.sigma) < 7.0  # the classifier's levels stop at 6 px
    est, counter = counting_estimator(shipped)
    result = est.estimate(blurred)
    assert np.median(result.sigma) > 9.0, np.median(result.sigma)
    assert result.sigma.max() <= result.sigma_max == pytest.approx(4 * est.info.sigma_max)
    assert counter.patches > 29 * 29  # more than the fine level's (256 - 32) / 8 + 1 = 29 squared
    assert result.timings["coarse"] > 0


def test_a_sharp_textured_image_runs_no_coarse_level(shipped, texture):
    est, counter = counting_estimator(shipped)
    result = est.estimate(texture)
    ny, nx = (256 - 32) // 8 + 1, (256 - 32) // 8 + 1
    assert counter.patches == ny * nx  # the fine level's patches only
    np.testing.assert_array_equal(
        result.sigma, DefocusEstimator(device="cpu", coarse_levels=0, _classifier=shipped.classifier)
        .estimate(texture).sigma)


def test_native_pipeline_matches_the_numpy_reference_with_coarse_levels(shipped, texture):
    half = texture.copy()
    half[:, 128:] = gaussian_blur(texture, 10.0)[:, 128:]
    est = DefocusEstimator(device="cpu", _classifier=shipped.classifier)
    result = est.estimate(half)
    sigma, confidence, timings = estimate_numpy(est, half)
    assert np.median(sigma[:, 160:]) > 7.5  # the blurred half reads past 6 px
    assert np.median(sigma[:, :96]) < 1.5  # the sharp half stays sharp
    np.testing.assert_allclose(result.sigma, sigma, atol=1e-3)
    np.testing.assert_allclose(result.confidence, confidence, atol=1e-4)
    assert "coarse" in timings


@pytest.mark.parametrize("levels", [-1, 5, 1.0, True])
def test_coarse_levels_option_is_checked(levels):
    with pytest.raises((ValueError, TypeError), match="coarse_levels"):
        DefocusEstimator(device="cpu", coarse_levels=levels)
