"""GPU kernels of fastdefocus (shipped as the subpackage ``fastdefocus.kernels``).

Numba CUDA kernels on device arrays (anything with ``__cuda_array_interface__``:
CuPy arrays, torch CUDA tensors, Numba device arrays), with the semantics and
borders of the CPU code they mirror. One module per stage, named like its CPU
twin in :mod:`fastdefocus.stages`:

- :mod:`.filters`: ``box_filter``, ``guided_filter``, ``guided_coefficients``,
  ``iterative_guided_filter`` (:mod:`fastdefocus.stages.filters`);
- :mod:`.patches`: ``extract_patches`` (per-patch normalisation, written into a
  float32 or float16 batch), ``patch_grid``;
- :mod:`.ingest`: ``luminance``, ``separable_filter`` / ``gaussian_blur``, ``pad_reflect``;
- :mod:`.splat`: ``patch_statistics``, ``patch_outputs``, ``splat``;
- :mod:`.fill`: ``patch_means``, ``fill_flat``, ``FillWork``: the flat fill of the
  per-patch sigma (:mod:`fastdefocus.stages.fill`);
- :mod:`.refine`: ``resize_linear``, ``area_guide``, ``upsample_apply``, ``blend``;
- :mod:`.snap`: ``snap_boundaries``, ``SnapWork``;
- :mod:`.coarse`: the coarse levels' region, shrink and upsample + merge
  (:mod:`fastdefocus.stages.coarse`);
- :mod:`.temporal`: the temporal filter of a stream (:mod:`fastdefocus.stages.temporal`);
- :mod:`._device`: the ``cuda`` module, launch shapes, ``as_device``;
- :mod:`._compat`: measures applied before ``numba.cuda`` is imported
  (``np.row_stack`` for numba-cuda under numpy >= 2.5).

Layering: the kernels sit below the CPU stages (:mod:`fastdefocus.stages.filters`
dispatches device arrays down to them) and import none of them; their tuned
constants come from :mod:`fastdefocus._params`.

This module imports nothing heavy: Numba is loaded only when a submodule is
imported (``fastdefocus.stages.filters`` does so on the first device array).
"""
