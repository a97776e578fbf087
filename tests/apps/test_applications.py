"""Defocus magnification, adaptive enhancement and multi-focus fusion, and their commands."""
import argparse

import cv2
import numpy as np
import pytest

import fastdefocus
from fastdefocus.apps import enhance, fuse, magnify
from fastdefocus.cli.apps import add_commands
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import blur_by_map, dead_leaves

SIZE = 192
#: Interiors of the three vertical stripes of ``stripes``, 16 px away from the sigma steps.
STRIPES = [(slice(16, -16), slice(lo + 16, lo + 48)) for lo in (0, 64, 128)]


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def gradient_energy(image) -> float:
    image = np.asarray(image, np.float64)
    gy, gx = np.gradient(image.mean(axis=2) if image.ndim == 3 else image)
    return float((gx * gx + gy * gy).mean())


def to8(x):
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stripes():
    """Gray dead leaves blurred by vertical stripes of sigma 0, 1.5 and 3 px."""
    sharp = dead_leaves(np.random.default_rng(0), size=SIZE)
    sigma = np.zeros((SIZE, SIZE), np.float32)
    sigma[:, 64:128] = 1.5
    sigma[:, 128:] = 3.0
    return sharp, sigma, blur_by_map(sharp, sigma)


@pytest.fixture(scope="module")
def estimator():
    return fastdefocus.DefocusEstimator()


# ------------------------------------------------------------------------- magnify


@pytest.mark.parametrize("in_focus", [0.0, 0.5])
def test_magnify_keeps_sharp_region_and_follows_the_physics(stripes, in_focus):
    sharp, sigma, image = stripes
    out = magnify(image, sigma, amount=2.0, in_focus=in_focus)
    assert np.array_equal(out[STRIPES[0]], image[STRIPES[0]])
    # sqrt(out^2 - t^2) = amount * sqrt(s^2 - t^2): with t = 0, s -> 2 s
    expected = np.sqrt(4.0 * np.maximum(sigma ** 2 - in_focus ** 2, 0) + np.minimum(sigma, in_focus) ** 2)
    for region in STRIPES[1:]:
        # more blur: the gradient energy drops to well under half
        assert gradient_energy(out[region]) < 0.4 * gradient_energy(image[region])
        # and it is the right blur (measured 55 dB; the input is at 22 dB)
        assert psnr(out[region], blur_by_map(sharp, expected)[region]) > 45.0


def test_magnify_leaves_sigmas_below_in_focus_alone(stripes):
    _, sigma, image = stripes
    near_sharp = np.where(sigma == 0, 0.45, sigma).astype(np.float32)
    out = magnify(image, near_sharp, amount=3.0, in_focus=0.5)
    assert np.array_equal(out[STRIPES[0]], image[STRIPES[0]])
    assert not np.array_equal(magnify(image, near_sharp, amount=3.0, in_focus=0.0)[STRIPES[0]], image[STRIPES[0]])


def test_magnify_is_monotonic_in_amount(stripes):
    _, sigma, image = stripes
    energies = [gradient_energy(magnify(image, sigma, amount=a)[STRIPES[2]]) for a in (1.0, 1.5, 2.5)]
    assert energies[0] == pytest.approx(gradient_energy(image[STRIPES[2]]))
    assert energies[0] > energies[1] > energies[2]


def test_magnify_does_not_halo_a_sharp_subject():
    """A bright in-focus disc on a dark blurred background: the background ring next to it must
    not pick up the disc's light (a plain blur of the background would triple its mean)."""
    background = 0.2 * dead_leaves(np.random.default_rng(3), size=160)
    yy, xx = np.mgrid[:160, :160]
    radius = np.hypot(yy - 80, xx - 80)
    disc = radius < 40
    sigma = np.where(disc, 0.0, 3.0).astype(np.float32)
    image = np.where(disc, 0.9, blur_by_map(background, sigma)).astype(np.float32)
    out = magnify(image, sigma, amount=3.0)
    ring = (radius > 42) & (radius < 52)
    assert abs(out[ring].mean() - image[ring].mean()) < 0.01
    assert gaussian_blur(image, 3.0 * np.sqrt(8.0))[ring].mean() > 2 * image[ring].mean()
    assert np.array_equal(out[radius < 34], image[radius < 34])


