"""Batch throughput: images per second of ``fastdefocus.batch.run`` on this machine, engine
``local`` against engine ``ray`` (what the engine costs), with one in-process estimator for scale.

    python benchmarks/batch_bench.py [--n 200] [--folder DIR] [--engines local ray]
                                     [--workers W] [--threads-per-worker T] [estimator options]

The photos are N generated 640 x 480 JPEGs (dead-leaves scenes, each blurred by its own sigma;
written to a temporary folder) unless --folder gives a folder of photos (its first N). Each
engine runs twice on fresh output folders, on N / 4 photos and on all N, each run paying the
engine's fixed cost (starting its processes, or its Ray instance and actors, and loading the model
in each). Reported per row: wall time and images/s of the whole run (startup included), the
steady rate (3N / 4) / (wall(N) - wall(N / 4)), the startup that leaves (wall(N / 4) - (N / 4) /
steady), and the mean milliseconds a worker spent per photo (the summary's ``ms``: reading,
estimating; wall time, so it grows when other work shares the cores), and the CPU seconds per
photo of the whole run (this process and all its descendants, :class:`CpuMeter`: the engine's
overhead in CPU time, which other work on the machine changes little). "in-process" is one estimator in this
process using all the cores (no pool). Prints a Markdown table with the ratios to ``local``.
On a machine shared with other work the steady rate and the startup are noisy; the whole-run
images/s is the plain measurement. An engine named twice (``--engines local ray local ray``)
runs twice, alternating, to see the noise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fastdefocus.cli.options import add_estimator_arguments, config_from_args


def make_photos(folder: Path, n: int, seed: int = 0, width: int = 640, height: int = 480) -> list:
    """N JPEGs of width x height from 8 dead-leaves scenes, each cropped, flipped and blurred
    by its own sigma (0 to 3 px), so no two are alike."""
    from fastdefocus.scenes import dead_leaves
    rng = np.random.default_rng(seed)
    bases = [cv2.resize(dead_leaves(rng, 320, colour=True), (width + 64, height + 64),
                        interpolation=cv2.INTER_CUBIC) for _ in range(8)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = bases[i % len(bases)]
        y, x = rng.integers(0, 64, 2)
        img = base[y:y + height, x:x + width]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        sigma = rng.uniform(0, 3)
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
        path = folder / f"photo{i:05d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor((img * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


class CpuMeter:
    """CPU seconds (user + system) of this process and all its descendants while it runs: the
    local engine's workers; a local Ray's daemons and workers (children of its raylet, which
    the process's own rusage misses). /proc is read every ``interval`` seconds, so a process's
    last fraction of a second before it exits may be missed. Linux only (NaN elsewhere)."""

    def __init__(self, interval: float = 0.25):
        import threading
        self.interval, self.seen, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _sample(self) -> None:
        parents, times = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) + int(fields[12])) / self.tick
        mine, frontier = {os.getpid()}, [os.getpid()]
        children = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in mine:
                    mine.add(child)
                    frontier.append(child)
        for pid in mine:
            self.seen[pid] = max(self.seen.get(pid, 0.0), times.get(pid, 0.0))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        if os.path.isdir("/proc"):
            self._sample()
            self.start = dict(self.seen)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self._sample()

    @property
    def seconds(self) -> float:
        if not os.path.isdir("/proc"):
            return float("nan")
        return sum(t - self.start.get(pid, 0.0) for pid, t in self.seen.items())


def time_engine(engine: str, photos: list, work: Path, config, workers, threads, tag: str = "") -> dict:
    """Two runs on fresh folders, on a quarter of the photos and on all: the difference gives
    the steady rate, and the startup is what the small run took beyond its photos at that rate."""
    import pyarrow.parquet as pq
    from fastdefocus.batch import run
    from fastdefocus.batch.runner import _shape, available_cores
    w, t = _shape(workers, threads, len(available_cores()), "this process may use")
    kwargs = {"config": config, "workers": w, "threads_per_worker": t, "progress": False}
    small = min(len(photos) - 1, max(w, len(photos) // 4))
    t0 = time.perf_counter()
    run(photos[:small], work / f"{engine}{tag}-small", engine, **kwargs)
    wall_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    with CpuMeter() as meter:
        summary = run(photos, work / f"{engine}{tag}-all", engine, **kwargs)
    wall, cpu = time.perf_counter() - t0, meter.seconds
    rows = pq.read_table(summary, columns=["error", "ms"]).to_pylist()
    errors = sum(1 for r in rows if r["error"])
    if errors:
        print(f"warning: {errors} photos gave an error ({engine})", file=sys.stderr)
    steady = (len(photos) - small) / max(wall - wall_small, 1e-9)
    return {"engine": engine, "shape": f"{w} x {t}", "n": len(photos), "wall": wall,
            "startup": max(wall_small - small / steady, 0.0), "steady": steady,
            "ms": float(np.mean([r["ms"] for r in rows if not r["error"]])), "cpu": cpu / len(photos)}


def time_in_process(photos: list, config) -> dict:
    from fastdefocus.estimator import DefocusEstimator
    from fastdefocus.io.images import read_image
    from fastdefocus.batch.runner import available_cores
    meter = CpuMeter().__enter__()
    t0 = time.perf_counter()
    est = DefocusEstimator(config)
    startup = time.perf_counter() - t0
    times = []
    for p in photos:
        t1 = time.perf_counter()
        est.estimate(read_image(p))
        times.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    meter.__exit__(None, None, None)
    cpu = meter.seconds
    return {"engine": "in-process", "shape": f"1 x {len(available_cores())}", "n": len(photos), "wall": wall,
            "startup": startup, "steady": len(photos) / max(wall - startup, 1e-9), "ms": 1000 * float(np.mean(times)),
            "cpu": cpu / len(photos)}


def table(rows: list) -> str:
    local = next((r for r in rows if r["engine"] == "local"), None)
    lines = ["| engine | workers x threads | photos | wall s | images/s | startup s | steady images/s | "
             "ms per image in a worker | CPU s per image | images/s vs local | steady vs local |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = r["n"] / r["wall"]
        ratio = f"{rate / (local['n'] / local['wall']):.2f}" if local else "-"
        steady = f"{r['steady'] / local['steady']:.2f}" if local else "-"
        lines.append(f"| {r['engine']} | {r['shape']} | {r['n']} | {r['wall']:.1f} | {rate:.2f} | "
                     f"{r['startup']:.1f} | {r['steady']:.2f} | {r['ms']:.0f} | {r['cpu']:.2f} | {ratio} | {steady} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="photos (default 200)")
    ap.add_argument("--folder", type=Path, default=None, help="photos from this folder (its first N, sorted)")
    ap.add_argument("--engines", nargs="+", choices=("in-process", "local", "ray"),
                    default=["in-process", "local", "ray"])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads-per-worker", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default a temporary one, removed)")
    add_estimator_arguments(ap)
    args = ap.parse_args(argv)
    config = config_from_args(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="fastdefocus-batch-bench-"))
    try:
        if args.folder:
            from fastdefocus.batch.inputs import expand
            photos = [Path(p) for p, kind, _, _ in expand([args.folder]) if kind == "image"][:args.n]
        else:
            t0 = time.perf_counter()
            photos = make_photos(work / "photos", args.n)
            print(f"generated {len(photos)} photos in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        rows = []
        for index, engine in enumerate(args.engines):
            print(f"timing {engine} ...", file=sys.stderr)
            if engine == "in-process":
                rows.append(time_in_process(photos, config))
            else:
                rows.append(time_engine(engine, photos, work, config, args.workers, args.threads_per_worker,
                                        tag=f"-{index}"))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        h, w = cv2.imread(str(photos[0])).shape[:2]
        print(f"\n{len(photos)} photos of {w} x {h}, stride {config.stride}, {cores} cores\n")
        print(table(rows))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
