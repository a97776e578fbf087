"""The CPU pipeline in NumPy, stage by stage (float32): what ``DefocusEstimator`` computed before the
native C++ pipeline (cpp/estimator.cpp) took over its CPU path. Kept as the readable reference
that the native pipeline is tested against (tests/cpp/, to float rounding), and for experiments
that swap one stage (tests/test_estimator.py)."""
from __future__ import annotations

import time

import numpy as np

from fastdefocus._params import SPLAT_LIFT
from fastdefocus._validate import check_channel_order, check_image, check_pixel_count
from fastdefocus.blur import gaussian_blur
from fastdefocus.stages.classify import (apply_calibration, confidence_from_probs, dihedral_probabilities,
                                         expected_sigma_raw)
from fastdefocus.stages.coarse import raise_with_coarse_levels
from fastdefocus.stages.filters import extract_patches
from fastdefocus.stages.fill import fill_flat, patch_means
from fastdefocus.stages.ingest import checked_image_luminance, to_luminance
from fastdefocus.stages.refine import pad_to, refine, resize
from fastdefocus.stages.snap import snap_boundaries
from fastdefocus.stages.splat import energy_tables, patch_statistics, sharpness_maps, splat, tent_sum


def _check_padded_size(est, h: int, w: int, name: str = "image") -> None:
    """Within ``est.max_pixels`` also once padded to a patch (thin images are: that is what costs
    memory; one patch's worth is always allowed)."""
    p = est.patch_size
    if est.max_pixels is not None:
        check_pixel_count(max(h, p), max(w, p), max(est.max_pixels, p * p),
                          name=f"{name} padded to the {p}-px patch")


def checked_luminance(est, image, channel_order: str = "rgb") -> np.ndarray:
    """The luminance of ``image`` (float32 (H, W)), validated: within ``est.max_pixels``, also
    once padded to a patch. The NumPy reference of :func:`checked_native_image`."""
    channel_order = check_channel_order(channel_order)
    lum = to_luminance(image, max_pixels=est.max_pixels, channel_order=channel_order)
    _check_padded_size(est, *lum.shape)
    return lum


#: Pixel types the native pipeline reads as they are (its luminance is bit for bit
#: :func:`to_luminance`'s: ``tests/cpp/test_stages.py``).
_NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype("=u2"), np.dtype("=f4"))


def checked_native_image(est, image, channel_order: str = "rgb", name: str = "image") -> tuple[np.ndarray, bool]:
    """``image`` validated as :func:`checked_luminance` validates it, for the native pipeline:
    ``(array, bgr)``. uint8, uint16 and float32 arrays are handed over as they are (the
    native ingest makes their luminance, without NumPy's passes over the frame); other dtypes
    as their luminance (float32 (H, W), ``bgr`` False)."""
    channel_order = check_channel_order(channel_order)
    arr = check_image(image, name, max_pixels=est.max_pixels)
    if arr.dtype not in _NATIVE_DTYPES:
        arr, channel_order = checked_image_luminance(arr, channel_order), "rgb"
    _check_padded_size(est, arr.shape[0], arr.shape[1], name)
    return arr, channel_order == "bgr"


def estimate_numpy(est, image, *, channel_order: str = "rgb"):
    """(sigma, confidence, timings) of ``image`` by the NumPy stages with the options, model and
    classifier runtime of the CPU estimator ``est``."""
    timings = {}
    t0 = time.perf_counter()
    lum = checked_luminance(est, image, channel_order)
    h, w = lum.shape
    p, s = est.patch_size, est.stride
    source = gaussian_blur(lum, est.sigma0) if est.sigma0 > 0 else lum
    t1 = time.perf_counter()
    timings["ingest"] = t1 - t0
    patches, grid = extract_patches(source, size=p, stride=s, normalize=True,
                                    std_floor=est.info.std_floor, threads=est.threads)
    ny, nx = grid
    k = p // s
    padded_h, padded_w = (ny + k - 1) * s, (nx + k - 1) * s
    padded_source = pad_to(source, padded_h, padded_w)
    tables = energy_tables(padded_source)  # read by both statistics below
    texture, agreement = patch_statistics(padded_source, grid, p, s, est.flat_std, tables)
    t2 = time.perf_counter()
    timings["patches"] = t2 - t1
    # texture gating: a patch whose std is below flat_gate x flat_std (its texture confidence,
    # hence its weight, is 0) is not classified; it takes the probabilities of a flat patch (whose
    # dihedral views are all the same patch)
    flat = texture.ravel() < est.config.flat_gate * est.flat_std
    probs = np.empty((len(patches), len(est.info.levels)), np.float32)
    if (~flat).any():
        probs[~flat] = dihedral_probabilities(est.classifier.probabilities, patches[~flat], est.config.tta)
    if flat.any():
        probs[flat] = est.classifier.probabilities(np.zeros((1,) + patches.shape[1:], np.float32))[0]
    t3 = time.perf_counter()
    timings["classify"] = t3 - t2
    sigma_patch = apply_calibration(expected_sigma_raw(probs, est.info.levels), est.info.calibration)
    if est.sigma0 > 0:
        sigma_patch = np.sqrt(np.maximum(sigma_patch ** 2 - est.sigma0 ** 2, 0.0))
    texture_conf = np.clip((texture.ravel() - 0.5 * est.flat_std) / (1.5 * est.flat_std), 0.0, 1.0)
    conf_patch = (confidence_from_probs(probs) * texture_conf).reshape(grid)
    # flat patches (confidence 0) take the confidence-weighted value of their neighbourhood
    sigma_patch = sigma_patch.reshape(grid)
    if est.config.fill_sigma > 0 and (conf_patch <= 0).any():
        sigma_patch = fill_flat(sigma_patch, conf_patch, patch_means(padded_source, grid, p, s), s,
                                est.config.fill_sigma)
    # patches straddling a focus boundary (their windows disagree) count less in the map,
    # but the reported confidence stays the classifier's and the texture's; such patches
    # look as sharp as their sharp side, so the splat is a soft maximum (SPLAT_LIFT)
    # and a patch sharper than a cell it covers counts less in that cell (the cell match)
    cell_sigma, cell_weight = splat(sigma_patch, conf_patch * agreement, p, s,
                                    lift=SPLAT_LIFT, sharpness=sharpness_maps(padded_source, grid, p, s, tables))
    cell_conf = tent_sum(conf_patch, p, s) / tent_sum(np.ones(grid), p, s)
    t4 = time.perf_counter()
    timings["splat"] = t4 - t3
    guide = pad_to(lum, padded_h, padded_w)
    dense = refine(cell_sigma, cell_weight, guide, s, est.radius, est.eps, est.iterations,
                   threads=est.threads)
    dense_conf = np.clip(resize(cell_conf.astype(np.float32), padded_h, padded_w), 0.0, 1.0)
    sigma = np.ascontiguousarray(np.clip(dense[:h, :w], 0.0, est.info.sigma_max))
    confidence = np.ascontiguousarray(dense_conf[:h, :w])
    t5 = time.perf_counter()
    timings["refine"] = t5 - t4
    if est.snap:  # within [local min, local max] of the clipped map: stays clipped
        sigma = snap_boundaries(sigma, lum, est.snap)
    t6 = time.perf_counter()
    timings["snap"] = t6 - t5
    if est.coarse_levels:
        level = est.level_estimator()
        raise_with_coarse_levels(sigma, confidence, lum, est.coarse_levels, p,
                                 lambda small: estimate_numpy(level, small)[:2])
    timings["coarse"] = time.perf_counter() - t6
    timings["total"] = time.perf_counter() - t0
    return sigma, confidence, timings
