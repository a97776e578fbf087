"""The training data generator: deterministic, labels match the blur applied."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdefocus.blur import DEFAULT_LEVELS, gaussian_blur, level_bins  # noqa: E402
from fastdefocus.stages.filters import extract_patches  # noqa: E402
from fastdefocus.scenes import dead_leaves  # noqa: E402
from fastdefocus.train.camera import CameraConfig  # noqa: E402
from fastdefocus.train.training import (GeneratorConfig, make_patch, normalize_batch, random_dihedral,  # noqa: E402
                                  soft_targets)


@pytest.fixture(scope="module")
def source():
    return dead_leaves(np.random.default_rng(3), size=128)


@pytest.fixture(scope="module")
def sources():
    """A colour source at the training scale and at twice it (the downscale path)."""
    return (dead_leaves(np.random.default_rng(3), size=128, colour=True),
            dead_leaves(np.random.default_rng(4), size=256, colour=True))


GENERATORS = {"ideal": GeneratorConfig(), "camera": GeneratorConfig(camera=CameraConfig())}


def _source_for(name, source, sources):
    return source if name == "ideal" else sources


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_is_deterministic(source, sources, name):
    cfg, bins = GENERATORS[name], level_bins(DEFAULT_LEVELS)
    src = _source_for(name, source, sources)
    a = [make_patch(src, k, cfg, bins, np.random.default_rng(11)) for k in (0, 7, 19)]
    b = [make_patch(src, k, cfg, bins, np.random.default_rng(11)) for k in (0, 7, 19)]
    for (pa, sa, ka, ta), (pb, sb, kb, tb) in zip(a, b):
        assert np.array_equal(pa, pb) and sa == sb and ka == kb and ta == tb


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("level", [0, 1, 5, 10, 19])
def test_label_matches_blur(source, sources, name, level):
    cfg, bins = GENERATORS[name], level_bins(DEFAULT_LEVELS)
    rng = np.random.default_rng(level)
    for _ in range(20):
        patch, sigma, kind, texture = make_patch(_source_for(name, source, sources), level, cfg, bins, rng)
        assert patch.shape == (32, 32) and patch.dtype == np.uint8
        assert bins[level] <= sigma < bins[level + 1]
        assert int(np.digitize(sigma, bins) - 1) == level
        assert kind in range(len(cfg.kind_names))


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


def test_calibration_is_monotone_and_handles_few_samples():
    from fastdefocus.blur import DEFAULT_LEVELS
    from fastdefocus.train.training import fit_calibration
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0, 6, 400)
    raw = 0.3 + 0.8 * sigma + rng.normal(0, 0.3, 400)  # compressed and shifted, as a mean is
    knots = fit_calibration(raw, sigma, DEFAULT_LEVELS)
    assert np.all(np.diff(knots[:, 0]) > 0) and np.all(np.diff(knots[:, 1]) > 0)
    calibrated = np.interp(raw, knots[:, 0], knots[:, 1])
    assert np.abs(calibrated - sigma).mean() < np.abs(raw - sigma).mean()
    few = fit_calibration(raw[:20], sigma[:20], DEFAULT_LEVELS)  # fewer than 48 bins' worth
    assert np.isfinite(few).all()
    with pytest.raises(ValueError, match="calibration needs at least 16"):
        fit_calibration(raw[:5], sigma[:5], DEFAULT_LEVELS)


def test_train_resume_with_new_schedule_and_export(tmp_path, monkeypatch):
    """The whole training command on a tiny generated data folder: generate, train one
    epoch, resume to two with another batch size (the schedule follows), export weights
    that the estimator loads (checksums included)."""
    import cv2
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from fastdefocus import DefocusEstimator
    from fastdefocus.train.training import TrainConfig, finalize, generate_dataset, train

    photos = tmp_path / "data" / "train" / "photos"
    photos.mkdir(parents=True)
    for i in range(4):  # sharp "photos" made here (never ../shared)
        img = dead_leaves(np.random.default_rng(100 + i), 320)  # 80 px once downscaled: the largest crop fits
        cv2.imwrite(str(photos / f"p{i}.png"), (img * 255).astype(np.uint8))
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(tmp_path / "data"))
    cache, run, weights = tmp_path / "cache", tmp_path / "run", tmp_path / "weights"
    logs = []
    generate_dataset(cache, n_train=512, n_val=256, seed=1, workers=1, log=logs.append)
    cfg = TrainConfig(epochs=1, batch_size=64, width_mult=0.25, threads=1)
    train(cache, run, cfg, log=logs.append)
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    assert first["epoch"] == 1 and "torch_rng" in first
    train(cache, run, TrainConfig(epochs=2, batch_size=32, width_mult=0.25, threads=1), log=logs.append)
    assert any("schedule changed from 1 epochs of batch 64 to 2 of 32" in m for m in logs)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2
    finalize(cache, run, weights, log=logs.append)
    est = DefocusEstimator(weights=weights, stride=16)
    result = est.estimate(np.random.default_rng(0).random((48, 64)).astype(np.float32))
    assert result.sigma.shape == (48, 64) and np.isfinite(result.sigma).all()


def test_distilled_strided_network_trains_exports_and_loads(tmp_path, monkeypatch):
    """`fastdefocus train --arch StridedCNN --teacher WEIGHTS`: the teacher's probabilities are
    computed once (reused on resume), the exported model names its network, the estimator builds
    it for torch and runs its ONNX graph, and the card says it was distilled."""
    import cv2
    import shutil
    pytest.importorskip("onnx")
    from fastdefocus import DefocusEstimator
    from fastdefocus.stages.classify import MODEL_DIRS
    from fastdefocus.train.training import TrainConfig, finalize, generate_dataset, train

    photos = tmp_path / "data" / "train" / "photos"
    photos.mkdir(parents=True)
    for i in range(4):
        img = dead_leaves(np.random.default_rng(200 + i), 320)
        cv2.imwrite(str(photos / f"p{i}.png"), (img * 255).astype(np.uint8))
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(tmp_path / "data"))
    cache, run, weights, docs = tmp_path / "cache", tmp_path / "run", tmp_path / "weights", tmp_path / "docs"
    logs = []
    generate_dataset(cache, n_train=256, n_val=128, seed=2, workers=1, log=logs.append)
    cfg = TrainConfig(epochs=1, batch_size=64, threads=1, arch="StridedCNN", layers=((8, 2), (16, 2), (16, 2)),
                      teacher=str(MODEL_DIRS["default"]), distill=0.5)
    train(cache, run, cfg, log=logs.append)
    soft = np.load(run / "teacher_probs.npy")
    assert soft.shape == (256, 20) and np.allclose(soft.astype(np.float32).sum(1), 1.0, atol=5e-3)
    assert sum("probabilities of 256 patches" in m for m in logs) == 1
    train(cache, run, TrainConfig(**{**cfg.__dict__, "epochs": 2}), log=logs.append)
    assert sum("probabilities of 256 patches" in m for m in logs) == 1  # reused, not recomputed
    key = json.loads((run / "teacher_probs.json").read_text())
    assert key["patches"] == 256 and key["teacher_onnx_sha256"] == \
        json.loads((MODEL_DIRS["default"] / "blur_classifier.json").read_text())["files"]["onnx"]["sha256"]
    key["teacher_onnx_sha256"] = "another teacher"
    (run / "teacher_probs.json").write_text(json.dumps(key))
    train(cache, run, TrainConfig(**{**cfg.__dict__, "epochs": 2}), log=logs.append)
    assert sum("probabilities of 256 patches" in m for m in logs) == 2  # not this teacher's: made again
    meta = finalize(cache, run, weights, docs, log=logs.append)
    assert meta["architecture"] == {"name": "StridedCNN", "layers": [[8, 2], [16, 2], [16, 2]], "stem_kernel": 3,
                                    "head_channels": 0, "num_classes": 20}
    card = (docs / "MODEL.md").read_text()
    assert "StridedCNN" in card and "Distilled from the model in" in card
    img = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    a = DefocusEstimator(weights=weights, stride=16, backend="onnxruntime").estimate(img)
    b = DefocusEstimator(weights=weights, stride=16, backend="torch").estimate(img)
    assert np.isfinite(a.sigma).all()
    np.testing.assert_allclose(a.sigma, b.sigma, atol=1e-3)
    # a teacher of other levels is refused before any training
    other = tmp_path / "other_teacher"
    shutil.copytree(MODEL_DIRS["default"], other)
    m = json.loads((other / "blur_classifier.json").read_text())
    m["levels"] = m["levels"][:-1] + [7.0]
    (other / "blur_classifier.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="the teacher .* has the levels .* must be the same"):
        train(cache, tmp_path / "run2", TrainConfig(**{**cfg.__dict__, "teacher": str(other)}), log=logs.append)
    with pytest.raises(ValueError, match=r"distill \(--distill\) must be in \(0, 1\], got 0"):
        train(cache, tmp_path / "run3", TrainConfig(**{**cfg.__dict__, "distill": 0.0}), log=logs.append)


def test_training_loss_mixes_labels_and_teacher_by_distill():
    """The distillation term is the cross-entropy with the teacher's probabilities, weighted by
    ``distill``: with distill 1 the labels no longer count, and a teacher that agrees with the
    network's own softmax gives the smallest loss for those logits' direction."""
    import torch.nn.functional as F
    from fastdefocus.train.training import TrainConfig, training_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 20, generator=g)
    pos = torch.rand(8, generator=g) * 19
    teacher = torch.softmax(torch.randn(8, 20, generator=g), dim=1)
    labels = training_loss(logits, pos, TrainConfig())
    ce = -(teacher * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(training_loss(logits, pos, TrainConfig(distill=1.0), teacher), ce)
    half = training_loss(logits, pos, TrainConfig(distill=0.5), teacher)
    assert torch.allclose(half, 0.5 * labels + 0.5 * ce)
    assert not torch.allclose(half, labels)
    # other labels change the label part only
    assert torch.allclose(training_loss(logits, (pos + 3) % 19, TrainConfig(distill=1.0), teacher), ce)


def test_resume_refuses_another_network_or_teacher(tmp_path):
    from fastdefocus.train.training import TrainConfig, check_resume

    ckpt = tmp_path / "checkpoint.pt"
    saved = TrainConfig(arch="StridedCNN", teacher="w", distill=0.5).__dict__
    check_resume(saved, TrainConfig(arch="StridedCNN", teacher="w", distill=0.5, epochs=30), ckpt)  # epochs may change
    with pytest.raises(ValueError, match="teacher 'w' -> ''"):
        check_resume(saved, TrainConfig(arch="StridedCNN"), ckpt)
    with pytest.raises(ValueError, match="distill 0.5 -> 0.9"):
        check_resume(saved, TrainConfig(arch="StridedCNN", teacher="w", distill=0.9), ckpt)
    with pytest.raises(ValueError, match="arch 'StridedCNN' -> 'MobileNetV2'.*give a new --run folder"):
        check_resume(saved, TrainConfig(teacher="w"), ckpt)
    with pytest.raises(ValueError, match="layers"):
        check_resume(saved, TrainConfig(arch="StridedCNN", teacher="w", layers=((8, 2), (16, 2))), ckpt)
    # a checkpoint from before networks could be chosen: a MobileNetV2 on labels alone
    old = {k: v for k, v in TrainConfig(width_mult=0.5).__dict__.items()
           if k not in ("arch", "layers", "stem_kernel", "head_channels", "teacher", "distill")}
    check_resume(old, TrainConfig(width_mult=0.5), ckpt)
    with pytest.raises(ValueError, match="width_mult 0.5 -> 0.25"):
        check_resume(old, TrainConfig(width_mult=0.25), ckpt)


def test_supersampled_dead_leaves_integrate_their_pixels():
    """Rendered 4x finer and area-averaged: edges integrated over each pixel instead of
    point-sampled, so about half the gradient energy (0.022-0.025 against 0.037-0.052 for
    seeds 0-3 at 96 px)."""
    energy = lambda im: float((np.diff(im, axis=1) ** 2).mean())  # noqa: E731
    for seed in range(3):
        point = dead_leaves(np.random.default_rng(seed), size=96)
        integrated = dead_leaves(np.random.default_rng(seed), size=96, supersample=4)
        assert integrated.shape == point.shape and integrated.dtype == np.float32
        assert 0.0 <= integrated.min() and integrated.max() <= 1.0
        assert energy(integrated) < 0.75 * energy(point)
    np.testing.assert_array_equal(integrated, dead_leaves(np.random.default_rng(2), size=96, supersample=4))
    with pytest.raises(ValueError, match="supersample must be an integer >= 1"):
        dead_leaves(np.random.default_rng(5), size=32, supersample=0)


def test_generator_needs_photos_that_hold_the_largest_crop(tmp_path, monkeypatch):
    import cv2
    from fastdefocus.train.training import generate_dataset
    photos = tmp_path / "data" / "train" / "photos"
    photos.mkdir(parents=True)
    for i in range(2):  # 40 px once downscaled by 4: smaller than the top level's crop
        cv2.imwrite(str(photos / f"small{i}.png"), np.full((160, 160), 128, np.uint8))
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(tmp_path / "data"))
    logs = []
    with pytest.raises(ValueError, match="needs at least 2 photos of at least 312 px"):
        generate_dataset(tmp_path / "cache", n_train=16, n_val=16, workers=1, log=logs.append)
    assert any("small0.png" in m and "not used" in m for m in logs)


def test_camera_dataset_and_its_model_card_lines(tmp_path, monkeypatch):
    """`fastdefocus train --camera`: the summary records the camera model and the model card
    describes it; the ideal generator's card keeps its own description."""
    import cv2
    import dataclasses
    from fastdefocus.train.training import _blur_and_camera_text, generate_dataset

    photos = tmp_path / "data" / "train" / "photos"
    photos.mkdir(parents=True)
    for i in range(3):
        img = dead_leaves(np.random.default_rng(300 + i), 320, colour=True)
        cv2.imwrite(str(photos / f"p{i}.png"), (img * 255).astype(np.uint8))
    monkeypatch.setenv("FASTDEFOCUS_DATA", str(tmp_path / "data"))
    summary = generate_dataset(tmp_path / "cache", n_train=48, n_val=32, seed=2, workers=1, log=lambda m: None,
                               camera=True)
    # as the cache's summary.json holds it (lists), so a cache made with another config is not reused
    assert summary["camera"] == json.loads(json.dumps(dataclasses.asdict(CameraConfig())))
    assert json.loads((tmp_path / "cache" / "summary.json").read_text())["camera"] == summary["camera"]
    assert list(summary["kinds"]) == ["gaussian", "disc", "soft_disc", "rim_disc", "cat_eye", "astigmatic"]
    patches = np.load(tmp_path / "cache" / "train_patches.npy")
    assert patches.shape == (48, 32, 32) and patches.std() > 0
    text = _blur_and_camera_text(summary)
    assert "Bayer RGGB mosaic" in text and "linear" in text
    ideal = _blur_and_camera_text({"kinds": {"gaussian": 0.6, "disc": 0.2, "mixed": 0.2}, "camera": None,
                                   "noise_stds": [0.0, 0.01], "jpeg_prob": 0.5})
    assert "Bayer" not in ideal and "mixed = Gaussian then disc" in ideal


def test_epoch_order_mixes_a_second_cache_at_the_same_cost():
    from fastdefocus.train.training import epoch_order
    # without a mixed cache: the permutation training always drew
    assert np.array_equal(epoch_order(100, 0, 0.5, 3, 2), np.random.default_rng([3, 2]).permutation(100))
    order = epoch_order(100, 80, 0.3, 3, 2)
    assert len(order) == 100 and len(np.unique(order)) == 100  # the main cache's size, no repeats
    assert (order >= 100).sum() == 30 and order.max() < 180  # 30% from the mixed cache
    assert not np.array_equal(order, epoch_order(100, 80, 0.3, 3, 3))  # another draw each epoch
    assert (epoch_order(100, 10, 0.5, 3, 2) >= 100).sum() == 10  # a small mixed cache: all of it
