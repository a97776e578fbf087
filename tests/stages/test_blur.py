import numpy as np
import pytest

from fastdefocus.blur import (DEFAULT_LEVELS, disc_kernel, gaussian_blur, gaussian_kernel1d, level_bins,
                              level_position)


@pytest.mark.parametrize("sigma", [0.2, 0.35, 0.5, 1.0, 2.5, 6.0])
def test_discrete_gaussian_has_exact_variance(sigma):
    k = gaussian_kernel1d(sigma)
    x = np.arange(len(k)) - len(k) // 2
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(k, k[::-1])
    assert np.sqrt((k * x * x).sum()) == pytest.approx(sigma, rel=2e-3)


def test_discrete_gaussian_semigroup():
    """Blurring by s1 then s2 equals blurring by sqrt(s1^2 + s2^2): the pre-filter arithmetic."""
    a, b = gaussian_kernel1d(0.6), gaussian_kernel1d(1.7)
    both = np.convolve(a, b)
    direct = gaussian_kernel1d(np.hypot(0.6, 1.7))
    pad = (len(both) - len(direct)) // 2
    if pad >= 0:
        direct = np.pad(direct, pad)
    else:
        both = np.pad(both, -pad)
    assert np.abs(both - direct).max() < 1e-5


@pytest.mark.parametrize("radius", [3.0, 6.0, 12.0])
def test_disc_kernel_has_sigma_half_radius(radius):
    d = disc_kernel(radius)
    assert d.sum() == pytest.approx(1.0)
    x = np.arange(d.shape[0]) - d.shape[0] // 2
    assert np.sqrt((d.sum(0) * x * x).sum()) == pytest.approx(radius / 2, rel=0.04)


def test_tiny_disc_is_identity():
    assert disc_kernel(1e-3).shape == (1, 1)


def test_gaussian_blur_keeps_constant_and_shape():
    img = np.full((7, 9), 0.3, np.float32)
    out = gaussian_blur(img, 2.0)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.allclose(out, 0.3, atol=1e-6)


def test_levels_bins_and_positions():
    bins = level_bins(DEFAULT_LEVELS)
    assert len(DEFAULT_LEVELS) == 20 and DEFAULT_LEVELS[0] == 0 and DEFAULT_LEVELS[-1] == pytest.approx(6.0)
    assert np.all(np.diff(bins) > 0) and len(bins) == 21
    # each level lies inside its own bin
    assert np.all((DEFAULT_LEVELS >= bins[:-1]) & (DEFAULT_LEVELS < bins[1:]))
    assert np.allclose(level_position(DEFAULT_LEVELS, DEFAULT_LEVELS), np.arange(20))
    assert np.all(np.diff(level_position(np.linspace(0, 6, 200), DEFAULT_LEVELS)) > 0)
