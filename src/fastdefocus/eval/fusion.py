"""Multi-focus fusion on the Lytro pairs: fastdefocus.fuse against two baselines.

    python benchmarks/fusion.py [--data DIR] [--pairs lytro_01 ...] [--json OUT.json] [estimator options]

(the ``fusion`` section of ``fastdefocus eval`` runs the same comparison.)

Each pair is a folder ``<data>/eval/mfif/<pair>`` holding ``<pair>_A.*`` and ``<pair>_B.*``
(default: lytro_01 to lytro_10; data from $FASTDEFOCUS_DATA, else ../shared/data). Every
method fuses every pair in the same run and is scored by the same metric code
(fastdefocus.metrics.fusion: Q^AB/F, Q_MI, Q_CB); the time per pair is wall-clock on this
machine, the defocus estimation of both shots included for fastdefocus.fuse.

Baselines, both built here on fastdefocus's guided filter:

- GFF: guided filtering fusion (Li, Kang and Hu, "Image fusion with guided filtering",
  IEEE TIP 22(7), 2013) as the paper gives it: two-scale decomposition with a 31 x 31 mean
  filter, saliency |Laplacian| smoothed by a Gaussian (11 x 11, sigma 5), binary weight maps
  of the most salient shot, refined by the guided filter (base: r 45, eps 0.3; detail:
  r 7, eps 1e-6) with each shot as guide, normalised. Deviation: the guide is each shot's
  luminance (the paper's colour guide needs a colour guided filter).
- Laplacian energy: per pixel the shot with the larger energy of the Laplacian in a
  15 x 15 window wins; the binary maps are smoothed by the guided filter (r 8, eps 1e-3,
  the same seam smoothing fastdefocus.fuse uses) with each shot as guide, normalised.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fastdefocus.apps import fuse
from fastdefocus.stages.filters import box_filter, guided_filter
from fastdefocus.metrics.fusion import fusion_scores
from fastdefocus.io.images import read_image
from fastdefocus.stages.ingest import to_luminance

DEFAULT_PAIRS = [f"lytro_{i:02d}" for i in range(1, 11)]


def _as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _normalised(maps):
    maps = np.stack(maps)
    return maps / np.maximum(maps.sum(axis=0), 1e-6)


def _winner_masks(saliency):
    """Binary maps P_n = 1 where shot n is the most salient (first one on ties)."""
    best = np.stack(saliency).argmax(axis=0)
    return [(best == n).astype(np.float32) for n in range(len(saliency))]


def gff(images):
    """Guided filtering fusion (Li, Kang and Hu 2013) of uint8 shots."""
    shots = [_as_float(im) for im in images]
    lums = [to_luminance(im) for im in images]
    saliency = [cv2.GaussianBlur(np.abs(cv2.Laplacian(lum, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)),
                                 (11, 11), 5, borderType=cv2.BORDER_REFLECT_101) for lum in lums]
    masks = _winner_masks(saliency)
    base_w = _normalised([guided_filter(lum, p, 45, 0.3) for p, lum in zip(masks, lums)])
    detail_w = _normalised([guided_filter(lum, p, 7, 1e-6) for p, lum in zip(masks, lums)])
    fused = 0.0
    for shot, wb, wd in zip(shots, base_w, detail_w):
        base = cv2.blur(shot, (31, 31), borderType=cv2.BORDER_REFLECT_101)
        fused = fused + wb[..., None] * base + wd[..., None] * (shot - base)
    return _to_uint8(fused)


def laplacian_energy_fusion(images, window_radius: int = 7, radius: int = 8, eps: float = 1e-3):
    """Decision by local Laplacian energy (15 x 15 window), smoothed by the guided filter."""
    shots = [_as_float(im) for im in images]
    lums = [to_luminance(im) for im in images]
    energy = []
    for lum in lums:
        lap = cv2.Laplacian(lum, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
        energy.append(box_filter(lap * lap, window_radius))
    masks = _winner_masks(energy)
    weights = _normalised([np.clip(guided_filter(lum, p, radius, eps), 0, 1) for p, lum in zip(masks, lums)])
    return _to_uint8(sum(w[..., None] * shot for w, shot in zip(weights, shots)))


def find_pair(folder: Path, pair: str):
    shots = []
    for side in "AB":
        found = sorted(folder.glob(f"{pair}_{side}.*"))
        if not found:
            return None
        shots.append(found[0])
    return shots


def compare(est, folder: Path, pairs) -> dict:
    """Fuse every pair of ``folder`` (``<folder>/<pair>/<pair>_A.*`` and ``_B.*``) with
    fastdefocus.fuse (the estimator ``est``: its options and weights), GFF and the
    Laplacian-energy decision; score each with the same metric code. Returns the per-pair rows,
    the means per method (``summary``) and the Markdown ``table``. FileNotFoundError names the
    pairs that are missing."""
    folder = Path(folder)
    found, missing = [], []
    for pair in pairs:
        shots = find_pair(folder / pair, pair)
        (found.append((pair, shots)) if shots else missing.append(pair))
    if missing:
        raise FileNotFoundError(f"missing pairs under {folder}: {', '.join(missing)} (expected "
                                f"{folder}/<pair>/<pair>_A.* and <pair>_B.*; set --data or FASTDEFOCUS_DATA)")
    est.estimate(np.zeros((64, 64), np.uint8))  # warm-up: runtime initialisation is not per-pair cost
    methods = {
        "fastdefocus.fuse": lambda images: fuse(images, est)[0],
        "GFF (Li et al. 2013)": gff,
        "Laplacian energy + guided filter": laplacian_energy_fusion,
    }
    rows = {name: [] for name in methods}
    for pair, paths in found:
        images = [read_image(p) for p in paths]
        if images[0].ndim == 3 and images[0].shape[2] == 4:
            images = [im[..., :3] for im in images]
        line = [pair]
        for name, method in methods.items():
            t0 = time.perf_counter()
            fused = method(images)
            seconds = time.perf_counter() - t0
            scores = fusion_scores(fused, *images)
            rows[name].append({"pair": pair, "seconds": seconds, **scores})
            line.append(f"{name.split(' ')[0]} {scores['q_abf']:.4f}")
        print("  ".join(line), file=sys.stderr, flush=True)
    summary = {name: {k: float(np.mean([r[k] for r in per_pair])) for k in ("q_abf", "q_mi", "q_cb", "seconds")}
               for name, per_pair in rows.items()}
    ours = summary["fastdefocus.fuse"]["q_abf"]
    best_baseline = max(v["q_abf"] for k, v in summary.items() if k != "fastdefocus.fuse")
    wins = sum(r["q_abf"] > max(rows[k][i]["q_abf"] for k in rows if k != "fastdefocus.fuse")
               for i, r in enumerate(rows["fastdefocus.fuse"]))
    lines = [f"{len(found)} pairs from {folder}; estimator backend {est.backend}, stride {est.stride}\n",
             "| method | Q^AB/F | Q_MI | Q_CB | s / pair |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {m['q_abf']:.4f} | {m['q_mi']:.4f} | {m['q_cb']:.4f} | {m['seconds']:.2f} |"
              for name, m in summary.items()]
    lines.append(f"\nfastdefocus.fuse minus the best baseline: {ours - best_baseline:+.4f} Q^AB/F "
                 f"(higher on {wins} of {len(found)} pairs)")
    return {"data": str(folder), "backend": est.backend, "stride": est.stride, "summary": summary,
            "pairs": rows, "table": "\n".join(lines)}
