"""The camera-model calibration command: calibration set, envelope, metadata and model card."""
import json
import shutil

import cv2
import numpy as np
import pytest

from fastdefocus.scenes import dead_leaves
from fastdefocus.stages.classify import METADATA_NAME, WEIGHTS_DIR, apply_calibration, load_model_info
from fastdefocus.train.recalibrate import (CALIBRATION_CAMERA, HELDOUT_HEADING, calibration_set,
                                           comparison_markdown, lower_envelope, main, recalibrate, rewrite_card)

N_PATCHES = 1600


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A stand-in for the shared data: two synthetic 'photos' large enough for the largest blur."""
    root = tmp_path_factory.mktemp("data")
    (root / "train" / "photos").mkdir(parents=True)
    for i in range(2):
        img = dead_leaves(np.random.default_rng(40 + i), size=336, colour=True)
        cv2.imwrite(str(root / "train" / "photos" / f"p{i}.png"), (img[..., ::-1] * 255).round().astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def calib_cache(data_root, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FASTDEFOCUS_DATA", str(data_root))
    cache = tmp_path_factory.mktemp("calib")
    calibration_set(cache, n=N_PATCHES, workers=1, log=lambda m: None)
    mp.undo()
    return cache


@pytest.fixture
def weights(tmp_path):
    out = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, out)
    return out


def test_calibration_set_is_the_gaussian_camera_and_is_reused(calib_cache, data_root, monkeypatch):
    summary = json.loads((calib_cache / "summary.json").read_text())
    assert summary["n_train"] == 0 and summary["n_val"] == N_PATCHES
    assert summary["camera"]["psf_probs"] == list(CALIBRATION_CAMERA.psf_probs)
    assert summary["kinds"]["gaussian"] == 1.0 and sum(summary["kinds"].values()) == 1.0
    meta = np.load(calib_cache / "val_meta.npy")
    assert len(meta) == N_PATCHES and set(np.unique(meta["kind"])) == {0}  # Gaussian PSF only
    assert (meta["source"] % 2 == 0).any() and (meta["source"] % 2 == 1).any()  # both halves
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(data_root))
    logs = []
    calibration_set(calib_cache, n=N_PATCHES, workers=1, log=logs.append)
    assert logs and "using cached patches" in logs[0]


def test_lower_envelope_is_exact_at_crossings():
    a = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 2.5]])
    b = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 3.0]])
    env = lower_envelope(a, b)
    x = np.linspace(0, 2, 201)
    want = np.minimum(np.interp(x, a[:, 0], a[:, 1]), np.interp(x, b[:, 0], b[:, 1]))
    assert np.abs(np.interp(x, env[:, 0], env[:, 1]) - want).max() < 1e-6  # float32 values, as apply_calibration gives
    assert np.all(np.diff(env[:, 0]) > 0) and np.all(np.diff(env[:, 1]) >= 0)
    assert np.any(np.isclose(env[:, 0], 1.0 + 1.0 / 1.5))  # a and b cross inside (1, 2)


def test_recalibrate_writes_the_envelope_and_both_fits(calib_cache, weights, monkeypatch, tmp_path):
    before = load_model_info(weights)
    ideal_before = np.asarray(before.metadata["calibration"]["ideal_knots"])
    report = recalibrate(weights, calib_cache, n=N_PATCHES, workers=1, log=lambda m: None)
    assert not list(weights.glob("*.tmp"))
    info = load_model_info(weights)  # the checksums of the weight files still hold
    cal = info.metadata["calibration"]
    assert np.array_equal(info.calibration, report["knots"])
    # a model recalibrated again keeps its training generator's fit as the ideal half
    assert np.array_equal(np.asarray(cal["ideal_knots"]), ideal_before)
    assert np.allclose(info.calibration, lower_envelope(ideal_before, np.asarray(cal["camera_knots"])))
    assert cal["generator"]["camera"]["psf_probs"] == list(CALIBRATION_CAMERA.psf_probs)
    assert "camera-model validation patches" in cal["fitted_on"]
    x = np.linspace(0, 6, 61)
    assert np.all(apply_calibration(x, info.calibration) <= apply_calibration(x, ideal_before) + 1e-5)
    held = info.metadata["metrics_heldout_camera"]
    assert held["textured"][-1]["level"] == "all" and held["textured"][-1]["n"] > 0
    table = comparison_markdown(report)
    assert table.count("| camera |") == 3 and "envelope (new)" in table


def test_recalibrate_dry_run_and_bad_ideal_cache(calib_cache, weights, capsys):
    meta_before = (weights / METADATA_NAME).read_bytes()
    assert main(["--weights", str(weights), "--cache", str(calib_cache), "--patches", str(N_PATCHES),
                 "--workers", "1", "--dry-run"]) == 0
    assert (weights / METADATA_NAME).read_bytes() == meta_before
    assert "| held-out set |" in capsys.readouterr().out
    # a camera-model cache is not an ideal-lens one
    with pytest.raises(ValueError, match="holds camera-model patches"):
        recalibrate(weights, calib_cache, ideal_cache=calib_cache, n=N_PATCHES, workers=1, write=False,
                    log=lambda m: None)
    assert main(["--weights", str(weights), "--ideal-cache", str(weights), "--dry-run"]) == 2
    assert "has no val_patches.npy" in capsys.readouterr().err
    assert main(["--weights", str(weights), "--patches", "10", "--dry-run"]) == 2
    assert "--patches must be at least 1000" in capsys.readouterr().err


def test_rewrite_card_replaces_the_heldout_section(tmp_path):
    meta = load_model_info().metadata
    card = tmp_path / "MODEL.md"
    card.write_text("# card\n\nhand-written part\n\n" + HELDOUT_HEADING + "\nold numbers\n")
    rewrite_card(card, meta)
    text = card.read_text()
    assert text.startswith("# card\n\nhand-written part\n\n" + HELDOUT_HEADING)
    assert "old numbers" not in text and "Camera-model patches" in text and "lower\nenvelope" in text
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "bare.md").write_text("# no section\n")
    with pytest.raises(ValueError, match="no '## Held-out results' section"):
        rewrite_card(tmp_path / "bare.md", meta)


def test_first_recalibration_keeps_the_old_fit_and_a_second_changes_nothing(calib_cache, weights):
    """A model calibrated on its training generator alone (no ideal_knots yet): its knots become
    ideal_knots; recalibrating again gives the same knots and leaves the int8 figures alone."""
    path = weights / METADATA_NAME
    meta = json.loads(path.read_text())
    original = meta["calibration"]["ideal_knots"]
    meta["calibration"] = {"kind": "quantile mapping", "fitted_on": "even ids", "knots": original}
    path.write_text(json.dumps(meta))
    first = recalibrate(weights, calib_cache, n=N_PATCHES, workers=1, log=lambda m: None)
    cal = load_model_info(weights).metadata["calibration"]
    assert cal["ideal_knots"] == original
    assert "stale" in load_model_info(weights).metadata["metrics_heldout_int8"]  # its MAEs moved
    second = recalibrate(weights, calib_cache, n=N_PATCHES, workers=1, log=lambda m: None)
    assert np.array_equal(first["knots"], second["knots"])
    assert load_model_info(weights).metadata["calibration"]["ideal_knots"] == original


def test_a_cache_of_another_camera_is_made_again(data_root, monkeypatch, tmp_path):
    import dataclasses
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(data_root))
    cache = tmp_path / "cal"
    calibration_set(cache, n=800, workers=1, log=lambda m: None)
    logs = []
    other = dataclasses.replace(CALIBRATION_CAMERA, sharpen_prob=0.0)
    summary = calibration_set(cache, n=800, workers=1, log=logs.append, camera=other)
    assert not any("using cached patches" in m for m in logs)
    assert summary["camera"]["sharpen_prob"] == 0.0
    assert json.loads((cache / "summary.json").read_text())["camera"]["sharpen_prob"] == 0.0
    assert not list(cache.glob("*.tmp"))


def test_train_refuses_camera_calibration_of_a_camera_model(tmp_path, capsys):
    from fastdefocus.cli.main import main as cli
    assert cli(["train", "--camera", "--calibration", "camera", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "--calibration camera" in err and "--camera" in err
    assert not (tmp_path / "c").exists()  # refused before any work
