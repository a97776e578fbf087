"""Fast image filters backed by the native (C++) kernels.

All functions take 2-D single-channel images (any real dtype; converted once
to C-contiguous float32; the guided filters also a colour guide (H, W, 3),
sources of several channels (H, W, C) and torch batches (B, C, H, W)),
validate their arguments at the boundary, and return NumPy float32 arrays.
The guided filters take their arguments in OpenCV's order,
``(guide, src, radius, eps)``, like ``cv2.ximgproc.guidedFilter``.  Borders use "reflect" (reflect-101, as
``np.pad(mode="reflect")``: ``... c b | a b c d | c b ...``), repeated for
windows larger than the image, so every window holds exactly
``(2 * radius + 1) ** 2`` samples.  Sums are accumulated in double precision,
the work is split over rows between threads (``threads=N``; by default
``FASTDEFOCUS_NUM_THREADS`` / ``OMP_NUM_THREADS``, else the cores the process may use) with the GIL released, and the cost per pixel does not depend on
the radius.

Plain NumPy float64 versions with the same semantics live in
:mod:`fastdefocus.testing.reference`.

Device arrays (anything with ``__cuda_array_interface__`` and no
``__array_interface__``: CuPy arrays, torch CUDA tensors, Numba device arrays)
run on the GPU kernels of :mod:`fastdefocus.kernels` (Numba CUDA, imported on
first use) and give float32 device arrays of the input's library (CuPy in, CuPy
out; torch in, torch out; views, no copies); their values are not scanned for
NaN/inf there.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple

import numpy as np

from fastdefocus._params import WEIGHT_FLOOR
from fastdefocus._validate import check_float, check_int, describe

try:  # the compiled extension; a missing build only fails when a filter is used
    from fastdefocus import _native
except ImportError as exc:  # pragma: no cover - exercised only without a build
    _native = None
    _NATIVE_IMPORT_ERROR: Optional[ImportError] = exc
else:
    _NATIVE_IMPORT_ERROR = None

__all__ = ["box_filter", "guided_filter", "guided_coefficients", "iterative_guided_filter",
           "extract_patches"]


# --------------------------------------------------------------------------- validation


def _require_native():
    if _native is None:
        raise ImportError(
            "fastdefocus._native (the compiled C++ kernels) is not available: install the "
            "package with `pip install .` or `pip install --no-build-isolation -e .` "
            f"(original error: {_NATIVE_IMPORT_ERROR})"
        ) from _NATIVE_IMPORT_ERROR
    return _native


def _on_device(value) -> bool:
    """True for a GPU array, which the filters hand to :mod:`fastdefocus.kernels`."""
    if type(value).__name__ == "FakeCUDAArray":  # Numba's CUDA simulator (tests without a GPU)
        return True
    return hasattr(value, "__cuda_array_interface__") and not hasattr(value, "__array_interface__")


def _like(result, template):
    """A device result in the array library of the input: a CuPy array for CuPy input, a
    torch tensor for torch input (both views on the same memory), else Numba's device array."""
    module = type(template).__module__.split(".")[0]
    if module == "cupy":
        import cupy
        return cupy.asarray(result)
    if module == "torch":
        import torch
        return torch.as_tensor(result, device=template.device)
    return result


