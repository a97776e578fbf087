"""The benchmark machinery on tiny synthetic data folders (no ../shared needed)."""
import argparse
import json
import sys

import cv2
import numpy as np
import pytest

import fastdefocus
from fastdefocus.eval import peers
from fastdefocus.io import pictures
from fastdefocus.cli.eval import add_commands
from fastdefocus.scenes import blur_by_map, dead_leaves


@pytest.fixture(scope="module")
def estimator():
    return fastdefocus.DefocusEstimator()


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    sharp = dead_leaves(rng, size=96, colour=True)
    sigma = np.zeros((96, 96), np.float32)
    sigma[:, 48:] = 3.0  # right half blurred
    return (np.clip(blur_by_map(sharp, sigma) * 255 + 0.5, 0, 255).astype(np.uint8), sigma,
            (np.clip(sharp * 255 + 0.5, 0, 255)).astype(np.uint8))


def test_official_structure_shapes_and_rescaling(estimator, scene):
    image, truth, _ = scene
    timings = {}
    sigma, normalised = peers.official_structure(image, estimator, timings=timings)
    assert sigma.shape == normalised.shape == truth.shape
    assert sigma.dtype == normalised.dtype == np.float32
    assert sigma.min() >= 0 and sigma.max() <= estimator.info.levels[-1] + 1e-3
    assert normalised.min() == pytest.approx(0.0) and normalised.max() == pytest.approx(1.0)
    assert set(timings) == {"patches", "classify", "refine", "total"}
    # the blurred half reads as more blurred
    assert sigma[:, 60:].mean() > sigma[:, :36].mean() + 1.0


def test_official_structure_one_at_a_time_gives_the_same_map(estimator, scene):
    image = scene[0][:40, :40]  # 4 patches: one network call each
    batched = peers.official_structure(image, estimator)[0]
    looped = peers.official_structure(image, estimator, one_at_a_time=True)[0]
    np.testing.assert_allclose(looped, batched, atol=1e-4)


def test_hifst_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "blur_detector", None)  # import raises ImportError
    assert not peers.hifst_available()
    with pytest.raises(ImportError, match="--no-deps blur-detector"):
        peers.hifst_score(np.zeros((40, 40), np.uint8))


def test_hifst_score_range(scene):
    pytest.importorskip("blur_detector")
    pytest.importorskip("skimage")
    score = peers.hifst_score(scene[0])
    assert score.shape == scene[1].shape and score.dtype == np.float32
    assert 0.0 <= score.min() and score.max() == pytest.approx(1.0)


def test_pictures_draw_rgb8(tmp_path):
    sigma = np.linspace(0, 7, 50 * 60, dtype=np.float32).reshape(50, 60)
    panel = pictures.captioned(pictures.sigma_picture(sigma, 7.0), "a caption", 80)
    assert panel.dtype == np.uint8 and panel.shape[2] == 3 and panel.shape[0] > 80
    row = pictures.side_by_side([panel, pictures.captioned(pictures.colour_scale(7.0, 80), "", 80)])
    assert row.shape[0] == panel.shape[0]
    plot = pictures.histogram_plot({"a": np.random.default_rng(0).normal(0, 1, 1000), "b": np.zeros(10)}, -4, 4)
    assert plot.shape == (360, 640, 3) and (plot != 255).any()
    path = pictures.write_png(tmp_path / "sub" / "x.png", row)
    assert cv2.imread(str(path)).shape == row.shape


