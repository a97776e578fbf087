"""The flat fill: patches too flat to carry blur evidence take their value from the textured
patches around them (fastdefocus.stages.fill; cpp/fill.cpp and kernels/fill.py are its twins)."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus._params import FILL_PRIOR
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.fill import fill_flat, fill_radius, neighbourhood_mean


def neighbourhood_mean_direct(x, r):
    """Three box means by explicit window sums (zeros outside), float64."""
    out = np.asarray(x, np.float64)
    for _ in range(3):
        for axis in (0, 1):
            n = out.shape[axis]
            res = np.zeros_like(out)
            for i in range(n):
                lo, hi = max(i - r, 0), min(i + r + 1, n)
                sl = [slice(None), slice(None)]
                sl[axis] = slice(lo, hi)
                idx = [slice(None), slice(None)]
                idx[axis] = i
                res[tuple(idx)] = out[tuple(sl)].sum(axis=axis) / (2 * r + 1)
            out = res
    return out


@pytest.mark.parametrize("shape,r", [((1, 1), 1), ((5, 3), 4), ((12, 17), 2), ((9, 30), 8)])
def test_neighbourhood_mean_is_three_zero_padded_box_means(shape, r):
    x = np.random.default_rng(0).random(shape)
    np.testing.assert_allclose(neighbourhood_mean(x, r), neighbourhood_mean_direct(x, r), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("stride,r", [(1, 64), (2, 32), (4, 16), (8, 8), (16, 4), (32, 2)])
def test_radius_gives_the_neighbourhood_sigma(stride, r):
    assert fill_radius(stride) == r
    assert fill_radius(stride, sigma=1.0) == 1  # at least one patch


def test_flat_patch_takes_the_confident_mean_of_its_neighbours():
    values = np.full((9, 9), 5.0, np.float32)
    weights = np.zeros((9, 9))
    values[:, :3], weights[:, :3] = 1.0, 1.0  # left: confident 1 px
    values[:, 6:], weights[:, 6:] = 3.0, 0.25  # right: less confident 3 px
    out = fill_flat(values, weights, stride=32)  # a 2-patch box radius: narrower than the grid
    np.testing.assert_array_equal(out[weights > 0], values[weights > 0])  # evidence unchanged
    middle = out[4, 4]
    assert 1.0 < middle < 3.0 and middle < 2.0  # nearer to the more confident side
    assert out[4, 3] < out[4, 5]  # each flat patch leans to its nearer side


def test_flat_area_far_from_texture_keeps_its_own_value():
    values = np.full((40, 200), 5.0, np.float32)
    weights = np.zeros((40, 200))
    values[:, :3], weights[:, :3] = 0.0, 1.0  # textured, sharp columns at the left
    out = fill_flat(values, weights, stride=8)  # r = 8: three passes reach 24 patches on
    assert out[20, 4] < 0.5
    np.testing.assert_allclose(out[:, 27:], 5.0)
    # where a little evidence reaches, the prior weighs FILL_PRIOR against it
    den = neighbourhood_mean(weights, 8)[20, 22]
    assert 0 < den < 0.1
    assert out[20, 22] == pytest.approx(5.0 * FILL_PRIOR / (den + FILL_PRIOR), rel=1e-5)


def test_no_flat_patch_no_change():
    rng = np.random.default_rng(1)
    values = rng.random((6, 7)).astype(np.float32)
    weights = rng.random((6, 7)) + 0.01
    np.testing.assert_array_equal(fill_flat(values, weights, 8), values)


def test_native_fill_matches_the_reference():
    from fastdefocus import _native
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (3, 5), (40, 60), (7, 200)]:
        for stride in (1, 8, 16, 32):
            assert _native.stage_fill_radius(stride) == fill_radius(stride)
            values = (rng.random(shape) * 6).astype(np.float32)
            weights = rng.random(shape) * (rng.random(shape) > 0.4)
            for w in (weights, np.zeros(shape), weights + 0.1):
                np.testing.assert_allclose(_native.stage_fill_flat(values, w, stride), fill_flat(values, w, stride),
                                           rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="shape of values"):
        _native.stage_fill_flat(np.zeros((3, 3), np.float32), np.zeros((3, 4)), 8)
    with pytest.raises(ValueError, match="finite and >= 0"):
        _native.stage_fill_flat(np.zeros((3, 3), np.float32), np.full((3, 3), -1.0), 8)


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


def test_numpy_pipeline_fills_like_the_native_one(estimator):
    from fastdefocus.stages.pipeline import estimate_numpy
    image, inside = square_scene(3, 96)
    sigma, _, _ = estimate_numpy(estimator, image)
    native = estimator.estimate(image).sigma
    assert np.median(sigma[inside]) < 0.5
    np.testing.assert_allclose(sigma, native, atol=1e-3)
