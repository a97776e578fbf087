"""The flat fill as Numba CUDA kernels (the GPU twin of :mod:`fastdefocus.stages.fill`):
patches whose confidence is <= 0 take the confidence-weighted, edge-aware mean of the values
around them, with their own value as a prior of weight :data:`~fastdefocus._params.FILL_PRIOR`;
patches with any confidence keep their value.

- :func:`patch_means`: the guide, each patch's mean luminance (float64), from the padded image
  (:func:`fastdefocus.stages.fill.patch_means`);
- :func:`fill_flat`: the stage on float32 per-patch device arrays, in place
  (:func:`fastdefocus.stages.fill.fill_flat`): the numerator (weight x value) and denominator
  (weight) planes filtered by the normalised domain-transform recursive filter, in the
  reference's order (per iteration a causal and an anti-causal pass along every row, then
  along every column; one thread per row or column, float64);
- :class:`FillWork`: its float64 planes and guide, allocated once per grid.

The filter's parameters come from the caller (:func:`fastdefocus.stages.fill.pass_sigmas` and
the range ratio: the kernels import no stage). Nothing is synchronised with the host (the
reference's shortcut when no patch is flat is not taken: the result is the same), and the
weights are not validated (finite and >= 0, as the reference expects). Every host function
takes an optional ``stream``.
"""

from __future__ import annotations

import math

import numpy as np

from fastdefocus._params import FILL_PRIOR

from ._device import _grid1, _grid2, as_device, cuda

__all__ = ["patch_means", "fill_flat", "FillWork"]


