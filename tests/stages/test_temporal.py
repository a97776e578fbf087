"""The temporal filter of a stream's maps (stream(stable=True)): NumPy reference, its C++ twin
and what it does to flicker, motion and cuts."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator, _native
from fastdefocus._params import TEMPORAL_MAX_WEIGHT
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.temporal import TemporalFilter


def _frames(rng, n, shape=(60, 80)):
    base = rng.random(shape, dtype=np.float32)
    for t in range(n):
        lum = rng.random(shape, dtype=np.float32) if t == n // 2 else \
            base + rng.normal(0, 0.005, shape).astype(np.float32)
        if t == n // 2:
            base = lum
        yield lum, (rng.random(shape, dtype=np.float32) * 6), rng.random(shape, dtype=np.float32)


def test_native_filter_matches_the_reference():
    rng = np.random.default_rng(0)
    ref, native = TemporalFilter(), _native.TemporalFilter()
    cuts = []
    for lum, sigma, conf in _frames(rng, 8):
        s, c, cut = ref.update(lum, sigma, conf)
        s2, c2, cut2 = native.update(lum, sigma, conf)
        assert cut == cut2
        cuts.append(cut)
        np.testing.assert_allclose(s2, s, atol=1e-5)
        np.testing.assert_allclose(c2, c, atol=1e-6)
    assert cuts == [True, False, False, False, True, False, False, False]  # the first frame and the new scene
    assert native.frames == ref.frames == 8
    native.reset()
    assert native.frames == 0


def test_static_frames_average_and_moving_pixels_follow():
    shape = (40, 40)
    lum = np.zeros(shape, np.float32)
    f = TemporalFilter()
    ones = np.ones(shape, np.float32)
    f.update(lum, 2 * ones, ones)
    s, _, cut = f.update(lum, 4 * ones, ones)  # nothing moved: the mean of 2 and 4 (equal confidence)
    assert not cut
    np.testing.assert_allclose(s, 3.0, atol=1e-6)
    moved = lum.copy()
    moved[:, :12] = 1.0  # a third of the image changed: not a cut, but those pixels follow the new map
    s, _, cut = f.update(moved, 6 * ones, ones)
    assert not cut
    inner = gaussian_blur(moved, 2.0) - gaussian_blur(lum, 2.0)
    changed = np.abs(inner) > 0.3
    np.testing.assert_allclose(s[changed], 6.0, atol=1e-3)
    static = np.abs(inner) < 1e-6
    assert (s[static] < 5.0).all()  # the rest keeps its memory (weight up to TEMPORAL_MAX_WEIGHT)
    assert TEMPORAL_MAX_WEIGHT > 1


def test_confident_estimates_count_more():
    shape = (20, 20)
    lum = np.zeros(shape, np.float32)
    f = TemporalFilter()
    f.update(lum, np.full(shape, 1.0, np.float32), np.full(shape, 1.0, np.float32))
    s, _, _ = f.update(lum, np.full(shape, 5.0, np.float32), np.zeros(shape, np.float32))
    assert (s < 1.3).all()  # a doubtful estimate barely moves a confident map


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        TemporalFilter().update(np.zeros((4, 5)), np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="shape"):
        _native.TemporalFilter().update(np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32),
                                        np.zeros((5, 4), np.float32))


@pytest.fixture(scope="module")
def est():
    return DefocusEstimator(device="cpu")


def _scene(seed, blur=2.0):
    img = dead_leaves(np.random.default_rng(seed), 160)[:96, :128].astype(np.float32)
    out = img.copy()
    out[:, 64:] = gaussian_blur(img, blur)[:, 64:]
    return out


def _flicker(results):
    return float(np.mean([np.abs(b.sigma - a.sigma).mean() for a, b in zip(results, results[1:])]))


def test_a_noisy_static_sequence_flickers_at_most_half_as_much(est):
    rng = np.random.default_rng(3)
    scene = _scene(1)
    frames = [np.clip(scene + rng.normal(0, 0.02, scene.shape), 0, 1).astype(np.float32) for _ in range(8)]
    per_frame = list(est.stream(iter(frames)))
    stable = list(est.stream(iter(frames), stable=True))
    assert _flicker(per_frame) > 0.01  # the noise does make the maps flicker
    assert _flicker(stable) <= 0.5 * _flicker(per_frame), (_flicker(stable), _flicker(per_frame))
    assert all("temporal" in r.timings for r in stable)


def test_after_a_cut_the_map_is_the_new_scenes(est):
    a, b = _scene(1), _scene(2, blur=4.0)[:, ::-1].copy()
    frames = [a] * 4 + [b] * 4
    stable = list(est.stream(iter(frames), stable=True))
    alone = est.estimate(b)
    for k in range(4, 7):  # within 3 frames of the cut (here at once)
        np.testing.assert_allclose(stable[k].sigma, alone.sigma, atol=1e-4)


def test_stream_options_are_checked(est):
    with pytest.raises(ValueError, match="stable=True replaces smoothing"):
        est.stream([np.zeros((40, 40), np.float32)], smoothing=0.5, stable=True)
    with pytest.raises(TypeError, match="stable must be a bool"):
        est.stream([np.zeros((40, 40), np.float32)], stable=1)
