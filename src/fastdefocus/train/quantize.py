"""The classifier's int8 graph for ONNX Runtime on the CPU (``backend="onnxruntime-int8"``).

    python -m fastdefocus.train.quantize --cache PATCH_CACHE [--weights WEIGHTS_DIR]

Static quantization (QDQ, int8 weights per channel, uint8 activations, min-max calibration on
``--calib`` textured validation patches of even source ids, the half the calibration of the
float model also used) of the shipped ``blur_classifier.onnx``; the stem convolution and the
head (pooling, classifier, softmax) stay in float: in trials, a uint8 softmax output broke the
expected sigma and a quantized stem cost more MAE. A pooling over 1 x 1 (MobileNetV2's head at
32 x 32 input) is removed from the int8 graph (:func:`drop_unit_pooling`; the same outputs). The graph is accepted only when, on the
held-out textured validation patches (odd source ids), it is within ``--max-within1-loss``
(0.01) of the float model's within-one-level accuracy and ``--max-mae-loss`` (0.01 px) of its
MAE; then it is written as ``blur_classifier_int8.onnx`` and listed in
``blur_classifier.json`` (``files.onnx_int8`` with its sha256, ``metrics_heldout_int8``).
Exit 1 when it fails the gate (nothing is written).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

INT8_NAME = "blur_classifier_int8.onnx"
#: Operators of the head, kept in float with the stem (the first convolution).
HEAD_OPS = ("GlobalAveragePool", "Flatten", "Gemm", "Softmax")


def float_nodes(graph: Path) -> list[str]:
    """The nodes kept in float, by name in graph order: the stem convolution and the head
    (pooling, classifier, softmax), for any of the networks (MobileNetV2 as shipped:
    ``/net/features/features.0/features.0.0/Conv``, ``/net/GlobalAveragePool``, ``/net/Flatten``,
    ``/net/classifier/classifier.1/Gemm``, ``/Softmax``)."""
    import onnx

    nodes = onnx.load(str(graph)).graph.node
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    if not convs:
        raise ValueError(f"{graph} has no convolution: not a fastdefocus classifier graph")
    return [convs[0]] + [n.name for n in nodes if n.op_type in HEAD_OPS]


def drop_unit_pooling(graph: Path) -> list[str]:
    """Remove the global average poolings whose input is 1 x 1 (shape inference, static sizes):
    the mean of one value is that value, so the outputs are the same bit for bit. ONNX Runtime
    runs such a pooling on the int8 graph's float head as one reduction per channel and patch
    (MobileNetV2's 1280 channels at 1 x 1: 8 % of the int8 graph's time in a profile). Rewrites
    ``graph`` in place; returns the names of the removed nodes."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(graph))
    shapes = {v.name: v.type.tensor_type.shape for v in shape_inference.infer_shapes(model).graph.value_info}

    def unit(name):
        dims = shapes[name].dim if name in shapes else []
        return len(dims) > 2 and all(d.HasField("dim_value") and d.dim_value == 1 for d in dims[2:])

    drop = [n for n in model.graph.node if n.op_type == "GlobalAveragePool" and unit(n.input[0])]
    outputs = {o.name for o in model.graph.output}
    drop = [n for n in drop if n.output[0] not in outputs]
    for node in drop:
        for other in model.graph.node:
            for i, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[i] = node.input[0]
        model.graph.node.remove(node)
    if drop:
        onnx.checker.check_model(model)
        onnx.save(model, str(graph))
    return [n.name for n in drop]


def _patches(cache: Path, info, odd: bool, limit: int | None = None, step: int = 1):
    p = np.load(cache / "val_patches.npy", mmap_mode="r")
    m = np.load(cache / "val_meta.npy")
    sel = np.flatnonzero((~m["flat"]) & (m["source"] % 2 == (1 if odd else 0)))[::step]
    if limit is not None:
        sel = sel[:limit]
    from fastdefocus.train.training import normalize_u8

    return normalize_u8(p[sel], info.std_floor), m["level"][sel].astype(int), m["sigma"][sel].astype(np.float64)


