"""The splat stage as Numba CUDA kernels (the GPU twin of :mod:`fastdefocus.stages.splat`,
with the per-patch outputs of :mod:`fastdefocus.stages.classify`):

- :func:`patch_statistics`: the agreement half of
  :func:`fastdefocus.stages.splat.patch_statistics` (its texture half, the patch
  standard deviation, comes from :func:`fastdefocus.kernels.patches.extract_patches`)
  and :func:`fastdefocus.stages.splat.sharpness_maps`, from one pass over the image;
- :func:`patch_outputs`: calibrated expected sigma, confidence and splat weight
  per patch (:mod:`fastdefocus.stages.classify` and the estimator), with the texture
  gating of the CPU pipeline (flat patches take the probabilities of a flat patch);
- :func:`splat`: :func:`fastdefocus.stages.splat.splat` and ``tent_sum`` (one thread
  per cell gathering its covering patches, no atomics).

The constants (:data:`~fastdefocus._params.SHARPNESS_FLOOR`, :data:`~fastdefocus._params.LIFT_EXP_MAX`,
:data:`~fastdefocus._params.MATCH_TAU`) come from :mod:`fastdefocus._params`. Every host function
takes an optional ``stream`` and allocates nothing unless an output is omitted.
"""

from __future__ import annotations

import math

import numpy as np

from fastdefocus._geometry import tent_weights, window_offsets
from fastdefocus._params import LIFT_EXP_MAX, MATCH_TAU, SHARPNESS_FLOOR

from ._device import _device_const, _grid1, _grid2, cuda

__all__ = ["patch_statistics", "patch_outputs", "splat"]


# ------------------------------------------------------------------- patch geometry
#
# The same definitions as fastdefocus.stages.splat (tested equal): the kernels sit below the
# CPU stages and import none of them.


# ----------------------------------------------------------------- patch statistics


# Every window the statistics need (the 16-px half-patch windows, the 32-px patches, the
# stride cells) is a union of g x g "base cells" (g = gcd of the stride and the window
# offsets: 8 at strides 8, 16 and 32). One pass measures each base cell once: the sums of
# the values and their squares, the squared neighbour differences inside it (of the image
# and of its 1-px blur), and those across its right and bottom edges. A window's sums are
# then the sums over its base cells, plus the edge terms between its own cells only:
# exactly the window sums of fastdefocus.stages.splat, each pixel read about once in all.
_S1, _S2, _FINE, _COARSE, _FINE_R, _COARSE_R, _FINE_D, _COARSE_D = range(8)


@cuda.jit
def _base_cells(padded, coarse, g, stats):
    cx, cy = cuda.grid(2)
    if cy >= stats.shape[1] or cx >= stats.shape[2]:
        return
    h, w = padded.shape
    y0 = cy * g
    x0 = cx * g
    s1 = 0.0
    s2 = 0.0
    fine = 0.0
    blurred = 0.0
    fine_r = 0.0
    blurred_r = 0.0
    fine_d = 0.0
    blurred_d = 0.0
    for y in range(y0, y0 + g):
        for x in range(x0, x0 + g):
            v = float(padded[y, x])
            c = float(coarse[y, x])
            s1 += v
            s2 += v * v
            if x + 1 < w:
                d = float(padded[y, x + 1]) - v
                e = float(coarse[y, x + 1]) - c
                if x + 1 < x0 + g:
                    fine += d * d
                    blurred += e * e
                else:
                    fine_r += d * d
                    blurred_r += e * e
            if y + 1 < h:
                d = float(padded[y + 1, x]) - v
                e = float(coarse[y + 1, x]) - c
                if y + 1 < y0 + g:
                    fine += d * d
                    blurred += e * e
                else:
                    fine_d += d * d
                    blurred_d += e * e
    stats[_S1, cy, cx] = s1
    stats[_S2, cy, cx] = s2
    stats[_FINE, cy, cx] = fine
    stats[_COARSE, cy, cx] = blurred
    stats[_FINE_R, cy, cx] = fine_r
    stats[_COARSE_R, cy, cx] = blurred_r
    stats[_FINE_D, cy, cx] = fine_d
    stats[_COARSE_D, cy, cx] = blurred_d


