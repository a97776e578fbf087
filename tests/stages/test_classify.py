"""The shipped classifier: architecture, files, checksum, accuracy on generated patches."""
import dataclasses
import json
import shutil

import numpy as np
import pytest

from fastdefocus.blur import gaussian_blur, level_bins
from fastdefocus.backends.cpu import PatchClassifier
from fastdefocus.stages.classify import (MODEL_DIRS, ModelFileError, apply_calibration, confidence_from_probs,
                                  expected_sigma_raw, load_model_info)
from fastdefocus.stages.filters import extract_patches
from fastdefocus.scenes import dead_leaves

torch = pytest.importorskip("torch")


def test_mobilenetv2_shapes():
    from fastdefocus.backends.mobilenetv2 import MobileNetV2
    model = MobileNetV2(num_classes=20, width_mult=0.5).eval()
    x = torch.zeros(3, 1, 32, 32)
    assert model(x).shape == (3, 20)
    assert model.features(x).shape[-2:] == (1, 1)  # total stride 32


def test_shipped_model_metadata_and_checksum():
    info = load_model_info()
    assert len(info.levels) == 20 and info.levels[0] == 0 and np.all(np.diff(info.levels) > 0)
    assert info.patch_size == 32
    knots = info.calibration
    assert np.all(np.diff(knots[:, 0]) > 0) and np.all(np.diff(knots[:, 1]) > 0)
    assert info.onnx_path.stat().st_size + info.safetensors_path.stat().st_size < 10e6


