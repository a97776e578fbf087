"""CPU classifier runtimes: ONNX Runtime (the default) and eager torch."""
from __future__ import annotations

import os

import numpy as np

from fastdefocus._validate import MissingExtraError
from fastdefocus.stages.classify import ModelInfo, load_model_info


def _import_torch(what: str = "backend 'torch'"):
    """torch and safetensors, or MissingExtraError naming ``pip install 'fastdefocus[torch]'``."""
    try:
        import torch
    except ImportError as e:
        raise MissingExtraError(what, "torch", "torch (PyTorch)") from e
    try:
        import safetensors.torch  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(what, "torch", "safetensors") from e
    return torch


def default_threads() -> int:
    """The cores this process may use (containers and affinity), not the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_torch_model(info: ModelInfo | None = None):
    """The classifier as a torch module (eval mode) with the shipped weights."""
    _import_torch("the torch model")
    from safetensors.torch import load_file

    from fastdefocus.backends.networks import build_network

    info = info or load_model_info()
    model = build_network({"num_classes": len(info.levels), **info.architecture})
    model.load_state_dict(load_file(str(info.safetensors_path)))
    return model.eval()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class PatchClassifier:
    """Runs the classifier on batches of normalised patches through one runtime.

    ``onnxruntime`` (CPU, the default there: it ran these patches about twice as fast as
    eager torch on 2 cores) or ``torch`` (eager; on CUDA in fp16, channels_last).
    ``threads``: ONNX Runtime's intra-op threads (0: the cores this process may use); the
    torch runtime keeps torch's own (process-wide) setting.

    :meth:`probabilities` may be called from several threads at once: ONNX Runtime's
    ``InferenceSession.run`` is thread-safe, and each call has its own output array.
    A runtime that is not installed raises :class:`fastdefocus._validate.MissingExtraError`
    (an ImportError) whose message names the extra to install.
    """

    def __init__(self, info: ModelInfo, device: str = "auto", backend: str = "auto", batch_size: int = 1024,
                 threads: int = 0):
        self.info = info
        self.batch_size = batch_size
        self.threads = threads
        if device == "cuda":
            torch = _import_torch("device='cuda' with backend 'torch'")
            if not torch.cuda.is_available():
                raise RuntimeError("device='cuda' was requested but torch sees no CUDA device; use device='cpu'")
        self.device = "cpu" if device == "auto" else device
        if backend == "auto":
            backend = "onnxruntime" if self.device == "cpu" and _onnxruntime_available() else "torch"
            if backend == "torch":
                try:
                    _import_torch()
                except MissingExtraError as e:
                    raise ModuleNotFoundError("no classifier runtime is installed: pip install onnxruntime (the "
                                              "default), or pip install 'fastdefocus[torch]'", name="onnxruntime") \
                        from e
        if backend in ("onnxruntime", "onnxruntime-int8"):
            if self.device != "cpu":
                raise ValueError(f"backend={backend!r} runs on the CPU; use backend='torch' for device='cuda'")
            graph = info.onnx_path
            if backend == "onnxruntime-int8":
                if info.onnx_int8_path is None:
                    raise ValueError("backend 'onnxruntime-int8' needs the model's int8 graph (files.onnx_int8 in "
                                     "blur_classifier.json), and this model has none: use backend 'onnxruntime', or "
                                     "make one with python -m fastdefocus.train.quantize")
                graph = info.onnx_int8_path
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise ModuleNotFoundError("backend 'onnxruntime' needs onnxruntime, which is not installed: "
                                          "pip install onnxruntime", name="onnxruntime") from e
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # the cores this process may use (containers and affinity), not the host's
            opts.intra_op_num_threads = threads if threads > 0 else default_threads()
            opts.inter_op_num_threads = 1
            # no busy-waiting between runs: the estimator's native stages run on the same cores
            # right after each batch, and spinning ONNX Runtime workers would take them
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(graph), sess_options=opts, providers=["CPUExecutionProvider"])
            self.name = backend
            self._run = self._run_onnx
        else:
            torch = _import_torch()
            self._torch = torch
            model = load_torch_model(info).to(self.device).to(memory_format=torch.channels_last)
            self._half = self.device == "cuda"
            self._model = model.half() if self._half else model
            self.name = f"torch-{self.device}"
            self._run = self._run_torch

    def _run_onnx(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"patches": batch})[0]

    def _run_torch(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            x = (x.half() if self._half else x).contiguous(memory_format=torch.channels_last)
            return torch.softmax(self._model(x).float(), dim=1).cpu().numpy()

    def probabilities(self, patches: np.ndarray) -> np.ndarray:
        """Class probabilities (N, L) float32 for normalised patches (N, P, P) float32."""
        n = len(patches)
        out = np.empty((n, len(self.info.levels)), np.float32)
        x = patches.reshape(n, 1, patches.shape[-2], patches.shape[-1])
        for start in range(0, n, self.batch_size):
            out[start:start + self.batch_size] = self._run(x[start:start + self.batch_size])
        return out
