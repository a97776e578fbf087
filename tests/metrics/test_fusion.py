"""Fusion metrics on cases whose value can be worked out by hand."""
import math

import numpy as np
import pytest

from fastdefocus.blur import gaussian_blur
from fastdefocus.metrics.fusion import Q_ABF_MAX, fusion_scores, q_abf, q_cb, q_mi
from fastdefocus.scenes import dead_leaves


@pytest.fixture(scope="module")
def sharp():
    return dead_leaves(np.random.default_rng(5), size=96)


def test_fusing_an_image_with_itself_scores_the_maximum(sharp):
    scores = fusion_scores(sharp, sharp, sharp)
    assert scores["q_abf"] == pytest.approx(Q_ABF_MAX, abs=1e-12)
    assert scores["q_mi"] == pytest.approx(2.0, abs=1e-12)
    assert scores["q_cb"] == pytest.approx(1.0, abs=1e-12)


def test_q_abf_maximum_is_the_product_of_the_papers_sigmoids():
    expected = 0.9994 / (1 + math.exp(-15 * 0.5)) * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert Q_ABF_MAX == pytest.approx(expected, rel=1e-12)
    assert Q_ABF_MAX == pytest.approx(0.97479, abs=1e-5)


def test_q_abf_half_contrast_edge_by_hand():
    """A vertical step of contrast 1 fused into a step of contrast 1/2: every edge pixel keeps
    half the strength (G = 0.5, the sigmoid's midpoint) and the full orientation."""
    a = np.zeros((16, 16), np.float32)
    a[:, 8:] = 1.0
    fused = a * 0.5
    expected = 0.9994 / 2 * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert q_abf(fused, a, a) == pytest.approx(expected, rel=1e-9)


def test_constant_fused_image_loses_everything(sharp):
    flat = np.full_like(sharp, 0.5)
    blurred = gaussian_blur(sharp, 2.0)
    scores = fusion_scores(flat, sharp, blurred)
    assert scores["q_abf"] < 1e-3
    assert scores["q_mi"] == 0.0
    assert scores["q_cb"] < 1e-6


def test_constant_sources_and_fused_have_nothing_to_lose():
    flat = np.full((32, 32), 0.3, np.float32)
    assert fusion_scores(flat, flat, flat) == {"q_abf": 1.0, "q_mi": 2.0, "q_cb": 1.0}


def test_q_mi_by_hand():
    """Two grey levels in halves: 1 bit each. F = A relabelled -> MI = H = 1 bit per term;
    F split the other way is independent of A -> MI = 0."""
    a = np.zeros((8, 8), np.uint8)
    a[:, 4:] = 200
    assert q_mi(255 - a, a, a) == pytest.approx(2.0)
    across = np.zeros((8, 8), np.uint8)
    across[4:, :] = 90
    assert q_mi(across, a, a) == pytest.approx(0.0, abs=1e-12)
    # F = A, B independent of A: 2 * (1/2 + 0)
    assert q_mi(a, a, across) == pytest.approx(1.0)


def test_picking_the_sharp_source_beats_the_blurred_one(sharp):
    blurred = gaussian_blur(sharp, 2.0)
    good, bad = fusion_scores(sharp, sharp, blurred), fusion_scores(blurred, sharp, blurred)
    for key in ("q_abf", "q_cb"):
        assert good[key] > bad[key] + 0.1, key
        assert 0.0 <= bad[key] < good[key] < 1.0
    # the metrics are symmetric in the two sources
    assert q_abf(sharp, blurred, sharp) == pytest.approx(good["q_abf"], abs=1e-12)
    assert q_cb(sharp, blurred, sharp) == pytest.approx(good["q_cb"], abs=1e-12)
    assert q_mi(sharp, blurred, sharp) == pytest.approx(good["q_mi"], abs=1e-12)


def test_colour_and_dtypes_are_measured_on_luminance(sharp):
    rgb = np.repeat(sharp[..., None], 3, axis=2)
    as8 = np.rint(sharp * 255).astype(np.uint8)
    assert q_abf(rgb, rgb, rgb) == pytest.approx(Q_ABF_MAX)
    assert q_mi(as8, sharp, sharp) == pytest.approx(2.0)


def test_errors(sharp):
    with pytest.raises(ValueError, match="same height and width"):
        q_abf(sharp, sharp, sharp[:50])
    with pytest.raises(ValueError, match=r"expected \[0, 1\]"):
        q_mi(sharp * 3, sharp, sharp)
    with pytest.raises(TypeError, match="dtype"):
        q_cb(sharp.astype(bool), sharp, sharp)


def test_scores_take_opencv_bgr():
    rng = np.random.default_rng(8)
    a = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    b = (gaussian_blur(a.astype(np.float32) / 255, 1.5) * 255).astype(np.uint8)
    fused = np.where(rng.random((48, 48, 1)) < 0.5, a, b)
    want = fusion_scores(fused, a, b)
    flip = lambda x: np.ascontiguousarray(x[..., ::-1])  # noqa: E731
    assert fusion_scores(flip(fused), flip(a), flip(b), channel_order="bgr") == want
    assert q_abf(flip(fused), flip(a), flip(b), channel_order="bgr") == want["q_abf"]
    with pytest.raises(ValueError, match="channel_order must be 'rgb' or 'bgr'"):
        q_mi(fused, a, b, channel_order="xyz")
