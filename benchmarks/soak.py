"""Soak: a long stream of frames through ``DefocusEstimator.stream`` on the CPU.

    python benchmarks/soak.py [--frames 5000] [--width 320] [--height 240] [--stride 8]

Resident memory (VmRSS from /proc/self/status, Linux) is sampled every
--sample-every frames. The baseline is the sample at the end of the warm-up
(--warmup frames, default a tenth of the run, at least 50): arenas, caches and
the runtime's buffers are sized by then. Reported: growth from the baseline to
the last sample and to the highest sample after warm-up (%), and the slope of a
line fitted to the post-warm-up samples (KiB per 1000 frames), which tells a
leak (steady slope) from noise. The last frame's result must equal the same
frame estimated alone (bit for bit): a stream keeps no state between frames.

Exits 1 if the growth reaches --max-growth percent (default 5) or the last
frame differs. Only the last result is kept, so the stream itself holds no
growing state.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastdefocus
from fastdefocus.cli.options import add_estimator_arguments, config_from_args
from fastdefocus.scenes import blur_by_map, dead_leaves, layered_sigma_map


def rss_kib() -> int:
    """Resident set size of this process in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status (Linux only)")


def make_frames(count: int, height: int, width: int, seed: int = 0) -> list:
    """A few distinct uint8 RGB scenes with layered defocus, cycled through by the stream."""
    import cv2
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        sharp = dead_leaves(rng, size=max(height, width), colour=True)[:height, :width]
        sharp = cv2.resize(sharp, (width, height), interpolation=cv2.INTER_NEAREST)
        blurred = blur_by_map(sharp, layered_sigma_map(height, width, rng))
        frames.append(np.clip(blurred * 255 + 0.5, 0, 255).astype(np.uint8))
    return frames


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--distinct", type=int, default=7, help="distinct scenes cycled through")
    ap.add_argument("--warmup", type=int, default=None, help="frames before the baseline (default frames/10, >= 50)")
    ap.add_argument("--sample-every", type=int, default=None, help="frames between RSS samples (default frames/100)")
    ap.add_argument("--max-growth", type=float, default=5.0, help="percent; more fails the run")
    add_estimator_arguments(ap, device="cpu")
    args = ap.parse_args(argv)
    config = config_from_args(args)
    if args.frames < 2:
        ap.error("--frames must be >= 2")
    warmup = min(args.warmup if args.warmup is not None else max(50, args.frames // 10), args.frames - 1)
    every = max(1, args.sample_every if args.sample_every is not None else args.frames // 100)

    scenes = make_frames(args.distinct, args.height, args.width)
    est = fastdefocus.DefocusEstimator(config)
    print(f"soak: {args.frames} frames of {args.width}x{args.height}, stride {config.stride}, "
          f"backend {est.backend}; warm-up {warmup} frames, RSS every {every} frames", flush=True)

    def frames():
        for i in range(args.frames):
            yield scenes[i % len(scenes)]

    samples = []  # (frame index, RSS KiB)
    start_rss = rss_kib()
    t0 = time.perf_counter()
    last = None
    for i, result in enumerate(est.stream(frames())):
        last = result
        if (i + 1) % every == 0 or i + 1 == warmup or i + 1 == args.frames:
            samples.append((i + 1, rss_kib()))
        if (i + 1) % max(1, args.frames // 10) == 0:
            print(f"  frame {i + 1}: RSS {samples[-1][1] / 1024:.1f} MiB, "
                  f"{(i + 1) / (time.perf_counter() - t0):.1f} frames/s", flush=True)
    elapsed = time.perf_counter() - t0

    after = [(n, kib) for n, kib in samples if n >= warmup]
    baseline = after[0][1]
    final = after[-1][1]
    peak = max(kib for _, kib in after)
    growth = 100.0 * (final - baseline) / baseline
    peak_growth = 100.0 * (peak - baseline) / baseline
    xs = np.array([n for n, _ in after], np.float64)
    ys = np.array([kib for _, kib in after], np.float64)
    slope = float(np.polyfit(xs, ys, 1)[0]) * 1000 if len(after) >= 3 else float("nan")

    last_frame = scenes[(args.frames - 1) % len(scenes)]
    fresh = fastdefocus.DefocusEstimator(config)
    identical = all(np.array_equal(alone.sigma, last.sigma) and np.array_equal(alone.confidence, last.confidence)
                    for alone in (est.estimate(last_frame), fresh.estimate(last_frame)))

    print(f"frames/s {args.frames / elapsed:.1f} ({elapsed:.1f} s)")
    print(f"RSS before the stream {start_rss / 1024:.1f} MiB; after warm-up (frame {after[0][0]}) "
          f"{baseline / 1024:.1f} MiB; last (frame {after[-1][0]}) {final / 1024:.1f} MiB; "
          f"highest after warm-up {peak / 1024:.1f} MiB")
    print(f"growth after warm-up: {growth:+.2f}% (highest {peak_growth:+.2f}%), "
          f"slope {slope:+.1f} KiB per 1000 frames over {len(after)} samples")
    print(f"last frame identical to the same frame estimated alone (same and fresh estimator): {identical}")
    ok = identical and growth < args.max_growth and peak_growth < args.max_growth
    print("PASS" if ok else f"FAIL (growth limit {args.max_growth}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
