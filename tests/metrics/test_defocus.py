import math

import numpy as np
import pytest

from fastdefocus.blur import gaussian_blur
from fastdefocus.metrics.defocus import (BETA2, binary_mask, boundary_mask, dbd_scores, fbeta_adaptive, fbeta_curve,
                                    in_focus_score, mae, map_errors, resize_for_dbd, spearman, summarise_dbd)
from fastdefocus.scenes import blur_by_map, layered_sigma_map


def f_all_positive(p):
    """F-beta when every pixel is predicted in focus: precision p, recall 1."""
    return (1 + BETA2) * p / (BETA2 * p + 1)


@pytest.fixture
def truth():
    t = np.zeros((40, 50), bool)
    t[5:25, 10:30] = True  # 400 of 2000 px in focus: p = 0.2
    return t


# ------------------------------------------------------------------ detection metrics


def test_perfect_map(truth):
    score = truth.astype(np.float32)
    curve = fbeta_curve(score, truth)
    assert curve.shape == (256,)
    assert curve[0] == pytest.approx(f_all_positive(0.2))  # threshold 0: everything positive
    np.testing.assert_allclose(curve[1:], 1.0)
    assert fbeta_adaptive(score, truth) == 1.0  # threshold 2 * 0.2 = 0.4
    assert mae(score, truth) == 0.0


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_constant_map(truth, c):
    score = np.full(truth.shape, c, np.float32)
    curve = fbeta_curve(score, truth)
    q = int(np.rint(255 * c))
    np.testing.assert_allclose(curve[:q + 1], f_all_positive(0.2))
    np.testing.assert_allclose(curve[q + 1:], 0.0)
    # the adaptive threshold min(2c, 1) is above c: nothing predicted in focus
    assert fbeta_adaptive(score, truth) == 0.0
    assert mae(score, truth) == pytest.approx(c * 0.8 + (1 - c) * 0.2)


def test_inverted_map(truth):
    score = 1.0 - truth.astype(np.float32)
    curve = fbeta_curve(score, truth)
    assert curve[0] == pytest.approx(f_all_positive(0.2))
    np.testing.assert_allclose(curve[1:], 0.0)
    assert fbeta_adaptive(score, truth) == 0.0
    assert mae(score, truth) == 1.0


def test_hand_computed_partial_map():
    truth = np.array([[True, True, False, False]])
    score = np.array([[1.0, 0.5, 0.5, 0.0]], np.float32)
    curve = fbeta_curve(score, truth)
    # threshold 128 (0.5 -> 128): 3 predicted, TP 2: P 2/3, R 1
    assert curve[128] == pytest.approx(1.3 * (2 / 3) / (0.3 * (2 / 3) + 1))
    # threshold 255: 1 predicted, TP 1: P 1, R 1/2
    assert curve[255] == pytest.approx(1.3 * 0.5 / (0.3 + 0.5))
    assert curve.max() == pytest.approx(0.8125)
    assert fbeta_adaptive(score, truth) == pytest.approx(0.8125)  # threshold min(2 * 0.5, 1) = 1
    assert mae(score, truth) == pytest.approx(0.25)


def test_empty_mask_and_empty_prediction_score_zero():
    truth = np.zeros((4, 4), bool)
    assert fbeta_curve(np.ones((4, 4), np.float32), truth).max() == 0.0
    all_in_focus = np.ones((4, 4), bool)
    assert fbeta_curve(np.full((4, 4), 0.5, np.float32), all_in_focus)[255] == 0.0  # nothing predicted
    # the protocol's quirk: an all-zero map has threshold 0 and so predicts everything
    assert fbeta_adaptive(np.zeros((4, 4), np.float32), all_in_focus) == 1.0


def test_dataset_fbeta_max_is_the_max_of_the_mean_curve():
    # two images whose best thresholds differ: one threshold for the set scores less than
    # the mean of the per-image maxima
    truth = np.array([[True, False], [True, False]])
    a = dbd_scores(np.array([[0.9, 0.6], [0.9, 0.6]], np.float32), truth, size=2)
    b = dbd_scores(np.array([[0.4, 0.1], [0.4, 0.1]], np.float32), truth, size=2)
    assert a["fbeta_max"] == pytest.approx(1.0) and b["fbeta_max"] == pytest.approx(1.0)
    summary = summarise_dbd([a, b])
    assert summary["n"] == 2
    assert summary["fbeta_max"] < 1.0
    assert summary["mae"] == pytest.approx(np.mean([a["mae"], b["mae"]]))
    assert summarise_dbd([]) == {"n": 0}


def test_resize_and_mask_polarity():
    mask = np.zeros((640, 480), np.uint8)
    mask[:, 240:] = 255  # right half in focus
    score = np.zeros((640, 480), np.float32)
    score[:, 240:] = 1.0
    s, t = resize_for_dbd(score, mask)
    assert s.shape == t.shape == (320, 320) and t.dtype == bool
    assert t[:, 170:].all() and not t[:, :150].any()
    assert dbd_scores(score, mask)["mae"] < 0.01
    assert dbd_scores(1 - score, mask)["mae"] > 0.99


