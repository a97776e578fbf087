"""The CPU speed benchmark: per stage and end to end, with the baselines timed in the same run.

For 640x480 and 1920x1080 frames at stride 8 and 16:

- fastdefocus (the default runtime, ONNX Runtime) end to end, with the time of each stage
  and the peak resident memory of the process;
- the same pipeline with eager torch batches (the runtime choice);
- the official method's structure with every patch through the network on its own
  (:func:`fastdefocus.eval.peers.official_structure`; its classification is timed on the first
  ``loop_patches`` patches and extrapolated to all of them, and says so);
- the guided filter at full resolution (radius 16, eps 1e-3, the plain filter of the
  official structure): the native kernel, ``cv2.ximgproc.guidedFilter`` (when the
  OpenCV build has it) and the NumPy float64 reference.

Every configuration runs in a fresh process, so that its peak memory is its own. Times are
the best of ``repeats`` runs after a warm-up (the machine may be shared); ratios compare
numbers of this run only. When a CUDA GPU is present, the GPU benchmark
(``python -m fastdefocus.eval.gpu_bench``) runs as well and its output is included.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fastdefocus._params import TTA_VIEWS
from fastdefocus.eval._common import emit_report, run_info

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}
#: The sizes of the per-stage table by default (the stream table: STREAM_SIZES).
DEFAULT_SIZES = ("640x480", "1920x1080")
STREAM_SIZES = ("640x480", "1280x720")
GF_RADIUS, GF_EPS = 16, 1e-3
STAGES = ("ingest", "patches", "classify", "splat", "refine", "coarse")
#: The uniform blur (Gaussian sigma, px) of the coarse-level timing's blurred frame.
COARSE_BLUR = 12.0


def make_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A synthetic defocused RGB uint8 frame (dead leaves blurred by a layered sigma map)."""
    import cv2

    from fastdefocus.scenes import blur_by_map, dead_leaves, layered_sigma_map
    rng = np.random.default_rng(seed)
    leaves = dead_leaves(rng, size=min(320, max(height, width)), colour=True)  # upscaled: content barely matters
    sharp = cv2.resize(leaves, (width, height), interpolation=cv2.INTER_LINEAR)
    blurred = blur_by_map(sharp, layered_sigma_map(height, width, rng))
    return np.clip(blurred * 255 + 0.5, 0, 255).astype(np.uint8)


