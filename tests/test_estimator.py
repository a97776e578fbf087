"""DefocusEstimator end to end on generated scenes with known sigma maps."""
import pickle

import numpy as np
import pytest

import fastdefocus
from fastdefocus.scenes import blur_by_map, dead_leaves


@pytest.fixture(scope="module")
def estimator():
    return fastdefocus.DefocusEstimator()


@pytest.fixture(scope="module")
def stripes_scene():
    """Dead leaves blurred by vertical stripes of constant sigma 0, 1, 2, 3, 4 px."""
    rng = np.random.default_rng(21)
    sharp = dead_leaves(rng, size=320)[:256, :320]
    sigmas = [0.0, 1.0, 2.0, 3.0, 4.0]
    truth = np.repeat(np.repeat(np.array(sigmas, np.float32)[None, :], 256, 0), 64, 1)
    return blur_by_map(sharp, truth), truth, sigmas


def test_constant_regions_are_right(estimator, stripes_scene):
    blurred, truth, sigmas = stripes_scene
    result = estimator.estimate(np.round(blurred * 255).astype(np.uint8))
    for i, s in enumerate(sigmas):
        region = result.sigma[16:-16, i * 64 + 16:(i + 1) * 64 - 16]
        assert abs(float(np.median(region)) - s) <= 0.4, (s, float(np.median(region)))


@pytest.mark.parametrize("make", [
    lambda rng: rng.integers(0, 256, (70, 90), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (70, 90, 1), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (70, 90, 3), dtype=np.uint8),
    lambda rng: rng.integers(0, 65536, (70, 90, 4), dtype=np.uint16),
    lambda rng: rng.uniform(0, 1, (70, 90)).astype(np.float32),
    lambda rng: rng.uniform(0, 1, (70, 90, 3)),
    lambda rng: np.asfortranarray(rng.uniform(0, 1, (70, 90))),
    lambda rng: rng.uniform(0, 1, (140, 180))[::2, ::2],
], ids=["gray8", "gray8x1", "rgb8", "rgba16", "f32", "rgb_f64", "fortran", "strided"])
def test_output_shape_and_dtype(estimator, make):
    image = make(np.random.default_rng(0))
    result = estimator.estimate(image)
    assert result.sigma.shape == (70, 90) and result.sigma.dtype == np.float32
    assert result.confidence.shape == (70, 90) and result.confidence.dtype == np.float32
    assert np.isfinite(result.sigma).all()
    assert result.sigma.min() >= 0 and result.sigma.max() <= result.sigma_max
    assert result.confidence.min() >= 0 and result.confidence.max() <= 1


def test_torch_tensor_input(estimator):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (3, 50, 60)).astype(np.float32)
    from_torch = estimator.estimate(torch.from_numpy(image))
    from_numpy = estimator.estimate(np.moveaxis(image, 0, -1))
    assert from_torch.sigma.shape == (50, 60)
    assert np.array_equal(from_torch.sigma, from_numpy.sigma)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (31, 33), (32, 32), (1, 200)])
def test_small_images_are_padded(estimator, shape):
    image = np.random.default_rng(2).uniform(0, 1, shape).astype(np.float32)
    result = estimator.estimate(image)
    assert result.sigma.shape == shape and np.isfinite(result.sigma).all()


def test_flat_image_has_low_confidence(estimator):
    result = estimator.estimate(np.full((96, 128), 0.5, np.float32))
    assert result.confidence.max() < 0.05


def test_deterministic(estimator, stripes_scene):
    image = np.round(stripes_scene[0] * 255).astype(np.uint8)
    a, b = estimator.estimate(image), estimator.estimate(image)
    assert np.array_equal(a.sigma, b.sigma) and np.array_equal(a.confidence, b.confidence)