@pytest.fixture
def data_root(tmp_path, scene):
    """A data folder in the shared layout: one SYNDOF rendering, two sharp photos, one mask."""
    image, truth, sharp = scene
    root = tmp_path / "data"
    syn = root / "eval" / "syndof"
    for sub in ("image", "blur_map"):
        (syn / sub).mkdir(parents=True)
    cv2.imwrite(str(syn / "image" / "r1.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    stored = np.repeat(np.round(truth * 10).astype(np.uint16)[..., None], 3, axis=2)  # value = 10 * sigma
    cv2.imwrite(str(syn / "blur_map" / "r1.png"), stored)
    photos = root / "train" / "bsds500" / "val"
    photos.mkdir(parents=True)
    for i in range(2):
        big = cv2.resize(sharp, (160, 128), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(photos / f"p{i}.jpg"), np.roll(big, 17 * i, axis=1))
    dbd = root / "eval" / "dbd" / "cuhk320"
    (dbd / "images").mkdir(parents=True)
    (dbd / "masks_white_in_focus").mkdir()
    cv2.imwrite(str(dbd / "images" / "1.bmp"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(dbd / "masks_white_in_focus" / "1.bmp"), np.where(truth == 0, 255, 0).astype(np.uint8))
    return root


def _parse(argv):
    parser = argparse.ArgumentParser(prog="fastdefocus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_eval_command_on_a_small_data_folder(data_root, tmp_path, capsys):
    out = tmp_path / "report"
    args = _parse(["eval", "--data", str(data_root), "--sections", "syndof", "scenes", "dbd",
                   "--limit", "2", "-o", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "SYNDOF (1 renderings)" in text and "official structure" in text
    assert "Synthetic layered scenes (2 photos" in text
    assert "F-beta max" in text
    report = json.loads((out / "quality.json").read_text())
    assert report["syndof"]["n"] == 1 and 0 <= report["syndof"]["mae"] < 3
    assert report["scenes"]["images"] == 2
    ours = report["dbd"]["methods"]["fastdefocus"]
    assert ours["n"] == 1 and 0 <= ours["fbeta_max"] <= 1 and 0 <= ours["mae"] <= 1
    # half the image is sharp and half blurred by 3 px: the detection is far better than chance
    assert ours["fbeta_max"] > 0.8
    for name in ("syndof_example.png", "syndof_error_histogram.png", "scenes_example.png",
                 "scenes_error_histogram.png", "dbd_examples.png"):
        assert cv2.imread(str(out / name)) is not None, name
        assert f"]({name})" in (out / "quality.md").read_text()


def test_fusion_section_runs_from_the_package(tmp_path, scene, capsys):
    sharp = scene[2]
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    near, far = sharp.copy(), sharp.copy()
    near[:, 48:] = blurred[:, 48:]
    far[:, :48] = blurred[:, :48]
    pair = tmp_path / "data" / "eval" / "mfif" / "p1"
    pair.mkdir(parents=True)
    cv2.imwrite(str(pair / "p1_A.png"), near)
    cv2.imwrite(str(pair / "p1_B.png"), far)
    out = tmp_path / "out"
    args = _parse(["eval", "--data", str(tmp_path / "data"), "--sections", "fusion", "--pairs", "p1", "-o", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "Multi-focus fusion (1 pairs: p1)" in text and "Q^AB/F" in text
    summary = json.loads((out / "quality.json").read_text())["fusion"]["summary"]
    assert len(summary) == 3 and all(0 < v["q_abf"] <= 1 for v in summary.values())
    assert cv2.imread(str(out / "fusion_example.png")) is not None
    args = _parse(["eval", "--data", str(tmp_path / "data"), "--sections", "fusion", "--pairs", "nope"])
    assert args.func(args) == 2  # the only section was skipped: nothing ran, which is an error
    err = capsys.readouterr().err
    assert "fusion: missing pairs" in err and "no quality section ran" in err


def test_eval_reports_missing_data(tmp_path, capsys):
    args = _parse(["eval", "--data", str(tmp_path / "nowhere"), "--sections", "syndof", "dbd"])
    assert args.func(args) == 2  # every selected section skipped
    err = capsys.readouterr().err
    assert "syndof: data folder missing" in err and "dbd: data folder missing" in err


def test_bench_command_smallest_configuration(tmp_path, capsys, monkeypatch):
    from fastdefocus.eval import speed as speedbench
    monkeypatch.setitem(speedbench.SIZES, "640x480", (64, 96))  # tiny frame: this tests the plumbing
    args = _parse(["bench", "--sizes", "640x480", "--stream-sizes", "640x480", "--strides", "16", "--repeats", "1",
                   "--loop-patches", "2", "--no-torch", "--no-gpu", "--json", str(tmp_path / "speed.json")])
    # spawned workers re-import the module: the patched size lives in this process only, so run in-process
    monkeypatch.setattr(speedbench, "_in_fresh_process", lambda fn, *a: fn(*a))
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "one patch at a time" in text and "Guided filter at full resolution" in text
    report = json.loads((tmp_path / "speed.json").read_text())
    kinds = {r["kind"] for r in report["rows"]}
    assert kinds == {"ours", "loop"}
    for r in report["rows"]:
        assert r["seconds"] > 0 and r["peak_rss"] > 0 and r["patches"] > 0
    assert report["guided_filter"]["640x480"]["native"] > 0
    assert "Flat fill" in text and "Coarse levels" in text
    fill = report["fill"][0]
    assert fill["fill_sigma"] == 64.0 and fill["flat"]["seconds_on"] > 0 and fill["sharp"]["ratio"] > 0
    assert "Test-time views" in text and "8 views" in text
    views = report["tta"][0]
    assert set(views) >= {"views2", "views4", "views8"} and views["views8"]["seconds_on"] > 0
