"""Native filters (fastdefocus.stages.filters) against the float64 NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdefocus import _native
from fastdefocus.stages import filters as F
from fastdefocus.testing.reference import (
    box_filter_ref,
    extract_patches_ref,
    guided_coefficients_ref,
    guided_filter_ref,
    iterative_guided_filter_ref,
)

SMALL_SHAPES = [(1, 1), (1, 9), (1, 64), (9, 1), (64, 1), (2, 2), (3, 5), (7, 11), (33, 47)]
RADII = list(range(0, 9)) + [12, 16, 23, 32, 47, 64, 100]


def rand(rng, shape, lo=0.0, hi=1.0):
    return (lo + (hi - lo) * rng.random(shape)).astype(np.float32)


def assert_close(got, want, data_range, rel=1e-4, what=""):
    assert got.dtype == np.float32 and got.shape == want.shape
    err = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    tol = rel * max(float(data_range), 1e-12)
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


# ------------------------------------------------------------------------- box filter


@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_box_filter_matches_reference(rng, shape):
    src = rand(rng, shape, -2.0, 3.0)
    for r in RADII:
        out = F.box_filter(src, r)
        assert out.flags.c_contiguous
        assert_close(out, box_filter_ref(src, r), 5.0, what=f"box {shape} r={r}")


def test_box_filter_huge_radius(rng):
    src = rand(rng, (5, 8))
    for r in [9, 999, 1000, 1001]:  # many reflection periods, reference still affordable
        assert_close(F.box_filter(src, r), box_filter_ref(src, r), 1.0, what=f"r={r}")
    # for r -> inf every window mean tends to the mean over one reflection
    # period (end rows/columns once, inner ones twice)
    period_rows = (src[0].astype(np.float64) + src[-1] + 2 * src[1:-1].sum(0)) / (2 * 4)
    period_mean = (period_rows[0] + period_rows[-1] + 2 * period_rows[1:-1].sum()) / (2 * 7)
    np.testing.assert_allclose(F.box_filter(src, 2**40), period_mean, rtol=0, atol=1e-5)
    # ... so the guided filter becomes one global linear fit q = a I + b
    wy = np.r_[1.0, np.full(3, 2.0), 1.0]
    wx = np.r_[1.0, np.full(6, 2.0), 1.0]
    wgt = np.outer(wy, wx) / (wy.sum() * wx.sum())
    guide = rand(rng, (5, 8))
    mi, mp = (wgt * guide).sum(), (wgt * src).sum()
    a = ((wgt * guide * src).sum() - mi * mp) / ((wgt * guide * guide).sum() - mi * mi + 1e-2)
    np.testing.assert_allclose(F.guided_filter(guide, src, 2**40, 1e-2), a * guide + mp - a * mi,
                               rtol=0, atol=1e-5)


def test_box_filter_constant_and_dtypes(rng):
    for shape in [(1, 1), (4, 1), (17, 29)]:
        for r in [0, 1, 5, 40]:
            np.testing.assert_array_equal(F.box_filter(np.full(shape, 0.25), r), 0.25)
    src = rng.integers(0, 255, (20, 30)).astype(np.uint8)
    assert_close(F.box_filter(src, 3), box_filter_ref(src, 3), 255.0)
    # non-contiguous float64 input is converted, not modified
    base = rng.random((40, 60))
    view = base[::2, ::3]
    before = view.copy()
    assert_close(F.box_filter(view, 2), box_filter_ref(view, 2), 1.0)
    np.testing.assert_array_equal(view, before)
    assert_close(F.box_filter(view.tolist(), 2), box_filter_ref(view, 2), 1.0)


def test_box_filter_large_image(rng):
    src = rand(rng, (1080, 1920))
    for r in [4, 32]:
        assert_close(F.box_filter(src, r), box_filter_ref(src, r), 1.0, what=f"1080p r={r}")


# ---------------------------------------------------------------------- guided filter


@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_guided_filter_matches_reference(rng, shape):
    src = rand(rng, shape, -1.0, 2.0)
    guide = rand(rng, shape)
    weights = rand(rng, shape) * (rng.random(shape) > 0.3)
    for r in RADII:
        for eps in [1e-3, 0.1]:
            got = F.guided_filter(guide, src, r, eps)
            assert_close(got, guided_filter_ref(guide, src, r, eps), 3.0,
                         what=f"gf {shape} r={r} eps={eps}")
        got = F.guided_filter(guide, src, r, 1e-2, weights)
        assert_close(got, guided_filter_ref(guide, src, r, 1e-2, weights), 3.0,
                     what=f"weighted gf {shape} r={r}")


def test_guided_filter_offset_data_precision(rng):
    # large offsets make E[I^2] - E[I]^2 cancel badly in single precision
    shape = (61, 83)
    src = rand(rng, shape, 1000.0, 1010.0)
    guide = rand(rng, shape, 500.0, 550.0)
    weights = rand(rng, shape)
    for r in [1, 3, 8, 30]:
        eps = 1e-3 * 50.0 ** 2
        assert_close(F.guided_filter(guide, src, r, eps),
                     guided_filter_ref(guide, src, r, eps), 10.0, what=f"offset r={r}")
        assert_close(F.guided_filter(guide, src, r, eps, weights),
                     guided_filter_ref(guide, src, r, eps, weights), 10.0,
                     what=f"offset weighted r={r}")


def test_guided_filter_large_image(rng):
    h, w = 1080, 1920
    guide = rand(rng, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    src = (0.5 * guide + 0.3 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
           + 0.1 * rng.random((h, w))).astype(np.float32)
    data_range = float(src.max() - src.min())
    for r in [4, 32]:
        assert_close(F.guided_filter(guide, src, r, 1e-3),
                     guided_filter_ref(guide, src, r, 1e-3), data_range, what=f"1080p r={r}")
    weights = rand(rng, (h, w))
    assert_close(F.guided_filter(guide, src, 8, 1e-3, weights),
                 guided_filter_ref(guide, src, 8, 1e-3, weights), data_range,
                 what="1080p weighted r=8")


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threaded_chunks_match_reference(rng, threads):
    # explicit thread counts are honoured on small images, exercising the
    # chunk boundaries (halo rows, reflected windows) of the row split
    src = rand(rng, (150, 41))
    guide = rand(rng, (150, 41))
    weights = rand(rng, (150, 41))
    for r in [0, 1, 2, 5, 9, 20, 80, 200]:
        assert_close(_native.box_filter(src, r, threads), box_filter_ref(src, r), 1.0,
                     what=f"box threads={threads} r={r}")
        assert_close(_native.guided_filter(src, guide, None, r, 1e-3, 1, threads),
                     guided_filter_ref(guide, src, r, 1e-3), 1.0, what=f"gf threads={threads} r={r}")
        assert_close(_native.guided_filter(src, guide, weights, r, 1e-3, 2, threads),
                     iterative_guided_filter_ref(guide, src, r, 1e-3, weights, 2), 1.0,
                     what=f"wgf threads={threads} r={r}")
    tall = rand(rng, (700, 9))
    tall_guide = rand(rng, (700, 9))
    for r in [17, 40]:  # several chunks, each with a halo of 2r rows
        assert_close(_native.box_filter(tall, r, threads), box_filter_ref(tall, r), 1.0)
        assert_close(_native.guided_filter(tall, tall_guide, None, r, 1e-3, 1, threads),
                     guided_filter_ref(tall_guide, tall, r, 1e-3), 1.0)


def test_unit_weights_equal_unweighted(rng):
    src = rand(rng, (45, 70))
    guide = rand(rng, (45, 70))
    ones = np.ones_like(src)
    for r in [0, 1, 3, 10, 50]:
        a = F.guided_filter(guide, src, r, 1e-3)
        b = F.guided_filter(guide, src, r, 1e-3, ones)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        c = F.guided_filter(guide, src, r, 1e-3, np.full_like(src, 7.5))  # any constant
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-5)


def test_constant_input_stays_constant(rng):
    guide = rand(rng, (30, 40))
    weights = rand(rng, (30, 40))
    for value in [0.0, 0.7, -3.25, 1234.5]:
        src = np.full((30, 40), value, np.float32)
        for r in [0, 1, 4, 25]:
            np.testing.assert_allclose(F.guided_filter(guide, src, r, 1e-3), value,
                                       rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(F.guided_filter(guide, src, r, 1e-3, weights), value,
                                       rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(F.guided_filter(src, src, r, 1e-3), value,
                                       rtol=1e-6, atol=1e-6)


def test_guide_equal_to_src(rng):
    src = rand(rng, (50, 64))
    for r in [1, 4, 16]:
        for eps in [1e-4, 1e-2]:
            out = F.guided_filter(src, src, r, eps)
            assert_close(out, guided_filter_ref(src, src, r, eps), 1.0)
    # a tiny eps keeps (almost) everything: the guide explains src exactly
    np.testing.assert_allclose(F.guided_filter(src, src, 3, 1e-9), src, atol=1e-3)
    # radius 0: every window is one pixel, so the output is src
    np.testing.assert_allclose(F.guided_filter(rand(rng, src.shape), src, 0, 1e-3), src, atol=1e-6)


@pytest.mark.parametrize("r", [0, 1, 2])
def test_right_and_bottom_edges(rng, r):
    # OpenCV's guided filter once cut images at the right and was wrong at
    # small radii: check the last column and row closely.
    for shape in [(37, 53), (8, 1000), (1000, 8)]:
        src = rand(rng, shape)
        guide = rand(rng, shape)
        weights = rand(rng, shape)
        for got, want in [
            (F.box_filter(src, r), box_filter_ref(src, r)),
            (F.guided_filter(guide, src, r, 1e-3), guided_filter_ref(guide, src, r, 1e-3)),
            (F.guided_filter(guide, src, r, 1e-3, weights),
             guided_filter_ref(guide, src, r, 1e-3, weights)),
        ]:
            for sl in [np.s_[:, -1], np.s_[-1, :], np.s_[:, -2], np.s_[-2, :], np.s_[:, 0], np.s_[0, :]]:
                np.testing.assert_allclose(got[sl], want[sl], rtol=0, atol=2e-6)


def test_weighted_filter_spreads_confident_values():
    h, w, r = 40, 60, 6
    src = np.zeros((h, w), np.float32)
    src[:, :30] = 1.0  # confident value on the left
    weights = np.zeros((h, w), np.float32)
    weights[:, :30] = 1.0  # right half: no confidence, value 0 is unreliable
    guide = np.full((h, w), 0.5, np.float32)  # flat guide: nothing stops the spread
    plain = F.guided_filter(guide, src, r, 1e-3)
    weighted = F.guided_filter(guide, src, r, 1e-3, weights)
    # a flat guide gives a = 0 and b = the weighted window mean, which is ~1 as
    # soon as the window holds a confident pixel: pixel 30 + d (0 <= d <= 2r)
    # is covered by 2r - d such windows out of 2r + 1
    for d in range(2 * r + 1):
        np.testing.assert_allclose(weighted[:, 30 + d], (2 * r - d) / (2 * r + 1), atol=1e-4)
    assert np.all(weighted[:, 30:30 + r] > plain[:, 30:30 + r] + 0.2)
    # confident region untouched, far region stays 0 after one pass
    np.testing.assert_allclose(weighted[:, :30], 1.0, atol=1e-5)
    np.testing.assert_allclose(weighted[:, 30 + 2 * r:], 0.0, atol=1e-5)
    # more iterations spread further
    more = F.iterative_guided_filter(guide, src, r, 1e-3, weights, iterations=4)
    assert np.all(more[:, 31:] > weighted[:, 31:] + 0.01)
    assert_close(more, iterative_guided_filter_ref(guide, src, r, 1e-3, weights, 4), 1.0)


def test_iterative_guided_filter(rng):
    src = rand(rng, (33, 47))
    guide = rand(rng, (33, 47))
    weights = rand(rng, (33, 47))
    for it in [1, 2, 5]:
        for wt in [None, weights]:
            got = F.iterative_guided_filter(guide, src, 3, 1e-2, wt, iterations=it)
            assert_close(got, iterative_guided_filter_ref(guide, src, 3, 1e-2, wt, it), 1.0)
    np.testing.assert_array_equal(
        F.iterative_guided_filter(guide, src, 3, 1e-2), F.guided_filter(guide, src, 3, 1e-2))
    twice = F.guided_filter(guide, F.guided_filter(guide, src, 5, 1e-3, weights), 5, 1e-3, weights)
    np.testing.assert_allclose(
        F.iterative_guided_filter(guide, src, 5, 1e-3, weights, 2), twice, rtol=0, atol=1e-6)


# ----------------------------------------------------------------- guided coefficients


def check_coefficients(got, src, guide, r, eps, weights, data_range, what):
    """(A, B) against the reference (1e-4 of the data range) and A * guide + B
    against guided_filter (1e-5 of the data range)."""
    coef_a, coef_b = got
    want_a, want_b = guided_coefficients_ref(guide, src, r, eps, weights)
    assert coef_a.flags.c_contiguous and coef_b.flags.c_contiguous
    assert_close(coef_a, want_a, data_range, what=f"A {what}")
    assert_close(coef_b, want_b, data_range, what=f"B {what}")
    applied = coef_a * guide + coef_b
    assert_close(applied, F.guided_filter(guide, src, r, eps, weights).astype(np.float64),
                 data_range, rel=1e-5, what=f"A*I+B {what}")


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (1, 64), (9, 1), (2, 2), (7, 11), (33, 47)])
def test_guided_coefficients_matches_reference(rng, shape):
    src = rand(rng, shape, -1.0, 2.0)
    guide = rand(rng, shape)
    weights = rand(rng, shape) * (rng.random(shape) > 0.3)
    for r in [0, 1, 2, 3, 5, 8, 16, 23, 47, 100]:  # most beyond the small images
        for eps in [1e-3, 0.1]:
            got = F.guided_coefficients(guide, src, r, eps)
            check_coefficients(got, src, guide, r, eps, None, 3.0, f"{shape} r={r} eps={eps}")
        got = F.guided_coefficients(guide, src, r, 1e-2, weights)
        check_coefficients(got, src, guide, r, 1e-2, weights, 3.0, f"weighted {shape} r={r}")


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_guided_coefficients_threaded_chunks(rng, threads):
    for shape, radii in [((150, 41), [0, 1, 5, 20, 200]), ((700, 9), [17, 40])]:
        src = rand(rng, shape)
        guide = rand(rng, shape)
        weights = rand(rng, shape)
        for r in radii:
            for wt in [None, weights]:
                got = _native.guided_coefficients(src, guide, wt, r, 1e-3, threads)
                want_a, want_b = guided_coefficients_ref(guide, src, r, 1e-3, wt)
                assert_close(got[0], want_a, 1.0, what=f"A threads={threads} {shape} r={r}")
                assert_close(got[1], want_b, 1.0, what=f"B threads={threads} {shape} r={r}")


def test_guided_coefficients_properties(rng):
    shape = (61, 83)
    guide = rand(rng, shape)
    weights = rand(rng, shape)
    # larger image (several default threads) and offset data
    src = rand(rng, shape, 1000.0, 1010.0)
    off_guide = rand(rng, shape, 500.0, 550.0)
    for r in [1, 8, 30]:
        eps = 1e-3 * 50.0 ** 2
        for wt in [None, weights]:
            coef_a, coef_b = F.guided_coefficients(off_guide, src, r, eps, wt)
            want_a, want_b = guided_coefficients_ref(off_guide, src, r, eps, wt)
            assert_close(coef_a, want_a, 10.0 / 50.0, what=f"offset A r={r}")
            assert_close(coef_b, want_b, 10.0 * 550.0 / 50.0, what=f"offset B r={r}")
    # a constant source has A = 0, B = the constant; src == guide with a tiny
    # eps gives A ~ 1, B ~ 0
    for value in [0.0, -3.25]:
        coef_a, coef_b = F.guided_coefficients(guide, np.full(shape, value), 4, 1e-3, weights)
        np.testing.assert_allclose(coef_a, 0.0, atol=1e-6)
        np.testing.assert_allclose(coef_b, value, rtol=1e-6, atol=1e-6)
    coef_a, coef_b = F.guided_coefficients(guide, guide, 3, 1e-9)
    np.testing.assert_allclose(coef_a, 1.0, atol=1e-3)
    np.testing.assert_allclose(coef_b, 0.0, atol=1e-3)
    # unit weights equal unweighted
    for got, want in zip(F.guided_coefficients(guide, src, 5, 1e-3, np.ones(shape)),
                         F.guided_coefficients(guide, src, 5, 1e-3)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)
    # guided upsampling: when src is a linear function of the guide, the
    # low-resolution coefficients (here constant) upsampled and applied to
    # the full-resolution guide give the full-resolution src back
    full_guide = rand(rng, (64, 96))
    full_src = 2.0 * full_guide + 0.5
    coef_a, coef_b = F.guided_coefficients(full_guide[::2, ::2], full_src[::2, ::2], 3, 1e-7)
    np.testing.assert_allclose(coef_a, 2.0, atol=1e-4)
    np.testing.assert_allclose(coef_b, 0.5, atol=1e-4)
    up = np.kron(coef_a, np.ones((2, 2))) * full_guide + np.kron(coef_b, np.ones((2, 2)))
    np.testing.assert_allclose(up, full_src, atol=1e-4)


def test_errors_guided_coefficients():
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"guided_coefficients: guide must have the same shape as src "
                                         r"\(4, 5\), got shape \(5, 4\)"):
        F.guided_coefficients(img.T, img, 1, 1e-3)
    with pytest.raises(ValueError, match=r"guided_coefficients: eps must be a finite number > 0"):
        F.guided_coefficients(img, img, 1, 0.0)
    with pytest.raises(ValueError, match=r"guided_coefficients: weights must be >= 0 everywhere"):
        F.guided_coefficients(img, img, 1, 1e-3, np.full((4, 5), -0.5))
    with pytest.raises(ValueError, match=r"guided_coefficients: weights must have the same shape"):
        F.guided_coefficients(img, img, 1, 1e-3, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"guided_coefficients: src must contain only finite values"):
        F.guided_coefficients(img, np.full((4, 5), np.nan), 1, 1e-3)
    with pytest.raises(ValueError, match=r"guided_coefficients: radius must be an int >= 0, got -1"):
        F.guided_coefficients(img, img, -1, 1e-3)
    with pytest.raises(TypeError, match=r"guided_coefficients: radius must be an int"):
        F.guided_coefficients(img, img, 1.5, 1e-3)
    with pytest.raises(ValueError, match=r"guided_coefficients: src must be a 2-D array"):
        F.guided_coefficients(np.zeros(5), np.zeros(5), 1, 1e-3)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0"):  # native check
        _native.guided_coefficients(img, img, None, 1, -1.0)


# -------------------------------------------------------------------- extract_patches


def grid_size(n, size, stride):
    return math.ceil(max(n - size, 0) / stride) + 1


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (32, 32), (33, 31), (40, 50), (64, 129), (100, 37)])
@pytest.mark.parametrize("size,stride", [(32, 8), (32, 32), (8, 3), (16, 20), (1, 1)])
def test_extract_patches_matches_reference(rng, shape, size, stride):
    gray = rand(rng, shape)
    patches, grid = F.extract_patches(gray, size, stride)
    ref, ref_grid = extract_patches_ref(gray, size, stride)
    ny, nx = grid_size(shape[0], size, stride), grid_size(shape[1], size, stride)
    assert grid == ref_grid == (ny, nx)
    assert isinstance(grid[0], int) and isinstance(grid[1], int)
    assert patches.shape == (ny * nx, size, size)
    assert patches.dtype == np.float32 and patches.flags.c_contiguous
    np.testing.assert_array_equal(patches, ref.astype(np.float32))
    # every pixel is covered by some patch window (the grid has no gaps when
    # stride <= size)
    if stride > size:
        return
    covered = np.zeros(shape, bool)
    for iy in range(ny):
        for ix in range(nx):
            covered[iy * stride:iy * stride + size, ix * stride:ix * stride + size] = True
    assert covered.all()
    # ... and really appears: unique values all show up in the patches
    unique = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    got, _ = F.extract_patches(unique, size, stride)
    assert np.isin(unique, got).all()
    # row-major grid: patch iy * nx + ix starts at (iy * stride, ix * stride)
    iy, ix = ny - 1, nx - 1
    y0, x0 = iy * stride, ix * stride
    if y0 < shape[0] and x0 < shape[1]:
        assert got[iy * nx + ix, 0, 0] == unique[y0, x0]


def test_extract_patches_small_images_repeat_reflection():
    patches, grid = F.extract_patches(np.array([[3.5]]), 32, 8)
    assert grid == (1, 1)
    np.testing.assert_array_equal(patches, np.full((1, 32, 32), 3.5, np.float32))
    img = np.arange(35, dtype=np.float32).reshape(5, 7)
    patches, grid = F.extract_patches(img, 32, 8)
    assert grid == (1, 1)
    rows = [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    cols = [0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1, 0, 1]
    np.testing.assert_array_equal(patches[0, :10, :14], img[np.ix_(rows, cols)])


def test_extract_patches_normalize(rng):
    h, w, size, stride = 70, 90, 32, 16
    gray = rand(rng, (h, w))
    gray[:35, :40] = 0.5  # flat corner
    gray[40:, 50:] = 0.3 + 0.001 * rng.random((30, 40))  # low contrast corner
    patches, grid = F.extract_patches(gray, size, stride, normalize=True, std_floor=0.02)
    ref, _ = extract_patches_ref(gray, size, stride, normalize=True, std_floor=0.02)
    np.testing.assert_allclose(patches, ref, rtol=0, atol=2e-6)
    raw, _ = extract_patches_ref(gray, size, stride)
    std = raw.std(axis=(1, 2))
    means = patches.astype(np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(means, 0.0, atol=1e-5)
    textured = std > 0.02
    assert textured.sum() >= 3
    np.testing.assert_allclose(patches[textured].astype(np.float64).std(axis=(1, 2)), 1.0, atol=1e-4)
    floored = std <= 0.02
    assert floored.sum() >= 2
    out_std = patches[floored].astype(np.float64).std(axis=(1, 2))
    np.testing.assert_allclose(out_std, std[floored] / 0.02, rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(patches[0]) < 1e-5)  # the flat patch maps to zeros
    # a different floor
    p2, _ = F.extract_patches(gray, size, stride, normalize=True, std_floor=0.5)
    r2, _ = extract_patches_ref(gray, size, stride, normalize=True, std_floor=0.5)
    np.testing.assert_allclose(p2, r2, rtol=0, atol=2e-6)


# --------------------------------------------------------------------------- errors


def test_errors_box_filter():
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"box_filter: src must be a 2-D array .*got 3-D"):
        F.box_filter(np.zeros((2, 3, 4)), 1)
    with pytest.raises(ValueError, match=r"src must be a 2-D array .*got 1-D"):
        F.box_filter(np.zeros(5), 1)
    with pytest.raises(ValueError, match=r"src must have H >= 1 and W >= 1, got shape \(0, 5\)"):
        F.box_filter(np.zeros((0, 5)), 1)
    bad = img.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"src must contain only finite values.*1 NaN/inf"):
        F.box_filter(bad, 1)
    with pytest.raises(ValueError, match="finite"):
        F.box_filter(np.full((2, 2), 1e300), 1)  # overflows float32
    with pytest.raises(ValueError, match=r"radius must be an int >= 0, got -1"):
        F.box_filter(img, -1)
    with pytest.raises(TypeError, match=r"radius must be an int >= 0, got 2.5"):
        F.box_filter(img, 2.5)
    with pytest.raises(TypeError, match=r"radius must be an int"):
        F.box_filter(img, True)
    with pytest.raises(TypeError, match=r"radius must be an int"):
        F.box_filter(img, "3")
    with pytest.raises(ValueError, match=r"radius must be <= 2\*\*40"):
        F.box_filter(img, 2**41)
    with pytest.raises(TypeError, match=r"src must be a 2-D array of real numbers, got dtype complex"):
        F.box_filter(np.zeros((3, 3), complex), 1)
    with pytest.raises(TypeError, match=r"real numbers"):
        F.box_filter([["a", "b"]], 1)
    with pytest.raises(TypeError, match=r"got None"):
        F.box_filter(None, 1)
    assert F.box_filter(img, np.int64(2)).shape == (4, 5)  # numpy ints are fine


def test_errors_guided_filter():
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"guided_filter: guide must have the same shape as src "
                                         r"\(4, 5\), got shape \(5, 4\)"):
        F.guided_filter(img.T, img, 1, 1e-3)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got 0.0"):
        F.guided_filter(img, img, 1, 0.0)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got -1.0"):
        F.guided_filter(img, img, 1, -1)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got nan"):
        F.guided_filter(img, img, 1, float("nan"))
    with pytest.raises(TypeError, match=r"eps must be a real number > 0, got '1e-3'"):
        F.guided_filter(img, img, 1, "1e-3")
    with pytest.raises(ValueError, match=r"weights must be >= 0 everywhere, got minimum -0.5"):
        F.guided_filter(img, img, 1, 1e-3, np.full((4, 5), -0.5))
    with pytest.raises(ValueError, match=r"weights must have the same shape as src"):
        F.guided_filter(img, img, 1, 1e-3, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"guide must contain only finite values"):
        F.guided_filter(np.full((4, 5), np.inf), img, 1, 1e-3)
    with pytest.raises(ValueError, match=r"weights must contain only finite values"):
        F.guided_filter(img, img, 1, 1e-3, np.full((4, 5), np.nan))
    with pytest.raises(ValueError, match=r"guided_filter: radius must be an int >= 0, got -3"):
        F.guided_filter(img, img, -3, 1e-3)
    # -0.0 weights are fine
    F.guided_filter(img, img, 1, 1e-3, np.full((4, 5), -0.0))


def test_errors_iterative_guided_filter():
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"iterative_guided_filter: iterations must be an int >= 1, got 0"):
        F.iterative_guided_filter(img, img, 1, 1e-3, iterations=0)
    with pytest.raises(TypeError, match=r"iterations must be an int >= 1, got 2.0"):
        F.iterative_guided_filter(img, img, 1, 1e-3, iterations=2.0)
    with pytest.raises(ValueError, match=r"iterative_guided_filter: src must be a 2-D array \(H, W\) or 3-D"):
        F.iterative_guided_filter(img, np.zeros((4, 5, 3, 1)), 1, 1e-3)
    with pytest.raises(ValueError, match=r"iterative_guided_filter: guide must have 1 or 3 channels"):
        F.iterative_guided_filter(np.zeros((4, 5, 2)), img, 1, 1e-3)


def test_errors_extract_patches():
    img = np.zeros((10, 10), np.float32)
    with pytest.raises(ValueError, match=r"extract_patches: size must be an int >= 1, got 0"):
        F.extract_patches(img, size=0)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1, got -2"):
        F.extract_patches(img, stride=-2)
    with pytest.raises(TypeError, match=r"size must be an int >= 1, got 3.0"):
        F.extract_patches(img, size=3.0)
    with pytest.raises(ValueError, match=r"std_floor must be a finite number > 0, got 0.0"):
        F.extract_patches(img, normalize=True, std_floor=0.0)
    with pytest.raises(TypeError, match=r"normalize must be a bool, got 'yes'"):
        F.extract_patches(img, normalize="yes")
    with pytest.raises(ValueError, match=r"gray must be a 2-D array \(H, W\), got 3-D"):
        F.extract_patches(np.zeros((3, 10, 10)))
    with pytest.raises(ValueError, match=r"gray must contain only finite values"):
        F.extract_patches(np.full((3, 3), np.nan))


# ------------------------------------------- OpenCV's argument order, colour guide, batches


def test_guided_filter_takes_opencv_argument_order(rng):
    """(guide, src, radius, eps) as cv2.ximgproc.guidedFilter: a source that is a linear function
    of the guide comes out unchanged, and the result equals the float64 reference."""
    guide = F.box_filter(rand(rng, (40, 56)), 2)  # smooth, with local variance everywhere
    src = (2.0 * guide + 1.0).astype(np.float32)
    out = F.guided_filter(guide, src, 3, 1e-8)
    np.testing.assert_allclose(out, src, atol=2e-3)  # the old (src, guide) order gave (src - 1) / 2
    assert_close(out, guided_filter_ref(guide, src, 3, 1e-8), 3.0)
    noisy = rand(rng, guide.shape)
    for r, eps in ((1, 1e-3), (4, 1e-2)):
        assert_close(F.guided_filter(guide, noisy, r, eps), guided_filter_ref(guide, noisy, r, eps), 1.0)
        coef_a, coef_b = F.guided_coefficients(guide, noisy, r, eps)
        want_a, want_b = guided_coefficients_ref(guide, noisy, r, eps)
        assert_close(coef_a, want_a, max(1.0, float(np.abs(want_a).max())))
        assert_close(coef_b, want_b, max(1.0, float(np.abs(want_b).max())))
        assert_close(F.iterative_guided_filter(guide, noisy, r, eps, iterations=2),
                     iterative_guided_filter_ref(guide, noisy, r, eps, iterations=2), 1.0)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (33, 47)])
def test_colour_guide_matches_reference(rng, shape):
    from fastdefocus.testing.reference import guided_coefficients_colour_ref, guided_filter_colour_ref
    guide = rand(rng, shape + (3,))
    src = rand(rng, shape)
    weights = rand(rng, shape)
    for r in (0, 1, 3, 12):
        for eps in (1e-4, 1e-2):
            for w in (None, weights):
                got = F.guided_filter(guide, src, r, eps, w)
                want = guided_filter_colour_ref(guide, src, r, eps, w)
                assert got.dtype == np.float32 and got.shape == shape
                assert float(np.abs(got - want).max()) <= 1e-4, (r, eps, w is None)
                coef_a, coef_b = F.guided_coefficients(guide, src, r, eps, w)
                want_a, want_b = guided_coefficients_colour_ref(guide, src, r, eps, w)
                assert coef_a.shape == shape + (3,) and coef_b.shape == shape
                np.testing.assert_allclose(coef_a, want_a, atol=1e-3 * max(1.0, float(np.abs(want_a).max())))
                np.testing.assert_allclose((coef_a * guide).sum(-1) + coef_b, got, atol=1e-4)
    twice = guided_filter_colour_ref(guide, guided_filter_colour_ref(guide, src, 2, 1e-2), 2, 1e-2)
    assert float(np.abs(F.iterative_guided_filter(guide, src, 2, 1e-2, iterations=2) - twice).max()) <= 1e-4


def test_colour_guide_keeps_an_edge_the_gray_guide_loses():
    """Red against green of the same gray level: only the colour guide sees the edge."""
    from fastdefocus.stages.ingest import LUMA_RGB
    guide = np.zeros((32, 32, 3), np.float32)
    guide[:, :16, 0] = 0.5  # red half ...
    guide[:, 16:, 1] = 0.5 * LUMA_RGB[0] / LUMA_RGB[1]  # ... green half of the same luma
    gray = (guide * LUMA_RGB).sum(-1)
    assert np.ptp(gray) < 1e-6
    src = np.zeros((32, 32), np.float32)
    src[:, 16:] = 1.0
    colour = F.guided_filter(guide, src, 4, 1e-4)
    flat = F.guided_filter(gray, src, 4, 1e-4)
    assert np.abs(colour - src).max() < 0.05  # the step stays sharp
    assert np.abs(flat[:, 15] - 0.5).max() < 0.2  # the gray guide blurs it


def test_multichannel_source_filters_each_channel(rng):
    gray = rand(rng, (20, 30))
    colour = rand(rng, (20, 30, 3))
    src = rand(rng, (20, 30, 4))
    for guide in (gray, gray[..., None], colour):
        out = F.guided_filter(guide, src, 2, 1e-3)
        assert out.shape == src.shape
        for c in range(4):
            np.testing.assert_array_equal(out[..., c], F.guided_filter(guide, src[..., c], 2, 1e-3))
    coef_a, coef_b = F.guided_coefficients(colour, src, 2, 1e-3)
    assert coef_a.shape == (20, 30, 4, 3) and coef_b.shape == (20, 30, 4)
    coef_a, coef_b = F.guided_coefficients(gray, src, 2, 1e-3)
    assert coef_a.shape == (20, 30, 4) and coef_b.shape == (20, 30, 4)


def test_torch_batches(rng):
    torch = pytest.importorskip("torch")
    guide = rand(rng, (2, 3, 24, 20))
    src = rand(rng, (2, 2, 24, 20))
    weights = rand(rng, (2, 24, 20))
    out = F.guided_filter(torch.from_numpy(guide), torch.from_numpy(src), 3, 1e-3, torch.from_numpy(weights))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 2, 24, 20) and out.dtype == torch.float32
    for b in range(2):
        want = F.guided_filter(np.moveaxis(guide[b], 0, -1), np.moveaxis(src[b], 0, -1), 3, 1e-3, weights[b])
        np.testing.assert_array_equal(out[b].numpy(), np.moveaxis(want, -1, 0))
    gray = torch.from_numpy(guide[:, :1])
    out = F.iterative_guided_filter(gray, torch.from_numpy(src), 2, 1e-3, iterations=2)
    np.testing.assert_array_equal(out[1, 0].numpy(),
                                  F.iterative_guided_filter(guide[1, 0], src[1, 0], 2, 1e-3, iterations=2))
    coef_a, coef_b = F.guided_coefficients(torch.from_numpy(guide), torch.from_numpy(src), 2, 1e-3)
    assert tuple(coef_a.shape) == (2, 2, 3, 24, 20) and tuple(coef_b.shape) == (2, 2, 24, 20)
    with pytest.raises(ValueError, match="guide must be"):
        F.guided_filter(torch.from_numpy(guide[:1]), torch.from_numpy(src), 3, 1e-3)


def test_threads_argument(rng):
    src, guide = rand(rng, (300, 200)), rand(rng, (300, 200))
    one = F.guided_filter(guide, src, 4, 1e-3, threads=1)
    assert_close(F.guided_filter(guide, src, 4, 1e-3, threads=2), guided_filter_ref(guide, src, 4, 1e-3), 1.0)
    assert_close(one, guided_filter_ref(guide, src, 4, 1e-3), 1.0)
    patches, _ = F.extract_patches(src, 32, 8, threads=2)
    np.testing.assert_array_equal(patches, F.extract_patches(src, 32, 8, threads=1)[0])
    with pytest.raises(ValueError, match="guided_filter: threads must be an int >= 0, got -1"):
        F.guided_filter(guide, src, 4, 1e-3, threads=-1)