def test_result_views(estimator, stripes_scene):
    result = estimator.estimate(stripes_scene[0].astype(np.float32))
    norm = result.normalized()
    assert norm.dtype == np.float32 and 0 <= norm.min() and norm.max() <= 1
    mask = result.in_focus(1.0)
    assert mask.dtype == bool and mask[:, :48].mean() > 0.8 and mask[:, -48:].mean() < 0.2
    picture = result.colorize()
    assert picture.shape == result.sigma.shape + (3,) and picture.dtype == np.uint8
    sharp_score = result.sharpness()
    assert 0 < sharp_score <= 1
    blurred_all = estimator.estimate(blur_by_map(stripes_scene[0], np.full(stripes_scene[1].shape, 3.0)))
    assert blurred_all.sharpness() < sharp_score


def test_prefilter_sigma_arithmetic(stripes_scene):
    """With a pre-filter sigma0 the estimate stays in the input's units: sqrt(s^2 - sigma0^2)."""
    blurred, truth, sigmas = stripes_scene
    est = fastdefocus.DefocusEstimator(sigma0=1.0)
    result = est.estimate(np.round(blurred * 255).astype(np.uint8))
    for i, s in enumerate(sigmas):
        if s >= 2:
            region = result.sigma[16:-16, i * 64 + 16:(i + 1) * 64 - 16]
            # the pre-filter adds blur (4 px reads as sqrt(17) = 4.12 to the classifier), where
            # the model under-reads (docs/MODEL.md: -0.06 px at 4.4, -0.38 px at 5.1): 0.6 px there
            tolerance = 0.5 if s < 4 else 0.6
            assert abs(float(np.median(region)) - s) <= tolerance, (s, float(np.median(region)))


def test_one_call_convenience(stripes_scene):
    a = fastdefocus.estimate(stripes_scene[0].astype(np.float32), stride=16)
    b = fastdefocus.DefocusEstimator(stride=16).estimate(stripes_scene[0].astype(np.float32))
    assert np.array_equal(a.sigma, b.sigma)


def test_stream_in_order_and_same_size(estimator, stripes_scene):
    frames = [np.round(stripes_scene[0] * 255).astype(np.uint8), np.zeros((256, 320), np.uint8)]
    results = list(estimator.stream(frames))
    assert len(results) == 2
    assert np.array_equal(results[0].sigma, estimator.estimate(frames[0]).sigma)
    with pytest.raises(ValueError, match="same size"):
        list(estimator.stream([frames[0], frames[0][:100]]))


@pytest.mark.parametrize("image, error, match", [
    (np.zeros((0, 10)), ValueError, "zero height or width"),
    (np.zeros((10, 0, 3)), ValueError, "zero height or width"),
    (np.zeros((10, 10), bool), TypeError, "dtype"),
    (np.zeros((10, 10), complex), TypeError, "dtype"),
    (np.full((10, 10), np.nan), ValueError, "NaN"),
    (np.full((10, 10), 2.0), ValueError, r"expected \[0, 1\]"),
    (np.zeros((10, 10, 5)), ValueError, "channels"),
    (np.zeros((2, 10, 10, 3)), ValueError, "2-D"),
    ("not an image", TypeError, "NumPy array"),
])
def test_bad_images(estimator, image, error, match):
    with pytest.raises(error, match=match):
        estimator.estimate(image)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"stride": 0}, ValueError, "stride"),
    ({"stride": 3}, ValueError, "stride must be one of"),
    ({"stride": -8}, ValueError, "stride"),
    ({"stride": 8.5}, TypeError, "stride must be an int"),
    ({"radius": 0}, ValueError, "radius"),
    ({"eps": 0}, ValueError, "eps"),
    ({"iterations": -1}, ValueError, "iterations"),
    ({"sigma0": -1}, ValueError, "sigma0"),
    ({"device": "tpu"}, ValueError, "device"),
    ({"backend": "magic"}, ValueError, "backend"),
])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastdefocus.DefocusEstimator(**kwargs)


def test_convenience_cache_is_bounded():
    from fastdefocus import estimator as module
    image = np.random.default_rng(0).uniform(0, 1, (40, 40)).astype(np.float32)
    for sigma0 in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        fastdefocus.estimate(image, sigma0=sigma0)
    assert len(module._ESTIMATORS) <= module._ESTIMATOR_CACHE_SIZE


