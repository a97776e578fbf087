"""Test-time views (EstimatorConfig.tta): each patch classified in several of its dihedral views,
the probabilities averaged, the same in the NumPy reference and the native estimator."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator, EstimatorConfig
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.classify import dihedral_probabilities, dihedral_view
from fastdefocus.stages.pipeline import estimate_numpy


def test_the_eight_views_are_the_dihedral_group():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    views = [dihedral_view(x, v)[0] for v in range(8)]
    want = [x[0], x[0][:, ::-1], x[0][::-1], x[0][::-1, ::-1], x[0].T, x[0][:, ::-1].T, x[0][::-1].T,
            x[0][::-1, ::-1].T]
    for got, w in zip(views, want):
        np.testing.assert_array_equal(got, w)
    assert len({v.tobytes() for v in views}) == 8  # all different for a generic patch
    # views 0-3 are closed under composition (a group): each view of a view is among them
    for a in range(4):
        for b in range(4):
            assert any(np.array_equal(dihedral_view(dihedral_view(x, a), b), dihedral_view(x, c)) for c in range(4))
    with pytest.raises(ValueError, match="view must be in 0-7"):
        dihedral_view(x, 8)


@pytest.mark.parametrize("views", [2, 4, 8])
def test_the_mean_over_a_group_of_views_is_invariant_under_it(views):
    """A classifier that is not symmetric at all; the mean over views 0-1, 0-3 or 0-7 is the same
    for a patch and for any of its views in that set."""
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((16, 5)).astype(np.float32)

    def classify(p):
        return np.asarray(p, np.float32).reshape(len(p), -1) @ weights

    x = rng.standard_normal((3, 4, 4)).astype(np.float32)
    base = dihedral_probabilities(classify, x, views)
    assert not np.allclose(classify(x), classify(dihedral_view(x, 1)))  # the classifier alone is not
    for v in range(views):
        np.testing.assert_allclose(dihedral_probabilities(classify, dihedral_view(x, v), views), base, atol=1e-5)
    np.testing.assert_array_equal(dihedral_probabilities(classify, x, 1), classify(x))


def test_config_takes_one_two_four_or_eight_views():
    assert EstimatorConfig().tta == 1
    for n in (1, 2, 4, 8):
        assert EstimatorConfig(tta=n).tta == n
    with pytest.raises(ValueError, match=r"tta must be one of \[1, 2, 4, 8\], got 3"):
        EstimatorConfig(tta=3)
    with pytest.raises(TypeError, match="tta must be an int"):
        EstimatorConfig(tta=2.0)


def test_native_option_is_validated():
    from fastdefocus import _native
    with pytest.raises(ValueError, match="tta must be 1, 2, 4 or 8"):
        _native.Estimator(tta=3)
    assert _native.Estimator(tta=8).options["tta"] == 8


@pytest.fixture(scope="module")
def image():
    img = dead_leaves(np.random.default_rng(5), 96).astype(np.float32)
    img[:, 48:] = gaussian_blur(img, 2.0)[:, 48:]
    return img


@pytest.mark.parametrize("views", [4, 8])
def test_native_estimator_with_views_matches_the_numpy_reference(image, views):
    est = DefocusEstimator(device="cpu", tta=views)
    got = est.estimate(image)
    sigma, conf, _ = estimate_numpy(est, image)
    np.testing.assert_allclose(got.sigma, sigma, atol=1e-4)
    np.testing.assert_allclose(got.confidence, conf, atol=1e-5)
    plain = DefocusEstimator(device="cpu").estimate(image)
    assert np.abs(got.sigma - plain.sigma).max() > 0.01  # the views change the map


def test_views_call_the_classifier_once_per_view_on_the_views(image):
    """With a recording classifier: every textured patch batch is classified in views 0..tta-1 in
    that order, and the flat patch once (its views are the same patch)."""
    base = DefocusEstimator(device="cpu")
    calls = []

    class Recording:
        name = "recording"
        info = base.info

        def probabilities(self, patches):
            calls.append(np.array(patches))
            return base.classifier.probabilities(patches)

    est = DefocusEstimator(device="cpu", tta=2, _classifier=Recording(), coarse_levels=0)
    est.estimate(image)
    textured = [c for c in calls if len(c) > 1]
    assert len(textured) == 2
    np.testing.assert_array_equal(textured[1], dihedral_view(textured[0], 1))


def test_mirrored_image_gives_the_mirrored_map_with_the_mirror_view():
    """With views 0-1 (the patch and its mirror) the classifier is mirror-symmetric, so on an image
    whose patch grid is symmetric (width = patch + k x stride) the map of the mirrored image is the
    mirrored map, up to float rounding."""
    img = dead_leaves(np.random.default_rng(7), 96).astype(np.float32)[:64, :96]
    img[:, :40] = gaussian_blur(img, 1.5)[:, :40]
    est = DefocusEstimator(device="cpu", tta=2, snap=0, coarse_levels=0)
    a = est.estimate(img).sigma
    b = est.estimate(np.ascontiguousarray(img[:, ::-1])).sigma[:, ::-1]
    assert np.abs(a - b).max() < 0.02
