"""The training data generator: deterministic, labels match the blur applied."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdefocus.blur import DEFAULT_LEVELS, gaussian_blur, level_bins  # noqa: E402
from fastdefocus.filters import extract_patches  # noqa: E402
from fastdefocus.scenes import dead_leaves  # noqa: E402
from fastdefocus.training import (GeneratorConfig, make_patch, normalize_batch, random_dihedral,  # noqa: E402
                                  soft_targets)


@pytest.fixture(scope="module")
def source():
    return dead_leaves(np.random.default_rng(3), size=128)


def test_generator_is_deterministic(source):
    cfg, bins = GeneratorConfig(), level_bins(DEFAULT_LEVELS)
    a = [make_patch(source, k, cfg, bins, np.random.default_rng(11)) for k in (0, 7, 19)]
    b = [make_patch(source, k, cfg, bins, np.random.default_rng(11)) for k in (0, 7, 19)]
    for (pa, sa, ka, ta), (pb, sb, kb, tb) in zip(a, b):
        assert np.array_equal(pa, pb) and sa == sb and ka == kb and ta == tb


@pytest.mark.parametrize("level", [0, 1, 5, 10, 19])
def test_label_matches_blur(source, level):
    cfg, bins = GeneratorConfig(), level_bins(DEFAULT_LEVELS)
    rng = np.random.default_rng(level)
    for _ in range(20):
        patch, sigma, kind, texture = make_patch(source, level, cfg, bins, rng)
        assert patch.shape == (32, 32) and patch.dtype == np.uint8
        assert bins[level] <= sigma < bins[level + 1]
        assert int(np.digitize(sigma, bins) - 1) == level
        assert kind in (0, 1, 2)


def test_more_blur_means_less_gradient(source):
    """The level is physical: patches of higher levels carry less gradient energy."""
    energies = []
    for sigma in (0.0, 1.0, 3.0):
        img = gaussian_blur(source, sigma)
        energies.append(float(np.mean(np.diff(img, axis=1) ** 2)))
    assert energies[0] > energies[1] > energies[2]


def test_training_normalisation_matches_native(source):
    """Training and inference normalise patches the same way (the contract of the model)."""
    img = (source * 255).round().astype(np.uint8)
    patches_native, _ = extract_patches(img.astype(np.float32) / 255, size=32, stride=16, normalize=True,
                                        std_floor=0.02)
    raw, _ = extract_patches(img.astype(np.float32) / 255, size=32, stride=16)
    ours = normalize_batch(torch.from_numpy(raw), 0.02).numpy()
    assert np.abs(ours - patches_native).max() < 1e-4


def test_dihedral_and_soft_targets():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4)
    y = random_dihedral(x)
    assert torch.equal(torch.sort(y.reshape(2, -1)).values, torch.sort(x.reshape(2, -1)).values)
    t = soft_targets(torch.tensor([0.0, 9.5, 19.0]), 20, 0.6)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert t[0].argmax() == 0 and t[2].argmax() == 19 and t[1, 9] == pytest.approx(float(t[1, 10]), rel=1e-5)
