"""Speed of the whole CPU pipeline, with its baselines measured in the same run.

    python benchmarks/bench_estimator.py [--repeats 5] [--skip-loop]

Rows: 640x480 at stride 8 end to end with ONNX Runtime (the default) and with eager
torch batches (the runtime choice), 1920x1080 at stride 8 and 16, and the structure
of the official code: the same patches classified one at a time in eager torch.
Times are the best of --repeats runs (the machine is shared); ratios are within
this run.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

import fastdefocus
from fastdefocus.scenes import blur_by_map, dead_leaves, layered_sigma_map


def scene(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    sharp = dead_leaves(rng, size=max(h, w) // 2, colour=True)
    import cv2
    sharp = cv2.resize(sharp, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.clip(blur_by_map(sharp, layered_sigma_map(h, w, rng)) * 255 + 0.5, 0, 255).astype(np.uint8)


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_patch_loop(est, image) -> float:
    """The official structure: every patch through the network on its own (eager torch)."""
    import torch
    from fastdefocus.classify import load_torch_model
    from fastdefocus.filters import extract_patches
    from fastdefocus.ingest import to_luminance
    model = load_torch_model(est.info)
    lum = to_luminance(image)
    t0 = time.perf_counter()
    patches, grid = extract_patches(lum, size=32, stride=est.stride, normalize=True, std_floor=est.info.std_floor)
    labels = np.empty(len(patches), np.int64)
    with torch.inference_mode():
        for i in range(len(patches)):
            labels[i] = int(model(torch.from_numpy(patches[i][None, None])).argmax())
    coarse = est.info.levels[labels].reshape(grid).astype(np.float32)
    import cv2
    dense = cv2.resize(coarse, (lum.shape[1], lum.shape[0]), interpolation=cv2.INTER_LINEAR)
    fastdefocus.guided_filter(dense, lum, 16, 1e-3)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-loop", action="store_true", help="skip the slow one-patch-at-a-time baseline")
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}\n")
    vga, hd = scene(480, 640), scene(1080, 1920)
    rows = []
    est = fastdefocus.DefocusEstimator(stride=8)
    est.estimate(vga)
    t_vga, res = best_of(lambda: est.estimate(vga), args.repeats)
    n_vga = int(np.prod([(s - 32 + 7) // 8 + 1 for s in vga.shape[:2]]))
    rows.append(("640x480, stride 8", est.backend, n_vga, t_vga, res.timings))
    try:
        est_torch = fastdefocus.DefocusEstimator(stride=8, backend="torch")
        est_torch.estimate(vga)
        t_torch, res_t = best_of(lambda: est_torch.estimate(vga), args.repeats)
        rows.append(("640x480, stride 8", est_torch.backend, n_vga, t_torch, res_t.timings))
    except ImportError:
        t_torch = None
    for stride in (8, 16):
        e = fastdefocus.DefocusEstimator(stride=stride)
        t, r = best_of(lambda: e.estimate(hd), max(1, args.repeats // 2))
        n = int(np.prod([(s - 32 + stride - 1) // stride + 1 for s in hd.shape[:2]]))
        rows.append((f"1920x1080, stride {stride}", e.backend, n, t, r.timings))
    print("| image | classifier | patches | best time s | patches/s | classify s | refine s |")
    print("|---|---|---|---|---|---|---|")
    for name, backend, n, t, tim in rows:
        print(f"| {name} | {backend} | {n} | {t:.3f} | {n / t:.0f} | {tim['classify']:.3f} | {tim['refine']:.3f} |")
    print()
    if t_torch is not None:
        print(f"runtime choice at 640x480: ONNX Runtime is {t_torch / t_vga:.2f}x faster end to end than eager torch")
    if not args.skip_loop:
        t_loop = per_patch_loop(est, vga)
        print(f"one patch at a time (official structure, eager torch): {t_loop:.2f} s at 640x480 stride 8; "
              f"the batched pipeline is {t_loop / t_vga:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
