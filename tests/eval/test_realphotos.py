"""Real photographs I: the LBP peer, the generated detection set, the sharp-photo and large-blur
readings and their report sections, on generated images only (no ../shared, no GPU)."""
import argparse
import json

import cv2
import numpy as np
import pytest

import fastdefocus
from fastdefocus.cli.eval import add_commands
from fastdefocus.eval import quality, realphotos
from fastdefocus.eval.realphotos import generated_dbd, lbp_codes, lbp_score, lbp_sharpness
from fastdefocus.scenes import blur_by_map, dead_leaves


@pytest.fixture(scope="module")
def estimator():
    return fastdefocus.DefocusEstimator(stride=16)


@pytest.fixture(scope="module")
def half_blurred():
    """Colour dead leaves, left half sharp, right half blurred by 3 px (uint8)."""
    sharp = dead_leaves(np.random.default_rng(11), size=128, colour=True)
    sigma = np.zeros((128, 128), np.float32)
    sigma[:, 64:] = 3.0
    return np.clip(blur_by_map(sharp, sigma) * 255 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- LBP


def _reference_codes(gray: np.ndarray, threshold: float) -> np.ndarray:
    """LBP^riu2_{8,1} one pixel at a time: neighbours at (cos, -sin) of 2 pi p / 8, bilinear,
    borders replicated."""
    h, w = gray.shape
    pad = np.pad(gray.astype(np.float64), 1, mode="edge")
    codes = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            gc = pad[y + 1, x + 1]
            bits = []
            for p in range(8):
                fx = x + 1 + np.cos(2 * np.pi * p / 8)
                fy = y + 1 - np.sin(2 * np.pi * p / 8)
                x0, y0 = int(np.floor(fx + 1e-9)), int(np.floor(fy + 1e-9))
                ax, ay = fx - x0, fy - y0
                x1, y1 = min(x0 + 1, w + 1), min(y0 + 1, h + 1)
                v = ((1 - ax) * (1 - ay) * pad[y0, x0] + ax * (1 - ay) * pad[y0, x1]
                     + (1 - ax) * ay * pad[y1, x0] + ax * ay * pad[y1, x1])
                bits.append(int(v - gc >= threshold - 1e-6))
            transitions = sum(bits[i] != bits[i - 1] for i in range(8))
            codes[y, x] = sum(bits) if transitions <= 2 else 9
    return codes


def test_lbp_codes_match_a_pixel_by_pixel_reference():
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.uniform(0, 1, (14, 15)).astype(np.float32), (0, 0), 0.7)
    np.testing.assert_array_equal(lbp_codes(gray, 0.016), _reference_codes(gray, 0.016))


def test_lbp_codes_on_known_patterns():
    dark_dot = np.ones((5, 5), np.float32)
    dark_dot[2, 2] = 0.0
    assert lbp_codes(dark_dot)[2, 2] == 8  # every neighbour brighter: uniform, 8 ones
    assert lbp_codes(1.0 - dark_dot)[2, 2] == 0  # a bright dot: no neighbour brighter
    step = np.zeros((5, 6), np.float32)
    step[:, 3:] = 1.0
    assert lbp_codes(step)[2, 2] == 3  # right, up-right, down-right: one run of 3 ones
    bar = np.full((3, 3), 0.5, np.float32)
    bar[1, 0] = bar[1, 2] = 1.0
    bar[0, 1] = bar[2, 1] = 0.0
    bar[0, 0] = bar[0, 2] = bar[2, 0] = bar[2, 2] = 0.0
    assert lbp_codes(bar)[1, 1] == 9  # right and left only: two runs, not uniform
    faint = np.ones((5, 5), np.float32) * 0.5
    faint[2, 2] = 0.5 - 0.01  # neighbours brighter by less than T_LBP = 0.016
    assert lbp_codes(faint)[2, 2] == 0
    assert lbp_codes(faint, threshold=0.005)[2, 2] == 8


def test_lbp_sharpness_is_the_share_of_sharp_codes_in_the_window():
    rng = np.random.default_rng(1)
    img = (rng.uniform(0, 1, (40, 40)) * 255).astype(np.uint8)
    m = lbp_sharpness(img, s=11)
    codes = lbp_codes(img)
    expected = np.isin(codes[15:26, 10:21], (6, 7, 8, 9)).mean()
    assert m[20, 15] == pytest.approx(expected, abs=1e-6)