@pytest.mark.parametrize("shape, dtype", [((64, 80, 3), np.uint8), ((64, 80), np.uint16),
                                          ((64, 80, 1), np.float32), ((64, 80, 4), np.uint8)])
def test_magnify_and_enhance_keep_shape_dtype_and_alpha(shape, dtype):
    rng = np.random.default_rng(1)
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    image = (gaussian_blur(rng.random(shape).astype(np.float32), 1.0) * scale).astype(dtype)
    sigma = np.linspace(0, 4, 80, dtype=np.float32)[None, :].repeat(64, 0)
    for out in (magnify(image, sigma), enhance(image, sigma)):
        assert out.shape == image.shape and out.dtype == image.dtype
        if shape[-1] == 4:
            assert np.array_equal(out[..., 3], image[..., 3])
    assert np.array_equal(magnify(image, sigma, amount=1.0), image)
    assert np.array_equal(enhance(image, sigma, amount=0.0), image)


def test_magnify_estimates_the_map_when_none_is_given(estimator):
    image = to8(blur_by_map(dead_leaves(np.random.default_rng(2), size=96), np.full((96, 96), 2.0)))
    out = magnify(image, amount=2.0, estimator=estimator)
    assert out.shape == image.shape
    assert gradient_energy(out / 255.0) < 0.6 * gradient_energy(image / 255.0)
    result = estimator.estimate(image)
    assert np.array_equal(magnify(image, result), magnify(image, result.sigma))


def test_magnify_errors(stripes):
    _, sigma, image = stripes
    with pytest.raises(ValueError, match="amount must be a finite number >= 1"):
        magnify(image, sigma, amount=0.5)
    with pytest.raises(ValueError, match=r"height and width \(192, 192\)"):
        magnify(image, sigma[:100])
    with pytest.raises(ValueError, match=">= 0"):
        magnify(image, -sigma)
    bad = sigma.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        magnify(image, bad)
    with pytest.raises(TypeError, match="dtype"):
        magnify(image.astype(bool), sigma)
    with pytest.raises(TypeError, match="amount"):
        magnify(image, sigma, amount="2")
    with pytest.raises(ValueError, match="in_focus must be a finite number >= 0"):
        magnify(image, sigma, in_focus=-0.1)


# ------------------------------------------------------------------------- enhance


def test_enhance_sharpens_only_where_in_focus(stripes):
    _, sigma, image = stripes
    out = enhance(image, sigma, amount=1.0)
    assert gradient_energy(out[STRIPES[0]]) > 1.5 * gradient_energy(image[STRIPES[0]])
    for region in STRIPES[1:]:  # sigma 1.5 and 3 are at or past sigma_limit: untouched
        assert np.array_equal(out[region], image[region])
    # the gain falls with sigma: at sigma 0.75 (half the limit) half as much detail is added
    half = enhance(image, np.full_like(sigma, 0.75))
    full = enhance(image, np.zeros_like(sigma))
    unclipped = (full > 0) & (full < 1)
    np.testing.assert_allclose((half - image)[unclipped], 0.5 * (full - image)[unclipped], atol=2e-6)
    assert unclipped.mean() > 0.9


def test_enhance_errors(stripes):
    _, sigma, image = stripes
    with pytest.raises(ValueError, match="amount must be a finite number >= 0"):
        enhance(image, sigma, amount=-1)
    with pytest.raises(ValueError, match="sigma_limit must be a finite number > 0"):
        enhance(image, sigma, sigma_limit=0)
    with pytest.raises(ValueError, match="height and width"):
        enhance(image, sigma.T[:, :50])


# ----------------------------------------------------------------------------- fuse


