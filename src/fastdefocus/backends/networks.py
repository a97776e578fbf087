"""The classifier networks a model file can name, and the one place that builds them.

``blur_classifier.json`` says which network its weights belong to (``architecture``):

- ``MobileNetV2`` (``width_mult``): the paper's network (:mod:`fastdefocus.backends.mobilenetv2`),
  the default model;
- ``StridedCNN`` (``layers``, ``stem_kernel``, ``head_channels``): a plain stack of strided
  convolutions made for 32x32 patches on a CPU, the fast model. Every layer is a dense
  convolution followed by batch norm and ReLU, which ONNX Runtime, OpenCV DNN and TensorRT fuse
  into one GEMM each; there are no depthwise layers, whose low arithmetic intensity makes them
  slow per operation on a CPU at this patch size.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fastdefocus._params import STRIDED_CNN_LAYERS
from fastdefocus.backends.mobilenetv2 import MobileNetV2, initialise

#: the networks a model file may name
ARCHITECTURES = ("MobileNetV2", "StridedCNN")
#: StridedCNN's (channels, stride) per convolution, as the fast model ships
DEFAULT_LAYERS = STRIDED_CNN_LAYERS


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class StridedCNN(nn.Module):
    """(N, 1, 32, 32) patches to (N, num_classes) logits through a plain stack of convolutions.

    ``layers`` lists ``(channels, stride)`` per convolution: the first is the stem (a
    ``stem_kernel`` x ``stem_kernel`` convolution), the others are 3x3. The default takes a 32x32
    patch to 16x16 (16 channels), 8x8 (32, twice), 4x4 (64) and 2x2 (128). Then an optional 1x1
    convolution to ``head_channels``, the global mean and a linear layer.
    """

    def __init__(self, num_classes: int = 20, layers: Sequence[Sequence[int]] = DEFAULT_LAYERS,
                 stem_kernel: int = 3, head_channels: int = 0, in_channels: int = 1):
        super().__init__()
        layers = [(int(c), int(st)) for c, st in layers]
        if not layers or any(c < 1 or st not in (1, 2) for c, st in layers):
            raise ValueError(f"layers must be a non-empty list of (channels >= 1, stride 1 or 2), got {layers}")
        if stem_kernel < 1 or stem_kernel % 2 == 0:
            raise ValueError(f"stem_kernel must be odd and >= 1, got {stem_kernel}")
        convs: list[nn.Module] = []
        c = in_channels
        for i, (out, stride) in enumerate(layers):
            convs.append(_conv_bn_relu(c, out, stem_kernel if i == 0 else 3, stride))
            c = out
        if head_channels:
            convs.append(_conv_bn_relu(c, int(head_channels), 1, 1))
            c = int(head_channels)
        self.features = nn.Sequential(*convs)
        self.classifier = nn.Linear(c, num_classes)
        initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def architecture_spec(name: str, num_classes: int, width_mult: float = 1.0,
                      layers: Sequence[Sequence[int]] = DEFAULT_LAYERS, stem_kernel: int = 3,
                      head_channels: int = 0) -> dict:
    """The ``architecture`` entry of a model file for a network and its settings."""
    if name == "MobileNetV2":
        return {"name": name, "width_mult": float(width_mult), "num_classes": int(num_classes)}
    if name == "StridedCNN":
        return {"name": name, "layers": [[int(c), int(st)] for c, st in layers], "stem_kernel": int(stem_kernel),
                "head_channels": int(head_channels), "num_classes": int(num_classes)}
    raise ValueError(f"unknown network {name!r}; expected one of {', '.join(ARCHITECTURES)}")


def build_network(spec: Mapping) -> nn.Module:
    """The (untrained) network an ``architecture`` entry describes."""
    name = spec.get("name")
    num_classes = int(spec["num_classes"])
    if name == "MobileNetV2":
        return MobileNetV2(num_classes=num_classes, width_mult=float(spec["width_mult"]))
    if name == "StridedCNN":
        return StridedCNN(num_classes=num_classes, layers=spec["layers"],
                          stem_kernel=int(spec.get("stem_kernel", 3)), head_channels=int(spec.get("head_channels", 0)))
    raise ValueError(f"unknown network {name!r} in the model file; expected one of {', '.join(ARCHITECTURES)} "
                     "(a model made by a newer fastdefocus?)")