def _as_image(func: str, name: str, value, shape: Optional[Tuple[int, int]] = None,
              nonnegative: bool = False, channels=None, threads: int = 0) -> np.ndarray:
    """Validate an image argument and return it as C-contiguous float32.

    ``channels``: None for 2-D (H, W) only; "any" also takes (H, W, C) with any C >= 1; a tuple
    of channel counts takes (H, W, C) with C among them. ``shape``: the (H, W) it must have."""
    if value is None:
        raise TypeError(f"{func}: {name} must be a 2-D array of real numbers, got None")
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(
            f"{func}: {name} must be a 2-D array of real numbers, got dtype {arr.dtype}"
        )
    if channels is None and arr.ndim != 2:
        raise ValueError(
            f"{func}: {name} must be a 2-D array (H, W), got {arr.ndim}-D array of shape {arr.shape}"
        )
    if channels is not None:
        if arr.ndim not in (2, 3):
            raise ValueError(f"{func}: {name} must be a 2-D array (H, W) or 3-D (H, W, C), got "
                             f"{arr.ndim}-D array of shape {arr.shape}")
        if arr.ndim == 3 and channels != "any" and arr.shape[2] not in channels:
            allowed = " or ".join(str(c) for c in channels)
            raise ValueError(f"{func}: {name} must have {allowed} channels in the last axis (H, W, C), "
                             f"got shape {arr.shape}")
        if arr.ndim == 3 and arr.shape[2] < 1:
            raise ValueError(f"{func}: {name} must have at least one channel, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{func}: {name} must have H >= 1 and W >= 1, got shape {arr.shape}")
    if shape is not None and arr.shape[:2] != tuple(shape):
        what = "the same shape as src" if arr.ndim == 2 else "the height and width of src"
        raise ValueError(f"{func}: {name} must have {what} {tuple(shape)}, got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: caught below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite, negative = _require_native().scan(arr, threads)
    if not finite:
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(
            f"{func}: {name} must contain only finite values (after conversion to float32), "
            f"got {bad} NaN/inf value(s)"
        )
    if nonnegative and negative:
        raise ValueError(f"{func}: {name} must be >= 0 everywhere, got minimum {float(arr.min())!r}")
    return arr


def _as_radius(func: str, value) -> int:
    r = check_int("radius", value, 0, where=func)
    if r > 2 ** 40:
        raise ValueError(f"{func}: radius must be <= 2**40, got {r}")
    return r


def _as_threads(func: str, value) -> int:
    return check_int("threads", value, 0, where=func)


def _is_torch(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


# ------------------------------------------------------------------------------ filters


def box_filter(src, radius: int, *, threads: int = 0) -> np.ndarray:
    """Mean filter over a square window with reflect-101 borders.

    Parameters
    ----------
    src : array_like, shape (H, W)
        Image (any real dtype, converted to float32), H, W >= 1, finite values.
    radius : int
        Window radius r >= 0; the window is (2r+1) x (2r+1).  May exceed the
        image size (the reflection repeats).
    threads : int, default 0
        Threads of the native code (0: ``FASTDEFOCUS_NUM_THREADS`` /
        ``OMP_NUM_THREADS``, else the cores this process may use; small images
        use one).  Ignored for device arrays.

    Returns
    -------
    numpy.ndarray, shape (H, W), float32
        The window means.

    Raises
    ------
    TypeError
        If ``src`` is not a real-valued array or ``radius`` is not an int.
    ValueError
        If ``src`` is not 2-D, is empty or has non-finite values, or if
        ``radius`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> box_filter(np.ones((3, 4)), 1)
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    func = "box_filter"
    r = _as_radius(func, radius)
    t = _as_threads(func, threads)
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        return _like(gpu.box_filter(src, r), src)
    img = _as_image(func, "src", src, threads=t)
    return _native.box_filter(img, r, t)


# -------------------------------------------------------------------- guided filters
#
# Public order (guide, src, radius, eps), as cv2.ximgproc.guidedFilter(guide, src, radius, eps)
# and kornia's guided_blur(guidance, input, ...); the native functions keep (src, guide, ...).


def _guided_args(func: str, guide, src, radius, eps, weights, threads: int):
    """Validated (p, g, w, r, e): p (H, W) or (H, W, C) float32; g (H, W) gray or (H, W, 3) colour."""
    r = _as_radius(func, radius)
    e = check_float("eps", eps, 0.0, inclusive=False, where=func)
    p = _as_image(func, "src", src, channels="any", threads=threads)
    g = _as_image(func, "guide", guide, shape=p.shape[:2], channels=(1, 3), threads=threads)
    if g.ndim == 3 and g.shape[2] == 1:
        g = np.ascontiguousarray(g[..., 0])
    w = None if weights is None else _as_image(func, "weights", weights, shape=p.shape[:2],
                                               nonnegative=True, threads=threads)
    return p, g, w, r, e


def _planes(p: np.ndarray):
    """The channels of ``p`` (H, W) or (H, W, C) as C-contiguous (H, W) planes."""
    if p.ndim == 2:
        return [p]
    return [np.ascontiguousarray(p[..., c]) for c in range(p.shape[2])]


def _colour_coefficients(g: np.ndarray, p: np.ndarray, w, r: int, e: float, threads: int):
    """``(A, B)`` of the colour guided filter (He et al., TPAMI 2013, section 3.5) in float32:
    A (H, W, 3), B (H, W), with ``q = sum_c A[..., c] * g[..., c] + B``.

    For every window k: ``a_k = (Sigma_k + eps U)^-1 cov_k(I, p)`` (Sigma_k the 3 x 3 covariance
    of the guide's colours in the window, U the identity), ``b_k = mean_k(p) - a_k . mean_k(I)``;
    A and B are the box means of a and b. With weights, the window statistics are weighted by
    ``w + WEIGHT_FLOOR`` as in the gray filter. Guide and source are centred on their global
    means first (the coefficients do not change; the products lose less to cancellation)."""
    def box(x):
        return _native.box_filter(np.ascontiguousarray(x, dtype=np.float32), r, threads)

    g_mean = g.reshape(-1, 3).mean(axis=0, dtype=np.float64).astype(np.float32)
    p_mean = np.float32(p.mean(dtype=np.float64))
    guide = [np.ascontiguousarray(g[..., c] - g_mean[c]) for c in range(3)]
    src = p - p_mean
    if w is None:
        mean = box
    else:
        we = w + np.float32(WEIGHT_FLOOR)
        inv_w = np.float32(1.0) / box(we)

        def mean(x):
            return box(we * x) * inv_w
    mean_i = [mean(i) for i in guide]
    mean_p = mean(src)
    cov = [mean(i * src) - m * mean_p for i, m in zip(guide, mean_i)]
    eps = np.float32(e)
    s00 = mean(guide[0] * guide[0]) - mean_i[0] * mean_i[0] + eps
    s01 = mean(guide[0] * guide[1]) - mean_i[0] * mean_i[1]
    s02 = mean(guide[0] * guide[2]) - mean_i[0] * mean_i[2]
    s11 = mean(guide[1] * guide[1]) - mean_i[1] * mean_i[1] + eps
    s12 = mean(guide[1] * guide[2]) - mean_i[1] * mean_i[2]
    s22 = mean(guide[2] * guide[2]) - mean_i[2] * mean_i[2] + eps
    # the inverse of the symmetric 3 x 3 matrix from its cofactors
    c00 = s11 * s22 - s12 * s12
    c01 = s02 * s12 - s01 * s22
    c02 = s01 * s12 - s02 * s11
    c11 = s00 * s22 - s02 * s02
    c12 = s01 * s02 - s00 * s12
    c22 = s00 * s11 - s01 * s01
    inv_det = np.float32(1.0) / (s00 * c00 + s01 * c01 + s02 * c02)
    a0 = (c00 * cov[0] + c01 * cov[1] + c02 * cov[2]) * inv_det
    a1 = (c01 * cov[0] + c11 * cov[1] + c12 * cov[2]) * inv_det
    a2 = (c02 * cov[0] + c12 * cov[1] + c22 * cov[2]) * inv_det
    b = mean_p - a0 * mean_i[0] - a1 * mean_i[1] - a2 * mean_i[2]
    coef_a = np.stack([box(a0), box(a1), box(a2)], axis=2)
    # back to the uncentred guide and source: q = A . (I - g_mean) + B' + p_mean
    coef_b = box(b) + p_mean - (coef_a[..., 0] * g_mean[0] + coef_a[..., 1] * g_mean[1]
                                + coef_a[..., 2] * g_mean[2])
    return coef_a, coef_b


def _colour_apply(coef_a: np.ndarray, coef_b: np.ndarray, g: np.ndarray) -> np.ndarray:
    return (coef_a[..., 0] * g[..., 0] + coef_a[..., 1] * g[..., 1] + coef_a[..., 2] * g[..., 2]
            + coef_b).astype(np.float32, copy=False)


def _guided_host(p, g, w, r, e, n, threads) -> np.ndarray:
    """The (iterated) guided filter of every channel of p on the CPU."""
    out = []
    for plane in _planes(p):
        if g.ndim == 2:
            out.append(_native.guided_filter(plane, g, w, r, e, n, threads))
            continue
        for _ in range(n):
            plane = _colour_apply(*_colour_coefficients(g, plane, w, r, e, threads), g)
        out.append(plane)
    return out[0] if p.ndim == 2 else np.stack(out, axis=2)


def _coefficients_host(p, g, w, r, e, threads):
    pairs = [_native.guided_coefficients(plane, g, w, r, e, threads) if g.ndim == 2
             else _colour_coefficients(g, plane, w, r, e, threads) for plane in _planes(p)]
    if p.ndim == 2:
        return pairs[0]
    return np.stack([a for a, _ in pairs], axis=2), np.stack([b for _, b in pairs], axis=2)


def _torch_batched(func: str, guide, src, weights, host, device):
    """Channel-first torch input: src (B, C, H, W) or (C, H, W), guide (B, 1|3, H, W) or
    (1|3, H, W), weights (B, H, W), (B, 1, H, W), (H, W) or None. CPU tensors run image by
    image through ``host(g, p, w)`` (NumPy, channel-last); CUDA tensors plane by plane through
    ``device(g, p, w)`` (the kernels, gray guide). Returns torch tensors, channel-first."""
    import torch

    if not _is_torch(guide):
        raise TypeError(f"{func}: with a torch src, guide must be a torch tensor too, got {type(guide).__name__}")
    batched = src.dim() == 4
    if src.dim() not in (3, 4) or guide.dim() != src.dim():
        raise ValueError(f"{func}: torch tensors must both be (B, C, H, W) or both (C, H, W), got src "
                         f"{tuple(src.shape)} and guide {tuple(guide.shape)}")
    s = src if batched else src[None]
    g = guide if batched else guide[None]
    if g.shape[0] != s.shape[0] or g.shape[2:] != s.shape[2:] or g.shape[1] not in (1, 3):
        raise ValueError(f"{func}: guide must be (B, 1, H, W) or (B, 3, H, W) with src's B, H, W "
                         f"{(s.shape[0],) + tuple(s.shape[2:])}, got {tuple(guide.shape)}")
    w = weights
    if w is not None:
        if not _is_torch(w):
            w = torch.as_tensor(np.asarray(w))
        if w.dim() == 4 and w.shape[1] == 1:
            w = w[:, 0]
        if w.dim() == 2:
            w = w.expand(s.shape[0], *w.shape)
        if w.dim() != 3 or w.shape[0] != s.shape[0] or w.shape[1:] != s.shape[2:]:
            raise ValueError(f"{func}: weights must be (B, H, W), (B, 1, H, W) or (H, W) matching src "
                             f"{tuple(src.shape)}, got {tuple(weights.shape)}")
    results = []
    for b in range(s.shape[0]):
        wb = None if w is None else w[b]
        if s.device.type == "cpu":
            gb = g[b].detach().to(torch.float32).numpy()
            gb = gb[0] if gb.shape[0] == 1 else np.moveaxis(gb, 0, -1)
            pb = np.moveaxis(s[b].detach().to(torch.float32).numpy(), 0, -1)
            out = host(gb, pb, None if wb is None else wb.detach().to(torch.float32).numpy())
            out = out if isinstance(out, tuple) else (out,)
            # (H, W, C) -> (C, H, W); colour coefficients (H, W, C, 3) -> (C, 3, H, W)
            results.append(tuple(torch.from_numpy(np.ascontiguousarray(np.moveaxis(o, (0, 1), (-2, -1))))
                                 for o in out))
        else:
            if g.shape[1] != 1:
                raise ValueError(f"{func}: the colour guide runs on the CPU; on a CUDA device pass a gray "
                                 "guide (B, 1, H, W), or CPU tensors")
            planes = [device(g[b, 0], s[b, c], wb) for c in range(s.shape[1])]
            planes = [p if isinstance(p, tuple) else (p,) for p in planes]
            results.append(tuple(torch.stack([p[k] for p in planes]) for k in range(len(planes[0]))))
    stacked = tuple(torch.stack([r[k] for r in results]) if batched else results[0][k]
                    for k in range(len(results[0])))
    return stacked if len(stacked) > 1 else stacked[0]


def _guided(func: str, guide, src, radius, eps, weights, iterations, threads) -> np.ndarray:
    n = check_int("iterations", iterations, 1, where=func)
    t = _as_threads(func, threads)
    if _is_torch(src) and src.dim() in (3, 4):
        return _torch_batched(
            func, guide, src, weights,
            host=lambda g, p, w: _guided_host(*_guided_args(func, g, p, radius, eps, w, t), n, t),
            device=lambda g, p, w: _guided(func, g, p, radius, eps, w, n, t))
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        r, e = _as_radius(func, radius), check_float("eps", eps, 0.0, inclusive=False, where=func)
        return _like(gpu.iterative_guided_filter(guide, src, r, e, weights, n), src)
    p, g, w, r, e = _guided_args(func, guide, src, radius, eps, weights, t)
    return _guided_host(p, g, w, r, e, n, t)


def guided_filter(guide, src, radius: int, eps: float, weights=None, *, threads: int = 0) -> np.ndarray:
    """Guided filter (He et al.) with a gray or colour guide, optionally weighted.

    The arguments come in OpenCV's order, ``cv2.ximgproc.guidedFilter(guide, src, radius,
    eps)`` (kornia: ``guided_blur(guidance, input, ...)``): the guide first.  (fastdefocus 0.1
    took ``(src, guide, ...)``; see the CHANGELOG.)

    Gray guide: for every (2r+1) x (2r+1) window k the linear model
    ``q = a_k I + b_k`` is fitted to ``src`` (p) by least squares with ridge
    ``eps``; the output is ``q_i = mean_k(a_k) I_i + mean_k(b_k)`` over the
    windows containing i.

    Colour guide (H, W, 3) (He et al., "Guided image filtering", TPAMI 2013,
    section 3.5): ``a_k`` is a 3-vector, ``a_k = (Sigma_k + eps U)^-1 cov_k(I, p)``
    with ``Sigma_k`` the 3 x 3 covariance of the guide's colours in the window,
    so edges between colours of equal gray level are kept too; ``q_i =
    mean_k(a_k) . I_i + mean_k(b_k)``.  Computed in float32 from native box
    filters (about 17 box filters per source channel).

    With ``weights`` (w >= 0) the fit of every window is weighted by
    ``w_e = w + 1e-6`` (so windows whose weights are all zero fall back to the
    unweighted fit)::

        m_w(X) = box(w_e X) / box(w_e)
        a_k = (m_w(I p) - m_w(I) m_w(p)) / (m_w(I^2) - m_w(I)^2 + eps)
        b_k = m_w(p) - a_k m_w(I)

    and the coefficients are then averaged with the plain box mean.  Confident
    (high-weight) values spread into low-weight regions along the guide's
    structure.

    Parameters
    ----------
    guide : array_like, shape (H, W), (H, W, 1) or (H, W, 3)
        Gray or colour guide image (I); may be ``src`` itself.
    src : array_like, shape (H, W) or (H, W, C)
        Image to filter (p), finite values; each of C channels is filtered
        with the same guide.
    radius : int
        Window radius r >= 0 (may exceed the image size).
    eps : float
        Regularisation > 0, in squared guide units (e.g. 1e-3 for a guide in
        [0, 1]): larger values smooth more.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0.  ``None`` (default) is the standard guided
        filter, equal to weights of all ones up to float rounding.
    threads : int, default 0
        Threads of the native code (0: the default, see :func:`box_filter`).

    Torch tensors: ``src`` (B, C, H, W) (or (C, H, W)) with ``guide`` (B, 1, H, W)
    or (B, 3, H, W) give a float32 tensor (B, C, H, W); CPU tensors are filtered
    image by image, CUDA tensors plane by plane on the GPU kernels (gray guide
    only there).  Device arrays (H, W) (CuPy, torch CUDA, Numba) run on the GPU
    kernels of :mod:`fastdefocus.kernels` (gray guide).

    Returns
    -------
    numpy.ndarray, shape of ``src``, float32
        The filtered image.

    Raises
    ------
    TypeError
        If an array argument is not real-valued, ``radius`` is not an int or
        ``eps`` is not a real number.
    ValueError
        On shape mismatches, a guide with other than 1 or 3 channels, empty
        arrays, non-finite values, negative weights, a negative radius or
        ``eps <= 0``.

    See Also
    --------
    iterative_guided_filter : repeated application with the same guide.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((64, 64), dtype=np.float32)
    >>> guided_filter(img, img, radius=4, eps=1e-2).shape
    (64, 64)
    >>> colour = rng.random((64, 64, 3), dtype=np.float32)
    >>> guided_filter(colour, img, 4, 1e-2).shape      # colour guide, gray source
    (64, 64)
    >>> guided_filter(colour, colour, 4, 1e-2).shape   # each channel of the source
    (64, 64, 3)
    """
    return _guided("guided_filter", guide, src, radius, eps, weights, 1, threads)


def guided_coefficients(guide, src, radius: int, eps: float,
                        weights=None, *, threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Mean local linear coefficients ``(A, B)`` of the (weighted) guided filter.

    ``A = box(a)`` and ``B = box(b)``, with the per-window coefficients ``a``,
    ``b`` and the weighting of :func:`guided_filter`, so that
    ``guided_filter(guide, src, radius, eps, weights) == A * guide + B`` (up
    to float32 rounding; with a colour guide ``(A * guide).sum(-1) + B``).
    This is the building block of guided upsampling (He and Sun, "Fast guided
    filter", 2015): compute the coefficients at low resolution, resize ``A``
    and ``B`` to full resolution and apply them to the full-resolution guide,
    so edges come from the guide itself.  Arguments in OpenCV's order, as
    :func:`guided_filter`.

    :func:`guided_filter` is computed by the same code (with the final
    ``A * guide + B`` fused), so the two always agree.

    Parameters
    ----------
    guide : array_like, shape (H, W), (H, W, 1) or (H, W, 3)
        Gray or colour guide image (I); may be ``src`` itself.
    src : array_like, shape (H, W) or (H, W, C)
        Image to filter (p), finite values.
    radius : int
        Window radius r >= 0 (may exceed the image size).
    eps : float
        Regularisation > 0, in squared guide units.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0 (``w_e = w + 1e-6`` weights every window
        fit), as in :func:`guided_filter`.  ``None`` (default) is the
        standard guided filter.
    threads : int, default 0
        Threads of the native code (0: the default, see :func:`box_filter`).

    Returns
    -------
    A : numpy.ndarray, float32
        Window mean of the slopes ``a`` (src units per guide unit): (H, W) for
        a gray guide and a 2-D source, (H, W, 3) for a colour guide; a source
        with C channels adds a channel axis: (H, W, C), or (H, W, C, 3).
        Torch input (B, C, H, W): (B, C, H, W) or (B, C, 3, H, W).
    B : numpy.ndarray, float32, the shape of ``src``
        Window mean of the offsets ``b`` (src units).

    Raises
    ------
    TypeError, ValueError
        As :func:`guided_filter`.

    See Also
    --------
    guided_filter : the filter output ``A * guide + B``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((32, 48), dtype=np.float32)
    >>> guide = rng.random((32, 48), dtype=np.float32)
    >>> A, B = guided_coefficients(guide, img, radius=3, eps=1e-2)
    >>> bool(np.allclose(A * guide + B, guided_filter(guide, img, 3, 1e-2), atol=1e-5))
    True
    """
    func = "guided_coefficients"
    t = _as_threads(func, threads)
    if _is_torch(src) and src.dim() in (3, 4):
        return _torch_batched(
            func, guide, src, weights,
            host=lambda g, p, w: _coefficients_host(*_guided_args(func, g, p, radius, eps, w, t), t),
            device=lambda g, p, w: guided_coefficients(g, p, radius, eps, w, threads=t))
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        r, e = _as_radius(func, radius), check_float("eps", eps, 0.0, inclusive=False, where=func)
        a, b = gpu.guided_coefficients(guide, src, r, e, weights)
        return _like(a, src), _like(b, src)
    p, g, w, r, e = _guided_args(func, guide, src, radius, eps, weights, t)
    return _coefficients_host(p, g, w, r, e, t)


def iterative_guided_filter(guide, src, radius: int, eps: float, weights=None,
                            iterations: int = 1, *, threads: int = 0) -> np.ndarray:
    """Guided filter applied ``iterations`` times with a fixed guide and weights.

    ``p_0 = src`` and ``p_{t+1} = guided_filter(guide, p_t, radius, eps, weights)``;
    returns ``p_iterations``.  With weights, each pass spreads confident values
    further into unconfident regions.  Arguments in OpenCV's order, as
    :func:`guided_filter`, whose guides (gray or colour), sources (one or more
    channels) and torch batches it takes too.

    Parameters
    ----------
    guide : array_like, shape (H, W), (H, W, 1) or (H, W, 3)
        Gray or colour guide image.
    src : array_like, shape (H, W) or (H, W, C)
        Initial image, finite values.
    radius : int
        Window radius r >= 0.
    eps : float
        Regularisation > 0.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0, the same for every iteration.
    iterations : int, default 1
        Number of passes, >= 1.
    threads : int, default 0
        Threads of the native code (0: the default, see :func:`box_filter`).

    Returns
    -------
    numpy.ndarray, shape of ``src``, float32
        The filtered image after ``iterations`` passes.

    Raises
    ------
    TypeError, ValueError
        As :func:`guided_filter`, and for ``iterations`` that is not an
        int >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8), np.float32); img[:, 4:] = 1
    >>> iterative_guided_filter(img, img, 2, 1e-3, iterations=3).shape
    (8, 8)
    """
    return _guided("iterative_guided_filter", guide, src, radius, eps, weights, iterations, threads)


def extract_patches(gray, size: int = 32, stride: int = 8, normalize: bool = False,
                    std_floor: float = 0.02, *, threads: int = 0):
    """Square patches on a regular grid covering the whole image.

    The grid has ``ny = ceil(max(H - size, 0) / stride) + 1`` rows (``nx``
    likewise for W); the image is reflect-padded (reflect-101, repeated if
    needed) at the bottom and right to ``(ny - 1) * stride + size`` rows and
    ``(nx - 1) * stride + size`` columns, so with ``stride <= size`` every
    pixel lies in some patch, also for images smaller than a patch (a stride
    larger than the patch samples the image sparsely).

    Parameters
    ----------
    gray : array_like, shape (H, W)
        Gray image, finite values.
    size : int, default 32
        Patch side, >= 1.
    stride : int, default 8
        Grid step, >= 1.
    normalize : bool, default False
        If true, each patch becomes ``(p - mean) / max(std, std_floor)`` with
        its own mean and population standard deviation (computed in double).
    std_floor : float, default 0.02
        Lower bound (> 0) of the divisor when normalising, so flat patches are
        not blown up.
    threads : int, default 0
        Threads of the native code (0: the default, see :func:`box_filter`).

    Returns
    -------
    patches : numpy.ndarray, shape (ny * nx, size, size), float32
        C-contiguous, row-major over the grid: patch ``iy * nx + ix`` starts at
        row ``iy * stride`` and column ``ix * stride``.
    grid : tuple of int
        ``(ny, nx)``.

    Raises
    ------
    TypeError
        If ``gray`` is not real-valued, ``size``/``stride`` are not ints,
        ``normalize`` is not a bool or ``std_floor`` is not a real number.
    ValueError
        If ``gray`` is not 2-D, is empty or has non-finite values, or if
        ``size``, ``stride`` or ``std_floor`` are not positive.

    Examples
    --------
    >>> import numpy as np
    >>> patches, grid = extract_patches(np.zeros((40, 50)), size=32, stride=8)
    >>> patches.shape, grid
    ((8, 32, 32), (2, 4))
    """
    func = "extract_patches"
    s = check_int("size", size, 1, where=func)
    st = check_int("stride", stride, 1, where=func)
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"{func}: normalize must be a bool, got {describe(normalize)}")
    floor = check_float("std_floor", std_floor, 0.0, inclusive=False, where=func)
    t = _as_threads(func, threads)
    if _on_device(gray):
        from fastdefocus.kernels import patches as gpu

        patches, grid = gpu.extract_patches(gray, s, st, bool(normalize), floor)
        return _like(patches, gray), grid
    img = _as_image(func, "gray", gray, threads=t)
    patches, grid = _native.extract_patches(img, s, st, bool(normalize), floor, t)
    return patches, (int(grid[0]), int(grid[1]))
