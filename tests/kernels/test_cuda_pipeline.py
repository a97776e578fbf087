"""The GPU pipeline (fastdefocus.cuda_pipeline + the per-stage kernels fastdefocus.kernels.ingest /
splat / refine / snap) against the CPU stages and estimator, under
Numba's CUDA simulator (small frames: every simulated thread is a Python thread), with
the ``cpu`` classifier backend (ONNX Runtime on the host). Also the backends' selection
and TensorRT engine cache keys, which need no GPU."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba")

from fastdefocus import DefocusEstimator  # noqa: E402
from fastdefocus._params import AGREEMENT_TAU, FLAT_STD, SHARPNESS_BLUR  # noqa: E402
from fastdefocus.backends import cuda as B  # noqa: E402
from fastdefocus.blur import gaussian_blur  # noqa: E402
from fastdefocus.kernels._compat import import_cuda  # noqa: E402
from fastdefocus.stages.refine import pad_to, resize  # noqa: E402
from fastdefocus.scenes import dead_leaves  # noqa: E402
from fastdefocus.stages.splat import patch_statistics, splat, tent_sum  # noqa: E402

cuda = import_cuda()

from fastdefocus.cuda_pipeline import GpuPipeline  # noqa: E402
from fastdefocus.kernels import coarse as KC  # noqa: E402
from fastdefocus.kernels import ingest as KI  # noqa: E402
from fastdefocus.kernels import refine as KR  # noqa: E402
from fastdefocus.kernels import snap as KS  # noqa: E402
from fastdefocus.kernels import splat as KSP  # noqa: E402


@pytest.fixture(scope="module")
def cpu_est():
    return DefocusEstimator(device="cpu")


def scene(h, w, seed=3):
    img = dead_leaves(np.random.default_rng(seed), max(h, w))[:h, :w].astype(np.float32)
    half = img.copy()
    half[:, w // 2:] = gaussian_blur(img, 2.0)[:, w // 2:]
    return half


def test_luminance_matches_ingest():
    from fastdefocus.stages.ingest import to_luminance
    rng = np.random.default_rng(0)
    for arr in [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
                rng.integers(0, 65536, (4, 6, 4), dtype=np.uint16),
                rng.random((3, 5)).astype(np.float32),
                rng.integers(0, 256, (3, 4, 2), dtype=np.uint8)]:
        got = KI.luminance(cuda.to_device(arr)).copy_to_host()
        np.testing.assert_allclose(got, to_luminance(arr), atol=1e-6)
        if arr.ndim == 3 and arr.shape[2] >= 3:  # OpenCV's BGR(A): the same luminance, bit for bit
            bgr = np.ascontiguousarray(arr[..., [2, 1, 0] + list(range(3, arr.shape[2]))])
            np.testing.assert_array_equal(KI.luminance(cuda.to_device(bgr), channel_order="bgr").copy_to_host(),
                                          got)


def test_gaussian_blur_matches_cpu():
    img = np.random.default_rng(1).random((9, 12)).astype(np.float32)
    got = KI.gaussian_blur(cuda.to_device(img), 1.0).copy_to_host()
    np.testing.assert_allclose(got, gaussian_blur(img, 1.0), atol=1e-5)


@pytest.mark.parametrize("shape,stride", [((40, 48), 8), ((33, 44), 8), ((36, 50), 16), ((40, 40), 4)])
def test_patch_statistics_match_cpu(shape, stride):
    """Agreement, patch and cell sharpness from the base-cell pass against fastdefocus.stages.splat."""
    from fastdefocus.kernels.patches import patch_grid
    from fastdefocus.stages.splat import sharpness_maps
    img = scene(*shape)
    p, flat = 32, FLAT_STD
    grid = patch_grid(shape, p, stride)
    k = p // stride
    cells = (grid[0] + k - 1, grid[1] + k - 1)
    full = (cells[0] * stride, cells[1] * stride)
    padded = pad_to(img, *full)
    _, agree_want = patch_statistics(padded, grid, p, stride, flat)
    patch_want, cell_want = sharpness_maps(padded, grid, p, stride)
    d_pad = KI.pad_reflect(cuda.to_device(img), *full)
    np.testing.assert_allclose(d_pad.copy_to_host(), padded)
    coarse = KI.gaussian_blur(d_pad, SHARPNESS_BLUR)
    agreement, patch_sharp, cell_sharp = KSP.patch_statistics(d_pad, coarse, grid, p, stride, flat, AGREEMENT_TAU)
    np.testing.assert_allclose(agreement.copy_to_host(), agree_want.ravel(), atol=2e-4)
    np.testing.assert_allclose(patch_sharp.copy_to_host(), patch_want.ravel(), atol=1e-4)
    np.testing.assert_allclose(cell_sharp.copy_to_host(), cell_want, atol=1e-4)


def test_splat_with_lift_matches_cpu():
    rng = np.random.default_rng(2)
    grid = (3, 5)
    values = (rng.random(grid) * 4).astype(np.float32)
    weights = rng.random(grid).astype(np.float32)
    weights[0, :2] = 0.0
    conf = rng.random(grid).astype(np.float32)
    patch_sharp = (rng.random(grid) * 0.7).astype(np.float32).astype(np.float64)
    cell_sharp = (rng.random((grid[0] + 3, grid[1] + 3)) * 0.7).astype(np.float32).astype(np.float64)
    for lift, match in [(0.0, False), (1.0, False), (1.0, True)]:
        sharp = (patch_sharp, cell_sharp) if match else None
        want_v, want_w = splat(values, weights, 32, 8, lift=lift, sharpness=sharp)
        want_c = tent_sum(conf, 32, 8) / tent_sum(np.ones(grid), 32, 8)
        d_sharp = (cuda.to_device(patch_sharp.ravel().astype(np.float32)),
                   cuda.to_device(cell_sharp.astype(np.float32))) if match else None
        got = KSP.splat(cuda.to_device(values.ravel()), cuda.to_device(weights.ravel()),
                        cuda.to_device(conf.ravel()), grid, 32, 8, lift=lift, sharpness=d_sharp)
        np.testing.assert_allclose(got[0].copy_to_host(), want_v, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1].copy_to_host(), want_w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got[2].copy_to_host(), want_c, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("src,dst", [((3, 4), (6, 8)), ((5, 7), (20, 28)), ((4, 4), (4, 4))])
def test_resize_linear_matches_opencv(src, dst):
    a = np.random.default_rng(4).random(src).astype(np.float32)
    b = a - 0.5
    got_a, got_b = KR.resize_linear(cuda.to_device(a), *dst, b=cuda.to_device(b), clip_b=True)
    np.testing.assert_allclose(got_a.copy_to_host(), resize(a, *dst), atol=1e-6)
    np.testing.assert_allclose(got_b.copy_to_host(), np.maximum(resize(b, *dst), 0), atol=1e-6)


def test_area_guide_matches_opencv():
    lum = np.random.default_rng(5).random((13, 18)).astype(np.float32)
    got = KR.area_guide(cuda.to_device(lum), 4, 5, 4).copy_to_host()
    np.testing.assert_allclose(got, resize(pad_to(lum, 16, 20), 4, 5, area=True), atol=1e-6)


@pytest.mark.parametrize("shape,radius", [((24, 40), 10), ((9, 13), 3), ((1, 7), 2)])
def test_snap_boundaries_matches_cpu(shape, radius):
    from fastdefocus.stages.snap import snap_boundaries
    h, w = shape
    lum = scene(h, w)
    ramp = np.clip((np.arange(w, dtype=np.float32) - w / 2) / 6 + 0.5, 0, 1) * 2.0  # 0 -> 2 px
    sigma = np.ascontiguousarray(np.broadcast_to(ramp, shape), dtype=np.float32)
    want = snap_boundaries(sigma, lum, radius)
    got = KS.snap_boundaries(cuda.to_device(sigma), cuda.to_device(lum), radius).copy_to_host()
    if shape == (24, 40):
        assert np.abs(want - sigma).max() > 0.1  # the case snaps pixels
    np.testing.assert_allclose(got, want, atol=1e-4)


# ----------------------------------------------------------------------- coarse levels


def test_coarse_region_box_matches_cpu():
    from fastdefocus.stages.coarse import box_region, coarse_region
    rng = np.random.default_rng(7)
    sigma = (rng.random((40, 52)) * 3).astype(np.float32)
    sigma[9:30, 21:47] += 3.0
    sigma[33, 5] = 4.5  # a lone pixel widens the box
    d_sigma = cuda.to_device(sigma)
    for lo in (4.0, 5.5, 8.0):
        box = KC.region_box(d_sigma, lo)
        above = sigma > np.float32(lo)
        rows, cols = np.flatnonzero(above.any(axis=1)), np.flatnonzero(above.any(axis=0))
        want = (int(above.sum()), rows[0], rows[-1], cols[0], cols[-1]) if above.any() else (0, 40, -1, 52, -1)
        assert box == tuple(int(v) for v in want)
        for factor, margin, min_area in [(2, 3, 10), (4, 64, 10), (4, 0, 1), (2, 0, 10 ** 4)]:
            assert box_region(box, sigma.shape, factor, margin, min_area) == coarse_region(
                sigma, lo, factor, margin, min_area)
    assert box_region(KC.region_box(d_sigma, 4.0), sigma.shape, 2, 3, 10) == (6, 37, 2, 50)


@pytest.mark.parametrize("region,factor", [((3, 40, 5, 50), 2), ((0, 33, 8, 45), 4), ((12, 13, 0, 52), 4)])
def test_coarse_shrink_matches_opencv(region, factor):
    import cv2
    from fastdefocus.stages.coarse import padded_size
    lum = np.random.default_rng(8).random((40, 52)).astype(np.float32)
    y0, y1, x0, x1 = region
    ph, pw = padded_size(y1 - y0, factor), padded_size(x1 - x0, factor)
    want = cv2.resize(pad_to(np.ascontiguousarray(lum[y0:y1, x0:x1]), ph, pw), (pw // factor, ph // factor),
                      interpolation=cv2.INTER_AREA)
    got = KC.shrink(cuda.to_device(lum), region, factor).copy_to_host()
    assert got.shape == want.shape == KC.shrunk_shape(region, factor)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("region,factor,level", [((3, 40, 5, 50), 2, 1), ((0, 33, 8, 45), 4, 2)])
def test_coarse_upsample_merge_matches_cpu(region, factor, level):
    import cv2
    from fastdefocus.stages.coarse import gate, merge, padded_size
    rng = np.random.default_rng(9)
    lo, hi = gate(level)
    sigma = (rng.random((40, 52)) * 2.5 * lo).astype(np.float32)
    conf = rng.random((40, 52)).astype(np.float32)
    y0, y1, x0, x1 = region
    rh, rw = y1 - y0, x1 - x0
    ph, pw = padded_size(rh, factor), padded_size(rw, factor)
    small = KC.shrunk_shape(region, factor)
    c_sigma = (rng.random(small) * 3 * hi / factor).astype(np.float32)
    c_conf = (rng.random(small) * 1.4 - 0.2).astype(np.float32)  # outside [0, 1] too: clipped
    up_s = cv2.resize(c_sigma, (pw, ph), interpolation=cv2.INTER_LINEAR)[:rh, :rw] * np.float32(factor)
    up_c = np.clip(cv2.resize(c_conf, (pw, ph), interpolation=cv2.INTER_LINEAR)[:rh, :rw], 0.0, 1.0)
    want_s, want_c = sigma.copy(), conf.copy()
    merge(want_s[y0:y1, x0:x1], want_c[y0:y1, x0:x1], up_s, up_c, lo, hi)
    assert np.abs(want_s - sigma).max() > 1.0  # the case raises the map
    d_s, d_c = cuda.to_device(sigma), cuda.to_device(conf)
    KC.upsample_merge(cuda.to_device(c_sigma), cuda.to_device(c_conf), region, factor, lo, hi, d_s, d_c)
    np.testing.assert_allclose(d_s.copy_to_host(), want_s, atol=1e-5)
    np.testing.assert_allclose(d_c.copy_to_host(), want_c, atol=1e-5)


@pytest.mark.parametrize("shape,stride,iterations,model", [((24, 40), 8, 3, "default"), ((20, 36), 16, 0, "default"),
                                                            ((24, 40), 8, 1, "fast")])
def test_pipeline_matches_cpu_estimator(cpu_est, shape, stride, iterations, model):
    est = DefocusEstimator(device="cpu", stride=stride, iterations=iterations, model=model)
    img = (scene(*shape) * 255).astype(np.uint8)
    rgb = np.repeat(img[..., None], 3, axis=2)
    gpu = GpuPipeline(est.config, est.info, backend="cpu")
    assert gpu.backend_name == "cpu"
    got = gpu.estimate(rgb)
    want = est.estimate(rgb)
    assert got.sigma.shape == shape and got.sigma.dtype == np.float32
    # fp16 classifier input (GPU) against float32 (CPU): the probabilities differ by ~1e-3
    np.testing.assert_allclose(got.sigma, want.sigma, atol=0.03)
    np.testing.assert_allclose(got.confidence, want.confidence, atol=0.02)
    assert np.abs(got.sigma - want.sigma).mean() < 0.005


def test_pipeline_coarse_levels_match_cpu_estimator():
    """Blur past the classifier's 6 px (Gaussian of 14 px on the right half): both coarse levels
    raise the map there, on the GPU as on the CPU; a sharp image runs none. (Without the boundary
    snap, which the simulator takes minutes over at this size; the tests above compare it.)"""
    est = DefocusEstimator(device="cpu", snap=0)
    gpu = GpuPipeline(est.config, est.info, backend="cpu")
    h, w = 96, 128
    img = dead_leaves(np.random.default_rng(3), max(h, w))[:h, :w].astype(np.float32)
    blurred = img.copy()
    blurred[:, w // 2:] = gaussian_blur(img, 14.0)[:, w // 2:]
    for image, coarse in [(img[:32, :48], False), (blurred, True)]:
        rgb = np.repeat((image * 255).astype(np.uint8)[..., None], 3, axis=2)
        want = est.estimate(rgb)
        got = gpu.estimate(rgb)
        if coarse:
            assert want.sigma[:, 3 * w // 4:].min() > 9.0  # past the fine level's 6.5 px
            assert want.counts["coarse_levels"] == 2
            # level 1 on (part of) the image halved, level 2 on the image quartered
            assert len(gpu._level_maps) == 2 and (24, 32) in gpu._level_maps
            assert gpu._child._backends is gpu._backends  # one classifier for all levels
        else:
            assert want.sigma.max() < 4.0 and gpu._child is None  # below the first gate: no level
        assert got.sigma_max == want.sigma_max == est.info.sigma_max * 4
        assert "coarse" in got.timings
        np.testing.assert_allclose(got.sigma, want.sigma, atol=0.03)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=0.02)
        assert np.abs(got.sigma - want.sigma).mean() < 0.005


def test_pipeline_stream_keeps_order_and_smooths(cpu_est):
    frames = [(scene(24, 32, seed=i) * 255).astype(np.uint8) for i in range(2)]
    gpu = GpuPipeline(cpu_est.config, cpu_est.info, backend="cpu")
    streamed = [r.sigma for r in gpu.stream(iter(frames), depth=2)]
    np.testing.assert_array_equal(streamed[1], gpu.estimate(frames[1]).sigma)  # in order
    assert not np.array_equal(streamed[0], streamed[1])
    smoothed = [r.sigma for r in gpu.stream(iter(frames), smoothing=0.5, depth=2)]
    np.testing.assert_array_equal(smoothed[0], streamed[0])
    np.testing.assert_allclose(smoothed[1], 0.5 * streamed[0] + 0.5 * streamed[1], atol=1e-6)
    with pytest.raises(ValueError, match="same size"):
        list(gpu.stream(iter([frames[0], frames[0][:20]])))


def test_pipeline_takes_bgr(cpu_est):
    rgb = np.stack([(scene(24, 32, seed=s) * 255).astype(np.uint8) for s in (4, 5, 6)], axis=2)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    gpu = GpuPipeline(cpu_est.config, cpu_est.info, backend="cpu")
    want = gpu.estimate(rgb).sigma
    np.testing.assert_array_equal(gpu.estimate(bgr, channel_order="bgr").sigma, want)
    streamed = [r.sigma for r in gpu.stream(iter([bgr]), depth=1, channel_order="bgr")]
    np.testing.assert_array_equal(streamed[0], want)


# --------------------------------------------------------------------------- gpu_bench


def test_gpu_bench_runs_from_the_installed_package(tmp_path):
    """``python -m fastdefocus.eval.gpu_bench`` is the bench's one command: it runs from any
    directory (nothing of the checkout needed); benchmarks/gpu_bench.py only forwards to it."""
    command = [sys.executable, "-m", "fastdefocus.eval.gpu_bench", "--help"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--simulator" in done.stdout and "--backends" in done.stdout and "--quick" in done.stdout
    wrapper = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench.py"
    if wrapper.is_file():  # a checkout (not an installed sdist)
        done = subprocess.run([sys.executable, str(wrapper), "--help"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "--simulator" in done.stdout


# ---------------------------------------------------------------------------- backends


def test_engine_cache_key_changes_with_every_input():
    base = dict(gpu_name="NVIDIA H100", capability=(9, 0), trt_version="10.3", torch_trt_version="2.5",
                torch_version="2.5.0", batch_shape=(32768, 1, 32, 32), weights_sha256="ab" * 32)
    key = B.engine_cache_key(**base)
    assert key == B.engine_cache_key(**base) and key.endswith(".ep")
    for name, other in [("gpu_name", "NVIDIA H200"), ("capability", (8, 0)), ("trt_version", "10.4"),
                        ("torch_trt_version", "2.6"), ("torch_version", "2.6.0"),
                        ("batch_shape", (8192, 1, 32, 32)), ("weights_sha256", "cd" * 32)]:
        assert B.engine_cache_key(**{**base, name: other}) != key, name


def test_auto_backend_falls_back_without_torch_cuda(monkeypatch):
    monkeypatch.setattr(B, "_unavailable", lambda n: None if n == "cpu" else "torch sees no CUDA device")
    name, notes = B.resolve_backend("auto")
    assert name == "cpu"
    assert [n.split(":")[0] for n in notes] == ["tensorrt", "compile", "eager"]
    with pytest.raises(RuntimeError, match="tensorrt.*not available.*no CUDA"):
        B.resolve_backend("tensorrt")
    with pytest.raises(ValueError, match="backend must be"):
        B.resolve_backend("fast")


def test_tensorrt_absent_is_reported(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch_tensorrt" else real(n, *a))
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "torch-tensorrt is not installed" in B._unavailable("tensorrt")


def test_estimator_rejects_backend_for_other_device():
    with pytest.raises(ValueError, match="runs on a CUDA device"):
        DefocusEstimator(device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend must be one of"):
        DefocusEstimator(backend="fastest")


def test_auto_device_never_picks_the_simulator(simulator):
    if not simulator:
        pytest.skip("a real device: auto may pick it")
    assert DefocusEstimator().device == "cpu"
    est = DefocusEstimator(device="cuda", backend="cpu", stride=16)  # explicit: the simulated GPU
    assert est.device == "cuda" and est.backend == "cpu"


# ----------------------------------------------------------------------- temporal filter


def test_temporal_kernels_match_the_reference():
    """The device filter (kernels.temporal) against stages.temporal.TemporalFilter: static noisy
    frames, a partial change, a cut (a new scene), and the state after it."""
    from fastdefocus.kernels.temporal import TemporalState
    from fastdefocus.stages.temporal import TemporalFilter
    rng = np.random.default_rng(11)
    shape = (14, 18)
    base = rng.random(shape, dtype=np.float32)
    moved = base.copy()
    moved[:, :6] += 0.08  # a third of the image moved: not a cut
    new = (1.0 - base)[:, ::-1].copy()
    scenes = [base, base, moved, new, new, new]
    ref, dev = TemporalFilter(), TemporalState()
    cuts = []
    for lum in scenes:
        lum = lum + rng.normal(0, 0.003, shape).astype(np.float32)
        sigma = (rng.random(shape, dtype=np.float32) * 6).astype(np.float32)
        conf = rng.random(shape, dtype=np.float32)
        want_s, want_c, cut = ref.update(lum, sigma, conf)
        d_sigma, d_conf = cuda.to_device(sigma), cuda.to_device(conf)
        dev.update(cuda.to_device(lum), d_sigma, d_conf)
        assert dev.last_cut() == cut
        cuts.append(cut)
        np.testing.assert_allclose(d_sigma.copy_to_host(), want_s, atol=1e-5)
        np.testing.assert_allclose(d_conf.copy_to_host(), want_c, atol=1e-5)
        np.testing.assert_allclose(dev.weight.copy_to_host(), ref.weight, atol=1e-5)
    assert cuts == [True, False, False, True, False, False]
    assert dev.frames == ref.frames == len(scenes)


def test_pipeline_stream_stable_matches_cpu_estimator():
    """stream(stable=True) on the CUDA estimator against the CPU one: small noisy frames of one
    scene (the filter averages them) and a cut to another."""
    cpu = DefocusEstimator(device="cpu", snap=0, coarse_levels=0)
    gpu = DefocusEstimator(device="cuda", backend="cpu", snap=0, coarse_levels=0)
    rng = np.random.default_rng(12)
    # blurred by 1.5 px, so the maps are away from 0 (sharp frames read about 0.02 px: nothing to filter)
    a, b = gaussian_blur(scene(24, 40, seed=5), 1.5), gaussian_blur(scene(24, 40, seed=6)[:, ::-1], 1.5)
    # noise that moves the per-frame maps (not the blurred luminance past the motion threshold)
    frames = [np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1).astype(np.float32) for img in (a, a, a, b)]
    want = list(cpu.stream(iter(frames), stable=True))
    got = list(gpu.stream(iter(frames), stable=True, prefetch=2))
    plain = list(gpu.stream(iter(frames), prefetch=2))
    np.testing.assert_array_equal(got[0].sigma, plain[0].sigma)  # the first frame: a cut
    np.testing.assert_array_equal(got[3].sigma, plain[3].sigma)  # the new scene: a cut
    assert np.abs(got[2].sigma - plain[2].sigma).mean() > 0.01  # the filter moved the map past the tolerance
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.sigma, w.sigma, atol=0.03)
        np.testing.assert_allclose(g.confidence, w.confidence, atol=0.02)
        assert np.abs(g.sigma - w.sigma).mean() < 0.005
    with pytest.raises(ValueError, match="replaces smoothing"):
        list(gpu._gpu.stream(iter(frames), smoothing=0.5, stable=True))


# ----------------------------------------------------------------------- texture gating


def half_flat(h, w, noise=0.0, seed=13):
    rng = np.random.default_rng(seed)
    img = dead_leaves(rng, max(h, w))[:h, :w].astype(np.float32)
    img[:, :w // 2] = 0.5 + rng.normal(0, noise, (h, w // 2)).astype(np.float32) if noise else 0.5
    return img


@pytest.mark.parametrize("noise", [0.0, 0.004])
def test_pipeline_texture_gating_matches_cpu_estimator(noise):
    """Left half flat (constant, or faint noise below flat_gate x flat_std), right half textured:
    the GPU classifies every patch but gives the flat ones the probabilities of a flat patch,
    so its maps are the CPU's, which does not classify them; with flat_gate 0 too."""
    h, w = 40, 80
    image = half_flat(h, w, noise)
    maps = {}
    for gate in (0.5, 0.0):
        est = DefocusEstimator(device="cpu", snap=0, coarse_levels=0, flat_gate=gate)
        gpu = GpuPipeline(est.config, est.info, backend="cpu")
        want = est.estimate(image)
        got = gpu.estimate(image)
        if gate:
            assert want.counts["classified"] < want.counts["patches"]  # the case gates patches
            assert gpu._flat is not None and gpu._coarse_child()._flat_probabilities(None, 0) is gpu._flat
        else:
            assert gpu._flat is None
        np.testing.assert_allclose(got.sigma, want.sigma, atol=0.03)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=0.02)
        assert np.abs(got.sigma - want.sigma).mean() < 0.005
        maps[gate] = want.sigma
    if noise:  # faint noise: the gated patches have weight 0 either way, and the flat fill gives
        # them their neighbours' values whether or not they were classified (only the fill's
        # prior, of weight 1e-3, still sees the classifier's value)
        assert np.abs(maps[0.5] - maps[0.0]).max() < 0.01