def test_lbp_sharpness_shape_dtype_range():
    rng = np.random.default_rng(2)
    rgb = (rng.uniform(0, 1, (37, 53, 3)) * 255).astype(np.uint8)
    for image in (rgb, rgb[..., 0], rgb.astype(np.float32) / 255):
        m = lbp_sharpness(image)
        assert m.shape == (37, 53) and m.dtype == np.float32
        assert 0.0 <= m.min() and m.max() <= 1.0
    assert not lbp_sharpness(np.full((30, 30), 128, np.uint8)).any()  # flat: nothing sharp
    score = lbp_score(rgb)
    assert score.dtype == np.float32 and score.min() == pytest.approx(0) and score.max() == pytest.approx(1)
    assert not lbp_score(np.zeros((20, 20), np.uint8)).any()
    with pytest.raises(ValueError):
        lbp_sharpness(rgb, s=20)


def test_lbp_sharpness_higher_on_the_sharp_half(half_blurred):
    m = lbp_sharpness(half_blurred)
    left, right = float(m[:, 8:52].mean()), float(m[:, 76:120].mean())  # away from the boundary
    assert left > right + 0.05 and left > 5 * right


# ----------------------------------------------------------------------------- generated set


def test_generated_dbd_masks_and_determinism():
    first = list(generated_dbd(3, seed=5, size=96))
    again = list(generated_dbd(2, seed=5, size=96))
    other = next(generated_dbd(1, seed=6, size=96))
    assert len(first) == 3
    for rgb, mask in first:
        assert rgb.shape == (96, 96, 3) and rgb.dtype == np.uint8
        assert mask.shape == (96, 96) and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 255}  # both classes
        assert 0.05 < (mask == 255).mean() < 0.8
    for (a, ma), (b, mb) in zip(first, again):  # same seed, same images, whatever n
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)
    assert not np.array_equal(other[0], first[0][0])