def _rss_now() -> int:
    """Resident set size of this process in bytes (Linux), else 0."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _rss_peak() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _best(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            best, out = elapsed, value
    return best, out


def measure(kind: str, frame_path: str, stride: int, repeats: int, loop_patches: int = 0) -> dict:
    """One configuration, meant to run in a fresh process (see the module docstring).

    kind: "ours" (default runtime), "torch" (eager torch batches) or "loop" (official
    structure, one patch at a time)."""
    import fastdefocus
    from fastdefocus.eval.peers import official_structure, patch_labels_one_at_a_time
    from fastdefocus.stages.filters import extract_patches
    from fastdefocus.stages.ingest import to_luminance

    frame = np.load(frame_path)
    backend = "torch" if kind == "torch" else "auto"
    est = fastdefocus.DefocusEstimator(stride=stride, backend=backend)
    idle = _rss_now()
    out = {"kind": kind, "backend": est.backend, "stride": stride, "shape": list(frame.shape[:2])}
    if kind in ("ours", "torch"):
        est.estimate(frame)  # warm-up
        seconds, result = _best(lambda: est.estimate(frame), repeats)
        out.update(seconds=seconds, stages={k: result.timings[k] for k in STAGES})
        patches, _ = extract_patches(to_luminance(frame), size=est.patch_size, stride=stride)
        out["patches"] = len(patches)
    else:
        stages = {}
        official_structure(frame, est, timings=stages)  # batched: the same patches and refinement
        lum = to_luminance(frame)
        patches, _ = extract_patches(lum, size=est.patch_size, stride=stride, normalize=True,
                                     std_floor=est.info.std_floor)
        n = len(patches) if loop_patches <= 0 else min(loop_patches, len(patches))
        patch_labels_one_at_a_time(patches[:2], est)  # warm-up (loads the model)
        t0 = time.perf_counter()
        patch_labels_one_at_a_time(patches[:n], est)
        classify = (time.perf_counter() - t0) * len(patches) / n
        out.update(seconds=stages["patches"] + classify + stages["refine"], patches=len(patches),
                   timed_patches=n, stages={"patches": stages["patches"], "classify": classify,
                                            "refine": stages["refine"]})
        try:
            import torch  # noqa: F401
            out["backend"] = "torch-cpu, batch of 1"
        except ImportError:
            out["backend"] = f"{est.backend}, batch of 1"
    out["peak_rss"] = _rss_peak()
    out["peak_above_idle"] = max(out["peak_rss"] - idle, 0)
    return out


#: frames estimated side by side in the frames-per-second table's last columns (``stream(workers=)``)
STREAM_WORKERS = 2


def measure_stream(size: str, stride: int, frames: int, flat_gate: float | None = None,
                   backend: str = "auto", model: str = "default") -> dict:
    """Frames per second and latency of the default estimator (meant for a fresh process) on
    ``frames`` different generated frames: one ``estimate`` per frame, and ``stream`` (the
    frames read ahead by a thread); beside it, in the same run, ONNX Runtime fp32 classifying
    every patch of each frame at that stride (all of them, whatever the gating skips), the
    figure a frame's time is divided by. ``flat_gate``: the estimator's (None: default)."""
    import fastdefocus
    from fastdefocus.stages.filters import extract_patches
    from fastdefocus.stages.ingest import to_luminance

    h, w = SIZES[size]
    seq = [make_frame(h, w, seed=k) for k in range(frames)]
    options = {} if flat_gate is None else {"flat_gate": flat_gate}
    est = fastdefocus.DefocusEstimator(stride=stride, device="cpu", backend=backend, model=model, **options)
    # the baseline: ONNX Runtime fp32 of the default model on every patch, whatever the estimator runs
    fp32 = est.classifier if est.backend == "onnxruntime" and model == "default" else fastdefocus.DefocusEstimator(
        stride=stride, device="cpu").classifier
    est.estimate(seq[0])  # warm-up
    per_frame, classified, patches = [], 0, 0
    for frame in seq:
        t0 = time.perf_counter()
        result = est.estimate(frame)
        per_frame.append(time.perf_counter() - t0)
        classified += result.counts.get("classified", 0)
        patches += result.counts.get("patches", 0)
    stream = []
    t_prev = time.perf_counter()
    for _ in est.stream(iter(seq)):
        now = time.perf_counter()
        stream.append(now - t_prev)
        t_prev = now
    # two frames at a time, each on one of the two workers' share of the threads; the latency is
    # a frame's own time on its worker, the fps the rate at which results come out
    list(est.stream(iter(seq[:2]), workers=STREAM_WORKERS))  # warm-up: makes the workers' estimators
    workers, latency = [], []
    t_prev = time.perf_counter()
    for result in est.stream(iter(seq), workers=STREAM_WORKERS):
        now = time.perf_counter()
        workers.append(now - t_prev)
        latency.append(result.timings["total"])
        t_prev = now
    baseline = []
    for frame in seq:
        all_patches, _ = extract_patches(to_luminance(frame), size=est.patch_size, stride=stride, normalize=True,
                                         std_floor=est.info.std_floor)
        t0 = time.perf_counter()
        fp32.probabilities(all_patches)
        baseline.append(time.perf_counter() - t0)

    def stats(xs):
        xs = np.asarray(xs)
        return {"fps": float(len(xs) / xs.sum()), "p50_ms": float(1e3 * np.percentile(xs, 50)),
                "p99_ms": float(1e3 * np.percentile(xs, 99))}

    out = {"size": size, "stride": stride, "frames": frames, "backend": est.backend, "model": model,
           "flat_gate": est.config.flat_gate, "per_frame": stats(per_frame), "stream": stats(stream),
           "classifier_all": stats(baseline), "patches": patches // frames,
           "classified_share": classified / max(patches, 1)}
    out["ratio_per_frame"] = float(np.mean(per_frame) / np.mean(baseline))
    out["ratio_stream"] = float(np.mean(stream) / np.mean(baseline))
    lat = np.asarray(latency)
    out["stream_workers"] = {"workers": STREAM_WORKERS, "fps": float(len(workers) / np.sum(workers)),
                             "p50_ms": float(1e3 * np.percentile(lat, 50)), "p99_ms": float(1e3 * np.percentile(lat, 99))}
    out["ratio_stream_workers"] = float(np.mean(workers) / np.mean(baseline))
    return out


def _on_off(on, off, frames, repeats: int) -> dict:
    """Per named frame: the best time of estimators ``on`` and ``off`` (interleaved, after a
    warm-up each), their ratio and the median sigma of ``on``'s map."""
    out = {}
    for name, frame in frames:
        best = {"on": float("inf"), "off": float("inf")}
        for est in (on, off):
            est.estimate(frame)  # warm-up
        for _ in range(max(1, repeats)):
            for key, est in (("on", on), ("off", off)):
                t0 = time.perf_counter()
                result = est.estimate(frame)
                best[key] = min(best[key], time.perf_counter() - t0)
                if key == "on":
                    median = float(np.median(result.sigma))
        out[name] = {"seconds_on": best["on"], "seconds_off": best["off"], "ratio": best["on"] / best["off"],
                     "median_sigma": median}
    return out


