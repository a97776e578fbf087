"""Export the classifier as an ONNX graph that OpenCV DNN (4.6 and later) and ONNX Runtime both read.

    python -m fastdefocus.train.export_opencv WEIGHTS_DIR        # writes WEIGHTS_DIR/blur_classifier_opencv.onnx

The shipped ``blur_classifier.onnx`` is exported at opset 17, where ReLU6 becomes a ``Clip`` node with
its bounds as inputs; OpenCV before 4.7 refuses that. This graph is the same network (the weights
of ``blur_classifier.safetensors``, the network the model file names, softmax
included) at opset 10, where ``Clip`` takes ``min`` / ``max`` attributes. The C++ estimator's OpenCV
DNN classifier reads it (``ModelInfo::opencv_onnx_path``); ONNX Runtime reads it too, so a model
exported with :func:`export_portable_onnx` can be the one shipped file for both runtimes.

The script checks its output: ONNX Runtime on the new graph against ONNX Runtime on the shipped
one (and OpenCV's Python DNN when ``cv2`` has it) on normalised patches of generated scenes, and
exits 1 when a probability differs by more than ``--tolerance`` (default 1e-5). Re-run it whenever
the weights change (same architecture and file names).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from fastdefocus.train.training import with_softmax

#: The opset whose ``Clip`` takes its bounds as attributes (inputs from opset 11 on).
OPENCV_OPSET = 10
OPENCV_ONNX_NAME = "blur_classifier_opencv.onnx"


def export_portable_onnx(model, path: Path, patch_size: int = 32) -> None:
    """Normalised patches (N, 1, P, P) -> probabilities (N, L) as an opset-10 ONNX graph (atomic write)."""
    import torch

    wrapped = with_softmax(model)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (torch.zeros(8, 1, patch_size, patch_size),), str(tmp), dynamo=False,
                          input_names=["patches"], output_names=["probabilities"],
                          dynamic_axes={"patches": {0: "batch"}, "probabilities": {0: "batch"}},
                          opset_version=OPENCV_OPSET, do_constant_folding=True)
    _check_graph(tmp)
    os.replace(tmp, path)


def _check_graph(path: Path) -> None:
    """The graph loads, is at OPENCV_OPSET, and has no Clip with bounds as inputs."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", 0) > OPENCV_OPSET:
        raise RuntimeError(f"{path}: exported at opset {opsets['']}, expected {OPENCV_OPSET}")
    bad = [n.name for n in model.graph.node if n.op_type == "Clip" and len(n.input) > 1]
    if bad:
        raise RuntimeError(f"{path}: Clip nodes with bounds as inputs (OpenCV < 4.7 refuses them): {bad[:3]}")


def sample_patches(info, n: int = 2048, seed: int = 0) -> np.ndarray:
    """Normalised patches (n, 1, P, P) float32 of generated scenes, sharp and blurred."""
    from fastdefocus.scenes import demo_scene
    from fastdefocus.stages.filters import extract_patches
    from fastdefocus.stages.ingest import to_luminance

    out = []
    for k in range(4):
        image, _, _ = demo_scene((256, 320), seed=seed + k)
        patches, _ = extract_patches(to_luminance(image), size=info.patch_size, stride=8, normalize=True,
                                     std_floor=info.std_floor)
        out.append(patches)
    patches = np.concatenate(out)[:n]
    return np.ascontiguousarray(patches.reshape(len(patches), 1, info.patch_size, info.patch_size))


def compare(info, path: Path, n: int = 2048) -> dict:
    """Largest absolute probability differences of the graph at ``path`` against ONNX Runtime on the
    shipped graph: {"onnxruntime": ..., "opencv-python": ... (when cv2.dnn loads it)}."""
    import onnxruntime as ort

    x = sample_patches(info, n)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1

    def run(onnx_path):
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {"patches": x[i:i + 512]})[0] for i in range(0, len(x), 512)])

    reference = run(info.onnx_path)
    diffs = {"onnxruntime": float(np.abs(run(path) - reference).max())}
    try:
        import cv2

        net = cv2.dnn.readNetFromONNX(str(path))
        got = []
        for i in range(0, len(x), 512):
            net.setInput(x[i:i + 512])
            got.append(net.forward())
        diffs[f"opencv-python {cv2.__version__}"] = float(np.abs(np.concatenate(got) - reference).max())
    except (ImportError, AttributeError):
        pass
    return diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastdefocus.train.export_opencv",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("weights_dir", type=Path, help="model folder (blur_classifier.json + safetensors)")
    parser.add_argument("--output", default=OPENCV_ONNX_NAME, help="file name inside WEIGHTS_DIR")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest probability difference accepted against the shipped graph")
    args = parser.parse_args(argv)

    from fastdefocus.backends.cpu import load_torch_model
    from fastdefocus.stages.classify import load_model_info

    info = load_model_info(args.weights_dir)
    model = load_torch_model(info)
    path = args.weights_dir / args.output
    export_portable_onnx(model, path, info.patch_size)
    diffs = compare(info, path)
    for runtime, diff in diffs.items():
        print(f"{runtime}: max |probability difference| vs the shipped graph {diff:.2e}")
    worst = max(diffs.values())
    if not worst <= args.tolerance:
        print(f"error: {worst:.2e} > tolerance {args.tolerance:.0e}", file=sys.stderr)
        return 1
    print(f"wrote {path} (opset {OPENCV_OPSET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