def test_binary_mask_threshold_and_types():
    assert binary_mask(np.array([[127, 128, 255]], np.uint8)).tolist() == [[False, True, True]]
    assert binary_mask(np.array([[0.49, 0.51]])).tolist() == [[False, True]]
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = 200
    assert binary_mask(rgb).tolist() == [[True, False], [False, False]]


def test_detection_metrics_reject_bad_input(truth):
    with pytest.raises(ValueError, match="same shape"):
        mae(np.zeros((3, 3), np.float32), truth)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fbeta_curve(np.full(truth.shape, 2.0, np.float32), truth)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fbeta_adaptive(np.full(truth.shape, np.nan, np.float32), truth)


def test_in_focus_score_is_one_fixed_logistic():
    sigma = np.array([0.0, 0.5, 1.0, 1.5, 3.0, 1e6, -1e6])
    s = in_focus_score(sigma)
    assert s.dtype == np.float32
    assert s[2] == pytest.approx(0.5)
    assert s[1] == pytest.approx(1 / (1 + math.exp(-2)), abs=1e-6)
    assert s[3] == pytest.approx(1 / (1 + math.exp(2)), abs=1e-6)
    assert np.all(np.diff(s[:6]) < 0)
    assert s[5] == 0.0 and s[6] == 1.0  # no overflow
    # the same sigma gets the same score whatever else the image holds (no per-image rescaling)
    assert in_focus_score(np.array([0.7, 6.0]))[0] == in_focus_score(np.array([0.7, 0.8]))[0]
    assert in_focus_score(np.array([2.0]), threshold=2.0)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="width"):
        in_focus_score(sigma, width=0)


# ------------------------------------------------------------------ sigma-map metrics


def test_map_errors_perfect_constant_inverted():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 4, (30, 30)).astype(np.float32)
    perfect = map_errors(true, true)
    assert perfect["mae"] == 0 and perfect["rmse"] == 0 and perfect["within_0_5"] == 1.0
    assert perfect["spearman"] == pytest.approx(1.0)
    const = map_errors(np.full_like(true, 2.0), true)
    assert const["mae"] == pytest.approx(np.abs(2.0 - true).mean(), rel=1e-6)
    assert const["bias"] == pytest.approx((2.0 - true).mean(), rel=1e-5)
    assert const["spearman"] == 0.0  # no ranking at all
    inverted = map_errors(4.0 - true, true)
    assert inverted["spearman"] == pytest.approx(-1.0)
    mask = true > 2
    assert map_errors(true, true, mask)["pixels"] == int(mask.sum())
    assert map_errors(true, true, np.zeros_like(mask)) == {"pixels": 0}


def test_spearman_ties_by_hand():
    # ranks [1, 2.5, 2.5, 4] and [1, 2, 3, 4]: 4.5 / sqrt(4.5 * 5)
    assert spearman(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 4])) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman(np.array([1, 5, 9]), np.array([10, 20, 1000])) == pytest.approx(1.0)


def test_boundary_mask_marks_hard_edges_not_ramps():
    step = np.zeros((40, 40), np.float32)
    step[:, 20:] = 2.0
    near = boundary_mask(step, distance=8)
    assert near[:, 12:28].all() and not near[:, :11].any() and not near[:, 29:].any()
    ramp = np.tile(np.linspace(0, 4, 40, dtype=np.float32), (40, 1))  # 0.1 px per px
    assert not boundary_mask(ramp).any()


# ------------------------------------------------------------------ the scene generator


@pytest.mark.parametrize("sigma", [0.5, 1.3, 2.5])
def test_constant_sigma_map_is_that_gaussian_blur(sigma):
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (48, 56)).astype(np.float32)
    out = blur_by_map(image, np.full(image.shape, sigma, np.float32))
    np.testing.assert_allclose(out, gaussian_blur(image, sigma), atol=1e-5)
    colour = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(blur_by_map(colour, np.full((32, 32), sigma, np.float32)),
                               gaussian_blur(colour, sigma), atol=1e-5)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0])
def test_blur_of_an_impulse_has_the_mapped_variance(sigma):
    impulse = np.zeros((61, 61), np.float32)
    impulse[30, 30] = 1.0
    psf = blur_by_map(impulse, np.full(impulse.shape, sigma, np.float32))
    x = np.arange(61) - 30
    assert psf.sum() == pytest.approx(1.0, abs=1e-5)
    assert (psf.sum(axis=0) * x * x).sum() == pytest.approx(sigma ** 2, rel=1e-3)
    assert (psf.sum(axis=1) * x * x).sum() == pytest.approx(sigma ** 2, rel=1e-3)


def test_layered_map_blur_matches_per_layer_blur():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (96, 128)).astype(np.float32)
    truth = layered_sigma_map(96, 128, np.random.default_rng(5), ramp=False)
    out = blur_by_map(image, truth)
    near = boundary_mask(truth, distance=12, jump=0.01)
    for s in np.unique(truth):
        inside = (truth == s) & ~near
        if inside.sum() < 20:
            continue
        np.testing.assert_allclose(out[inside], gaussian_blur(image, float(s))[inside], atol=2e-3)


def test_layered_sigma_map_is_seeded():
    a = layered_sigma_map(50, 70, np.random.default_rng(3))
    b = layered_sigma_map(50, 70, np.random.default_rng(3))
    c = layered_sigma_map(50, 70, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 4.0
