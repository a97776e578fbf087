"""The camera degradation model of the training generator: PSFs keep their labelled sigma, the
camera stages keep the image's size and range, and every draw is reproducible."""
import math

import numpy as np
import pytest

from fastdefocus.scenes import dead_leaves
from fastdefocus.train.camera import (PSF_NAMES, CameraConfig, _second_moment_sigma, mosaic_noise_demosaic,
                                      psf_kernel, psf_margin, render)


@pytest.mark.parametrize("name", [n for n in PSF_NAMES if n != "gaussian"])
@pytest.mark.parametrize("sigma", [1.0, 2.5, 5.0])
def test_psf_second_moment_is_the_label(name, sigma):
    kernel = psf_kernel(name, sigma, np.random.default_rng(int(10 * sigma)))
    assert kernel is not None and kernel.min() >= 0 and math.isclose(kernel.sum(), 1.0, rel_tol=1e-9)
    assert abs(_second_moment_sigma(kernel) - sigma) <= 0.04 * sigma + 0.02
    assert kernel.shape[0] // 2 + 4 == psf_margin(sigma, kernel)


def test_unresolvable_psfs_fall_back_to_the_gaussian():
    rng = np.random.default_rng(0)
    assert psf_kernel("gaussian", 3.0, rng) is None
    assert psf_kernel("disc", 0.3, rng) is None  # a 0.6 px disc is not resolvable on the pixel grid
    assert psf_kernel("disc", 0.0, rng) is None


def test_uniform_disc_is_radius_over_two():
    kernel = psf_kernel("disc", 4.0, np.random.default_rng(1))
    assert kernel.shape[0] >= 2 * 8 + 1  # radius 8 px


def test_demosaic_of_a_flat_grey_is_flat_and_noise_scales_with_photons():
    flat = np.full((48, 48, 3), 0.25, np.float32)
    quiet = CameraConfig(full_well=(1e6, 1e6 + 1), read_noise=(0.0, 0.0), exposure=(1.0, 1.0))
    out = mosaic_noise_demosaic(flat, quiet, np.random.default_rng(2))
    assert out.shape == flat.shape and np.abs(out - 0.25).max() < 5e-3  # photon noise of 1e6 photons: 5e-4
    noisy = CameraConfig(full_well=(100.0, 101.0), read_noise=(0.0, 0.0), exposure=(1.0, 1.0))
    std = mosaic_noise_demosaic(flat, noisy, np.random.default_rng(2)).std()
    assert 0.02 < std < 0.08  # sqrt(25) / 100 = 0.05 per raw pixel, less after demosaicing


def test_render_is_reproducible_and_keeps_size():
    crop = dead_leaves(np.random.default_rng(5), size=64, colour=True)
    for seed in range(6):
        a = render(crop, 1.5, psf_kernel("disc", 1.5, np.random.default_rng(seed)), CameraConfig(),
                   np.random.default_rng(seed))
        b = render(crop, 1.5, psf_kernel("disc", 1.5, np.random.default_rng(seed)), CameraConfig(),
                   np.random.default_rng(seed))
        assert a.shape == (64, 64) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)


def test_more_lens_blur_means_less_detail_after_the_camera():
    crop = dead_leaves(np.random.default_rng(6), size=96, colour=True)
    cfg = CameraConfig(sharpen_prob=0.0, jpeg_prob=0.0)
    energy = []
    for sigma in (0.0, 1.0, 3.0):
        lum = render(crop, sigma, None, cfg, np.random.default_rng(0)).astype(np.float32)
        energy.append(float(np.mean(np.diff(lum, axis=1) ** 2)))
    assert energy[0] > energy[1] > energy[2]