def _leaves_frame(h: int, w: int) -> np.ndarray:
    from fastdefocus.scenes import dead_leaves

    return dead_leaves(np.random.default_rng(1), size=max(h, w), colour=True)[:h, :w]


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def measure_coarse(size: str, stride: int, repeats: int) -> dict:
    """What the coarse levels cost (meant for a fresh process): the default estimator and one with
    ``coarse_levels=0``, best of ``repeats`` each, interleaved, on a sharp textured frame (no coarse
    level should run) and on the same frame blurred uniformly by a Gaussian of COARSE_BLUR px
    (both levels run on the whole frame)."""
    import fastdefocus
    from fastdefocus.blur import gaussian_blur

    h, w = SIZES[size]
    leaves = _leaves_frame(h, w)
    blurred = gaussian_blur(np.ascontiguousarray(leaves, np.float32), COARSE_BLUR)  # each channel
    on = fastdefocus.DefocusEstimator(stride=stride, device="cpu")
    off = fastdefocus.DefocusEstimator(stride=stride, device="cpu", coarse_levels=0, _classifier=on.classifier)
    out = {"size": size, "stride": stride, "coarse_levels": on.coarse_levels, "blur": COARSE_BLUR}
    out.update(_on_off(on, off, (("sharp", _uint8(leaves)), ("blurred", _uint8(blurred))), repeats))
    return out


