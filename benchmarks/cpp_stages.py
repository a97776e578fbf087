"""Stage times of the Python CPU estimator against the C++ estimator's stages, beside ONNX Runtime
classifying the same patches, in one run.

    python benchmarks/cpp_stages.py [--sizes 640x480,1920x1080] [--strides 8,16] [--repeat 3]
                                    [--threads 0]

For each size and stride: the Python DefocusEstimator (device cpu, every patch classified) runs on
a generated scene; the C++ pipeline (fastdefocus._native.Estimator, estimate_from_probabilities:
every stage but the classifier) runs on the same image with its classifier's probabilities of
every patch;
ONNX Runtime fp32 with 2 intra-op threads classifies the same normalised patches. Times are the
minimum over ``--repeat`` runs (wall clock, ms). The last columns: C++ non-classifier stages as a
share of the ONNX Runtime classify time, and the C++ map's largest difference from Python's.
``--threads 1,2`` runs every case with each thread count of the native stages (0: the cores the
process may use).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

STAGES = ("ingest", "patches", "splat", "refine", "snap")


def scene(height: int, width: int) -> np.ndarray:
    """A demo scene (colour dead leaves blurred by a layered sigma map) of the given size, tiled
    from a smaller one so that large sizes are quick to make."""
    from fastdefocus.scenes import demo_scene

    th, tw = min(height, 540), min(width, 960)
    tile, _, _ = demo_scene((th, tw), seed=0)
    reps = (-(-height // th), -(-width // tw), 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:height, :width])


def ort_session(onnx_path, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def run_case(height: int, width: int, stride: int, repeat: int, session, weights_dir, threads: int = 0) -> dict:
    import fastdefocus
    from fastdefocus import _native
    from fastdefocus.blur import gaussian_blur
    from fastdefocus.stages.filters import extract_patches
    from fastdefocus.stages.ingest import to_luminance

    image = scene(height, width)
    # every patch classified (no texture gating), so that the probabilities below are the ones
    # the estimator used
    est = fastdefocus.DefocusEstimator(device="cpu", stride=stride, threads=threads, flat_gate=0)
    python = []
    for _ in range(repeat):
        result = est.estimate(image)
        python.append(result.timings)
    lum = to_luminance(image)
    source = gaussian_blur(lum, est.sigma0) if est.sigma0 > 0 else lum
    patches, _ = extract_patches(source, size=est.patch_size, stride=stride, normalize=True,
                                 std_floor=est.info.std_floor)
    probs = est.classifier.probabilities(patches)

    cpp = _native.Estimator(str(weights_dir), stride=stride, threads=threads)
    native = []
    for _ in range(repeat):
        sigma, _, timings = cpp.estimate_from_probabilities(image, probs)
        native.append(timings)

    x = patches.reshape(len(patches), 1, patches.shape[-2], patches.shape[-1])
    classify = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for start in range(0, len(x), 1024):
            session.run(None, {"patches": x[start:start + 1024]})
        classify.append(time.perf_counter() - t0)

    def best(runs, key):
        return 1e3 * min(r[key] for r in runs)

    def best_sum(runs):
        return 1e3 * min(sum(r[k] for k in STAGES) for r in runs)

    row = {"size": f"{width}x{height}", "stride": stride, "threads": threads, "patches": int(len(patches)),
           "python": {k: best(python, k) for k in STAGES}, "cpp": {k: best(native, k) for k in STAGES},
           "python_stages_ms": best_sum(python), "cpp_stages_ms": best_sum(native),
           "ort_classify_ms": 1e3 * min(classify),
           "max_abs_diff_px": float(np.abs(sigma.astype(np.float64) - result.sigma).max())}
    row["speedup"] = row["python_stages_ms"] / row["cpp_stages_ms"]
    row["cpp_over_ort"] = row["cpp_stages_ms"] / row["ort_classify_ms"]
    return row


def table(rows) -> str:
    head = ["size", "stride", "threads", "patches", "Python stages ms", "C++ stages ms", "speed-up", "ORT classify ms (2 thr)",
            "C++ / ORT", "max |diff| px"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append(f"| {r['size']} | {r['stride']} | {r['threads']} | {r['patches']} | {r['python_stages_ms']:.1f} | "
                   f"{r['cpp_stages_ms']:.1f} | {r['speedup']:.1f}x | {r['ort_classify_ms']:.0f} | "
                   f"{100 * r['cpp_over_ort']:.1f} % | {r['max_abs_diff_px']:.1e} |")
    out += ["", "| size | stride | threads | impl | " + " | ".join(STAGES) + " |", "|" + "---|" * (4 + len(STAGES))]
    for r in rows:
        for impl in ("python", "cpp"):
            out.append(f"| {r['size']} | {r['stride']} | {r['threads']} | {impl} | "
                       + " | ".join(f"{r[impl][k]:.1f}" for k in STAGES) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x480,1920x1080", help="W x H, comma-separated")
    parser.add_argument("--strides", default="8,16")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (the minimum is kept)")
    parser.add_argument("--threads", default="0", help="native threads, comma-separated (0: all cores)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)

    from fastdefocus import _native
    from fastdefocus.stages.classify import WEIGHTS_DIR, load_model_info

    if not hasattr(_native, "Estimator"):
        parser.error("fastdefocus._native has no C++ estimator: rebuild it (pip install -e .)")
    session = ort_session(load_model_info().onnx_path, threads=2)
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        for stride in (int(s) for s in args.strides.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                rows.append(run_case(height, width, stride, args.repeat, session, WEIGHTS_DIR, threads))
                print(f"{size} stride {stride} threads {threads}: done", flush=True)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
