"""Device-array plumbing shared by the GPU kernels (Numba CUDA): the ``cuda`` module, launch
shapes (:func:`blocks`, :func:`_grid1`, :func:`_grid2`), :func:`as_device` and the small
constant arrays uploaded once (:func:`_device_const`)."""

from __future__ import annotations

import numpy as np

from ._compat import import_cuda

cuda = import_cuda()

from numba import config as _numba_config  # noqa: E402  (after the shim)

# Under the CUDA simulator every thread is a Python thread, so the tests launch
# small blocks; results do not depend on the block shape.
SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)

THREADS = 16 if SIMULATOR else 128  # threads per block of the 1-D launches
TILE = (4, 4) if SIMULATOR else (16, 16)  # threads per block of the 2-D (pixel) launches


def as_device(func: str, name: str, value, ndim: int = 2):
    """Return ``value`` as a Numba device array without copying.

    Accepts anything exposing ``__cuda_array_interface__`` (Numba device
    arrays, CuPy arrays, torch CUDA tensors) and, under the CUDA simulator,
    its fake device arrays.  Host arrays are refused: the GPU path never
    copies through the host implicitly.
    """
    if hasattr(value, "copy_to_host") and hasattr(value, "shape"):
        arr = value  # already a Numba device array (or the simulator's stand-in)
    elif hasattr(value, "__cuda_array_interface__"):
        arr = cuda.as_cuda_array(value)  # a view on the same memory
    else:
        raise TypeError(
            f"{func}: {name} must be a device array (with __cuda_array_interface__), "
            f"got {type(value).__name__}"
        )
    if arr.ndim != ndim:
        raise ValueError(
            f"{func}: {name} must be a {ndim}-D device array, got {arr.ndim}-D of shape {arr.shape}"
        )
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{func}: {name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def blocks(n: int, threads: int = THREADS) -> int:
    return max(1, (n + threads - 1) // threads)


def _grid1(n: int):
    """(blocks, threads) of a 1-D launch over n items."""
    return blocks(n), THREADS


def _grid2(h: int, w: int):
    """(blocks, threads) of a 2-D launch over an (h, w) plane."""
    # cuda.grid(2) gives (x, y) with x the fastest index in a warp: x runs along a row (w),
    # so a warp reads consecutive addresses (kernels take ``x, y = cuda.grid(2)``)
    return (blocks(w, TILE[1]), blocks(h, TILE[0])), (TILE[1], TILE[0])


_CONSTANTS: dict = {}


def _device_const(key, values: np.ndarray):
    """A small constant array uploaded once per process (per key and content)."""
    full_key = (key, values.dtype.str, values.tobytes())
    arr = _CONSTANTS.get(full_key)
    if arr is None:
        arr = _CONSTANTS[full_key] = cuda.to_device(values)
    return arr