def measure_fill(size: str, stride: int, repeats: int) -> dict:
    """What the flat fill costs (meant for a fresh process): the default estimator and one with
    ``fill_sigma=0``, best of ``repeats`` each, interleaved, on a sharp textured frame and on the
    same frame with its middle third flat (the patches inside it are filled)."""
    import fastdefocus

    h, w = SIZES[size]
    leaves = _leaves_frame(h, w)
    flat = leaves.copy()
    flat[:, w // 3:2 * w // 3] = 0.5
    on = fastdefocus.DefocusEstimator(stride=stride, device="cpu")
    off = fastdefocus.DefocusEstimator(stride=stride, device="cpu", fill_sigma=0, _classifier=on.classifier)
    out = {"size": size, "stride": stride, "fill_sigma": on.config.fill_sigma}
    out.update(_on_off(on, off, (("sharp", _uint8(leaves)), ("flat", _uint8(flat))), repeats))
    return out


def measure_tta(size: str, stride: int, repeats: int) -> dict:
    """What test-time views cost (meant for a fresh process): estimators with ``tta`` 2, 4 and 8
    against the default (1 view), best of ``repeats`` each, interleaved, on a generated frame."""
    import fastdefocus

    h, w = SIZES[size]
    frame = make_frame(h, w, seed=1)
    off = fastdefocus.DefocusEstimator(stride=stride, device="cpu")
    out = {"size": size, "stride": stride}
    for views in TTA_VIEWS[1:]:
        on = fastdefocus.DefocusEstimator(stride=stride, device="cpu", tta=views, _classifier=off.classifier)
        out[f"views{views}"] = _on_off(on, off, (("frame", frame),), repeats)["frame"]
    return out


_XIMGPROC_TIMER = """
import sys, time
import numpy as np, cv2
guide, src = np.load(sys.argv[1]), np.load(sys.argv[2])
radius, eps, repeats = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
gf = cv2.ximgproc.guidedFilter
out = gf(guide, src, radius, eps)
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    gf(guide, src, radius, eps)
    best = min(best, time.perf_counter() - t0)
np.save(sys.argv[6], out)
print(best, cv2.__version__)
"""

#: Where ``--install-ximgproc`` puts a virtual environment with opencv-contrib (cv2.ximgproc):
#: it cannot share one with opencv-python-headless, which provides ``cv2`` too.
XIMGPROC_VENV = Path.home() / ".cache" / "fastdefocus" / "ximgproc-venv"


def install_ximgproc_venv(folder: Path = XIMGPROC_VENV) -> Path:
    """Create (once) a virtual environment with numpy and opencv-contrib-python-headless;
    returns its python."""
    python = folder / "bin" / "python"
    if not python.exists():
        print(f"+ creating {folder} with opencv-contrib-python-headless", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "numpy", "opencv-contrib-python-headless"],
                       check=True)
    return python


def measure_guided_filter(frame_path: str, repeats: int, reference: bool = True,
                          ximgproc_python: str | None = None) -> dict:
    """Guided filter at full resolution (a smoothed luminance, guided by the luminance):
    native, ``cv2.ximgproc`` (here, or in the interpreter ``ximgproc_python`` when this
    OpenCV lacks it) and the NumPy reference."""
    import cv2

    from fastdefocus.testing.reference import guided_filter_ref
    from fastdefocus.stages.filters import guided_filter
    from fastdefocus.stages.ingest import to_luminance
    lum = to_luminance(np.load(frame_path))
    src = cv2.GaussianBlur(lum, (0, 0), 3)
    out = {"radius": GF_RADIUS, "eps": GF_EPS, "opencv_ximgproc": None}
    native = guided_filter(lum, src, GF_RADIUS, GF_EPS)
    out["native"] = _best(lambda: guided_filter(lum, src, GF_RADIUS, GF_EPS), repeats)[0]
    ximgproc = getattr(cv2, "ximgproc", None)
    if ximgproc is not None:
        other = ximgproc.guidedFilter(lum, src, GF_RADIUS, GF_EPS)
        out["opencv_ximgproc"] = _best(lambda: ximgproc.guidedFilter(lum, src, GF_RADIUS, GF_EPS), repeats)[0]
        out["ximgproc_from"] = f"this environment (OpenCV {cv2.__version__})"
    elif ximgproc_python:
        with tempfile.TemporaryDirectory() as tmp:
            paths = [str(Path(tmp) / n) for n in ("guide.npy", "src.npy", "out.npy")]
            np.save(paths[0], lum)
            np.save(paths[1], src)
            done = subprocess.run([ximgproc_python, "-c", _XIMGPROC_TIMER, paths[0], paths[1], str(GF_RADIUS),
                                   str(GF_EPS), str(repeats), paths[2]], capture_output=True, text=True)
            if done.returncode == 0:
                seconds, version = done.stdout.split()
                out["opencv_ximgproc"] = float(seconds)
                out["ximgproc_from"] = f"{ximgproc_python} (OpenCV {version})"
                other = np.load(paths[2])
            else:
                out["ximgproc_error"] = done.stderr.strip()[-400:]
    if out["opencv_ximgproc"] is not None:
        out["max_abs_diff_vs_ximgproc"] = float(np.abs(other - native).max())
    out["reference"] = _best(lambda: guided_filter_ref(lum, src, GF_RADIUS, GF_EPS), 1)[0] if reference else None
    return out