def test_truncated_video_is_an_error(tmp_path):
    import cv2
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    est = fastdefocus.DefocusEstimator(stride=16)
    assert len(list(est.stream(path))) == 12
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    # a cut file either cannot be opened, has no frames, or ends early with a warning
    try:
        with pytest.warns(RuntimeWarning, match="truncated or corrupt"):
            frames = list(est.stream(path))
        assert len(frames) < 12
    except ValueError as e:
        assert "cannot open video" in str(e) or "no readable frames" in str(e)


def test_thin_image_limit_counts_padding():
    est = fastdefocus.DefocusEstimator(max_pixels=32 * 500)
    est.estimate(np.zeros((32, 400), np.uint8))  # 12,800 pixels: fine
    with pytest.raises(ValueError, match="padded to the 32-px patch"):
        est.estimate(np.zeros((1, 1000), np.uint8))  # 1,000 pixels, but 32 x 1000 once padded


def test_blurred_side_of_a_focus_boundary(monkeypatch):
    """A blurred disc in a sharp scene, splat rules alone (no guided filter, iterations 0):
    within 8 px of its edge, the estimate stays close (measured 0.685 px MAE with the
    20-epoch weights; 0.766 with the default single guided-filter pass, 0.815 with the
    former 3 passes and no cell match) and the soft-max splat with the nine-window
    agreement and the cell match lifts the blurred side (mean error -1.12 px) above the
    plain mean with four-quadrant agreement and no match, which straddling patches pull
    towards sharp."""
    import fastdefocus.stages.pipeline as pipeline
    import fastdefocus.stages.splat as splat_module
    from fastdefocus.metrics.defocus import boundary_mask, textured_mask

    sharp = dead_leaves(np.random.default_rng(0), size=256)
    yy, xx = np.mgrid[:256, :256]
    truth = np.where((yy - 128) ** 2 + (xx - 128) ** 2 <= 80 ** 2, 2.5, 0.0).astype(np.float32)
    blurred = blur_by_map(sharp, truth)
    near = boundary_mask(truth) & textured_mask(sharp)
    estimator = fastdefocus.DefocusEstimator(iterations=0)
    err = estimator.estimate(blurred).sigma - truth
    assert np.abs(err[near]).mean() < 0.72
    bias = err[near & (truth > 0)].mean()
    # the same splat rules in the NumPy pipeline (the native one's reference), then without them
    assert abs(float((pipeline.estimate_numpy(estimator, blurred)[0] - truth)[near & (truth > 0)].mean()) - bias) < 1e-4
    monkeypatch.setattr(pipeline, "SPLAT_LIFT", 0.0)
    monkeypatch.setattr(splat_module, "AGREEMENT_TAU", np.log(1.25))
    no_match = splat_module.splat
    monkeypatch.setattr(pipeline, "splat", lambda *a, sharpness=None, **k: no_match(*a, **k))
    plain = (pipeline.estimate_numpy(estimator, blurred)[0] - truth)[near & (truth > 0)].mean()
    assert bias > plain + 0.04, (bias, plain)


def test_stream_smoothing_and_prefetch(estimator, stripes_scene):
    img = stripes_scene[0] if isinstance(stripes_scene, tuple) else stripes_scene
    frames = [img, img[:, ::-1].copy(), img]
    single = [estimator.estimate(f).sigma for f in frames]
    smoothed = [r.sigma for r in estimator.stream(iter(frames), smoothing=0.25, prefetch=1)]
    np.testing.assert_array_equal(smoothed[0], single[0])
    np.testing.assert_allclose(smoothed[1], 0.25 * single[0] + 0.75 * single[1], atol=1e-6)
    np.testing.assert_allclose(smoothed[2], 0.25 * smoothed[1] + 0.75 * single[2], atol=1e-6)
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        next(estimator.stream(iter(frames), smoothing=1.0))
    with pytest.raises(ValueError, match="prefetch must be an int >= 1"):
        next(estimator.stream(iter(frames), prefetch=0))


