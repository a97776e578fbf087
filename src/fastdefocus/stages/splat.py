"""The splat stage: per-patch values on the stride grid -> a map of stride-sized cells.

Patch (i, j) covers cells i .. i + k - 1 (k = patch / stride). Each cell takes the
confidence-weighted average of the patches covering it, and a patch counts more
in the cells near its centre (a tent over the patch): at a focus boundary the
patches centred on the pixel's own side then dominate, which keeps a sharp
neighbour from pulling a blurred region's estimate down. Patches whose half-patch
windows disagree on sharpness (they straddle a boundary) count less
(:func:`patch_statistics`), and the mean leans towards the higher of the covering
values (``lift``, :data:`SPLAT_LIFT`), since a straddling patch reads as sharp.
A patch that looks sharper than a cell it covers also counts less in that cell
(the cell match: :func:`sharpness_maps`, :data:`MATCH_TAU`).
"""
from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import AGREEMENT_TAU, LIFT_EXP_MAX, MATCH_TAU, SHARPNESS_BLUR, SHARPNESS_FLOOR, SPLAT_LIFT
from fastdefocus._geometry import tent_weights, window_offsets
from fastdefocus.blur import gaussian_blur


def tent_sum(values: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Sum over the covering patches of tent weight x value, on the (ny + k - 1, nx + k - 1) cells."""
    ny, nx = values.shape
    w = tent_weights(patch, stride)
    k = len(w)
    out = np.zeros((ny + k - 1, nx + k - 1), np.float64)
    for a in range(k):
        for b in range(k):
            out[a:a + ny, b:b + nx] += (w[a] * w[b]) * values
    return out


def splat(values: np.ndarray, weights: np.ndarray, patch: int, stride: int, eps: float = 1e-6,
          lift: float = 0.0, sharpness=None, match_tau: float | None = None):
    """Splat (ny, nx) patch values with per-patch weights onto the (ny + k - 1, nx + k - 1) cells.

    ``lift`` >= 0 turns the weighted mean into a soft maximum: for the cell values (not for
    the cell weights) each patch's weight is multiplied by ``exp(lift * value)``, so that
    where covering patches disagree the higher sigmas count more. Meant for values >= 0
    (sigmas), where the factor is >= 1.

    ``sharpness`` = (patch_sharpness (ny, nx), cell_sharpness (ny + k - 1, nx + k - 1)), from
    :func:`sharpness_maps`, adds the cell match: a patch counts in a cell (value and weight)
    times ``exp(-(max(patch - cell, 0) / match_tau)^2)`` (``match_tau`` defaults to
    :data:`MATCH_TAU`), so a patch that looks sharper than the cell itself (it straddles a
    focus boundary and the cell is on its blurred side) counts less there.

    Returns
    -------
    cell_values : float32 (ny + k - 1, nx + k - 1)
        Mean of the covering patches' values weighted by weight x tent (x the lift factor;
        the plain tent mean where no covering patch has weight).
    cell_weights : float32, same shape
        Tent-weighted mean of the covering patches' weights.
    """
    weights = weights.astype(np.float64)
    values64 = values.astype(np.float64)
    coverage = tent_sum(np.ones(values.shape), patch, stride)
    plain = tent_sum(values64, patch, stride)
    mix = weights * np.exp(np.minimum(lift * values64, LIFT_EXP_MAX)) if lift > 0 else weights
    if sharpness is None:
        den = tent_sum(weights, patch, stride)
        mix_den = tent_sum(mix, patch, stride) if lift > 0 else den
        num = tent_sum(mix * values64, patch, stride)
    else:
        tau = MATCH_TAU if match_tau is None else float(match_tau)
        patch_sharp, cell_sharp = sharpness
        ny, nx = values.shape
        w = tent_weights(patch, stride)
        k = len(w)
        den, mix_den, num = (np.zeros((ny + k - 1, nx + k - 1)) for _ in range(3))
        for a in range(k):
            for b in range(k):
                match = np.exp(-(np.maximum(patch_sharp - cell_sharp[a:a + ny, b:b + nx], 0.0) / tau) ** 2)
                t = (w[a] * w[b]) * match
                den[a:a + ny, b:b + nx] += t * weights
                mix_den[a:a + ny, b:b + nx] += t * mix
                num[a:a + ny, b:b + nx] += t * mix * values64
    cell_values = np.where(den > eps, num / np.maximum(mix_den, np.finfo(np.float64).tiny), plain / coverage)
    return cell_values.astype(np.float32), (den / coverage).astype(np.float32)


def energy_tables(padded: np.ndarray):
    """The gradient-energy integral tables of the image and of its 1-px blur, which
    :func:`patch_statistics` and :func:`sharpness_maps` both read (compute them once)."""
    return _gradient_tables(padded), _gradient_tables(gaussian_blur(padded, SHARPNESS_BLUR))


def sharpness_maps(padded: np.ndarray, grid, patch: int, stride: int, tables=None):
    """Log sharpness (gradient energy before / after a 1-px Gaussian blur, summed over the
    window, each plus :data:`SHARPNESS_FLOOR`) of each patch of the grid and of each
    stride x stride cell; the measure of :func:`patch_statistics`, about log 2 for sharp
    edges and 0 for blurred or flat content.

    Returns
    -------
    patch_sharpness : float64 (ny, nx)
    cell_sharpness : float64 (ny + k - 1, nx + k - 1), k = patch / stride
    """
    ny, nx = grid
    k = patch // stride
    fine, coarse = energy_tables(padded) if tables is None else tables

    def log_ratio(ys, xs, size):
        return np.log((_gradient_energy_sums(fine, ys, xs, size) + SHARPNESS_FLOOR)
                      / (_gradient_energy_sums(coarse, ys, xs, size) + SHARPNESS_FLOOR))

    patch_sharp = log_ratio(np.arange(ny) * stride, np.arange(nx) * stride, patch)
    cell_sharp = log_ratio(np.arange(ny + k - 1) * stride, np.arange(nx + k - 1) * stride, stride)
    return patch_sharp, cell_sharp


def _gradient_tables(image: np.ndarray):
    """Integral images of the squared horizontal and vertical differences, kept apart so that
    a window sums only the differences between two of its own pixels."""
    image = image.astype(np.float64)
    return _integral(np.diff(image, axis=1) ** 2), _integral(np.diff(image, axis=0) ** 2)


def _gradient_energy_sums(tables, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Sum of squared neighbour differences inside each size x size window at (ys, xs)."""
    dx, dy = tables
    return _window_sums(dx, ys, xs, size, size - 1) + _window_sums(dy, ys, xs, size - 1, size)


