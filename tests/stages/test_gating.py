"""Texture gating: patches too flat to carry blur evidence are not classified."""
from __future__ import annotations

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.pipeline import estimate_numpy


class Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.name = inner.name

    def probabilities(self, patches):
        self.calls.append(np.array(patches))
        return self.inner.probabilities(patches)


@pytest.fixture(scope="module")
def runtime():
    return DefocusEstimator(device="cpu").classifier


def half_flat(seed=0):
    img = dead_leaves(np.random.default_rng(seed), 192)[:160, :192].astype(np.float32)
    img[:, :96] = 0.5  # the left half is flat: 8 of the 21 patch columns lie inside it
    return img


def test_flat_patches_are_not_classified_textured_ones_are(runtime):
    counter = Counting(runtime)
    est = DefocusEstimator(device="cpu", coarse_levels=0, _classifier=counter)
    result = est.estimate(half_flat())
    ny, nx = (160 - 32) // 8 + 1, (192 - 32) // 8 + 1
    assert result.counts["patches"] == ny * nx
    flat_columns = (96 - 32) // 8 + 1  # patches x0 = 0 .. 64 lie inside the flat half
    assert result.counts["classified"] == ny * (nx - flat_columns)
    seen = np.concatenate(counter.calls)
    assert len(seen) == result.counts["classified"] + 1  # plus one flat (all-zero) patch, once
    assert any(len(c) == 1 and not c.any() for c in counter.calls)
    est.estimate(half_flat())
    assert len(np.concatenate(counter.calls)) == 2 * result.counts["classified"] + 1  # cached
    # every classified patch is textured: normalised to unit std
    stds = seen.reshape(len(seen), -1).std(axis=1)
    assert (np.sort(stds)[1:] > 0.99).all()


def test_gating_off_classifies_every_patch(runtime):
    counter = Counting(runtime)
    result = DefocusEstimator(device="cpu", coarse_levels=0, flat_gate=0.0, _classifier=counter).estimate(half_flat())
    assert result.counts["classified"] == result.counts["patches"] == sum(len(c) for c in counter.calls)


def test_gated_maps_match_the_numpy_reference(runtime):
    est = DefocusEstimator(device="cpu", _classifier=runtime)
    image = half_flat(1)
    result = est.estimate(image)
    sigma, confidence, _ = estimate_numpy(est, image)
    np.testing.assert_allclose(result.sigma, sigma, atol=1e-3)
    np.testing.assert_allclose(result.confidence, confidence, atol=1e-4)


def test_gating_leaves_textured_areas_alone(runtime):
    """Gated patches weigh 0 in the map: away from the flat half the maps are the same."""
    image = half_flat(2)
    on = DefocusEstimator(device="cpu", coarse_levels=0, _classifier=runtime).estimate(image)
    off = DefocusEstimator(device="cpu", coarse_levels=0, flat_gate=0.0, _classifier=runtime).estimate(image)
    np.testing.assert_allclose(on.sigma[:, 140:], off.sigma[:, 140:], atol=1e-4)
    np.testing.assert_allclose(on.confidence, off.confidence, atol=1e-4)


@pytest.mark.parametrize("gate", [-0.1, 0.6, "0.5"])
def test_flat_gate_option_is_checked(gate):
    with pytest.raises((ValueError, TypeError), match="flat_gate"):
        DefocusEstimator(device="cpu", flat_gate=gate)