def test_stream_reader_errors_reach_the_caller_in_order(estimator, stripes_scene):
    img = stripes_scene[0] if isinstance(stripes_scene, tuple) else stripes_scene

    def frames():
        yield img
        raise OSError("camera unplugged")

    it = estimator.stream(frames(), prefetch=2)
    assert next(it).sigma.shape == img.shape[:2]
    with pytest.raises(OSError, match="camera unplugged"):
        next(it)


# ------------------------------------------------- channel order, threads, streams, summary


def test_bgr_input_gives_the_same_map(estimator, leaves_rgb):
    bgr = np.ascontiguousarray(leaves_rgb[..., ::-1])  # what cv2.imread gives
    want = estimator.estimate(leaves_rgb)
    for got in (estimator.estimate(bgr, channel_order="bgr"), estimator(bgr, channel_order="BGR"),
                fastdefocus.estimate(bgr, channel_order="bgr")):
        np.testing.assert_array_equal(got.sigma, want.sigma)
        np.testing.assert_array_equal(got.confidence, want.confidence)
    rgba = np.dstack([leaves_rgb, np.full(leaves_rgb.shape[:2], 255, np.uint8)])
    bgra = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(estimator.estimate(bgra, channel_order="bgr").sigma, want.sigma)
    assert not np.array_equal(estimator.estimate(bgr).sigma, want.sigma)  # the order matters
    streamed = list(estimator.stream([bgr, bgr], channel_order="bgr"))
    np.testing.assert_array_equal(streamed[1].sigma, want.sigma)


@pytest.mark.parametrize("make", [
    lambda rgb: rgb,  # uint8 RGB: handed to the native ingest as it is
    lambda rgb: np.asfortranarray(rgb),  # any layout
    lambda rgb: np.concatenate([rgb, rgb], axis=1)[:, :rgb.shape[1]],  # a strided view
    lambda rgb: rgb.astype(np.uint16) * 257,  # uint16: the same values
    lambda rgb: (rgb.astype(np.uint16) * 257).astype(">u2"),  # big-endian: NumPy's luminance
    lambda rgb: rgb.astype(np.float32) / np.float32(255),  # float32 in [0, 1]
    lambda rgb: rgb.astype(np.float64) / 255,  # float64: NumPy's luminance
    lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]),  # RGBA: alpha ignored
    lambda rgb: pickle.loads(pickle.dumps(rgb)),  # an equal but distinct dtype object
    lambda rgb: np.frombuffer(b"\0" + (rgb.astype(np.uint16) * 257).tobytes(), np.uint16,
                              offset=1).reshape(rgb.shape),  # misaligned
])
def test_native_ingest_matches_the_numpy_luminance(estimator, leaves_rgb, make):
    """uint8 / uint16 / float32 frames go to the native pipeline as they are, other dtypes as
    their NumPy luminance: the same map either way (the native luminance is bit for bit)."""
    from fastdefocus.stages.ingest import to_luminance

    image = make(leaves_rgb)
    want = estimator.estimate(to_luminance(image))  # float32 (H, W): the luminance itself
    got = estimator.estimate(image)
    np.testing.assert_array_equal(got.sigma, want.sigma)
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(next(iter(estimator.stream([image]))).sigma, want.sigma)


@pytest.mark.parametrize("value", ["rbg", "", None, 1, "RGBA"])
def test_bad_channel_order(estimator, leaves_rgb, value):
    for call in (lambda: estimator.estimate(leaves_rgb, channel_order=value),
                 lambda: fastdefocus.estimate(leaves_rgb, channel_order=value),
                 lambda: estimator.stream([leaves_rgb], channel_order=value)):
        with pytest.raises(ValueError, match=r"channel_order must be 'rgb' or 'bgr'"):
            call()


