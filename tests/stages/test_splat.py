import numpy as np

from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.refine import refine, resize
from fastdefocus._geometry import tent_weights
from fastdefocus.stages.splat import patch_statistics, sharpness_maps, splat


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
    # (sharp dead leaves already vary in sharpness from window to window, so with the nine
    # windows and AGREEMENT_TAU 0.2 a uniform sharp patch scores low too: 0.037 here, 0.020
    # straddling; the blurred side, 0.8 and more, is what the straddling ones lose against)
    assert agree_straddle[:, 6:8].mean() < 0.6 * agree_uniform[:, 6:8].mean()
    assert agree_straddle[:, 6:8].mean() < 0.05 * agree_straddle[:, 10:].mean()
    # entirely blurred or entirely sharp patches away from it are not penalised
    assert agree_straddle[:, 10:].mean() > 0.8
    assert np.all((agree_uniform > 0) & (agree_uniform <= 1))


def test_window_energy_stays_inside_the_window():
    """A window's gradient energy uses only differences between two of its own pixels."""
    from fastdefocus.stages.splat import _gradient_energy_sums, _gradient_tables

    image = np.zeros((40, 40))
    image[:, 16:] = 1.0  # a step just right of and just below the 16 x 16 window at (0, 0)
    image[16:, :] = 1.0
    tables = _gradient_tables(image)
    zero = np.array([0])
    assert _gradient_energy_sums(tables, zero, zero, 16)[0, 0] == 0.0
    # one pixel more and the step is inside: 17 rows of one unit difference (plus the row step)
    assert _gradient_energy_sums(tables, zero, zero, 17)[0, 0] > 0.0


def test_splat_lift_leans_towards_higher_values():
    values = np.zeros((5, 6), np.float32)
    values[:, 3:] = 3.0
    conf = np.ones((5, 6), np.float32)
    plain, w0 = splat(values, conf, 32, 8)
    lifted, w1 = splat(values, conf, 32, 8, lift=0.5)
    assert np.allclose(w0, w1)  # the cell weights do not depend on the lift
    assert np.all(lifted >= plain - 1e-6)
    mixed = (plain > 0.1) & (plain < 2.9)
    assert mixed.any() and np.all(lifted[mixed] > plain[mixed] + 0.1)
    # uniform values stay exact, and lift 0 is the weighted mean
    assert np.allclose(splat(np.full((5, 6), 2.0), conf, 32, 8, lift=2.0)[0], 2.0)
    assert np.allclose(splat(values, conf, 32, 8, lift=0.0)[0], plain)


def test_nine_windows_catch_a_boundary_through_the_middle():
    """A boundary through the middle of a patch mixes all four quadrants alike; the
    windows between them still see it."""
    sharp = dead_leaves(np.random.default_rng(1), size=128)
    straddle = sharp.copy()
    straddle[:, 64:] = gaussian_blur(sharp, 3.0)[:, 64:]
    _, agree = patch_statistics(straddle, (13, 13), 32, 8, 0.02)
    _, agree_uniform = patch_statistics(sharp, (13, 13), 32, 8, 0.02)
    # patch column 6 (x0 = 48) has the boundary at x = 64, its middle
    assert agree[:, 6].mean() < 0.3 * agree_uniform[:, 6].mean()


