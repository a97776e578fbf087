"""Benchmark: native guided filter vs OpenCV (ximgproc) vs the NumPy reference.

Times ``fastdefocus.stages.filters.guided_filter`` (public API, validation included)
on a 1920x1080 float32 image with a gray guide at radius 4, 8, 16 and 32,
eps 1e-3 (best of N runs), against ``cv2.ximgproc.guidedFilter`` and the
float64 NumPy reference in the same process, and prints a Markdown table.

    python benchmarks/bench_guided_filter.py [--runs 10] [--ref-runs 2] [--threads 2]

``cv2.ximgproc`` comes with opencv-contrib-python-headless, which must not be
installed next to opencv-python(-headless) (both provide ``cv2``): use a
separate virtual environment, e.g.::

    python -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install numpy opencv-contrib-python-headless \\
        pybind11 scikit-build-core
    /tmp/benchvenv/bin/pip install --no-build-isolation --no-deps .
    /tmp/benchvenv/bin/python benchmarks/bench_guided_filter.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def best_ms(fn, runs: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def make_images(h: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    guide = 0.5 + 0.25 * np.sin(xx / 53.0) * np.cos(yy / 31.0) + 0.2 * rng.random((h, w))
    src = 0.6 * guide + 0.3 * (xx > w / 2) + 0.1 * rng.random((h, w))
    return src.astype(np.float32), np.clip(guide, 0, 1).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per native/OpenCV timing (best of)")
    parser.add_argument("--ref-runs", type=int, default=2, help="runs per reference timing (best of)")
    parser.add_argument("--threads", type=int, default=2, help="threads for native and OpenCV")
    parser.add_argument("--radii", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--eps", type=float, default=1e-3)
    parser.add_argument("--size", type=int, nargs=2, default=[1080, 1920], metavar=("H", "W"))
    parser.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    args = parser.parse_args(argv)

    # read by the native kernels on every call
    os.environ["FASTDEFOCUS_NUM_THREADS"] = str(args.threads)
    from fastdefocus import _native
    from fastdefocus.testing.reference import guided_filter_ref
    from fastdefocus.stages.filters import guided_filter

    try:
        import cv2
    except ImportError:
        cv2 = None
    ximgproc = getattr(cv2, "ximgproc", None) if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(args.threads)

    h, w = args.size
    src, guide = make_images(h, w)
    print(f"# guided filter, {w}x{h} float32, gray guide, eps={args.eps:g}, "
          f"{args.threads} thread(s), best of {args.runs} (reference: best of {args.ref_runs})")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"# python {platform.python_version()}, numpy {np.__version__}, "
          f"opencv {cv2.__version__ if cv2 is not None else 'missing'}, CPUs {os.cpu_count()}, "
          f"native threading: {'OpenMP' if _native.has_openmp else 'std::thread'}"
          + (f", load average {load[0]:.2f}" if load else ""))
    if ximgproc is None:
        print("# cv2.ximgproc is not available: install opencv-contrib-python-headless "
              "(in a separate venv, it conflicts with opencv-python[-headless]); "
              "the OpenCV column is skipped.")
    print()

    rows = []
    for r in args.radii:
        native = best_ms(lambda: guided_filter(guide, src, r, args.eps), args.runs)
        ocv = diff = None
        if ximgproc is not None:
            ocv = best_ms(lambda: ximgproc.guidedFilter(guide, src, r, args.eps), args.runs)
            diff = float(np.abs(ximgproc.guidedFilter(guide, src, r, args.eps)
                                - guided_filter(guide, src, r, args.eps)).max())
        ref = None
        if not args.no_reference:
            ref = best_ms(lambda: guided_filter_ref(guide, src, r, args.eps), max(args.ref_runs - 1, 1))
        rows.append((r, native, ocv, ref, diff))

    def fmt(x, spec="{:.2f}"):
        return "n/a" if x is None else spec.format(x)

    print("| radius | native ms | OpenCV ms | reference ms | OpenCV / native | reference / native "
          "| max abs diff vs OpenCV |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r, native, ocv, ref, diff in rows:
        print(f"| {r} | {native:.2f} | {fmt(ocv)} | {fmt(ref, '{:.1f}')} | "
              f"{fmt(None if ocv is None else ocv / native)} | "
              f"{fmt(None if ref is None else ref / native, '{:.1f}')} | {fmt(diff, '{:.2e}')} |")
    by_r = {r: (native, ocv) for r, native, ocv, _, _ in rows}
    if 4 in by_r and 32 in by_r:
        print()
        line = f"radius-32 / radius-4 time: native {by_r[32][0] / by_r[4][0]:.2f}"
        if by_r[4][1] is not None:
            line += f", OpenCV {by_r[32][1] / by_r[4][1]:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
