"""Fast image filters backed by the native (C++) kernels.

All functions take 2-D single-channel images (any real dtype; converted once
to C-contiguous float32), validate their arguments at the boundary, and return
NumPy float32 arrays.  Borders use "reflect" (reflect-101, as
``np.pad(mode="reflect")``: ``... c b | a b c d | c b ...``), repeated for
windows larger than the image, so every window holds exactly
``(2 * radius + 1) ** 2`` samples.  Sums are accumulated in double precision,
the work is split over rows between threads (OpenMP; ``OMP_NUM_THREADS``
limits them) with the GIL released, and the cost per pixel does not depend on
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
              nonnegative: bool = False) -> np.ndarray:
    """Validate a 2-D image argument and return it as C-contiguous float32."""
    if value is None:
        raise TypeError(f"{func}: {name} must be a 2-D array of real numbers, got None")
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(
            f"{func}: {name} must be a 2-D array of real numbers, got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{func}: {name} must be a 2-D array (H, W), got {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{func}: {name} must have H >= 1 and W >= 1, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(
            f"{func}: {name} must have the same shape as src {shape}, got shape {arr.shape}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: caught below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite, negative = _require_native().scan(arr)
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


# ------------------------------------------------------------------------------ filters


def box_filter(src, radius: int) -> np.ndarray:
    """Mean filter over a square window with reflect-101 borders.

    Parameters
    ----------
    src : array_like, shape (H, W)
        Image (any real dtype, converted to float32), H, W >= 1, finite values.
    radius : int
        Window radius r >= 0; the window is (2r+1) x (2r+1).  May exceed the
        image size (the reflection repeats).

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
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        return _like(gpu.box_filter(src, r), src)
    img = _as_image(func, "src", src)
    return _native.box_filter(img, r)


def _guided_args(func: str, src, guide, radius, eps, weights):
    r = _as_radius(func, radius)
    e = check_float("eps", eps, 0.0, inclusive=False, where=func)
    p = _as_image(func, "src", src)
    g = _as_image(func, "guide", guide, shape=p.shape)
    w = None if weights is None else _as_image(func, "weights", weights, shape=p.shape,
                                               nonnegative=True)
    return p, g, w, r, e


def _guided(func: str, src, guide, radius, eps, weights, iterations) -> np.ndarray:
    n = check_int("iterations", iterations, 1, where=func)
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        r, e = _as_radius(func, radius), check_float("eps", eps, 0.0, inclusive=False, where=func)
        return _like(gpu.iterative_guided_filter(src, guide, r, e, weights, n), src)
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    return _native.guided_filter(p, g, w, r, e, n)


def guided_filter(src, guide, radius: int, eps: float, weights=None) -> np.ndarray:
    """Guided filter (He et al.) with a gray guide, optionally weighted.

    For every (2r+1) x (2r+1) window k the linear model ``q = a_k I + b_k`` is
    fitted to ``src`` (p) by least squares with ridge ``eps``; the output is
    ``q_i = mean_k(a_k) I_i + mean_k(b_k)`` over the windows containing i.

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
    src : array_like, shape (H, W)
        Image to filter (p), finite values.
    guide : array_like, shape (H, W)
        Gray guide image (I), same shape as ``src``; may be ``src`` itself.
    radius : int
        Window radius r >= 0 (may exceed the image size).
    eps : float
        Regularisation > 0, in squared guide units (e.g. 1e-3 for a guide in
        [0, 1]): larger values smooth more.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0.  ``None`` (default) is the standard guided
        filter, equal to weights of all ones up to float rounding.

    Returns
    -------
    numpy.ndarray, shape (H, W), float32
        The filtered image.

    Raises
    ------
    TypeError
        If an array argument is not real-valued, ``radius`` is not an int or
        ``eps`` is not a real number.
    ValueError
        On shape mismatches, non-2-D or empty arrays, non-finite values,
        negative weights, a negative radius or ``eps <= 0``.

    See Also
    --------
    iterative_guided_filter : repeated application with the same guide.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    >>> guided_filter(img, img, radius=4, eps=1e-2).shape
    (64, 64)
    """
    return _guided("guided_filter", src, guide, radius, eps, weights, 1)


