"""Classifier backends of the GPU pipeline, behind one interface.

Each backend owns a static fp16 input batch ``(batch, 1, P, P)`` on the device,
which the patch kernel fills in place (through ``__cuda_array_interface__``,
never through the host), and returns float32 class probabilities on the device:

- ``tensorrt``: torch-tensorrt (dynamo IR, fp16). The built engine is cached on
  disk, keyed by the GPU model and compute capability, the TensorRT,
  torch-tensorrt and torch versions, the batch shape and the weights' checksum;
  a later process loads it instead of rebuilding (minutes -> seconds).
- ``compile``: ``torch.compile(mode="reduce-overhead")``: Inductor kernels
  replayed as a CUDA graph; the batch is static, so a short last chunk runs the
  whole batch and only its first rows are read.
- ``eager``: the torch module in fp16, channels_last.
- ``cpu``: ONNX Runtime on the host (the batch is copied down and the
  probabilities up): the fallback without torch CUDA, and what the tests use
  under Numba's CUDA simulator.

:func:`make_backend` with ``"auto"`` takes the first of tensorrt, compile,
eager, cpu that can run here, and says why the others could not
(``backend.notes``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fastdefocus.backends.cpu import load_torch_model
from fastdefocus.config import GPU_BACKENDS
from fastdefocus.stages.classify import ModelInfo



def cache_dir() -> Path:
    """Where built TensorRT engines are kept: $FASTDEFOCUS_CACHE or ~/.cache/fastdefocus."""
    root = os.environ.get("FASTDEFOCUS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fastdefocus")
    return Path(root) / "tensorrt"


def engine_cache_key(gpu_name: str, capability, trt_version: str, torch_trt_version: str, torch_version: str,
                     batch_shape, weights_sha256: str) -> str:
    """File name of a cached engine: everything an engine depends on, hashed. A change of any
    of them (another GPU, a TensorRT or torch upgrade, another batch, retrained weights)
    gives another key, so a stale engine is never loaded."""
    parts = {"gpu": gpu_name, "capability": list(capability), "tensorrt": trt_version,
             "torch_tensorrt": torch_trt_version, "torch": torch_version,
             "batch_shape": [int(s) for s in batch_shape], "weights": weights_sha256}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return f"blur_classifier-{digest}.ep"


def _torch_stream(stream):
    """A torch stream context for a Numba CUDA stream (the null stream: no change)."""
    import torch

    handle = getattr(stream, "handle", None)
    # numba-cuda with the NVIDIA binding: a cuda.bindings CUstream, which is always truthy
    # (even the null stream's) and has no .value, but converts with int(); ctypes: c_void_p
    ptr = getattr(handle, "value", handle)
    ptr = int(ptr) if ptr is not None else 0
    if not ptr:
        return contextlib.nullcontext()
    return torch.cuda.stream(torch.cuda.ExternalStream(int(ptr)))


class Backend:
    """Runs the classifier on its own device input batch.

    Attributes
    ----------
    name : str
    batch : int
        Patches per call (the static batch).
    input : device array (batch, 1, P, P) float16
        Filled by the patch kernel before :meth:`run`.
    notes : list of str
        Why better backends were not taken (set by make_backend).
    """
    name = "?"

    def __init__(self, info: ModelInfo, batch: int):
        self.info = info
        self.batch = int(batch)
        self.notes: list[str] = []

    def run(self, count: int, stream=0):
        """Probabilities (count, L) float32 on the device for the first ``count`` rows of the input."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(batch={self.batch})"


class CpuBackend(Backend):
    """ONNX Runtime on the host: the batch goes down, the probabilities come back up."""
    name = "cpu"

    def __init__(self, info: ModelInfo, batch: int):
        super().__init__(info, batch)
        from fastdefocus.kernels._compat import import_cuda

        from fastdefocus.backends.cpu import PatchClassifier
        self._cuda = import_cuda()
        self._classifier = PatchClassifier(info, device="cpu", backend="auto", batch_size=self.batch)
        p = info.patch_size
        self.input = self._cuda.device_array((self.batch, 1, p, p), dtype=np.float16)
        self._host = self._cuda.pinned_array((self.batch, 1, p, p), dtype=np.float16)
        self._probs = self._cuda.device_array((self.batch, len(info.levels)), dtype=np.float32)

    def run(self, count: int, stream=0):
        self.input.copy_to_host(self._host, stream=stream)
        if stream:
            stream.synchronize()
        probs = self._classifier.probabilities(self._host[:count, 0].astype(np.float32))
        out = self._probs[:count]
        out.copy_to_device(probs, stream=stream)
        return out


class _TorchBackend(Backend):
    """Shared by the torch backends: a CUDA fp16 input tensor and a callable module."""
    warmup_calls = 1

    def __init__(self, info: ModelInfo, batch: int):
        super().__init__(info, batch)
        import torch

        from fastdefocus.kernels._compat import import_cuda

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        self._torch = torch
        p = info.patch_size
        self.tensor = torch.zeros((self.batch, 1, p, p), dtype=torch.float16, device="cuda")
        self._cuda = import_cuda()
        self.input = self._cuda.as_cuda_array(self.tensor)
        self.module = self._build(load_torch_model(info).cuda().half().to(memory_format=torch.channels_last))
        for _ in range(self.warmup_calls):  # warm-up: compile / build now, not on the first frame
            self.run(self.batch)
        torch.cuda.synchronize()

    def _build(self, model):
        return model

    def run(self, count: int, stream=0):
        torch = self._torch
        with _torch_stream(stream), torch.inference_mode():
            logits = self.module(self.tensor.contiguous(memory_format=torch.channels_last))
            # a fresh tensor (never a CUDA graph's output, which the next replay overwrites),
            # kept alive as long as the view is used
            self._last = torch.softmax(logits.float(), dim=1)[:count].contiguous()
        return self._cuda.as_cuda_array(self._last)


