"""Classifier runtimes: one registry of names, devices and availability probes.

On the CPU (:mod:`fastdefocus.backends.cpu`): ``onnxruntime`` (the default) and ``torch``.
On a CUDA device (:mod:`fastdefocus.backends.cuda`), best first: ``tensorrt``, ``compile``,
``eager`` and ``cpu`` (ONNX Runtime on the host). The names are those of
:data:`fastdefocus.config.CPU_BACKENDS` and :data:`fastdefocus.config.GPU_BACKENDS`.
"""
from __future__ import annotations

import os



def gpu_available(simulator: bool = False) -> bool:
    """True if an NVIDIA driver is present and Numba's CUDA target sees a GPU. Cheap on
    machines without a driver (Numba is not imported there). Numba's CUDA simulator
    (NUMBA_ENABLE_CUDASIM=1) counts only with ``simulator=True``: "auto" never picks it,
    an explicit device="cuda" may (the tests)."""
    import ctypes.util
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return False
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        if not simulator:
            return False
    elif ctypes.util.find_library("cuda") is None:
        return False
    try:
        from fastdefocus.kernels._compat import import_cuda
        return bool(import_cuda().is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install means: no GPU
        return False