def _integral(image: np.ndarray) -> np.ndarray:
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    table[1:, 1:] = image.astype(np.float64).cumsum(0).cumsum(1)
    return table


def _window_sums(table: np.ndarray, ys: np.ndarray, xs: np.ndarray, height: int,
                 width: int | None = None) -> np.ndarray:
    """Sums of the height x width windows (width defaults to height) at rows ys, columns xs."""
    width = height if width is None else width
    return (table[np.ix_(ys + height, xs + width)] - table[np.ix_(ys, xs + width)]
            - table[np.ix_(ys + height, xs)] + table[np.ix_(ys, xs)])


def patch_statistics(padded: np.ndarray, grid, patch: int, stride: int, flat_std: float, tables=None):
    """Per patch of the grid: the luminance standard deviation, and how well its half-patch
    windows agree on sharpness, in (0, 1].

    A patch that straddles a focus boundary looks sharp overall, so it misleads the
    blurred side. Its windows give it away: their sharpness disagrees. The 3 x 3
    half-overlapping half-size windows (:func:`window_offsets`) catch a boundary wherever
    it crosses the patch, also through its middle, where each quadrant would be mixed.
    A window's sharpness is the ratio of its gradient energy (squared differences of
    neighbouring pixels both inside it) before and after a 1-px Gaussian blur: about 2 for
    a sharp edge, falling to 1 as blur grows, and nearly independent of contrast and
    content. Agreement is exp(-(log(max / min) / tau)^2) over the textured windows.
    """
    ny, nx = grid
    ys, xs = np.arange(ny) * stride, np.arange(nx) * stride
    lum = _integral(padded)
    lum2 = _integral(padded.astype(np.float64) ** 2)
    fine, coarse = energy_tables(padded) if tables is None else tables

    def std(y0, x0, size):
        n = float(size * size)
        mean = _window_sums(lum, y0, x0, size) / n
        return np.sqrt(np.maximum(_window_sums(lum2, y0, x0, size) / n - mean * mean, 0.0))

    patch_std = std(ys, xs, patch)
    half = patch // 2
    if half < 2:  # no differences inside a window: nothing to compare
        return patch_std, np.ones(tuple(grid))
    sharpness, textured = [], []
    for dy in window_offsets(patch):
        for dx in window_offsets(patch):
            e_fine = _gradient_energy_sums(fine, ys + dy, xs + dx, half)
            e_coarse = _gradient_energy_sums(coarse, ys + dy, xs + dx, half)
            sharpness.append(np.log(np.maximum(e_fine, 1e-12) / np.maximum(e_coarse, 1e-12)))
            textured.append(std(ys + dy, xs + dx, half) >= 2.0 * flat_std)
    sharpness, textured = np.stack(sharpness), np.stack(textured)
    hi = np.where(textured, sharpness, -np.inf).max(0)
    lo = np.where(textured, sharpness, np.inf).min(0)
    comparable = textured.sum(0) >= 2
    log_ratio = np.where(comparable, hi - lo, 0.0)
    agreement = np.exp(-(log_ratio / AGREEMENT_TAU) ** 2)
    return patch_std, agreement