def test_generated_dbd_foreground_is_sharp_and_background_blurred():
    checked = 0
    for i in range(6):
        rgb, mask, info = realphotos.generated_image(0, i, 160)
        assert info["kernel"] in ("gaussian", "disc") and 1.5 <= info["sigma"] <= 6.0
        if info["foreground"] != "textured":
            continue
        m = lbp_sharpness(rgb, s=11)
        inside = cv2.erode((mask > 0).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        outside = cv2.erode((mask == 0).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        assert m[inside].mean() > 3 * m[outside].mean() + 0.02
        checked += 1
    assert checked >= 2


# ----------------------------------------------------------------------------- photo sections


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for i in range(2):
        img = dead_leaves(np.random.default_rng(20 + i), size=192, colour=True)[:160]
        cv2.imwrite(str(folder / f"p{i}.png"), np.clip(img[..., ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_sharp_photos_keys(estimator, photo_folder, tmp_path):
    out = realphotos.sharp_photos(estimator, photo_folder, out_dir=tmp_path)
    assert out["images"] == 2 and out["downscale"] == 2
    assert set(out["conditions"]) == {"sharp", "gaussian_0.5"}
    for name, r in out["conditions"].items():
        assert {"added_sigma", "n", "median", "mean"} <= set(r) and r["n"] == 2
        assert 0 <= r["median"] < 3
    assert {"image", "textured_share", "sharp", "gaussian_0.5"} <= set(out["per_image"][0])
    assert realphotos.sharp_photos(estimator, photo_folder, limit=1)["images"] == 1
    text = realphotos.sharp_photos_markdown(out)
    assert "Sharp photos" in text and "gaussian_0.5" in text
    assert cv2.imread(str(tmp_path / "sharp_example.png")) is not None
    assert "area-downscaled by 2" in text


def test_sharp_photos_downscale(estimator, photo_folder):
    """--sharp-downscale: 1 reads the photos as stored, 3 downscales them by 3; bad factors are refused."""
    stored = realphotos.sharp_photos(estimator, photo_folder, downscale=1)
    by3 = realphotos.sharp_photos(estimator, photo_folder, downscale=3)
    assert stored["downscale"] == 1 and by3["downscale"] == 3 and stored["images"] == by3["images"] == 2
    assert stored["per_image"][0]["sharp"] != by3["per_image"][0]["sharp"]
    assert "as stored" in realphotos.sharp_photos_markdown(stored)
    assert "area-downscaled by 3" in realphotos.sharp_photos_markdown(by3)
    assert realphotos.sharp_photos(estimator, photo_folder, downscale=6)["images"] == 0  # 192x160 / 6 < 32 px
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="downscale must be an integer >= 1"):
            realphotos.sharp_photos(estimator, photo_folder, downscale=bad)


def test_sharp_downscale_option_is_checked(capsys):
    ap = argparse.ArgumentParser()
    add_commands(ap.add_subparsers(dest="command"))
    assert ap.parse_args(["eval", "--sharp-downscale", "4"]).sharp_downscale == 4
    with pytest.raises(SystemExit):
        ap.parse_args(["eval", "--sharp-downscale", "0"])
    assert "expected an integer >= 1, got 0" in capsys.readouterr().err


def test_large_blur_keys(estimator, photo_folder):
    out = realphotos.large_blur(estimator, photo_folder, sigmas=(8.0,), discs=(24.0,), limit=1)
    assert out["images"] == 1 and out["levels_max"] == pytest.approx(float(estimator.info.levels[-1]))
    assert set(out["conditions"]) == {"gaussian_8", "disc_24"}
    disc = out["conditions"]["disc_24"]
    assert disc["kernel"] == "disc" and disc["true_sigma"] == 12.0
    for key in ("all", "textured"):
        assert {"n", "median", "mean", "ratio"} <= set(disc[key])
        assert disc[key]["ratio"] == pytest.approx(disc[key]["median"] / 12.0)
    # far more blur than sharp: the reading is large even if it saturates at the top level
    assert out["conditions"]["gaussian_8"]["all"]["median"] > 2.0
    assert "Large blur" in realphotos.large_blur_markdown(out)


# ----------------------------------------------------------------------------- report sections


def _parse(argv):
    parser = argparse.ArgumentParser(prog="fastdefocus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_run_quality_dbdgen_section(tmp_path, capsys):
    args = _parse(["eval", "--data", str(tmp_path / "nowhere"), "--sections", "dbdgen", "sharp",
                   "--dbdgen-n", "2", "--stride", "16", "-o", str(tmp_path / "out")])
    report = quality.run_quality(args, fastdefocus.DefocusEstimator(stride=16), tmp_path / "out")
    gen = report["dbdgen"]
    assert gen["folder"] == "generated" and len(gen["drawn"]) == 2
    methods = gen["methods"]
    assert {"fastdefocus", "official structure", realphotos.LBP} <= set(methods)
    for r in methods.values():
        assert r["n"] == 2 and 0 <= r["fbeta_max"] <= 1 and 0 <= r["mae"] <= 1 and r["seconds_per_image"] >= 0
    assert "generated DBD-like set" in report["markdown"] and realphotos.LBP in report["markdown"]
    assert cv2.imread(str(tmp_path / "out" / "dbdgen_examples.png")) is not None
    assert "sharp: data folder missing" in capsys.readouterr().err  # the sharp photos are not there: skipped


def test_dbd_section_has_the_lbp_row_and_reads_flat_folders(tmp_path, estimator, half_blurred):
    folder = tmp_path / "flat"
    folder.mkdir()
    mask = np.zeros((128, 128), np.uint8)
    mask[:, :64] = 255
    cv2.imwrite(str(folder / "a.png"), half_blurred[..., ::-1])
    cv2.imwrite(str(folder / "a_mask.png"), mask)
    cv2.imwrite(str(folder / "b.png"), half_blurred[..., ::-1])  # no mask: skipped
    pairs = quality.dbd_pairs(folder)
    assert [(p.name, m.name if m else None) for p, m in pairs] == [("a.png", "a_mask.png"), ("b.png", None)]
    out = quality.dbd(estimator, folder, peers=True)
    lbp = out["methods"][realphotos.LBP]
    assert lbp["n"] == 1 and lbp["fbeta_max"] > 0.8 and "seconds_per_image" in lbp
    assert list(out["methods"])[0] == "fastdefocus" and list(out["methods"])[-1] == realphotos.LBP
    assert "LBP" in out["score"]
    assert realphotos.LBP not in quality.dbd(estimator, folder, peers=False)["methods"]
    json.dumps(out["methods"][realphotos.LBP]["per_image"])  # plain numbers
