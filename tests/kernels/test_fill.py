"""The flat fill's kernels (fastdefocus.kernels.fill) against the float64 reference
fastdefocus.stages.fill (patch_means, fill_flat), under Numba's CUDA simulator (small grids)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from fastdefocus.kernels._compat import import_cuda  # noqa: E402
from fastdefocus.stages.fill import fill_flat, fill_ratio, pass_sigmas, patch_means  # noqa: E402

cuda = import_cuda()

from fastdefocus.kernels import fill as KF  # noqa: E402


def grid_case(rng, shape, flat_share):
    """Values in [0, 6) px; confidences in (0, 1], a ``flat_share`` of them 0; a guide (patch
    means in [0, 1]) with steps (a brighter block) and small noise."""
    values = (rng.random(shape) * 6).astype(np.float32)
    weights = rng.uniform(0.05, 1.0, shape)
    weights[rng.random(shape) < flat_share] = 0.0
    guide = 0.3 + rng.normal(0, 0.01, shape)
    guide[shape[0] // 3:, shape[1] // 2:] += 0.4
    return values, weights, guide


def gpu_fill(values, weights, guide, stride, **kw):
    d_values = cuda.to_device(values)
    out = KF.fill_flat(d_values, cuda.to_device(weights), cuda.to_device(guide), pass_sigmas(stride, 64.0),
                       fill_ratio(stride, 64.0), **kw)
    assert out is d_values
    return d_values.copy_to_host()


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (3, 2), (7, 9), (12, 17)])
@pytest.mark.parametrize("stride", [8, 16, 32])
@pytest.mark.parametrize("flat_share", [0.0, 0.4, 1.0])
def test_fill_matches_reference(shape, stride, flat_share):
    """Grids of one patch, one row or column, and more; no flat patch, some, all (then every
    patch keeps its own value: the prior alone)."""
    rng = np.random.default_rng([shape[0], shape[1], stride, int(10 * flat_share)])
    values, weights, guide = grid_case(rng, shape, flat_share)
    want = fill_flat(values, weights, guide, stride, 64.0)
    got = gpu_fill(values, weights, guide, stride)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    flat = weights <= 0
    np.testing.assert_array_equal(got[~flat], values[~flat])  # textured patches: untouched
    if flat_share == 1.0:
        np.testing.assert_allclose(got, values, atol=1e-5)  # nothing to take from: the prior


def test_fill_flattened_float32_inputs_and_reused_work():
    """As the GPU pipeline calls it: (ny * nx,) arrays with the grid, float32 weights, one
    FillWork for every frame of the grid; a flat patch beside the evidence takes it."""
    rng = np.random.default_rng(5)
    shape, stride = (10, 24), 16
    work = KF.FillWork(*shape)
    for _ in range(2):
        values, weights, guide = grid_case(rng, shape, 0.3)
        weights[:, :12] = 0.0  # a flat left half
        weights = weights.astype(np.float32)
        want = fill_flat(values, weights, guide, stride, 64.0)
        got = gpu_fill(values.ravel(), weights.ravel(), guide.ravel(), stride, grid=shape, work=work)
        np.testing.assert_allclose(got.reshape(shape), want, atol=1e-5, rtol=0)
    assert np.abs(got.reshape(shape)[:, 11] - values[:, 11]).max() > 0.1  # beside the evidence: filled


@pytest.mark.parametrize("shape,patch,stride", [((32, 32), 32, 8), ((72, 104), 32, 8), ((64, 96), 32, 16),
                                                ((40, 40), 8, 8)])
def test_patch_means_match_reference(shape, patch, stride):
    rng = np.random.default_rng(1)
    padded = rng.random(shape, dtype=np.float32)
    grid = ((shape[0] - patch) // stride + 1, (shape[1] - patch) // stride + 1)
    got = KF.patch_means(cuda.to_device(padded), grid, patch, stride).copy_to_host()
    np.testing.assert_allclose(got.reshape(grid), patch_means(padded, grid, patch, stride), rtol=1e-12, atol=1e-12)


def test_fill_rejects_mismatched_inputs():
    values = cuda.to_device(np.zeros((3, 4), np.float32))
    guide = cuda.to_device(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="grid"):
        KF.fill_flat(values, cuda.to_device(np.zeros((4, 3))), guide, [1.0], 1.0)
    with pytest.raises(ValueError, match="grid"):
        KF.fill_flat(cuda.to_device(np.zeros(12, np.float32)), cuda.to_device(np.zeros(12)), guide, [1.0], 1.0)
    with pytest.raises(TypeError, match="float32"):
        KF.fill_flat(cuda.to_device(np.zeros((3, 4))), guide, guide, [1.0], 1.0)
    with pytest.raises(TypeError, match="device array"):
        KF.fill_flat(np.zeros((3, 4), np.float32), guide, guide, [1.0], 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        KF.patch_means(cuda.to_device(np.zeros((40, 40), np.float32)), (3, 3), 32, 8)


@pytest.mark.parametrize("fill_sigma", [64.0, 0.0])
def test_pipeline_fills_a_flat_square_like_the_numpy_pipeline(fill_sigma):
    """The GPU pipeline (fill between the patch outputs and the splat) against the NumPy
    pipeline: a flat square inside a sharp frame reads sharp (about 2 px without the fill)."""
    from fastdefocus import DefocusEstimator
    from fastdefocus.cuda_pipeline import GpuPipeline
    from fastdefocus.scenes import dead_leaves
    from fastdefocus.stages.pipeline import estimate_numpy

    frame = dead_leaves(np.random.default_rng(3), 96, supersample=2).astype(np.float32)
    frame[24:72, 24:72] = 0.5
    inside = np.s_[28:68, 28:68]
    est = DefocusEstimator(device="cpu", snap=0, coarse_levels=0, fill_sigma=fill_sigma)
    got = GpuPipeline(est.config, est.info, backend="cpu").estimate(frame)
    sigma, confidence, _ = estimate_numpy(est, frame)
    if fill_sigma:
        assert np.median(sigma[inside]) < 0.5
    else:
        assert np.median(sigma[inside]) > 1.0
    # fp16 classifier input (GPU) against float32 (CPU), as in test_cuda_pipeline.py
    np.testing.assert_allclose(got.sigma, sigma, atol=0.03)
    np.testing.assert_allclose(got.confidence, confidence, atol=0.02)
    assert np.abs(got.sigma - sigma).mean() < 0.005