@cuda.jit
def _patch_means(padded, nx, stride, patch, out):
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    y0 = (i // nx) * stride
    x0 = (i % nx) * stride
    s = 0.0
    for y in range(y0, y0 + patch):
        for x in range(x0, x0 + patch):
            s += float(padded[y, x])
    out[i] = s / float(patch * patch)


@cuda.jit
def _start(values, weights, planes):
    x, y = cuda.grid(2)
    nx = planes.shape[2]
    if y < planes.shape[1] and x < nx:
        i = y * nx + x
        w = float(weights[i])
        planes[0, y, x] = w * float(values[i])
        planes[1, y, x] = w


@cuda.jit
def _along_rows(planes, guide, a, ratio):
    """A causal then an anti-causal pass along row y: J[x] += w (J[x -/+ 1] - J[x]), with
    w = a^(1 + ratio |guide step|)."""
    y = cuda.grid(1)
    nx = planes.shape[2]
    if y >= planes.shape[1]:
        return
    b = y * nx
    for x in range(1, nx):
        w = a ** (1.0 + ratio * abs(guide[b + x] - guide[b + x - 1]))
        for c in range(2):
            planes[c, y, x] += w * (planes[c, y, x - 1] - planes[c, y, x])
    for x in range(nx - 2, -1, -1):
        w = a ** (1.0 + ratio * abs(guide[b + x + 1] - guide[b + x]))
        for c in range(2):
            planes[c, y, x] += w * (planes[c, y, x + 1] - planes[c, y, x])


@cuda.jit
def _along_columns(planes, guide, a, ratio):
    """The passes of :func:`_along_rows` down column x (consecutive threads: consecutive columns)."""
    x = cuda.grid(1)
    ny = planes.shape[1]
    nx = planes.shape[2]
    if x >= nx:
        return
    for y in range(1, ny):
        w = a ** (1.0 + ratio * abs(guide[y * nx + x] - guide[(y - 1) * nx + x]))
        for c in range(2):
            planes[c, y, x] += w * (planes[c, y - 1, x] - planes[c, y, x])
    for y in range(ny - 2, -1, -1):
        w = a ** (1.0 + ratio * abs(guide[(y + 1) * nx + x] - guide[y * nx + x]))
        for c in range(2):
            planes[c, y, x] += w * (planes[c, y + 1, x] - planes[c, y, x])


@cuda.jit
def _finish(planes, weights, prior, values):
    x, y = cuda.grid(2)
    nx = planes.shape[2]
    if y < planes.shape[1] and x < nx:
        i = y * nx + x
        if weights[i] <= 0:
            v = float(values[i])
            values[i] = (planes[0, y, x] + prior * v) / (planes[1, y, x] + prior)


class FillWork:
    """The fill's float64 device buffers of one (ny, nx) grid, reusable across frames:
    ``planes`` (2, ny, nx) (numerator, denominator) and ``guide`` (ny * nx,) (the patch means)."""

    def __init__(self, ny, nx, stream=0):
        self.grid = (int(ny), int(nx))
        self.planes = cuda.device_array((2,) + self.grid, dtype=np.float64, stream=stream)
        self.guide = cuda.device_array(self.grid[0] * self.grid[1], dtype=np.float64, stream=stream)


def patch_means(padded, grid, patch: int, stride: int, out=None, stream=0):
    """Mean of each patch of the (ny, nx) ``grid`` of the padded image (float32 (H, W) device
    array; patch (i, j) covers rows i * stride .. i * stride + patch - 1) into the float64
    (ny * nx,) device array ``out`` (allocated if omitted). Returns ``out``."""
    func = "patch_means"
    padded = as_device(func, "padded", padded)
    ny, nx = (int(n) for n in grid)
    patch, stride = int(patch), int(stride)
    if ny < 1 or nx < 1 or patch < 1 or stride < 1 or (ny - 1) * stride + patch > padded.shape[0] \
            or (nx - 1) * stride + patch > padded.shape[1]:
        raise ValueError(f"{func}: the {ny} x {nx} grid of {patch}-px patches at stride {stride} does not fit "
                         f"the padded image {tuple(padded.shape)}")
    if out is None:
        out = cuda.device_array(ny * nx, dtype=np.float64, stream=stream)
    elif tuple(out.shape) != (ny * nx,):
        raise ValueError(f"{func}: out must have shape ({ny * nx},), got {tuple(out.shape)}")
    _patch_means[_grid1(ny * nx) + (stream,)](padded, nx, stride, patch, out)
    return out


def _flat_view(func, name, arr, ny, nx):
    """``arr`` ((ny * nx,) or (ny, nx) device array) as a (ny * nx,) view."""
    arr = as_device(func, name, arr, ndim=len(arr.shape))
    if tuple(arr.shape) == (ny * nx,):
        return arr
    if tuple(arr.shape) == (ny, nx):
        return arr.reshape(ny * nx)
    raise ValueError(f"{func}: {name} {tuple(arr.shape)} must hold the {ny} x {nx} grid")


def fill_flat(values, weights, guide, sigmas, ratio: float, grid=None, prior: float = FILL_PRIOR, work=None,
              stream=0):
    """:func:`fastdefocus.stages.fill.fill_flat` on the GPU, in place: every patch of ``weights``
    <= 0 gets in ``values`` the ``weights``-weighted, edge-aware mean of the values around it
    (its own value a prior of weight ``prior``); the others keep theirs.

    ``values`` (float32), ``weights`` (the patches' confidences, finite and >= 0) and ``guide``
    (their mean luminance, :func:`patch_means`): device arrays of the (ny, nx) patch grid, 2-D or
    flattened (ny * nx,) (then ``grid`` = (ny, nx) is needed). ``sigmas``: the spatial sigma
    (patches) of each iteration (:func:`fastdefocus.stages.fill.pass_sigmas` of the stride);
    ``ratio``: (fill_sigma / stride) / FILL_SIGMA_R (:func:`fastdefocus.stages.fill.fill_ratio`), the extra
    distance per unit of guide step.
    ``work``: a :class:`FillWork` of the grid (allocated if omitted or of another grid).
    Returns ``values``."""
    func = "fill_flat"
    if grid is None:
        if len(values.shape) != 2:
            raise ValueError(f"{func}: flattened values need their grid (ny, nx)")
        grid = values.shape
    ny, nx = (int(n) for n in grid)
    if ny < 1 or nx < 1:
        raise ValueError(f"{func}: empty patch grid {ny} x {nx}")
    flat_values = _flat_view(func, "values", values, ny, nx)
    flat_weights = _flat_view(func, "weights", weights, ny, nx)
    flat_guide = _flat_view(func, "guide", guide, ny, nx)
    if flat_values.dtype != np.float32:
        raise TypeError(f"{func}: values must be float32, got {flat_values.dtype}")
    if work is None or work.grid != (ny, nx):
        work = FillWork(ny, nx, stream)
    g, t = _grid2(ny, nx)
    _start[g, t, stream](flat_values, flat_weights, work.planes)
    ratio = float(ratio)
    for sig in sigmas:
        a = math.exp(-math.sqrt(2.0) / float(sig))
        _along_rows[_grid1(ny) + (stream,)](work.planes, flat_guide, a, ratio)
        _along_columns[_grid1(nx) + (stream,)](work.planes, flat_guide, a, ratio)
    _finish[g, t, stream](work.planes, flat_weights, float(prior), flat_values)
    return values
