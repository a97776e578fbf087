"""GPU kernels (fastdefocus.kernels, Numba CUDA) against the float64 reference, and their
place in the layering (below the CPU stages, constants from fastdefocus._params).

Runs without a GPU under Numba's CUDA simulator (every thread a Python thread,
so the inputs are small); skipped if Numba is not installed.
"""

from __future__ import annotations

import os


import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba")

from fastdefocus.testing.reference import (  # noqa: E402
    box_filter_ref,
    extract_patches_ref,
    guided_coefficients_ref,
    guided_filter_ref,
    iterative_guided_filter_ref,
)
from fastdefocus.kernels import _compat  # noqa: E402

cuda = _compat.import_cuda()
if not cuda.is_available() and not getattr(cuda, "simulator", None):  # pragma: no cover
    pytest.skip("Numba's CUDA simulator is not available", allow_module_level=True)

from fastdefocus.kernels import filters as K  # noqa: E402
from fastdefocus.kernels import patches as P  # noqa: E402

SHAPES = [(1, 1), (1, 7), (7, 1), (9, 13), (16, 20)]
RADII = [0, 1, 2, 25]  # 25: beyond every image above (several reflection periods)


def rand(rng, shape, lo=0.0, hi=1.0):
    return (lo + (hi - lo) * rng.random(shape)).astype(np.float32)


def assert_close(got, want, data_range, rel=1e-4, what=""):
    assert got.shape == want.shape, what
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    tol = rel * data_range
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


# --------------------------------------------------------------------- compatibility


def test_row_stack_shim_restores_vstack(monkeypatch):
    if hasattr(np, "row_stack"):
        monkeypatch.delattr(np, "row_stack")  # simulate numpy >= 2.5
    assert not hasattr(np, "row_stack")
    assert _compat.ensure_numpy_row_stack() is True
    assert np.row_stack is np.vstack
    assert _compat.ensure_numpy_row_stack() is False  # idempotent
    assert np.row_stack is np.vstack