def heldout(graph: Path, info, x, level, sigma, threads: int = 0) -> dict:
    """Within-one-level accuracy, MAE (px) and patches / s of an ONNX graph on patches."""
    import onnxruntime as ort

    from fastdefocus.stages.classify import apply_calibration, expected_sigma_raw

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    probs = np.concatenate([sess.run(None, {"patches": x[i:i + 1024, None]})[0] for i in range(0, len(x), 1024)])
    cal = apply_calibration(expected_sigma_raw(probs, info.levels), info.calibration)
    t0 = time.perf_counter()
    for i in range(0, min(len(x), 8192), 1024):
        sess.run(None, {"patches": x[i:i + 1024, None]})
    rate = min(len(x), 8192) / (time.perf_counter() - t0)
    return {"n": int(len(x)), "within1": float((np.abs(probs.argmax(1) - level) <= 1).mean()),
            "mae": float(np.abs(cal - sigma).mean()), "patches_per_s": float(rate)}


def quantize(weights: Path, cache: Path, calib: int = 2048, max_within1_loss: float = 0.01,
             max_mae_loss: float = 0.01) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fastdefocus.stages.classify import load_model_info, sha256_file

    info = load_model_info(weights)
    cal_x, _, _ = _patches(cache, info, odd=False, limit=calib, step=8)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(cal_x):
                return None
            batch = cal_x[self.i:self.i + 256, None]
            self.i += 256
            return {"patches": batch}

    with tempfile.TemporaryDirectory() as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / INT8_NAME
        quant_pre_process(str(info.onnx_path), str(pre))
        kept = float_nodes(pre)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=kept)
        dropped = drop_unit_pooling(out)
        x, level, sigma = _patches(cache, info, odd=True)
        fp32 = heldout(info.onnx_path, info, x, level, sigma)
        int8 = heldout(out, info, x, level, sigma)
        report = {"fp32": fp32, "int8": int8, "calibration_patches": int(len(cal_x)),
                  "passed": bool(int8["within1"] >= fp32["within1"] - max_within1_loss
                                 and int8["mae"] <= fp32["mae"] + max_mae_loss)}
        if report["passed"]:
            target = Path(weights) / INT8_NAME
            partial = target.with_name(target.name + ".tmp")
            partial.write_bytes(out.read_bytes())
            os.replace(partial, target)
            meta_path = Path(weights) / "blur_classifier.json"
            meta = json.loads(meta_path.read_text())
            meta["files"]["onnx_int8"] = {"name": INT8_NAME, "sha256": sha256_file(target)}
            meta["metrics_heldout_int8"] = {"fp32": fp32, "int8": int8, "quantization": {
                "format": "QDQ", "weights": "int8 per channel", "activations": "uint8", "calibration": "min-max",
                "calibration_patches": int(len(cal_x)), "float_nodes": kept, "removed_nodes": dropped}}
            tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
            tmp_meta.write_text(json.dumps(meta, indent=1) + "\n")
            os.replace(tmp_meta, meta_path)
    return report


def main(argv=None) -> int:
    from fastdefocus.stages.classify import WEIGHTS_DIR

    ap = argparse.ArgumentParser(prog="python -m fastdefocus.train.quantize", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="patch cache of fastdefocus train (val_patches.npy)")
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="model folder (default: the shipped one)")
    ap.add_argument("--calib", type=int, default=2048, help="calibration patches")
    ap.add_argument("--max-within1-loss", type=float, default=0.01)
    ap.add_argument("--max-mae-loss", type=float, default=0.01)
    args = ap.parse_args(argv)
    if not (args.cache / "val_patches.npy").exists():
        print(f"error: {args.cache} has no val_patches.npy (make it with fastdefocus train --cache ...)",
              file=sys.stderr)
        return 2
    report = quantize(args.weights, args.cache, args.calib, args.max_within1_loss, args.max_mae_loss)
    print(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