def test_threads_option():
    est = fastdefocus.DefocusEstimator(threads=1, device="cpu")
    assert est.threads == 1 and est.config.threads == 1
    assert est.classifier._session.get_session_options().intra_op_num_threads == 1
    assert fastdefocus.DefocusEstimator(device="cpu").config.threads == 0
    with pytest.raises(ValueError, match="threads must be an int >= 0, got -1"):
        fastdefocus.DefocusEstimator(threads=-1)
    with pytest.raises(TypeError, match="threads must be an int"):
        fastdefocus.DefocusEstimator(threads=1.5)


def test_one_estimator_shared_by_two_threads(leaves_rgb):
    """The concurrency contract: two threads x three calls on one estimator give the serial maps."""
    import threading
    est = fastdefocus.DefocusEstimator(device="cpu", stride=16)
    images = [np.ascontiguousarray(np.roll(leaves_rgb, 17 * k, axis=k % 2)) for k in range(6)]
    serial = [est.estimate(im).sigma for im in images]
    got = [None] * 6
    errors = []
    start = threading.Barrier(2)

    def work(ids):
        try:
            start.wait()
            for i in ids:
                got[i] = est.estimate(images[i]).sigma
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(ids,)) for ids in ((0, 2, 4), (1, 3, 5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for want, have in zip(serial, got):
        np.testing.assert_array_equal(have, want)


def test_stream_max_frames_and_with_frames(estimator, leaves_rgb):
    frames = [np.ascontiguousarray(np.roll(leaves_rgb, 8 * k, axis=1)) for k in range(5)]
    read = []

    def source():
        for f in frames:
            read.append(1)
            yield f
    pairs = list(estimator.stream(source(), with_frames=True, max_frames=3, prefetch=1))
    assert len(pairs) == 3 and len(read) <= 4  # no frame beyond the limit is estimated (at most one read)
    for k, (frame, result) in enumerate(pairs):
        assert frame is frames[k]
        np.testing.assert_array_equal(result.sigma, estimator.estimate(frames[k]).sigma)
    assert len(list(estimator.stream(frames, max_frames=10))) == 5
    with pytest.raises(ValueError, match="max_frames must be an int >= 1, got 0"):
        estimator.stream(frames, max_frames=0)
    with pytest.raises(TypeError, match="with_frames must be a bool"):
        estimator.stream(frames, with_frames="yes")


def test_stream_video_with_frames(tmp_path, estimator):
    import cv2
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(4):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    pairs = list(estimator.stream(path, with_frames=True, max_frames=2, channel_order="bgr"))
    assert len(pairs) == 2
    frame, result = pairs[0]
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and result.sigma.shape == (48, 64)
    np.testing.assert_array_equal(result.sigma, estimator.estimate(frame).sigma)  # decoded RGB, order ignored


def test_result_summary(estimator, stripes_scene):
    from fastdefocus.result import DefocusResult, SUMMARY_KEYS
    sigma = np.array([[0.0, 0.5, 1.0, 2.0], [3.0, 4.0, 1.0, 0.2]], np.float32)
    row = DefocusResult(sigma=sigma, confidence=np.ones_like(sigma), sigma_max=8.0).summary()
    assert tuple(row) == SUMMARY_KEYS
    assert row["height"] == 2 and row["width"] == 4
    assert row["median_sigma"] == pytest.approx(1.0)
    assert row["p10_sigma"] == pytest.approx(np.percentile(sigma, 10))
    assert row["p90_sigma"] == pytest.approx(np.percentile(sigma, 90))
    assert row["in_focus_fraction"] == pytest.approx(5 / 8)  # sigma <= 1 px
    assert 0 < row["sharpness"] <= 1 and all(type(v) in (int, float) for v in row.values())


def test_torch_backend_without_torch_says_how_to_get_it(monkeypatch):
    import sys
    from fastdefocus._validate import MissingExtraError
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
    with pytest.raises(MissingExtraError, match=r"pip install 'fastdefocus\[torch\]'"):
        fastdefocus.DefocusEstimator(device="cpu", backend="torch")