def test_dihedral_view_and_accumulation_kernels_match_numpy():
    """kernels.patches.dihedral_view equals stages.classify.dihedral_view for all eight views
    (fp16 batches, (N, 1, P, P)); accumulate_views sums in view order and scales as
    dihedral_probabilities does, bit for bit."""
    from fastdefocus.kernels import patches as KP
    from fastdefocus.stages.classify import dihedral_view
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 5, 5)).astype(np.float16)
    src = cuda.to_device(x)
    out = cuda.to_device(np.zeros_like(x))
    for v in range(8):
        KP.dihedral_view(src, v, out, count=2)
        got = out.copy_to_host()
        np.testing.assert_array_equal(got[:2], dihedral_view(x[:2], v))
    with pytest.raises(ValueError, match="view must be in 0-7"):
        KP.dihedral_view(src, 8, out)
    with pytest.raises(ValueError, match="must hold"):
        KP.dihedral_view(src, 1, cuda.to_device(np.zeros((3, 1, 4, 4), np.float16)))
    probs = [rng.random((4, 6)).astype(np.float32) for _ in range(4)]
    acc = cuda.device_array((5, 6), np.float32)
    for v, p in enumerate(probs):
        KP.accumulate_views(acc, cuda.to_device(p), 4, first=v == 0, scale=0.25 if v == 3 else 1.0)
    want = probs[0].copy()
    for p in probs[1:]:
        want += p
    want /= np.float32(4)
    np.testing.assert_array_equal(acc.copy_to_host()[:4], want)


def test_pipeline_with_views_matches_cpu_estimator():
    """tta=4: the GPU averages the classifier over the views of its batch as the CPU does."""
    image = scene(40, 72)
    est = DefocusEstimator(device="cpu", snap=0, coarse_levels=0, tta=4)
    gpu = GpuPipeline(est.config, est.info, backend="cpu")
    want, got = est.estimate(image), gpu.estimate(image)
    plain = DefocusEstimator(device="cpu", snap=0, coarse_levels=0).estimate(image)
    assert np.abs(want.sigma - plain.sigma).max() > 0.01  # the views change the map
    np.testing.assert_allclose(got.sigma, want.sigma, atol=0.03)
    assert np.abs(got.sigma - want.sigma).mean() < 0.005
