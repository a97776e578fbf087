import numpy as np

from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.splat import patch_statistics, splat, tent_weights


def test_tent_weights_peak_at_centre():
    w = tent_weights(32, 8)
    assert len(w) == 4 and w[1] == w[2] > w[0] == w[3] > 0
    assert len(tent_weights(32, 32)) == 1


def test_splat_constant_and_confidence_weighting():
    values = np.full((5, 6), 2.0, np.float32)
    conf = np.ones((5, 6), np.float32)
    cells, cell_conf = splat(values, conf, 32, 8)
    assert cells.shape == (8, 9) and np.allclose(cells, 2.0) and np.allclose(cell_conf, 1.0)
    # a confident patch wins over unconfident neighbours in the cells they share
    values[2, 2], conf[:] = 5.0, 0.01
    conf[2, 2] = 1.0
    cells, _ = splat(values, conf, 32, 8)
    assert cells[3, 3] > 4.5


def test_straddling_patches_disagree():
    """A patch half sharp, half blurred has lower quadrant agreement than a uniform one."""
    sharp = dead_leaves(np.random.default_rng(0), size=128)
    blurred = gaussian_blur(sharp, 3.0)
    uniform = sharp.copy()
    straddle = sharp.copy()
    straddle[:, 64:] = blurred[:, 64:]
    grid = (13, 13)
    _, agree_uniform = patch_statistics(uniform, grid, 32, 8, 0.02)
    _, agree_straddle = patch_statistics(straddle, grid, 32, 8, 0.02)
    # patch columns 6 and 7 (x0 = 48, 56) have the boundary x = 64 inside a quadrant pair
    assert agree_straddle[:, 6:8].mean() < 0.3 * agree_uniform[:, 6:8].mean()
    # entirely blurred or entirely sharp patches away from it are not penalised
    assert agree_straddle[:, 10:].mean() > 0.8
    assert np.all((agree_uniform > 0) & (agree_uniform <= 1))