@cuda.jit(device=True, inline=True)
def _window_energy(stats, inner, right, down, cy, cx, m):
    """Squared neighbour differences inside the window of m x m base cells at (cy, cx)."""
    e = 0.0
    for a in range(m):
        for b in range(m):
            e += stats[inner, cy + a, cx + b]
            if b + 1 < m:
                e += stats[right, cy + a, cx + b]
            if a + 1 < m:
                e += stats[down, cy + a, cx + b]
    return e


@cuda.jit
def _patch_windows(stats, nx, stride, g, offsets, half, patch, min_std, tau, floor, agreement, patch_sharp):
    i = cuda.grid(1)
    if i >= agreement.shape[0]:
        return
    y0 = (i // nx) * stride
    x0 = (i % nx) * stride
    m = half // g
    n = float(half * half)
    hi = -math.inf
    lo = math.inf
    count = 0
    for a in range(offsets.shape[0]):
        cy = (y0 + offsets[a]) // g
        for b in range(offsets.shape[0]):
            cx = (x0 + offsets[b]) // g
            s1 = 0.0
            s2 = 0.0
            for u in range(m):
                for v in range(m):
                    s1 += stats[_S1, cy + u, cx + v]
                    s2 += stats[_S2, cy + u, cx + v]
            mean = s1 / n
            if math.sqrt(max(s2 / n - mean * mean, 0.0)) >= min_std:
                fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, cy, cx, m)
                blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, cy, cx, m)
                sharp = math.log(max(fine, 1e-12) / max(blurred, 1e-12))
                count += 1
                hi = max(hi, sharp)
                lo = min(lo, sharp)
    log_ratio = hi - lo if count >= 2 else 0.0
    r = log_ratio / tau
    agreement[i] = math.exp(-r * r)
    mp = patch // g
    fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, y0 // g, x0 // g, mp)
    blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, y0 // g, x0 // g, mp)
    patch_sharp[i] = math.log((fine + floor) / (blurred + floor))


@cuda.jit
def _stride_cells(stats, m, floor, out):
    cx, cy = cuda.grid(2)
    if cy < out.shape[0] and cx < out.shape[1]:
        fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, cy * m, cx * m, m)
        blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, cy * m, cx * m, m)
        out[cy, cx] = math.log((fine + floor) / (blurred + floor))