def _in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def gpu_present() -> bool:
    try:
        import torch
        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_gpu_bench() -> dict:
    """The GPU benchmark (``python -m fastdefocus.eval.gpu_bench``) in a fresh process."""
    command = [sys.executable, "-m", "fastdefocus.eval.gpu_bench"]
    done = subprocess.run(command, capture_output=True, text=True)
    return {"command": " ".join(command[1:]), "returncode": done.returncode, "output": done.stdout[-20000:],
            "errors": done.stderr[-4000:]}


def _torch_available() -> bool:
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_speed(options: dict) -> dict:
    """Run every configuration; returns the numbers (rows, guided filter, ratios, info)."""
    report = {"info": run_info(), "options": options, "rows": [], "guided_filter": {}}
    kinds = ["ours"] + (["torch"] if options["torch"] and _torch_available() else []) \
        + (["loop"] if options["loop"] else [])
    if options["torch"] and "torch" not in kinds:
        report["notes"] = ["eager torch baseline skipped: torch and safetensors are not installed "
                           "(pip install fastdefocus[torch])"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in options["sizes"]:
            h, w = SIZES[size]
            frame_path = str(Path(tmp) / f"{size}.npy")
            np.save(frame_path, make_frame(h, w))
            report["guided_filter"][size] = _in_fresh_process(measure_guided_filter, frame_path, options["repeats"],
                                                              options["reference"], options.get("ximgproc_python"))
            for stride in options["strides"]:
                for kind in kinds:
                    print(f"[speed] {size} stride {stride} {kind}", file=sys.stderr, flush=True)
                    row = _in_fresh_process(measure, kind, frame_path, stride, options["repeats"],
                                            options["loop_patches"])
                    row["size"] = size
                    report["rows"].append(row)
            stride = 8 if 8 in options["strides"] else options["strides"][0]
            print(f"[speed] {size} stride {stride} coarse levels", file=sys.stderr, flush=True)
            report.setdefault("coarse", []).append(_in_fresh_process(measure_coarse, size, stride,
                                                                     options["repeats"]))
            print(f"[speed] {size} stride {stride} flat fill", file=sys.stderr, flush=True)
            report.setdefault("fill", []).append(_in_fresh_process(measure_fill, size, stride, options["repeats"]))
            print(f"[speed] {size} stride {stride} test-time views", file=sys.stderr, flush=True)
            report.setdefault("tta", []).append(_in_fresh_process(measure_tta, size, stride, options["repeats"]))
    if options.get("stream", True):
        for size in options.get("stream_sizes", STREAM_SIZES):
            for stride in options["strides"]:
                models = options.get("models", ["default"])
                runs = ([(None, "auto", "default"), (0.0, "auto", "default")] if "default" in models else []) \
                    + ([(None, "onnxruntime-int8", "default")] if size == "640x480" and "default" in models else []) \
                    + ([(None, "auto", "fast"), (None, "onnxruntime-int8", "fast")] if "fast" in models else [])
                for gate, backend, model in runs:
                    print(f"[speed] {size} stride {stride} frames{' (no gating)' if gate == 0.0 else ''} {backend} "
                          f"{model} model", file=sys.stderr, flush=True)
                    report.setdefault("stream", []).append(_in_fresh_process(
                        measure_stream, size, stride, options.get("stream_frames", 20), gate, backend, model))
    if options.get("gpu") and gpu_present():
        report["gpu"] = run_gpu_bench()
    return report


def _ms(x) -> str:
    return "n/a" if x is None else f"{1000 * x:.0f}"


def speed_markdown(report: dict) -> str:
    rows = report["rows"]
    names = {"ours": "fastdefocus", "torch": "fastdefocus, eager torch batches",
             "loop": "official structure, one patch at a time"}
    lines = ["| frame | stride | pipeline | classifier | patches | total ms | ingest | patches | classify | splat "
             "| refine | coarse | patches/s | peak RSS MiB (above idle) |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        st = r["stages"]
        total = f"{1000 * r['seconds']:.0f}"
        if r.get("timed_patches") and r["timed_patches"] < r["patches"]:
            total += f" (est.: {r['timed_patches']} patches timed)"
        lines.append(f"| {r['size']} | {r['stride']} | {names[r['kind']]} | {r['backend']} | {r['patches']} | "
                     f"{total} | {_ms(st.get('ingest'))} | {_ms(st.get('patches'))} | {_ms(st.get('classify'))} | "
                     f"{_ms(st.get('splat'))} | {_ms(st.get('refine'))} | {_ms(st.get('coarse'))} | "
                     f"{r['patches'] / r['seconds']:.0f} | "
                     f"{r['peak_rss'] / 2**20:.0f} ({r['peak_above_idle'] / 2**20:.0f}) |")
    lines.append("")
    by = {(r["size"], r["stride"], r["kind"]): r for r in rows}
    for (size, stride, kind), r in by.items():
        if kind != "ours":
            continue
        parts = []
        for other, label in (("torch", "eager torch batches"), ("loop", "one patch at a time")):
            if (size, stride, other) in by:
                parts.append(f"{by[(size, stride, other)]['seconds'] / r['seconds']:.1f}x faster than {label}")
        if parts:
            lines.append(f"- {size}, stride {stride}: fastdefocus is {' and '.join(parts)}")
    if report.get("stream"):
        lines.append("\nFrames per second on different frames (generated, a layered defocus each), the row's "
                     "model: one `estimate` per frame and `stream` (frames read ahead), p50 / p99 latency in "
                     "ms; 'classifier on all' is ONNX Runtime fp32 classifying every patch of the frame in the "
                     "same run (what a frame's time is divided by in 'frame / classifier'); 'classified' is the "
                     "share of patches texture gating sent to the classifier (`--flat-gate 0`: all); "
                     f"'{STREAM_WORKERS} workers' is `stream(workers={STREAM_WORKERS})`, frames estimated side by side "
                     "on a share of the threads each, its latency a frame's own time on its worker.\n")
        lines.append("| frame | stride | model | classifier | gating | patches | classified | per frame fps | "
                     "p50 / p99 ms | stream fps | p50 / p99 ms | fp32 classifier on all, ms | frame / classifier | "
                     f"stream / classifier | stream, {STREAM_WORKERS} workers, fps | p50 / p99 ms | "
                     f"{STREAM_WORKERS} workers / classifier |\n"
                     "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in report["stream"]:
            pf, st, cl = r["per_frame"], r["stream"], r["classifier_all"]
            sw = r.get("stream_workers")
            tail = (f" {sw['fps']:.1f} | {sw['p50_ms']:.0f} / {sw['p99_ms']:.0f} | {r['ratio_stream_workers']:.2f} |"
                    if sw else " n/a | n/a | n/a |")
            lines.append(f"| {r['size']} | {r['stride']} | {r.get('model', 'default')} | {r['backend']} | "
                         f"{'on' if r['flat_gate'] > 0 else 'off'} | "
                         f"{r['patches']} | "
                         f"{100 * r['classified_share']:.0f}% | {pf['fps']:.1f} | {pf['p50_ms']:.0f} / "
                         f"{pf['p99_ms']:.0f} | {st['fps']:.1f} | {st['p50_ms']:.0f} / {st['p99_ms']:.0f} | "
                         f"{cl['p50_ms']:.0f} | {r['ratio_per_frame']:.2f} | {r['ratio_stream']:.2f} |" + tail)
    on_off = (("coarse", "Coarse levels (blur past 6 px)", "coarse_levels=0", "coarse levels on",
               lambda c: (("sharp", "sharp texture"), ("blurred", f"Gaussian {c['blur']:g} px everywhere"))),
              ("fill", "Flat fill", "fill_sigma=0", "fill on",
               lambda c: (("sharp", "sharp texture"), ("flat", "sharp texture, middle third flat"))),
              ("tta", "Test-time views", "tta=1", "views",
               lambda c: tuple((f"views{n}", f"generated frame, {n} views") for n in TTA_VIEWS[1:])))
    for key, title, off, on_label, frames in on_off:
        if not report.get(key):
            continue
        lines.append(f"\n{title}: the default estimator against `{off}`, same run, best of each, interleaved:\n")
        lines.append(f"| frame | stride | image | median sigma px | ms, {on_label} | ms, off | on / off |\n"
                     "|---|---:|---|---:|---:|---:|---:|")
        for c in report[key]:
            for name, label in frames(c):
                m = c[name]
                lines.append(f"| {c['size']} | {c['stride']} | {label} | {m['median_sigma']:.2f} | "
                             f"{1000 * m['seconds_on']:.0f} | {1000 * m['seconds_off']:.0f} | {m['ratio']:.2f} |")
    lines.append("\nGuided filter at full resolution (radius 16, eps 1e-3, float32, gray guide), best of "
                 f"{report['options']['repeats']} (reference: 1 run):\n")
    lines.append("| frame | native ms | cv2.ximgproc ms | NumPy reference ms | ximgproc / native | "
                 "reference / native | max abs diff vs ximgproc |\n|---|---:|---:|---:|---:|---:|---:|")
    for size, g in report["guided_filter"].items():
        native, ocv, ref = g["native"], g["opencv_ximgproc"], g["reference"]
        cells = [f"{1000 * native:.1f}", "n/a" if ocv is None else f"{1000 * ocv:.1f}",
                 "n/a" if ref is None else f"{1000 * ref:.0f}", "n/a" if ocv is None else f"{ocv / native:.2f}",
                 "n/a" if ref is None else f"{ref / native:.1f}",
                 f"{g['max_abs_diff_vs_ximgproc']:.1e}" if "max_abs_diff_vs_ximgproc" in g else "n/a"]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    sources = {g["ximgproc_from"] for g in report["guided_filter"].values() if "ximgproc_from" in g}
    if sources:
        lines.append(f"\ncv2.ximgproc from {', '.join(sorted(sources))}.")
    errors = {g["ximgproc_error"] for g in report["guided_filter"].values() if "ximgproc_error" in g}
    if errors:
        lines.append(f"\ncv2.ximgproc failed: {'; '.join(errors)}")
    elif any(g["opencv_ximgproc"] is None for g in report["guided_filter"].values()):
        lines.append("\ncv2.ximgproc is missing from this OpenCV build. It comes with "
                     "opencv-contrib-python-headless, which replaces the `cv2` of opencv-python-headless, so it "
                     "lives in its own environment: pass --install-ximgproc (creates one once) or "
                     "--ximgproc-python PATH to fill that column.")
    for note in report.get("notes", []):
        lines.append(f"\n{note}")
    lines.append("\nEach configuration ran in a fresh process after a warm-up; stage columns in ms from the best "
                 "run; peak RSS is the process's high-water mark (model, runtime and buffers), above idle is "
                 "what one estimate added to the loaded model. `est.`: the one-at-a-time classification was "
                 "timed on the first patches and scaled to all of them.")
    if "gpu" in report:
        g = report["gpu"]
        lines.append("\n### GPU (python -m fastdefocus.eval.gpu_bench)\n\n" + (g.get("output") or g.get("note", "")))
    return "\n".join(lines)


def cmd_speed(args) -> int:
    """Speed tables: Markdown on stdout; ``args.out`` / ``args.json`` also write files."""
    report = run_speed(args.speed_options)
    emit_report("Speed (CPU)", "speed", report, speed_markdown(report), args.out, args.json)
    return 0