def test_cell_match_keeps_a_sharp_patch_out_of_the_blurred_side():
    # left half sharp, right half blurred: a patch straddling the boundary reads as sharp;
    # with the cell match it counts less in the cells of the blurred side it covers
    sharp = dead_leaves(np.random.default_rng(3), size=128)[:64]
    image = np.concatenate([sharp[:, :64], gaussian_blur(sharp, 3.0)[:, 64:]], axis=1)
    grid = (5, 13)
    patch_sharp, cell_sharp = sharpness_maps(image, grid, 32, 8)
    assert patch_sharp.shape == grid and cell_sharp.shape == (8, 16)
    assert cell_sharp[:, :7].mean() > cell_sharp[:, 9:].mean() + 0.2
    values = np.where(np.arange(13)[None, :] * 8 + 16 < 64, 0.5, 3.0) * np.ones((5, 1))
    values[:, 6] = 0.5  # the patch straddling the boundary (x 48 .. 80) reads as sharp
    conf = np.ones(grid)
    plain, _ = splat(values, conf, 32, 8)
    matched, _ = splat(values, conf, 32, 8, sharpness=(patch_sharp, cell_sharp))
    blurred_side = slice(8, 10)  # cells x 64 .. 80: blurred, covered by the straddling patch
    assert np.all(matched[:, blurred_side] > plain[:, blurred_side] + 0.05)
    # no sharpness excess anywhere: the same as without the match
    same, _ = splat(values, conf, 32, 8, sharpness=(np.zeros(grid), np.zeros((8, 16))))
    assert np.allclose(same, plain)


def test_refine_without_iterations_is_bilinear():
    cells = np.arange(12, dtype=np.float32).reshape(3, 4)
    lum = np.random.default_rng(0).random((24, 32)).astype(np.float32)
    dense = refine(cells, np.ones_like(cells), lum, 8, 4.0, 1e-3, 0)
    assert dense.shape == (24, 32) and dense.dtype == np.float32
    assert np.allclose(dense, resize(cells, 24, 32))


# ---------------------------------------------------------------------- boundary snap

def _boundary_case(seed=0, h=64, w=96, high=3.0):
    """A dead-leaves image sharp left of x = w/2 and blurred by ``high`` px right of it, and
    the ramp a patch-sized splat leaves there (0 at w/2 - 12 to ``high`` at w/2 + 12)."""
    from fastdefocus.scenes import blur_by_map
    sharp = dead_leaves(np.random.default_rng(seed), size=w)[:h]
    truth = np.zeros((h, w), np.float32)
    truth[:, w // 2:] = high
    image = blur_by_map(sharp, truth)
    x = np.arange(w, dtype=np.float32)
    ramp = np.clip((x - (w / 2 - 12)) / 24, 0, 1) * high
    return image, truth, np.ascontiguousarray(np.broadcast_to(ramp, (h, w)), dtype=np.float32)


def test_snap_puts_a_ramp_back_on_its_sides():
    from fastdefocus.stages.snap import snap_boundaries
    errors = []
    for seed in range(3):
        image, truth, ramp = _boundary_case(seed)
        snapped = snap_boundaries(ramp, image)
        near = slice(48 - 8, 48 + 8)
        before = np.abs(ramp - truth)[:, near].mean()
        after = np.abs(snapped - truth)[:, near].mean()
        errors.append((before, after))
        # only the ramp moves, and only within the two sides' values
        assert snapped.min() >= 0.0 and snapped.max() <= 3.0
        np.testing.assert_array_equal(snapped[:, :20], ramp[:, :20])
        np.testing.assert_array_equal(snapped[:, -20:], ramp[:, -20:])
    before, after = np.mean(errors, axis=0)
    assert after < 0.75 * before, errors


def test_snap_leaves_flat_maps_and_radius_zero_alone():
    from fastdefocus._params import SNAP_MIN_SPAN
    from fastdefocus.stages.snap import snap_boundaries
    image, _, ramp = _boundary_case()
    np.testing.assert_array_equal(snap_boundaries(ramp, image, radius=0), ramp)
    gentle = ramp * (0.9 * SNAP_MIN_SPAN / 3.0)  # spans less than SNAP_MIN_SPAN in every window
    np.testing.assert_array_equal(snap_boundaries(gentle, image), gentle)
    # a featureless image gives no evidence either way: nothing moves
    flat = np.full_like(image, 0.5)
    np.testing.assert_array_equal(snap_boundaries(ramp, flat), ramp)