def test_tampered_weights_are_refused(tmp_path):
    info = load_model_info()
    for path in info.onnx_path.parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    data = bytearray((tmp_path / info.onnx_path.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / info.onnx_path.name).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_model_info(tmp_path)


def test_missing_and_broken_metadata(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model_info(tmp_path)
    (tmp_path / "blur_classifier.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model_info(tmp_path)


def test_onnx_matches_torch():
    info = load_model_info()
    rng = np.random.default_rng(0)
    img = gaussian_blur(dead_leaves(rng, size=128), 1.2)
    patches, _ = extract_patches(img, size=32, stride=16, normalize=True, std_floor=info.std_floor)
    onnx = PatchClassifier(info, backend="onnxruntime").probabilities(patches)
    eager = PatchClassifier(info, backend="torch").probabilities(patches)
    assert onnx.shape == (len(patches), 20)
    assert np.abs(onnx - eager).max() <= 1e-4
    assert np.allclose(onnx.sum(1), 1.0, atol=1e-5)


def generated_set(info, n_per_level=12, seed=5):
    """Textured patches blurred with a known Gaussian sigma, cut from procedural images."""
    rng = np.random.default_rng(seed)
    bins = level_bins(info.levels)
    # rendered finer and area-averaged, as the training sources are (pixels integrate their area)
    sources = [dead_leaves(rng, size=160, supersample=4) for _ in range(3)]
    patches, labels, sigmas = [], [], []
    for level in range(len(info.levels)):
        for i in range(n_per_level):
            sigma = rng.uniform(bins[level], bins[level + 1]) if level == 0 else \
                np.exp(rng.uniform(np.log(bins[level]), np.log(bins[level + 1])))
            src = sources[i % len(sources)]
            y, x = rng.integers(30, 160 - 62, 2)
            crop = gaussian_blur(src[y - 30:y + 62, x - 30:x + 62], sigma)[30:62, 30:62]
            crop = np.round(crop * 255) / 255  # 8-bit, as a camera delivers
            if crop.std() < 0.04:
                continue
            p, _ = extract_patches(crop, size=32, stride=32, normalize=True, std_floor=info.std_floor)
            patches.append(p[0])
            labels.append(level)
            sigmas.append(sigma)
    return np.stack(patches), np.array(labels), np.array(sigmas)


def test_accuracy_on_generated_patches():
    info = load_model_info()
    patches, labels, sigmas = generated_set(info)
    probs = PatchClassifier(info).probabilities(patches)
    pred = probs.argmax(1)
    within_one = float((np.abs(pred - labels) <= 1).mean())
    sigma = apply_calibration(expected_sigma_raw(probs, info.levels), info.calibration)
    mae = float(np.abs(sigma - sigmas).mean())
    # floors measured on this set with the shipped weights (see docs/MODEL.md), with a margin
    assert within_one >= WITHIN_ONE_FLOOR, within_one
    assert mae <= MAE_CEILING, mae
    conf = confidence_from_probs(probs)
    assert conf.min() >= 0 and conf.max() <= 1


# measured with the shipped weights on this set (236 patches): within one level 1.000, MAE 0.200 px
# (0.164 px under the ideal-lens fit alone: the camera-model calibration reads this set's clean
# ideal-lens patches of levels 0-4 about 0.15 px low, below 1 px, where real photos' own softness
# is); the floors leave a
# margin for other BLAS/ONNX Runtime builds
WITHIN_ONE_FLOOR = 0.95
MAE_CEILING = 0.25


def test_metadata_records_heldout_metrics():
    meta = load_model_info().metadata
    textured = meta["metrics_heldout"]["textured"][-1]
    assert textured["level"] == "all"
    assert 0 <= textured["within1"] <= 1
    json.dumps(meta)  # serialisable


def test_metadata_without_required_keys(tmp_path):
    (tmp_path / "blur_classifier.json").write_text("{}")
    with pytest.raises(ModelFileError, match="not a fastdefocus model file"):
        load_model_info(tmp_path)


# ------------------------------------------------------------------- real-camera degradations


def _camera_patches(info, sigma, cfg, seeds=range(4), size=128):
    """Calibrated sigma of every 32-px patch (stride 32) of dead-leaves scenes photographed
    through a Gaussian lens of ``sigma`` and the camera ``cfg`` (fastdefocus.train.camera)."""
    from fastdefocus.train.camera import render
    values = []
    for seed in seeds:
        crop = dead_leaves(np.random.default_rng(200 + seed), size=size, colour=True, supersample=4)
        lum = render(crop, sigma, None, cfg, np.random.default_rng(seed)).astype(np.float32) / 255
        patches, _ = extract_patches(lum, size=32, stride=32, normalize=True, std_floor=info.std_floor)
        keep = patches.reshape(len(patches), -1).std(1) > 0.5  # textured (normalised std ~1; flat ~0)
        probs = PatchClassifier(info).probabilities(patches[keep])
        values.append(apply_calibration(expected_sigma_raw(probs, info.levels), info.calibration))
    return np.concatenate(values)


@pytest.mark.xfail(strict=True, reason="the shipped model reads these 0.37 px (target < 0.3; 0.45 px before the "
                   "camera-model calibration); a model fine-tuned on the camera generator read them lower but lost "
                   "on every other measure (docs/experiments/camera_model.md)")
def test_sharp_noisy_jpeg_patches_read_sharp():
    """A phone-like sharp patch (Bayer demosaicing, high-ISO photon noise, JPEG 75) is sharp."""
    from fastdefocus.train.camera import CameraConfig
    noisy = CameraConfig(camera_prob=1.0, full_well=(400.0, 401.0), read_noise=(0.002, 0.0021),
                         exposure=(0.5, 0.51), sharpen_prob=0.0, jpeg_prob=1.0, jpeg_quality=(75, 75))
    sigma = _camera_patches(load_model_info(), 0.0, noisy)
    assert np.median(sigma) < SHARP_NOISY_CEILING, np.median(sigma)


def test_blurred_then_sharpened_patches_read_their_blur():
    """In-camera sharpening adds halos, not focus: a 2 px lens blur sharpened reads about 2 px."""
    from fastdefocus.train.camera import CameraConfig
    sharpened = CameraConfig(camera_prob=1.0, full_well=(5000.0, 5001.0), read_noise=(0.0, 0.0001),
                             sharpen_prob=1.0, sharpen_amount=(1.0, 1.0), sharpen_radius=(1.0, 1.0),
                             jpeg_prob=1.0, jpeg_quality=(90, 90))
    sigma = _camera_patches(load_model_info(), 2.0, sharpened)
    assert abs(np.median(sigma) - 2.0) < 0.5, np.median(sigma)


#: median calibrated sigma of sharp noisy JPEG patches must stay below this (issue: < 0.3 px)
SHARP_NOISY_CEILING = 0.3


def _ideal_fit(info):
    """The model with its training generator's calibration alone (before the camera-model envelope)."""
    return dataclasses.replace(info, calibration=np.asarray(info.metadata["calibration"]["ideal_knots"]))


#: a clean camera: full camera pipeline (mosaic, mild photon noise, demosaicing), JPEG 90, no sharpening
CLEAN_CAMERA = dict(camera_prob=1.0, full_well=(3000.0, 3001.0), read_noise=(0.001, 0.0011), exposure=(0.7, 0.71),
                    sharpen_prob=0.0, jpeg_prob=1.0, jpeg_quality=(90, 90), downscale_prob=0.0)


def test_shipped_calibration_is_the_envelope_of_its_two_fits():
    from fastdefocus.train.recalibrate import lower_envelope
    for info in (load_model_info(), load_model_info(MODEL_DIRS["fast"])):
        cal = info.metadata["calibration"]
        knots = np.asarray(cal["knots"])
        assert np.all(np.diff(knots[:, 0]) > 0) and np.all(np.diff(knots[:, 1]) > 0)
        ideal, camera = np.asarray(cal["ideal_knots"]), np.asarray(cal["camera_knots"])
        assert np.allclose(knots, lower_envelope(ideal, camera))
        x = np.linspace(0.0, 7.0, 701)
        env = apply_calibration(x, knots)
        assert np.all(env <= np.minimum(apply_calibration(x, ideal), apply_calibration(x, camera)) + 1e-5)
        # the camera fit is the lower one at the sharp end; from 1.5 px on the envelope is the ideal fit
        # but for a few hundredths of a px at the top of the range
        assert apply_calibration(0.3, knots) < apply_calibration(0.3, ideal) - 0.1
        mid = (x > 1.5) & (x < 5.5)
        assert np.allclose(apply_calibration(x[mid], knots), apply_calibration(x[mid], ideal), atol=1e-5)
        assert np.abs(env - apply_calibration(x, ideal))[x >= 5.5].max() < 0.05


def test_camera_calibration_reads_sharp_camera_patches_lower():
    """Sharp patches through a clean camera read lower than under the ideal-lens fit (measured 0.36
    against 0.44 px), 0.5 px reads about 0.5 px (0.49; 0.61 before), and 2 px is unchanged."""
    from fastdefocus.train.camera import CameraConfig
    info = load_model_info()
    cfg = CameraConfig(**CLEAN_CAMERA)
    sharp, sharp_before = (np.median(_camera_patches(i, 0.0, cfg)) for i in (info, _ideal_fit(info)))
    assert sharp < sharp_before - 0.05, (sharp, sharp_before)
    assert sharp < 0.42, sharp
    half = np.median(_camera_patches(info, 0.5, cfg))
    assert 0.35 < half < 0.6, half
    two, two_before = (np.median(_camera_patches(i, 2.0, cfg)) for i in (info, _ideal_fit(info)))
    assert np.isclose(two, two_before, atol=1e-5)