def two_shots(seed: int, size: int = SIZE, sigma: float = 2.5):
    """A colour scene and two uint8 shots: A sharp on the left, B sharp on the right."""
    sharp = dead_leaves(np.random.default_rng(seed), size=size, colour=True)
    blur_right = np.zeros((size, size), np.float32)
    blur_right[:, size // 2:] = sigma
    return sharp, to8(blur_by_map(sharp, blur_right)), to8(blur_by_map(sharp, blur_right[:, ::-1]))


def test_fuse_recovers_the_sharp_image(estimator):
    sharp, a, b = two_shots(0)
    fused, decision = fuse([a, b], estimator)
    assert fused.shape == a.shape and fused.dtype == np.uint8
    assert decision.shape == (2, SIZE, SIZE) and decision.dtype == np.float32
    np.testing.assert_allclose(decision.sum(axis=0), 1.0, atol=1e-5)
    assert decision[0][:, :SIZE // 2 - 16].mean() > 0.98
    assert decision[1][:, SIZE // 2 + 16:].mean() > 0.98
    # measured 33.2 dB (33.1 to 34.2 over four scenes); each shot alone is at 18.7 dB
    assert psnr(fused / 255.0, sharp) > 31.0
    assert psnr(a / 255.0, sharp) < 20.0


def test_fuse_three_shots_and_precomputed_maps():
    sharp = dead_leaves(np.random.default_rng(6), size=144, colour=True)
    shots, maps = [], []
    for k in range(3):
        sigma = np.full((144, 144), 2.5, np.float32)
        sigma[:, 48 * k:48 * (k + 1)] = 0.0
        shots.append(blur_by_map(sharp, sigma))
        maps.append(sigma)
    fused, decision = fuse(shots, sigma_maps=maps)
    assert fused.dtype == np.float32 and decision.shape == (3, 144, 144)
    winners = decision.argmax(axis=0)
    for k in range(3):
        assert (winners[16:-16, 48 * k + 12:48 * (k + 1) - 12] == k).mean() > 0.99
    assert psnr(fused, sharp) > 26.0  # measured 28.0 to 28.6 dB over five scenes (two seams a row)


@pytest.mark.parametrize("convert", [lambda x: x[..., 1].astype(np.uint16) * 257,
                                     lambda x: np.concatenate([x, np.full(x.shape[:2] + (1,), 200, np.uint8)], 2)],
                         ids=["gray-uint16", "rgba-uint8"])
def test_fuse_keeps_dtype_shape_and_alpha(convert):
    _, a, b = two_shots(3, size=96)
    fused, decision = fuse([convert(a), convert(b)], sigma_weight=0)
    assert fused.shape == convert(a).shape and fused.dtype == convert(a).dtype
    if fused.ndim == 3:
        assert np.all(fused[..., 3] == 200)
    assert (decision.argmax(axis=0)[:, :32] == 0).mean() > 0.95


def test_fuse_errors():
    _, a, b = two_shots(1, size=64)
    with pytest.raises(ValueError, match="at least 2 images"):
        fuse([a])
    with pytest.raises(ValueError, match=r"images\[1\] has shape \(64, 32, 3\)"):
        fuse([a, b[:, :32]], sigma_weight=0)
    with pytest.raises(ValueError, match=r"images\[1\] has shape \(64, 64\)"):
        fuse([a, b[..., 0]], sigma_weight=0)
    with pytest.raises(TypeError, match="list or tuple"):
        fuse(a)
    with pytest.raises(ValueError, match="one map per image"):
        fuse([a, b], sigma_maps=[np.zeros((64, 64))])
    with pytest.raises(ValueError, match="sigma_map must have"):
        fuse([a, b], sigma_maps=[np.zeros((64, 64)), np.zeros((60, 64))])


# ------------------------------------------------------------------------- commands


def run_command(argv) -> int:
    parser = argparse.ArgumentParser(prog="fastdefocus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def shot_files(tmp_path):
    _, a, b = two_shots(2, size=96)
    paths = []
    for name, img in (("a.png", a), ("b.png", b)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(tmp_path / name))
    return paths


def test_fuse_command_writes_image_and_decision(tmp_path, shot_files, capsys):
    out, decision = tmp_path / "fused.png", tmp_path / "decision.png"
    assert run_command(["fuse", *shot_files, "-o", str(out), "--decision", str(decision)]) == 0
    assert cv2.imread(str(out)).shape == (96, 96, 3)
    chosen = cv2.imread(str(decision), cv2.IMREAD_UNCHANGED)
    assert chosen.dtype == np.uint8 and chosen.shape == (96, 96)
    assert (chosen[:, :32] == 0).mean() > 0.95 and (chosen[:, -32:] == 255).mean() > 0.95
    assert "fused 2 images" in capsys.readouterr().out
    assert run_command(["fuse", *shot_files, "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert run_command(["fuse", *shot_files, "-o", str(out), "--force"]) == 0
    with pytest.raises(ValueError, match="at least 2 images"):
        run_command(["fuse", shot_files[0], "-o", str(tmp_path / "one.png")])


def test_magnify_and_enhance_commands(tmp_path, shot_files):
    a = cv2.imread(shot_files[0])
    sigma = np.zeros((96, 96), np.float32)
    sigma[:, 48:] = 2.5
    np.save(tmp_path / "sigma.npy", sigma)
    cv2.imwrite(str(tmp_path / "sigma16.png"), np.rint(sigma * 1000).astype(np.uint16))
    cv2.imwrite(str(tmp_path / "sigma.tiff"), sigma)
    for sigma_file in ("sigma.npy", "sigma16.png", "sigma.tiff"):
        out = tmp_path / f"magnified_{sigma_file}.png"
        assert run_command(["magnify", shot_files[0], "-o", str(out), "--amount", "2",
                            "--sigma-map", str(tmp_path / sigma_file)]) == 0
        magnified = cv2.imread(str(out))
        assert np.array_equal(magnified[:, :40], a[:, :40])
        assert gradient_energy(magnified[:, 60:] / 255.0) < 0.6 * gradient_energy(a[:, 60:] / 255.0)
    out = tmp_path / "enhanced.png"
    assert run_command(["enhance", shot_files[0], "-o", str(out), "--sigma-map", str(tmp_path / "sigma.npy")]) == 0
    enhanced = cv2.imread(str(out))
    assert np.array_equal(enhanced[:, 60:], a[:, 60:])
    assert gradient_energy(enhanced[:, :40] / 255.0) > 1.3 * gradient_energy(a[:, :40] / 255.0)
    # without --sigma-map the estimator runs
    assert run_command(["enhance", shot_files[0], "-o", str(tmp_path / "estimated.png")]) == 0
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        run_command(["magnify", shot_files[0], "-o", str(tmp_path / "x.png"),
                     "--sigma-map", str(tmp_path / "missing.npy")])


def test_applications_take_opencv_bgr(leaves_rgb):
    """channel_order="bgr": the result of the RGB image, in BGR order (same bits)."""
    rgb = np.ascontiguousarray(leaves_rgb[:96, :96])
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    sigma = np.tile(np.linspace(0, 3, 96, dtype=np.float32)[None, :], (96, 1))
    np.testing.assert_array_equal(magnify(bgr, sigma, 2.0, channel_order="bgr"), magnify(rgb, sigma, 2.0)[..., ::-1])
    np.testing.assert_array_equal(enhance(bgr, sigma, 1.0, channel_order="bgr"), enhance(rgb, sigma, 1.0)[..., ::-1])
    out = enhance(bgr, sigma, channel_order="bgr")
    assert out.flags.c_contiguous and out.shape == bgr.shape and out.dtype == np.uint8
    # estimated maps too: the estimate sees the RGB image
    np.testing.assert_array_equal(magnify(bgr, channel_order="bgr"), magnify(rgb)[..., ::-1])
    near = np.ascontiguousarray(rgb)
    far = to8(gaussian_blur(rgb.astype(np.float32) / 255, 2.0))
    fused_rgb, decision_rgb = fuse([near, far], sigma_weight=0.0)
    fused_bgr, decision_bgr = fuse([near[..., ::-1], far[..., ::-1]], sigma_weight=0.0, channel_order="bgr")
    np.testing.assert_array_equal(fused_bgr, fused_rgb[..., ::-1])
    np.testing.assert_array_equal(decision_bgr, decision_rgb)
    with pytest.raises(ValueError, match="channel_order must be 'rgb' or 'bgr'"):
        magnify(rgb, sigma, channel_order="hsv")
    with pytest.raises(ValueError, match="channel_order must be 'rgb' or 'bgr'"):
        fuse([near, far], channel_order=None)