def test_row_stack_shim_leaves_existing_attribute(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(np, "row_stack", sentinel, raising=False)
    assert _compat.ensure_numpy_row_stack() is False
    assert np.row_stack is sentinel


# ------------------------------------------------------------------------------ layering


def test_kernels_import_no_cpu_stage_and_take_constants_from_params():
    """The kernels sit below the CPU stages (fastdefocus.stages.filters dispatches device arrays
    down to them): no kernel module imports fastdefocus.stages, and the tuned constants are
    fastdefocus._params' own objects, not copies."""
    import inspect
    import re
    from pathlib import Path

    import fastdefocus._params as params
    import fastdefocus.kernels as kernels
    from fastdefocus.kernels import ingest, patches, snap, splat

    root = Path(kernels.__file__).parent
    sources = sorted(root.rglob("*.py"))
    names = {p.name for p in sources}
    assert {"ingest.py", "splat.py", "refine.py", "snap.py", "filters.py", "patches.py"} <= names
    assert "stages.py" not in names  # split into one module per stage
    stage_import = re.compile(r"^\s*(from\s+(fastdefocus\.stages|\.\.stages)\b"
                              r"|import\s+fastdefocus\.stages\b"
                              r"|from\s+(fastdefocus|\.\.)\s+import\s+[^\n]*\bstages\b)", re.M)
    offenders = [f"{p.name}: {m.group(0).strip()}" for p in sources
                 for m in stage_import.finditer(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
    assert K.WEIGHT_FLOOR is params.WEIGHT_FLOOR
    assert tuple(ingest._LUMA) == tuple(np.float32(v) for v in params.LUMA_WEIGHTS)
    assert splat.SHARPNESS_FLOOR is params.SHARPNESS_FLOOR and splat.MATCH_TAU is params.MATCH_TAU
    assert splat.LIFT_EXP_MAX is params.LIFT_EXP_MAX
    assert snap.SHARPNESS_BLUR is params.SHARPNESS_BLUR and snap.SNAP_REFERENCE is params.SNAP_REFERENCE
    assert inspect.signature(patches.extract_patches).parameters["std_floor"].default is params.FLAT_STD


def test_kernels_and_cpu_stages_share_their_geometry():
    """The Gaussian taps, the agreement windows and the splat's tent come from one place below
    both the CPU stages and the kernels."""
    from fastdefocus import _geometry, blur
    from fastdefocus.kernels import ingest, splat
    from fastdefocus.stages import splat as cpu_splat

    assert ingest.gaussian_kernel1d is blur.gaussian_kernel1d
    assert splat.window_offsets is _geometry.window_offsets is cpu_splat.window_offsets
    assert splat.tent_weights is _geometry.tent_weights is cpu_splat.tent_weights


def test_import_fastdefocus_does_not_import_numba():
    code = "import fastdefocus, sys; assert 'numba' not in sys.modules, 'numba imported'"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ------------------------------------------------------------------------ box filter


@pytest.mark.parametrize("shape", SHAPES)
def test_box_filter_matches_reference(rng, shape):
    src = rand(rng, shape, -2.0, 3.0)
    dev = cuda.to_device(src)
    for r in RADII:
        out = K.box_filter(dev, r)
        assert out.dtype == np.float32
        assert_close(out.copy_to_host(), box_filter_ref(src, r), 5.0, what=f"box {shape} r={r}")


def test_box_filter_huge_radius_uint8_and_out(rng):
    src = rng.integers(0, 256, (5, 8)).astype(np.uint8)
    dev = cuda.to_device(src)
    assert_close(K.box_filter(dev, 1001).copy_to_host(), box_filter_ref(src, 1001), 255.0)
    # radius-independent cost: 2**40 is as cheap as 1; every window mean tends to
    # the mean over one reflection period (end rows/columns once, inner ones twice)
    rows = (src[0].astype(np.float64) + src[-1] + 2 * src[1:-1].sum(0)) / 8
    period_mean = (rows[0] + rows[-1] + 2 * rows[1:-1].sum()) / 14
    assert_close(K.box_filter(dev, 2**40).copy_to_host(), np.full(src.shape, period_mean), 255.0)
    out = cuda.device_array(src.shape, dtype=np.float32)
    assert K.box_filter(dev, 2, out=out) is out
    assert_close(out.copy_to_host(), box_filter_ref(src, 2), 255.0)


def test_box_filter_constant_is_exact():
    dev = cuda.to_device(np.full((6, 5), 0.25, np.float32))
    for r in [0, 3, 40]:
        np.testing.assert_array_equal(K.box_filter(dev, r).copy_to_host(), 0.25)


# ----------------------------------------------------------------------- guided filter


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_guided_filter_matches_reference(rng, shape, weighted):
    src, guide = rand(rng, shape), rand(rng, shape)
    weights = rand(rng, shape) if weighted else None
    if weighted and src.size > 1:
        weights[..., : shape[-1] // 2] = 0.0  # a region without confidence
    d_src, d_guide = cuda.to_device(src), cuda.to_device(guide)
    d_w = None if weights is None else cuda.to_device(weights)
    for r, eps in zip(RADII, [1e-3, 1e-1, 1e-3, 1e-2]):
        got = K.guided_filter(d_guide, d_src, r, eps, d_w).copy_to_host()
        want = guided_filter_ref(guide, src, r, eps, weights)
        assert got.dtype == np.float32
        assert_close(got, want, 1.0, what=f"guided {shape} r={r} eps={eps} w={weighted}")


@pytest.mark.parametrize("weighted", [False, True])
def test_guided_coefficients_match_reference(rng, weighted):
    shape = (9, 13)
    src, guide = rand(rng, shape, 0.0, 4.0), rand(rng, shape)
    weights = rand(rng, shape) if weighted else None
    d_w = None if weights is None else cuda.to_device(weights)
    for r in [1, 25]:
        coef_a, coef_b = K.guided_coefficients(cuda.to_device(guide), cuda.to_device(src), r,
                                               1e-2, d_w)
        want_a, want_b = guided_coefficients_ref(guide, src, r, 1e-2, weights)
        got_a, got_b = coef_a.copy_to_host(), coef_b.copy_to_host()
        assert_close(got_a, want_a, float(np.ptp(want_a)) + 1.0, what="A")
        assert_close(got_b, want_b, 4.0, what="B")
        assert_close(got_a * guide + got_b, guided_filter_ref(guide, src, r, 1e-2, weights), 4.0)


@pytest.mark.parametrize("shape", [(1, 7), (16, 20)])
def test_iterative_guided_filter_matches_reference(rng, shape):
    src, guide, weights = rand(rng, shape), rand(rng, shape), rand(rng, shape)
    d = [cuda.to_device(a) for a in (src, guide, weights)]
    for iterations in [1, 2, 3]:
        out = cuda.device_array(shape, dtype=np.float32)
        got = K.iterative_guided_filter(d[1], d[0], 2, 1e-3, d[2], iterations, out=out)
        assert got is out
        want = iterative_guided_filter_ref(guide, src, 2, 1e-3, weights, iterations)
        assert_close(out.copy_to_host(), want, 1.0, what=f"{iterations} iterations")


def test_guided_filter_rejects_bad_arguments(rng):
    src = rand(rng, (4, 5))
    dev = cuda.to_device(src)
    with pytest.raises(TypeError, match="device array"):
        K.guided_filter(dev, src, 1, 1e-3)  # a host array is never copied implicitly
    with pytest.raises(ValueError, match="shape of src"):
        K.guided_filter(cuda.to_device(rand(rng, (5, 4))), dev, 1, 1e-3)
    with pytest.raises(ValueError, match="eps"):
        K.guided_filter(dev, dev, 1, 0.0)
    with pytest.raises(ValueError, match="radius"):
        K.box_filter(dev, -1)


# -------------------------------------------------------------------------- patches


@pytest.mark.parametrize("shape,size,stride", [((1, 1), 3, 2), ((7, 1), 4, 3), ((9, 13), 4, 3),
                                               ((16, 20), 5, 4), ((9, 13), 4, 6)])
@pytest.mark.parametrize("normalize", [False, True])
def test_extract_patches_matches_reference(rng, shape, size, stride, normalize):
    gray = rand(rng, shape)
    gray[:2, :2] = 0.5  # some flat patches hit the std floor
    out, grid = P.extract_patches(cuda.to_device(gray), size, stride, normalize, threads=8)
    want, want_grid = extract_patches_ref(gray, size, stride, normalize)
    assert grid == want_grid and out.dtype == np.float32
    data_range = float(np.ptp(want)) or 1.0
    assert_close(out.copy_to_host(), want, data_range, what=f"patches {shape}")


def test_extract_patches_32_fp16_chunks(rng):
    gray = rand(rng, (20, 45))
    want, grid = extract_patches_ref(gray, 32, 8, True)
    assert grid == (1, 3)
    dev = cuda.to_device(gray)
    batch = cuda.device_array((2, 1, 32, 32), dtype=np.float16)  # the classifier's input
    got = np.empty_like(want)
    for first in range(0, 3, 2):  # chunks of 2 patches: 2 + 1 (the last one partly filled)
        out, _ = P.extract_patches(dev, 32, 8, True, out=batch, first=first, threads=32)
        assert out is batch
        n = min(2, 3 - first)
        got[first:first + n] = batch.copy_to_host()[:n, 0]
    # fp16 rounding: relative 2**-11 of values up to a few standard deviations
    assert_close(got, want, float(np.ptp(want)), rel=2e-3, what="fp16 batch")


def test_extract_patches_rejects_bad_batch(rng):
    dev = cuda.to_device(rand(rng, (9, 13)))
    with pytest.raises(ValueError, match="out must have shape"):
        P.extract_patches(dev, 4, 3, out=cuda.device_array((4, 5, 5), np.float32))
    with pytest.raises(TypeError, match="float32 or float16"):
        P.extract_patches(dev, 4, 3, out=cuda.device_array((4, 4, 4), np.float64))
    with pytest.raises(ValueError, match="first"):
        P.extract_patches(dev, 4, 3, first=12)


# ------------------------------------------------- fastdefocus.stages.filters on device arrays


def test_public_filters_dispatch_device_arrays(rng):
    from fastdefocus.stages import filters as F

    shape = (9, 13)
    src, guide, weights = rand(rng, shape), rand(rng, shape), rand(rng, shape)
    d = [cuda.to_device(a) for a in (src, guide, weights)]
    got = F.box_filter(d[0], 2)
    assert not isinstance(got, np.ndarray)  # stays on the device
    assert_close(got.copy_to_host(), box_filter_ref(src, 2), 1.0, what="box")
    assert_close(F.guided_filter(d[1], d[0], 2, 1e-3, d[2]).copy_to_host(),
                 guided_filter_ref(guide, src, 2, 1e-3, weights), 1.0, what="guided")
    assert_close(F.iterative_guided_filter(d[1], d[0], 1, 1e-3, None, 2).copy_to_host(),
                 iterative_guided_filter_ref(guide, src, 1, 1e-3, None, 2), 1.0, what="iterative")
    coef_a, coef_b = F.guided_coefficients(d[1], d[0], 1, 1e-2)
    want_a, want_b = guided_coefficients_ref(guide, src, 1, 1e-2)
    assert_close(coef_a.copy_to_host(), want_a, float(np.ptp(want_a)) + 1.0, what="A")
    assert_close(coef_b.copy_to_host(), want_b, 1.0, what="B")
    patches, grid = F.extract_patches(d[0], 4, 3, True)
    want, want_grid = extract_patches_ref(src, 4, 3, True)
    assert grid == want_grid
    assert_close(patches.copy_to_host(), want, float(np.ptp(want)), what="patches")
    # scalar arguments are still validated once, at the public boundary
    with pytest.raises(ValueError, match="radius"):
        F.box_filter(d[0], -1)
    with pytest.raises(TypeError, match="device array"):
        F.guided_filter(guide, d[0], 1, 1e-3)  # a host guide with a device src
