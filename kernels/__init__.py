"""GPU kernels of fastdefocus (shipped as the subpackage ``fastdefocus.kernels``).

Numba CUDA kernels on device arrays (anything with ``__cuda_array_interface__``:
CuPy arrays, torch CUDA tensors, Numba device arrays), with the semantics and
borders of the CPU kernels in :mod:`fastdefocus.stages.filters`:

- :mod:`.filters`: ``box_filter``, ``guided_filter``, ``guided_coefficients``,
  ``iterative_guided_filter``;
- :mod:`.patches`: ``extract_patches`` (per-patch normalisation, written into a
  float32 or float16 batch), ``patch_grid``;
- :mod:`._compat`: measures applied before ``numba.cuda`` is imported
  (``np.row_stack`` for numba-cuda under numpy >= 2.5).

This module imports nothing heavy: Numba is loaded only when a submodule is
imported (``fastdefocus.stages.filters`` does so on the first device array).
"""
