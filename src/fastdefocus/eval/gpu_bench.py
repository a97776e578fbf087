"""GPU benchmark: correctness against the CPU path, stage timings, streaming throughput.

    python -m fastdefocus.eval.gpu_bench [--json gpu_bench.json] [--backends auto|all|tensorrt,compile,eager]
                                         [--frames 300] [--quick] [--budget 420]

Smoke test without a GPU (tiny frames, the cpu backend, no timings):
    NUMBA_ENABLE_CUDASIM=1 python -m fastdefocus.eval.gpu_bench --simulator --backends cpu

It runs from the installed package, from any directory (the JSON goes to --json, by
default ``gpu_bench.json`` in the working directory); ``fastdefocus eval`` runs it too when
a GPU is present (:func:`fastdefocus.eval.speed.run_gpu_bench`). One command (meant to
finish in under 8 minutes on an H100, compilation included):

(a) every GPU kernel (:mod:`fastdefocus.kernels`: filters, patches, ingest, splat, refine)
    and the whole GPU pipeline against the CPU path (C++ kernels, NumPy/OpenCV stages, the
    CPU estimator) on random and real-looking (dead-leaves, layered defocus) inputs:
    maximum errors;
(b) per-stage GPU times (CUDA events) and the whole frame for 1920x1080 at stride 8 and 16
    and 3840x2160 at stride 16, for every available classifier backend; also the kernels
    alone (patch extraction, statistics, splat, refinement, upsampling: no classifier);
(c) a stream of --frames frames (1080p, each backend, stride 8 and 16): frames per second
    and p50 / p99 latency (submit to result);
(d) everything as JSON, then a short table, last.

Needs an NVIDIA GPU with Numba's CUDA target and torch with CUDA (the `gpu` extra). A unit
that fails (a backend that does not build, say) is recorded under "errors" and the bench
goes on; the JSON is rewritten after every unit, so a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from fastdefocus._params import (AGREEMENT_TAU, FLAT_STD, SHARPNESS_BLUR, SPLAT_LIFT, UPSAMPLE_EPS,
                                 UPSAMPLE_RADIUS)

#: Frame sizes; --simulator shrinks them to a smoke test under NUMBA_ENABLE_CUDASIM=1.
SIZES = {"check": (541, 963), "hd": (1080, 1920), "4k": (2160, 3840), "repeats": 20, "kernel_repeats": 50}
SIMULATOR_SIZES = {"check": (24, 40), "hd": (24, 40), "4k": (32, 48), "repeats": 1, "kernel_repeats": 1}


def _gpu_name():
    try:
        import torch
        return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - no torch CUDA: ask Numba (the simulator says so)
        from fastdefocus.kernels._compat import import_cuda
        device = import_cuda().get_current_device()
        return str(getattr(device, "name", type(device).__name__))


def _torch_cuda(fn, default=0):
    """A torch.cuda query, or ``default`` without torch CUDA (the simulator smoke test)."""
    try:
        import torch
        if not torch.cuda.is_available():
            return default
        return fn(torch.cuda)
    except ImportError:
        return default


def _event(cuda):
    try:
        return cuda.event(timing=True)
    except TypeError:  # the simulator's events take no arguments and carry no time
        return cuda.event()


def _elapsed_ms(cuda, e0, e1):
    try:
        return cuda.event_elapsed_time(e0, e1)
    except Exception:  # noqa: BLE001 - the simulator
        return float("nan")


def _memory_in_use():
    free_total = _torch_cuda(lambda c: c.mem_get_info(), None)
    return 0 if free_total is None else free_total[1] - free_total[0]


_SCENES: dict = {}


def _scene(h, w, seed=0):
    """A real-looking frame: colour dead-leaves under a layered defocus map (RGB uint8),
    made at up to 540 x 960 and resized (cheap to make at 4K)."""
    import cv2

    from fastdefocus.scenes import demo_scene
    key = (h, w, seed)
    if key not in _SCENES:
        small = (min(h, 540), min(w, 960))
        img = demo_scene(small, seed)[0]
        _SCENES[key] = img if small == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    return _SCENES[key]


def _maxerr(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ---------------------------------------------------------------------- (a) correctness


def check_kernels(cuda):
    from fastdefocus.kernels import filters as kf
    from fastdefocus.kernels import fill as k_fill
    from fastdefocus.kernels import ingest as k_ingest
    from fastdefocus.kernels import patches as kp
    from fastdefocus.kernels import refine as k_refine
    from fastdefocus.kernels import splat as k_splat
    from fastdefocus.stages import fill as cpu_fill
    from fastdefocus.stages import filters as cpu
    from fastdefocus.blur import gaussian_blur
    from fastdefocus.stages.ingest import to_luminance
    from fastdefocus.stages.refine import pad_to, resize
    from fastdefocus.stages.splat import patch_statistics, sharpness_maps, splat, tent_sum

    rng = np.random.default_rng(0)
    out = {}
    for kind in ("random", "scene"):
        shape = SIZES["check"]
        rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8) if kind == "random" else _scene(*shape, 1)
        lum = to_luminance(rgb)
        d_lum = k_ingest.luminance(cuda.to_device(rgb))
        errs = {"luminance": _maxerr(d_lum.copy_to_host(), lum)}
        guide = lum
        src = (rng.random(lum.shape) * 3).astype(np.float32)
        w = rng.random(lum.shape).astype(np.float32)
        d_src, d_w = cuda.to_device(src), cuda.to_device(w)
        for r in (1, 4, 16):
            errs[f"box r={r}"] = _maxerr(kf.box_filter(d_src, r).copy_to_host(), cpu.box_filter(src, r))
            errs[f"weighted guided r={r}"] = _maxerr(
                kf.guided_filter(d_lum, d_src, r, 1e-3, d_w).copy_to_host(),
                cpu.guided_filter(guide, src, r, 1e-3, weights=w))
        errs["iterative guided r=1 x3"] = _maxerr(
            kf.iterative_guided_filter(d_lum, d_src, 1, 1e-3, d_w, 3).copy_to_host(),
            cpu.iterative_guided_filter(guide, src, 1, 1e-3, weights=w, iterations=3))
        a, b = kf.guided_coefficients(d_lum, d_src, 1, 1e-2)
        ca, cb = cpu.guided_coefficients(guide, src, 1, 1e-2)
        errs["guided coefficients"] = max(_maxerr(a.copy_to_host(), ca), _maxerr(b.copy_to_host(), cb))
        patches, grid = cpu.extract_patches(lum, 32, 8, normalize=True, std_floor=FLAT_STD)
        std = cuda.device_array(grid[0] * grid[1], np.float32)
        d_patches, _ = kp.extract_patches(d_lum, 32, 8, True, FLAT_STD, dtype=np.float16, std_out=std)
        errs["patches (fp16 batch)"] = _maxerr(d_patches.copy_to_host().astype(np.float32), patches)
        errs["gaussian blur s=1"] = _maxerr(k_ingest.gaussian_blur(d_lum, 1.0).copy_to_host(), gaussian_blur(lum, 1.0))
        k = 4
        full = ((grid[0] + k - 1) * 8, (grid[1] + k - 1) * 8)
        padded = pad_to(lum, *full)
        d_pad = k_ingest.pad_reflect(d_lum, *full)
        patch_std, agreement = patch_statistics(padded, grid, 32, 8, FLAT_STD)
        errs["patch std"] = _maxerr(std.copy_to_host(), patch_std.ravel())
        d_coarse = k_ingest.gaussian_blur(d_pad, SHARPNESS_BLUR)
        got_agreement, got_patch, got_cell = k_splat.patch_statistics(d_pad, d_coarse, grid, 32, 8, FLAT_STD,
                                                                      AGREEMENT_TAU)
        want_patch, want_cell = sharpness_maps(padded, grid, 32, 8)
        errs["window agreement"] = _maxerr(got_agreement.copy_to_host(), agreement.ravel())
        errs["patch / cell sharpness"] = max(_maxerr(got_patch.copy_to_host(), want_patch.ravel()),
                                             _maxerr(got_cell.copy_to_host(), want_cell))
        values = (rng.random(grid) * 5).astype(np.float32)
        weights = rng.random(grid).astype(np.float32)
        conf = rng.random(grid).astype(np.float32)
        cv, cw, cc = k_splat.splat(cuda.to_device(values.ravel()), cuda.to_device(weights.ravel()),
                                   cuda.to_device(conf.ravel()), grid, 32, 8, lift=SPLAT_LIFT)
        want_v, want_w = splat(values, weights, 32, 8, lift=SPLAT_LIFT)
        want_c = tent_sum(conf, 32, 8) / tent_sum(np.ones(grid), 32, 8)
        errs["splat"] = max(_maxerr(cv.copy_to_host(), want_v), _maxerr(cw.copy_to_host(), want_w),
                            _maxerr(cc.copy_to_host(), want_c))
        fill_w = np.where(rng.random(grid) < 0.4, 0.0, rng.random(grid))  # 40% of the patches flat
        means = cpu_fill.patch_means(padded, grid, 32, 8)
        d_means = k_fill.patch_means(d_pad, grid, 32, 8)
        errs["patch means (fill guide)"] = _maxerr(d_means.copy_to_host(), means.ravel())
        d_values = cuda.to_device(values.ravel())
        k_fill.fill_flat(d_values, cuda.to_device(fill_w.ravel()), d_means, cpu_fill.pass_sigmas(8, 64.0),
                         cpu_fill.fill_ratio(8, 64.0), grid=grid)
        errs["flat fill"] = _maxerr(d_values.copy_to_host(),
                                    cpu_fill.fill_flat(values, fill_w, means, 8, 64.0).ravel())
        sh, sw = shape[0] // 8, shape[1] // 8
        small = rng.random((sh, sw)).astype(np.float32)
        errs["resize linear x2"] = _maxerr(
            k_refine.resize_linear(cuda.to_device(small), 2 * sh, 2 * sw).copy_to_host(), resize(small, 2 * sh, 2 * sw))
        gh, gw = -(-shape[0] // 4), -(-shape[1] // 4)
        errs["area guide /4"] = _maxerr(k_refine.area_guide(d_lum, gh, gw, 4).copy_to_host(),
                                        resize(pad_to(lum, 4 * gh, 4 * gw), gh, gw, area=True))
        out[kind] = errs
    return out


def check_pipeline(backend, shape=None, stride=8):
    from fastdefocus import DefocusEstimator
    res = {}
    shape = shape or SIZES["hd"]
    cpu = DefocusEstimator(device="cpu", stride=stride)
    gpu = DefocusEstimator(device="cuda", backend=backend, stride=stride)
    for kind in ("random", "scene"):
        rng = np.random.default_rng(1)
        img = rng.integers(0, 256, shape + (3,), dtype=np.uint8) if kind == "random" else _scene(*shape, 2)
        a, b = gpu.estimate(img), cpu.estimate(img)
        d = np.abs(a.sigma.astype(np.float64) - b.sigma)
        res[kind] = {"sigma_max_abs_err": float(d.max()), "sigma_mean_abs_err": float(d.mean()),
                     "sigma_p999_abs_err": float(np.quantile(d, 0.999)),
                     "confidence_max_abs_err": _maxerr(a.confidence, b.confidence)}
    return res


# --------------------------------------------------------------------------- (b) timing


def time_frames(est, shape, repeats=None):
    repeats = repeats or SIZES["repeats"]
    img = _scene(*shape, 3)
    for _ in range(min(3, repeats)):
        est.estimate(img)
    stages, totals = {}, []
    for _ in range(repeats):
        r = est.estimate(img)
        totals.append(r.timings["total"])
        for k, v in r.timings.items():
            if k != "total":
                stages.setdefault(k, []).append(v)
    out = {k: float(np.median(v)) * 1e3 for k, v in stages.items()}
    out["gpu_sum_ms"] = float(sum(out.values()))
    out["frame_ms"] = float(np.median(totals)) * 1e3
    return out


def time_kernels(est, shape, repeats=None):
    """The GPU kernels of one frame without the classifier: patch extraction (into the
    backend's fp16 batch), statistics, per-patch outputs, the flat fill, splat, refinement,
    upsampling."""
    repeats = repeats or SIZES["kernel_repeats"]
    from fastdefocus.kernels._compat import import_cuda
    cuda = import_cuda()
    pipe = est._gpu
    img = _scene(*shape, 4)
    est.estimate(img)  # buffers, backend
    geo, b = pipe._setup(*shape)
    backend = pipe._backend_for(geo.n)
    d_img = cuda.to_device(img)
    sigma = cuda.device_array(shape, np.float32)
    snapped = cuda.device_array(shape, np.float32)  # the snap reads sigma's neighbours: not in place
    if est.snap and b.snap_work is None:
        b.snap_work = pipe.k_snap.SnapWork(*shape)
    conf = cuda.device_array(shape, np.float32)
    stream = cuda.stream()
    probs = backend.run(min(backend.batch, geo.n), stream)  # fixed probabilities: no model in the loop
    times = {}

    def timed(name, fn):
        e0, e1 = _event(cuda), _event(cuda)
        e0.record(stream)
        fn()
        e1.record(stream)
        e1.synchronize()
        times.setdefault(name, []).append(_elapsed_ms(cuda, e0, e1))

    ingest, splat, refine, snap = pipe.k_ingest, pipe.k_splat, pipe.k_refine, pipe.k_snap
    kp, kf = pipe.kp, pipe.kf
    p, s = est.patch_size, est.stride
    for _ in range(repeats):
        timed("luminance", lambda: ingest.luminance(d_img, out=b.lum, stream=stream))
        timed("statistics", lambda: (ingest.pad_reflect(b.source, *geo.full, out=b.padded, stream=stream),
                                     ingest.gaussian_blur(b.padded, SHARPNESS_BLUR, out=b.coarse,
                                                          scratch=b.coarse_tmp, stream=stream),
                                     splat.patch_statistics(b.padded, b.coarse, geo.grid, p, s, est.flat_std,
                                                            AGREEMENT_TAU, agreement=b.agreement,
                                                            patch_sharp=b.patch_sharp, cell_sharp=b.cell_sharp,
                                                            scratch=b.windows, stream=stream)))

        def patches():
            for first in range(0, geo.n, backend.batch):
                kp.extract_patches(b.source, p, s, True, pipe.info.std_floor, out=backend.input, first=first,
                                   std_out=b.std, stream=stream, threads=pipe.patch_threads)
                count = min(backend.batch, geo.n - first)
                splat.patch_outputs(probs[:count], first, pipe.info.levels, pipe.info.calibration, est.sigma0,
                                    b.std, b.agreement, est.flat_std, b.sigma_p, b.conf_p, b.weight_p,
                                    stream=stream)
        timed("patches", patches)
        if pipe.cfg.fill_sigma > 0:
            if b.fill_work is None:
                b.fill_work = pipe.k_fill.FillWork(*geo.grid, stream=stream)
            timed("fill", lambda: (pipe.k_fill.patch_means(b.padded, geo.grid, p, s, out=b.fill_work.guide,
                                                           stream=stream),
                                   pipe.k_fill.fill_flat(b.sigma_p, b.conf_p, b.fill_work.guide, pipe.fill_sigmas,
                                                         pipe.fill_ratio, grid=geo.grid, work=b.fill_work,
                                                         stream=stream)))
        timed("splat", lambda: splat.splat(b.sigma_p, b.weight_p, b.conf_p, geo.grid, p, s, b.cell_sigma,
                                           b.cell_weight, b.cell_conf, lift=SPLAT_LIFT,
                                           sharpness=(b.patch_sharp, b.cell_sharp), stream=stream))
        if est.iterations == 0:
            timed("refine", lambda: None)
            timed("upsample", lambda: refine.upsample_apply(b.zero_cells, b.cell_sigma, b.lum, b.cell_conf,
                                                            geo.full, est.info.sigma_max, sigma_out=sigma,
                                                            conf_out=conf, stream=stream))
            continue
        r_work = max(1, int(round(est.radius / geo.scale)))
        timed("refine", lambda: (refine.area_guide(b.lum, *geo.work, geo.scale, out=b.guide, stream=stream),
                                 refine.resize_linear(b.cell_sigma, *geo.work, b=b.cell_weight, out_a=b.values,
                                                      out_b=b.weights, clip_b=True, stream=stream),
                                 kf.iterative_guided_filter(b.guide, b.values, r_work, est.eps, weights=b.weights,
                                                            iterations=est.iterations, out=b.refined,
                                                            stream=stream, work=b.work_gf,
                                                            scratch=b.refined_tmp)))
        r_up = max(1, int(round(UPSAMPLE_RADIUS / geo.scale)))
        timed("upsample", lambda: (kf.guided_coefficients(b.guide, b.refined, r_up, UPSAMPLE_EPS,
                                                          out=(b.coef_a, b.coef_b), stream=stream,
                                                          work=b.work_up),
                                   refine.upsample_apply(b.coef_a, b.coef_b, b.lum, b.cell_conf, geo.full,
                                                         est.info.sigma_max, sigma_out=sigma, conf_out=conf,
                                                         stream=stream)))
        if est.snap:
            timed("snap", lambda: snap.snap_boundaries(sigma, b.lum, est.snap, out=snapped, work=b.snap_work,
                                                       stream=stream))
    out = {k: float(np.median(v)) for k, v in times.items()}
    out["target_sum_ms"] = sum(out[k] for k in ("patches", "splat", "refine", "upsample"))
    out["all_kernels_ms"] = sum(v for k, v in out.items() if k != "target_sum_ms")
    return out


def stream_bench(est, shape, frames=300):
    pool = [_scene(*shape, 10 + i) for i in range(min(8, frames))]
    warm = list(est.stream(iter(pool[:min(3, frames)])))
    del warm
    lat = []
    t0 = time.perf_counter()
    n = 0
    for r in est.stream(pool[i % len(pool)] for i in range(frames)):
        lat.append(r.timings["latency"])
        n += 1
    elapsed = time.perf_counter() - t0
    return {"frames": n, "fps": n / elapsed, "p50_latency_ms": float(np.percentile(lat, 50)) * 1e3,
            "p99_latency_ms": float(np.percentile(lat, 99)) * 1e3}


# ------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastdefocus.eval.gpu_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default="gpu_bench.json")
    ap.add_argument("--backends", default="all", help="all, auto, or a comma list of tensorrt,compile,eager,cpu")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="1080p stride 16 only, 60 stream frames")
    ap.add_argument("--simulator", action="store_true",
                    help="smoke test under NUMBA_ENABLE_CUDASIM=1 (tiny frames, the cpu backend; no timings)")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds after which the remaining units are skipped (default 420)")
    args = ap.parse_args(argv)

    from fastdefocus import DefocusEstimator
    from fastdefocus.backends.cuda import _unavailable
    from fastdefocus.estimator import gpu_available
    from fastdefocus.kernels._compat import import_cuda

    if args.simulator:
        SIZES.update(SIMULATOR_SIZES)
    if not gpu_available(simulator=args.simulator):
        print("gpu_bench: no CUDA GPU (or Numba's CUDA target) here", file=sys.stderr)
        return 2
    cuda = import_cuda()
    try:
        import torch
    except ImportError:
        torch = None
    if args.backends == "all":
        names = [n for n in ("tensorrt", "compile", "eager") if _unavailable(n) is None]
    elif args.backends == "auto":
        names = ["auto"]
    else:
        names = args.backends.split(",")
    skipped = {n: _unavailable(n) for n in ("tensorrt", "compile", "eager") if _unavailable(n)}
    report = {"gpu": _gpu_name(), "torch": getattr(torch, "__version__", None), "python": platform.python_version(),
              "backends_skipped": skipped, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.1f} s] {msg}", flush=True)

    log("(a) kernels against the CPU path")
    report["kernel_errors"] = {}
    report["errors"] = []
    try:
        report["kernel_errors"] = check_kernels(cuda)
    except Exception as e:  # noqa: BLE001 - go on to the pipeline and the timings
        report["errors"].append(f"kernel checks: {type(e).__name__}: {e}")
        log(report["errors"][-1])
    hd, uhd = SIZES["hd"], SIZES["4k"]
    configs = [(hd, 16)] if args.quick else [(hd, 8), (hd, 16), (uhd, 16)]
    frames = 60 if args.quick else args.frames
    if args.simulator:
        frames = min(frames, 3)
    report["pipeline_errors"] = {}
    report["frames"] = []
    report["streams"] = []
    mem0 = _memory_in_use()
    peak = mem0

    def save():
        report["seconds"] = time.perf_counter() - t_start
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)

    def guarded(label, fn):
        """Run one unit; a failure is recorded and the bench goes on (one GPU session may be
        all there is). Past --budget seconds the remaining units are skipped."""
        if time.perf_counter() - t_start > args.budget:
            report["errors"].append(f"{label}: skipped, past the {args.budget} s budget")
            log(report["errors"][-1])
            return None
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            import traceback
            report["errors"].append(f"{label}: {type(e).__name__}: {e}\n" + traceback.format_exc(limit=6))
            log(f"{label} FAILED: {type(e).__name__}: {e}")
            return None
        finally:
            save()

    for name in names:
        log(f"(a) pipeline against the CPU estimator, backend {name}")
        res = guarded(f"pipeline check {name}", lambda: check_pipeline(name, stride=16 if args.quick else 8))
        if res is not None:
            report["pipeline_errors"][name] = res
        for shape, stride in configs:
            def unit():
                nonlocal peak
                t = time.perf_counter()
                est = DefocusEstimator(device="cuda", backend=name, stride=stride, max_pixels=None)
                est.estimate(_scene(*shape, 5))  # builds / compiles for this batch shape
                build_s = time.perf_counter() - t
                log(f"(b) {name} {shape[1]}x{shape[0]} stride {stride}: built in {build_s:.1f} s")
                row = {"backend": est.backend, "size": f"{shape[1]}x{shape[0]}", "stride": stride,
                       "build_s": build_s, **time_frames(est, shape)}
                row["kernels"] = time_kernels(est, shape)
                if shape == hd and stride == 8:  # the budget counts 3 refinement iterations
                    default_iterations, est.iterations = est.iterations, 3
                    row["kernels_3_iterations"] = time_kernels(est, shape)
                    est.iterations = default_iterations
                peak = max(peak, _memory_in_use())
                row["device_memory_in_use_mib"] = _memory_in_use() / 2**20
                row["torch_peak_allocated_mib"] = _torch_cuda(lambda c: c.max_memory_allocated()) / 2**20
                report["frames"].append(row)
                if shape == hd:
                    log(f"(c) {name} stream of {frames} frames, stride {stride}")
                    report["streams"].append({"backend": est.backend, "size": f"{shape[1]}x{shape[0]}", "stride": stride,
                                              **stream_bench(est, shape, frames)})
                del est
                _torch_cuda(lambda c: c.empty_cache())
            guarded(f"{name} {shape[1]}x{shape[0]} stride {stride}", unit)
    report["peak_device_memory_mib"] = peak / 2**20
    save()

    # (d) short table, last
    print(f"\n{report['gpu']}, torch {report['torch']}; skipped backends: {skipped or 'none'}")
    worst = {k: max(v.values()) for k, v in report["kernel_errors"].items()}
    print("max kernel error vs CPU: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    for name, res in report["pipeline_errors"].items():
        print(f"pipeline vs CPU estimator ({name}): " + ", ".join(
            f"{k} max {v['sigma_max_abs_err']:.3f} mean {v['sigma_mean_abs_err']:.4f} px" for k, v in res.items()))
    print(f"\n{'backend':9s} {'size':>10s} {'str':>3s} {'frame ms':>9s} {'classify':>9s} {'kernels*':>9s} "
          f"{'all kern':>9s} {'build s':>8s}")
    for r in report["frames"]:
        print(f"{r['backend']:9s} {r['size']:>10s} {r['stride']:3d} {r['frame_ms']:9.2f} "
              f"{r.get('classify', float('nan')):9.2f} {r['kernels']['target_sum_ms']:9.3f} "
              f"{r['kernels']['all_kernels_ms']:9.3f} {r['build_s']:8.1f}")
    print("* patch extraction + splat + refinement + upsampling, classifier excluded (target <= 1.5 ms at 1080p)")
    for r in report["frames"]:
        if "kernels_3_iterations" in r:
            print(f"  {r['backend']} {r['size']} stride {r['stride']} with 3 guided-filter iterations: "
                  f"{r['kernels_3_iterations']['target_sum_ms']:.3f} ms")
    for s in report["streams"]:
        print(f"stream {s['backend']:9s} {s['size']} stride {s['stride']:2d}: {s['fps']:7.1f} frames/s, "
              f"p50 {s['p50_latency_ms']:.1f} ms, p99 {s['p99_latency_ms']:.1f} ms")
    for err in report["errors"]:
        print("ERROR " + err.splitlines()[0])
    print(f"peak device memory in use {report['peak_device_memory_mib']:.0f} MiB; {report['seconds']:.0f} s; "
          f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
