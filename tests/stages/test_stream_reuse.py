"""A stream reuses the classifier's probabilities of the patches whose pixels did not change."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.scenes import dead_leaves


@pytest.fixture(scope="module")
def est():
    return DefocusEstimator(device="cpu")


@pytest.fixture(scope="module")
def frames():
    img = dead_leaves(np.random.default_rng(0), 256)[:200, :256].astype(np.float32)
    moved = img.copy()
    moved[100:140, 100:140] = img[60:100, 60:100]  # a 40 x 40 px change
    return [img, img.copy(), moved, img]


def test_unchanged_patches_are_not_classified_again(est, frames):
    results = list(est.stream(iter(frames)))
    n = results[0].counts["patches"]
    assert results[0].counts["reused"] == 0
    assert results[1].counts["reused"] + (n - results[1].counts["classified"] - results[1].counts["reused"]) == n
    assert results[1].counts["classified"] == 0  # the same frame again: nothing to classify
    # the 40 x 40 change touches the patches with x0, y0 in 72..136 at stride 8: 9 x 9 of them
    assert 0 < results[2].counts["classified"] <= 81
    assert results[2].counts["reused"] >= n - 81 - (n - results[0].counts["classified"])
    for frame, result in zip(frames, results):  # the maps are estimate's, exactly
        np.testing.assert_array_equal(result.sigma, est.estimate(frame).sigma)


def test_reuse_off_classifies_every_frame(est, frames):
    results = list(est.stream(iter(frames), reuse=False))
    assert all(r.counts["reused"] == 0 for r in results)
    assert results[1].counts["classified"] == results[0].counts["classified"] > 0


def test_reuse_option_is_checked(est, frames):
    with pytest.raises(TypeError, match="reuse must be a bool"):
        est.stream(iter(frames), reuse="yes")


def test_a_cache_is_never_reused_across_estimators(est, frames):
    from fastdefocus import _native

    other = DefocusEstimator(device="cpu", model="fast")
    cache = _native.StreamCache()
    est._estimate_cpu(frames[0], "rgb", cache)
    r = other._estimate_cpu(frames[0], "rgb", cache)  # the same pixels, but another model
    assert r.counts["reused"] == 0
    r = other._estimate_cpu(frames[0], "rgb", cache)
    assert r.counts["reused"] > 0