def patch_statistics(padded, coarse, grid, patch: int, stride: int, flat_std: float, tau: float,
                     agreement=None, patch_sharp=None, cell_sharp=None, scratch=None, stream=0):
    """The splat's statistics of every patch and cell, from one pass over the image:

    - ``agreement`` (ny * nx,): how well each patch's half-patch windows agree on sharpness
      (:func:`fastdefocus.stages.splat.patch_statistics`);
    - ``patch_sharp`` (ny * nx,) and ``cell_sharp`` (the stride cells): log sharpness of
      each patch and cell (:func:`fastdefocus.stages.splat.sharpness_maps`).

    ``padded``: the source padded to the grid; ``coarse``: it blurred by a Gaussian of
    :data:`~fastdefocus._params.SHARPNESS_BLUR` px;
    ``scratch``: a dict keeping the base-cell buffer between calls. Returns the three
    float32 device arrays."""
    ny, nx = grid
    k = patch // stride
    cells = (ny + k - 1, nx + k - 1)
    alloc = lambda shape: cuda.device_array(shape, dtype=np.float32, stream=stream)  # noqa: E731
    agreement = alloc(ny * nx) if agreement is None else agreement
    patch_sharp = alloc(ny * nx) if patch_sharp is None else patch_sharp
    cell_sharp = alloc(cells) if cell_sharp is None else cell_sharp
    half = patch // 2
    offsets = np.asarray(window_offsets(patch), np.int64)
    g = math.gcd(stride, patch, *[int(o) for o in offsets if o]) if half >= 2 else math.gcd(stride, patch)
    base = (padded.shape[0] // g, padded.shape[1] // g)
    scratch = {} if scratch is None else scratch
    stats = scratch.get(("base", base))
    if stats is None:
        stats = scratch[("base", base)] = cuda.device_array((8,) + base, dtype=np.float64, stream=stream)
    gr, t = _grid2(*base)
    _base_cells[gr, t, stream](padded, coarse, g, stats)
    if half >= 2:
        _patch_windows[_grid1(ny * nx) + (stream,)](stats, nx, stride, g, _device_const("offsets", offsets),
                                                    half, patch, 2.0 * flat_std, float(tau), SHARPNESS_FLOOR,
                                                    agreement, patch_sharp)
    else:  # no differences inside a window: nothing to compare (as the CPU path)
        _fill[_grid1(ny * nx) + (stream,)](agreement, 1.0)
        _patch_sharp_only[_grid1(ny * nx) + (stream,)](stats, nx, stride, g, patch, SHARPNESS_FLOOR, patch_sharp)
    gr, t = _grid2(*cells)
    _stride_cells[gr, t, stream](stats, stride // g, SHARPNESS_FLOOR, cell_sharp)
    return agreement, patch_sharp, cell_sharp


@cuda.jit
def _patch_sharp_only(stats, nx, stride, g, patch, floor, patch_sharp):
    i = cuda.grid(1)
    if i < patch_sharp.shape[0]:
        y0 = (i // nx) * stride
        x0 = (i % nx) * stride
        mp = patch // g
        fine = _window_energy(stats, _FINE, _FINE_R, _FINE_D, y0 // g, x0 // g, mp)
        blurred = _window_energy(stats, _COARSE, _COARSE_R, _COARSE_D, y0 // g, x0 // g, mp)
        patch_sharp[i] = math.log((fine + floor) / (blurred + floor))


@cuda.jit
def _fill(out, value):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = value


@cuda.jit
def _patch_outputs(probs, first, levels, knots_x, knots_y, sigma0, std, agreement, flat_std, gate_std, flat,
                   sigma_out, conf_out, weight_out):
    b = cuda.grid(1)
    if b >= probs.shape[0]:
        return
    i = first + b
    if i >= sigma_out.shape[0]:
        return
    n = probs.shape[1]
    # texture gating: a patch too flat to carry blur evidence takes the probabilities of a flat
    # (all-zero) patch, as the CPU pipeline, which does not classify it
    gated = float(std[i]) < gate_std
    raw = 0.0
    best = 0
    best_p = -1.0
    for j in range(n):
        p = float(flat[j]) if gated else float(probs[b, j])
        raw += p * levels[j]
        if p > best_p:
            best_p = p
            best = j
    conf = 0.0
    for j in range(max(best - 1, 0), min(best + 2, n)):
        conf += float(flat[j]) if gated else float(probs[b, j])
    conf = min(max(conf, 0.0), 1.0)
    # np.interp: clamped at both ends, linear between the knots
    k = knots_x.shape[0]
    if raw <= knots_x[0]:
        s = knots_y[0]
    elif raw >= knots_x[k - 1]:
        s = knots_y[k - 1]
    else:
        j = 1
        while knots_x[j] < raw:
            j += 1
        x0 = knots_x[j - 1]
        x1 = knots_x[j]
        t = (raw - x0) / (x1 - x0) if x1 > x0 else 0.0
        s = knots_y[j - 1] + t * (knots_y[j] - knots_y[j - 1])
    s32 = np.float32(s)
    if sigma0 > 0:
        s32 = np.float32(math.sqrt(max(float(s32) * float(s32) - sigma0 * sigma0, 0.0)))
    texture = min(max((float(std[i]) - 0.5 * flat_std) / (1.5 * flat_std), 0.0), 1.0)
    c = np.float32(conf) * texture
    sigma_out[i] = s32
    conf_out[i] = c
    weight_out[i] = c * float(agreement[i])


def patch_outputs(probs, first: int, levels, knots, sigma0: float, std, agreement, flat_std: float,
                  sigma_out, conf_out, weight_out, stream=0, flat=None, gate_std: float = 0.0):
    """Patches ``first .. first + len(probs) - 1``: calibrated expected sigma (minus the
    pre-filter in quadrature), confidence (probability within one level of the best,
    times the texture ramp of the estimator) and splat weight (confidence x agreement).

    Texture gating: a patch whose ``std`` is below ``gate_std`` (the estimator's ``flat_gate``
    x ``flat_std``; 0: none) takes the probabilities ``flat`` (a float32 (L,) device array: the
    classifier's on an all-zero patch) instead of its row of ``probs``."""
    d_levels = _device_const("levels", np.asarray(levels, np.float64))
    d_kx = _device_const("knots_x", np.ascontiguousarray(knots[:, 0], np.float64))
    d_ky = _device_const("knots_y", np.ascontiguousarray(knots[:, 1], np.float64))
    gate_std = float(gate_std)
    if flat is None:
        if gate_std > 0:
            raise ValueError("patch_outputs: gate_std > 0 needs the flat probabilities (flat)")
        flat = _device_const("no_flat", np.zeros(len(levels), np.float32))  # never read
    elif flat.shape[0] != len(levels):
        raise ValueError(f"patch_outputs: flat must have {len(levels)} probabilities, got {flat.shape[0]}")
    n = probs.shape[0]
    _patch_outputs[_grid1(n) + (stream,)](probs, int(first), d_levels, d_kx, d_ky, float(sigma0), std,
                                          agreement, float(flat_std), gate_std, flat, sigma_out, conf_out,
                                          weight_out)


# ---------------------------------------------------------------------------- splat


@cuda.jit
def _splat(values, weights, conf, ny, nx, tent, eps, lift, lift_max, match, patch_sharp, cell_sharp,
           match_tau, cell_values, cell_weights, cell_conf):
    cx, cy = cuda.grid(2)
    hc, wc = cell_values.shape
    if cy >= hc or cx >= wc:
        return
    k = tent.shape[0]
    num = 0.0
    den = 0.0
    mix_den = 0.0
    plain = 0.0
    cover = 0.0
    csum = 0.0
    for a in range(k):
        py = cy - a
        if py < 0 or py >= ny:
            continue
        for b in range(k):
            px = cx - b
            if px < 0 or px >= nx:
                continue
            t = tent[a] * tent[b]
            i = py * nx + px
            v = float(values[i])
            wt = float(weights[i])
            mix = wt
            if lift > 0:
                mix = wt * math.exp(min(lift * v, lift_max))
            tm = t
            if match:
                excess = max(float(patch_sharp[i]) - float(cell_sharp[cy, cx]), 0.0) / match_tau
                tm = t * math.exp(-excess * excess)
            num += tm * mix * v
            mix_den += tm * mix
            den += tm * wt
            plain += t * v
            cover += t
            csum += t * float(conf[i])
    if den > eps:
        cell_values[cy, cx] = num / max(mix_den, 2.2250738585072014e-308)
    else:
        cell_values[cy, cx] = plain / cover
    cell_weights[cy, cx] = den / cover
    cell_conf[cy, cx] = csum / cover


def splat(values, weights, conf, grid, patch: int, stride: int, cell_values=None, cell_weights=None,
          cell_conf=None, eps: float = 1e-6, lift: float = 0.0, sharpness=None, match_tau=None, stream=0):
    """Per-patch (ny * nx,) values, weights and confidences onto the (ny + k - 1, nx + k - 1)
    cells (:func:`fastdefocus.stages.splat.splat`, and the tent mean of the confidence).
    ``sharpness``: (patch sharpness (ny * nx,), cell sharpness (cells)) for the cell match."""
    ny, nx = grid
    k = patch // stride
    shape = (ny + k - 1, nx + k - 1)
    outs = [o if o is not None else cuda.device_array(shape, dtype=np.float32, stream=stream)
            for o in (cell_values, cell_weights, cell_conf)]
    tent = _device_const("tent", tent_weights(patch, stride).astype(np.float64))
    g, t = _grid2(*shape)
    match = sharpness is not None
    patch_sharp, cell_sharp = sharpness if match else (values, outs[0])
    tau = float(MATCH_TAU if match_tau is None else match_tau)
    _splat[g, t, stream](values, weights, conf, ny, nx, tent, float(eps), float(lift), LIFT_EXP_MAX, match,
                         patch_sharp, cell_sharp, tau, *outs)
    return tuple(outs)
