"""The networks a model file can name: built from the ``architecture`` entry, refused when unknown."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdefocus.backends.networks import (DEFAULT_LAYERS, StridedCNN, architecture_spec,  # noqa: E402
                                           build_network)
from fastdefocus.backends.mobilenetv2 import MobileNetV2  # noqa: E402


@pytest.mark.parametrize("spec", [architecture_spec("MobileNetV2", 20, width_mult=0.25),
                                  architecture_spec("StridedCNN", 20),
                                  architecture_spec("StridedCNN", 7, layers=((8, 2), (8, 1), (16, 2)), stem_kernel=5,
                                                    head_channels=32)])
def test_built_network_maps_patches_to_logits(spec):
    net = build_network(spec).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 1, 32, 32))
    assert out.shape == (3, spec["num_classes"]) and torch.isfinite(out).all()


def test_spec_names_the_layers_and_round_trips():
    spec = architecture_spec("StridedCNN", 20)
    assert spec == {"name": "StridedCNN", "layers": [list(x) for x in DEFAULT_LAYERS], "stem_kernel": 3,
                    "head_channels": 0, "num_classes": 20}
    net = build_network(spec)
    assert isinstance(net, StridedCNN)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == list(DEFAULT_LAYERS)
    assert all(c.groups == 1 for c in convs)  # dense: one GEMM per layer on a CPU
    assert isinstance(build_network(architecture_spec("MobileNetV2", 20, width_mult=0.5)), MobileNetV2)


def test_same_weights_same_probabilities_after_a_state_dict_round_trip():
    spec = architecture_spec("StridedCNN", 20)
    a = build_network(spec).eval()
    b = build_network(spec).eval()
    b.load_state_dict(a.state_dict())
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_unknown_or_bad_networks_are_refused():
    with pytest.raises(ValueError, match="unknown network 'ResNet' in the model file; expected one of "
                                         "MobileNetV2, StridedCNN"):
        build_network({"name": "ResNet", "num_classes": 20})
    with pytest.raises(ValueError, match="unknown network 'ResNet'; expected one of"):
        architecture_spec("ResNet", 20)
    with pytest.raises(ValueError, match=r"layers must be a non-empty list of \(channels >= 1, stride 1 or 2\)"):
        StridedCNN(layers=((16, 3),))
    with pytest.raises(ValueError, match="layers must be a non-empty list"):
        StridedCNN(layers=())
    with pytest.raises(ValueError, match="stem_kernel must be odd and >= 1, got 4"):
        StridedCNN(stem_kernel=4)