def guided_coefficients(src, guide, radius: int, eps: float,
                        weights=None) -> Tuple[np.ndarray, np.ndarray]:
    """Mean local linear coefficients ``(A, B)`` of the (weighted) guided filter.

    ``A = box(a)`` and ``B = box(b)``, with the per-window coefficients ``a``,
    ``b`` and the weighting of :func:`guided_filter`, so that
    ``guided_filter(src, guide, radius, eps, weights) == A * guide + B`` (up
    to float32 rounding).  This is the building block of guided upsampling
    (He and Sun, "Fast guided filter", 2015): compute the coefficients at low
    resolution, resize ``A`` and ``B`` to full resolution and apply them to
    the full-resolution guide, so edges come from the guide itself.

    :func:`guided_filter` is computed by the same native code (with the final
    ``A * guide + B`` fused), so the two always agree.

    Parameters
    ----------
    src : array_like, shape (H, W)
        Image to filter (p), finite values.
    guide : array_like, shape (H, W)
        Gray guide image (I), same shape as ``src``; may be ``src`` itself.
    radius : int
        Window radius r >= 0 (may exceed the image size).
    eps : float
        Regularisation > 0, in squared guide units.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0 (``w_e = w + 1e-6`` weights every window
        fit), as in :func:`guided_filter`.  ``None`` (default) is the
        standard guided filter.

    Returns
    -------
    A : numpy.ndarray, shape (H, W), float32
        Window mean of the slopes ``a`` (src units per guide unit).
    B : numpy.ndarray, shape (H, W), float32
        Window mean of the offsets ``b`` (src units).

    Raises
    ------
    TypeError
        If an array argument is not real-valued, ``radius`` is not an int or
        ``eps`` is not a real number.
    ValueError
        On shape mismatches, non-2-D or empty arrays, non-finite values,
        negative weights, a negative radius or ``eps <= 0``.

    See Also
    --------
    guided_filter : the filter output ``A * guide + B``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((32, 48), dtype=np.float32)
    >>> guide = rng.random((32, 48), dtype=np.float32)
    >>> A, B = guided_coefficients(img, guide, radius=3, eps=1e-2)
    >>> bool(np.allclose(A * guide + B, guided_filter(img, guide, 3, 1e-2), atol=1e-5))
    True
    """
    func = "guided_coefficients"
    if _on_device(src):
        from fastdefocus.kernels import filters as gpu

        r, e = _as_radius(func, radius), check_float("eps", eps, 0.0, inclusive=False, where=func)
        a, b = gpu.guided_coefficients(src, guide, r, e, weights)
        return _like(a, src), _like(b, src)
    p, g, w, r, e = _guided_args(func, src, guide, radius, eps, weights)
    a, b = _native.guided_coefficients(p, g, w, r, e)
    return a, b


def iterative_guided_filter(src, guide, radius: int, eps: float, weights=None,
                            iterations: int = 1) -> np.ndarray:
    """Guided filter applied ``iterations`` times with a fixed guide and weights.

    ``p_0 = src`` and ``p_{t+1} = guided_filter(p_t, guide, radius, eps, weights)``;
    returns ``p_iterations``.  With weights, each pass spreads confident values
    further into unconfident regions.

    Parameters
    ----------
    src : array_like, shape (H, W)
        Initial image, finite values.
    guide : array_like, shape (H, W)
        Gray guide image, same shape as ``src``.
    radius : int
        Window radius r >= 0.
    eps : float
        Regularisation > 0.
    weights : array_like, shape (H, W), optional
        Per-pixel confidence >= 0, the same for every iteration.
    iterations : int, default 1
        Number of passes, >= 1.

    Returns
    -------
    numpy.ndarray, shape (H, W), float32
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
    return _guided("iterative_guided_filter", src, guide, radius, eps, weights, iterations)


def extract_patches(gray, size: int = 32, stride: int = 8, normalize: bool = False,
                    std_floor: float = 0.02):
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
    if _on_device(gray):
        from fastdefocus.kernels import patches as gpu

        patches, grid = gpu.extract_patches(gray, s, st, bool(normalize), floor)
        return _like(patches, gray), grid
    img = _as_image(func, "gray", gray)
    patches, grid = _native.extract_patches(img, s, st, bool(normalize), floor)
    return patches, (int(grid[0]), int(grid[1]))