class EagerBackend(_TorchBackend):
    name = "eager"


class CompileBackend(_TorchBackend):
    """torch.compile with CUDA graphs (mode 'reduce-overhead'), static batch shape."""
    name = "compile"
    # call 1 compiles and warms up, call 2 records the CUDA graph, call 3 replays it
    warmup_calls = 3

    def _build(self, model):
        return self._torch.compile(model, mode="reduce-overhead", dynamic=False, fullgraph=True)


class TensorRTBackend(_TorchBackend):
    """torch-tensorrt engine (fp16), built once per GPU / versions / batch / weights and cached."""
    name = "tensorrt"

    def _build(self, model):
        torch = self._torch
        import tensorrt
        import torch_tensorrt

        example = [torch.zeros(tuple(self.tensor.shape), dtype=torch.float16, device="cuda")]
        props = torch.cuda.get_device_properties(0)
        key = engine_cache_key(props.name, (props.major, props.minor), tensorrt.__version__,
                               torch_tensorrt.__version__, torch.__version__, self.tensor.shape,
                               self.info.metadata["files"]["safetensors"]["sha256"]
                               if "files" in self.info.metadata else "unknown")
        path = cache_dir() / key
        self.engine_path = path
        if path.exists():
            try:
                self.cache_hit = True
                return torch.export.load(str(path)).module()
            except Exception as e:  # a corrupt or incompatible file: rebuild it
                self.notes.append(f"cached engine {path} unusable ({e}); rebuilt")
        self.cache_hit = False
        try:
            engine = torch_tensorrt.compile(model, ir="dynamo", arg_inputs=example,
                                            enabled_precisions={torch.float16})
        except TypeError:  # torch-tensorrt < 2.5 names it `inputs`
            engine = torch_tensorrt.compile(model, ir="dynamo", inputs=example, enabled_precisions={torch.float16})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            try:
                torch_tensorrt.save(engine, str(tmp), arg_inputs=example)
            except TypeError:
                torch_tensorrt.save(engine, str(tmp), inputs=example)
            os.replace(tmp, path)
        except Exception as e:  # a read-only cache still gives a working engine
            self.notes.append(f"could not cache the engine in {path}: {e}")
            with contextlib.suppress(OSError):
                tmp.unlink()
        return engine


_CLASSES = {"tensorrt": TensorRTBackend, "compile": CompileBackend, "eager": EagerBackend, "cpu": CpuBackend}


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here (None if it may)."""
    import importlib.util

    if name == "cpu":
        return None
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    if name == "tensorrt" and importlib.util.find_spec("torch_tensorrt") is None:
        return "torch-tensorrt is not installed (pip install 'fastdefocus[gpu]')"
    if name == "compile" and importlib.util.find_spec("triton") is None:
        return "triton (needed by torch.compile on CUDA) is not installed"
    return None


def resolve_backend(name: str) -> tuple[str, list[str]]:
    """The backend ``name`` (or "auto") resolves to here, without building it, and the
    reasons better ones were skipped. A named backend that cannot run raises RuntimeError."""
    if name != "auto" and name not in _CLASSES:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(GPU_BACKENDS)}, got {name!r}")
    if name != "auto":
        reason = _unavailable(name)
        if reason is not None:
            raise RuntimeError(f"backend {name!r} is not available: {reason}")
        return name, []
    notes = []
    for candidate in GPU_BACKENDS:
        reason = _unavailable(candidate)
        if reason is None:
            return candidate, notes
        notes.append(f"{candidate}: {reason}")
    raise AssertionError("the cpu backend is always available")


def make_backend(name: str, info: ModelInfo, batch: int) -> Backend:
    """Build backend ``name`` (one of :data:`GPU_BACKENDS` or "auto").

    "auto" tries tensorrt, compile, eager, cpu in that order and keeps the first that
    builds; the reasons the others were skipped are in ``backend.notes``. A named backend
    that cannot run raises RuntimeError saying why.
    """
    if name != "auto" and name not in _CLASSES:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(GPU_BACKENDS)}, got {name!r}")
    order = GPU_BACKENDS if name == "auto" else (name,)
    notes = []
    for candidate in order:
        reason = _unavailable(candidate)
        if reason is None:
            try:
                backend = _CLASSES[candidate](info, batch)
            except Exception as e:  # noqa: BLE001 - try the next one, say why
                if name != "auto":
                    raise RuntimeError(f"backend {candidate!r} failed to build: {type(e).__name__}: {e}") from e
                reason = f"failed to build: {type(e).__name__}: {e}"
            else:
                backend.notes = notes + backend.notes
                return backend
        if name != "auto":
            raise RuntimeError(f"backend {candidate!r} is not available: {reason}")
        notes.append(f"{candidate}: {reason}")
    raise RuntimeError("no classifier backend could be built: " + "; ".join(notes))
