"""Bad input at every public boundary, bad files, atomic outputs, model files.

Each bad input must give a ValueError or TypeError (OSError subclasses for files)
whose message names the argument, what was expected and what arrived; odd but
valid inputs (1 x 1, strided, read-only, 16-bit, RGBA) must work.
"""
import os
import re
import resource
import shutil
import struct
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

import fastdefocus
from fastdefocus.io import images as imageio
from fastdefocus.stages.classify import ModelFileError, load_model_info
from fastdefocus.cli.main import main
from fastdefocus.estimator import default_max_pixels
from fastdefocus.io.images import read_image, write_atomic
from fastdefocus._validate import MAX_PIXELS, check_image

SRC = Path(fastdefocus.__file__).resolve().parent


@pytest.fixture(scope="module")
def est():
    return fastdefocus.DefocusEstimator(stride=16)


def _readonly(arr):
    arr.setflags(write=False)
    return arr


def _rand(shape, dtype=np.float32):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0, 1, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


# ----------------------------------------------------------------------------- images

BAD_IMAGES = [
    ("none", lambda: None, TypeError, "image must be a NumPy array or a torch tensor .* got NoneType"),
    ("string", lambda: "photo.png", TypeError, "image must be a NumPy array or a torch tensor .* got str"),
    ("path", lambda: Path("photo.png"), TypeError, "got PosixPath|got WindowsPath"),
    ("ragged list", lambda: [[0.1, 0.2], [0.3]], ValueError, "image could not be read as an array"),
    ("0-D", lambda: np.array(0.5), ValueError, r"image must be 2-D \(H, W\) or 3-D \(H, W, C\), got 0-D shape \(\)"),
    ("1-D", lambda: np.zeros(10), ValueError, r"got 1-D shape \(10,\)"),
    ("4-D batch", lambda: np.zeros((2, 10, 10, 3)), ValueError, r"got 4-D shape \(2, 10, 10, 3\)"),
    ("0 x 0", lambda: np.zeros((0, 0)), ValueError, r"image has zero height or width \(shape \(0, 0\)\)"),
    ("0 rows", lambda: np.zeros((0, 10)), ValueError,
     r"zero height or width \(shape \(0, 10\)\): expected at least 1 x 1"),
    ("0 columns RGB", lambda: np.zeros((10, 0, 3), np.uint8), ValueError,
     r"zero height or width \(shape \(10, 0, 3\)\)"),
    ("0 channels", lambda: np.zeros((10, 10, 0)), ValueError, r"channels in the last axis, got 0"),
    ("5 channels", lambda: np.zeros((10, 10, 5)), ValueError,
     r"1 \(gray\), 2 \(gray \+ alpha\), 3 \(RGB\) or 4 \(RGBA\) channels in the last axis, got 5"),
    ("channel-first numpy", lambda: np.zeros((3, 40, 50)), ValueError,
     r"got 50 \(shape \(3, 40, 50\)\) \(NumPy images are channel-last"),
    ("bool", lambda: np.zeros((10, 10), bool), TypeError, "image must have dtype uint8, uint16 or float .* got bool"),
    ("complex", lambda: np.zeros((10, 10), complex), TypeError, "got complex128"),
    ("object", lambda: np.array([[0.5, None]], dtype=object), TypeError, "got object"),
    ("strings", lambda: np.array([["a", "b"]]), TypeError, "got <U1"),
    ("datetime", lambda: np.zeros((4, 4), "datetime64[s]"), TypeError, r"got datetime64\[s\]"),
    ("NaN", lambda: np.full((10, 10), np.nan), ValueError,
     "image contains 100 NaN or infinite values: expected finite values in \\[0, 1\\]"),
    ("one NaN", lambda: np.pad(np.full((1, 1), np.nan, np.float32), ((0, 9), (0, 9))), ValueError, "contains 1 NaN"),
    ("+inf", lambda: np.full((4, 4), np.inf, np.float32), ValueError, "16 NaN or infinite"),
    ("-inf float16", lambda: np.full((4, 4), -np.inf, np.float16), ValueError, "16 NaN or infinite"),
    ("float 0-255", lambda: np.full((10, 10), 255.0), ValueError,
     r"image is float with values in \[255, 255\]: expected \[0, 1\] \(pass uint8"),
    ("float negative", lambda: np.full((10, 10), -0.5, np.float32), ValueError,
     r"values in \[-0.5, -0.5\]: expected \[0, 1\]"),
    ("int8 negative", lambda: np.full((10, 10), -1, np.int8), ValueError,
     r"integer dtype int8 with values in \[-1, -1\]: expected 0-255"),
    ("int32 above 255", lambda: np.full((10, 10), 300, np.int32), ValueError,
     r"int32 with values in \[300, 300\]: expected 0-255 \(or dtype uint16"),
    ("uint32 16-bit data", lambda: np.full((4, 4), 65535, np.uint32), ValueError,
     r"uint32 with values in \[65535, 65535\]"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in BAD_IMAGES], ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_are_refused_clearly(est, make, error, match):
    with pytest.raises(error, match=match):
        est.estimate(make())


def test_bad_torch_tensors(est):
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="got bool"):
        est.estimate(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="got complex64"):
        est.estimate(torch.zeros(4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="contains 16 NaN"):
        est.estimate(torch.full((4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"got 5 \(shape \(10, 10, 5\)\)"):
        est.estimate(torch.zeros(5, 10, 10).permute(1, 2, 0).contiguous())  # HWC, 5 channels
    with pytest.raises(TypeError, match="dense torch tensor"):
        est.estimate(torch.zeros(4, 4).to_sparse())


ODD_BUT_VALID = [
    ("1x1 gray", lambda: np.full((1, 1), 0.5, np.float32), (1, 1)),
    ("1x1 RGB uint8", lambda: np.zeros((1, 1, 3), np.uint8), (1, 1)),
    ("1 row", lambda: _rand((1, 77)), (1, 77)),
    ("1 column", lambda: _rand((77, 1)), (77, 1)),
    ("smaller than a patch", lambda: _rand((31, 17, 3), np.uint8), (31, 17)),
    ("one patch", lambda: _rand((32, 32)), (32, 32)),
    ("gray + alpha", lambda: _rand((20, 30, 2), np.uint8), (20, 30)),
    ("strided view", lambda: _rand((80, 120))[::2, ::3], (40, 40)),
    ("negative strides", lambda: _rand((40, 50, 3))[::-1, ::-1], (40, 50)),
    ("BGR->RGB channel view", lambda: _rand((40, 50, 3), np.uint8)[..., ::-1], (40, 50)),
    ("transposed", lambda: _rand((50, 40)).T, (40, 50)),
    ("Fortran order", lambda: np.asfortranarray(_rand((40, 50, 3))), (40, 50)),
    ("read-only", lambda: _readonly(_rand((40, 50))), (40, 50)),
    ("read-only broadcast", lambda: np.broadcast_to(np.uint8(128), (40, 50)), (40, 50)),
    ("big-endian uint16", lambda: _rand((40, 50), np.uint16).astype(">u2"), (40, 50)),
    ("big-endian float64", lambda: _rand((40, 50), np.float64).astype(">f8"), (40, 50)),
    ("float16", lambda: _rand((40, 50), np.float16), (40, 50)),
    ("int64 0-255", lambda: _rand((40, 50), np.uint8).astype(np.int64), (40, 50)),
    ("float rounding overshoot", lambda: np.full((40, 50), 1.0005), (40, 50)),
    ("nested list", lambda: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], (2, 3)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in ODD_BUT_VALID], ids=[c[0] for c in ODD_BUT_VALID])
def test_odd_but_valid_images_work(est, make, shape):
    result = est.estimate(make())
    assert result.sigma.shape == shape and result.sigma.dtype == np.float32
    assert result.confidence.shape == shape and result.confidence.dtype == np.float32
    assert np.isfinite(result.sigma).all() and 0 <= result.sigma.min() and result.sigma.max() <= result.sigma_max
    assert 0 <= result.confidence.min() and result.confidence.max() <= 1


def test_layout_does_not_change_the_result(est):
    image = _rand((48, 64, 3), np.uint8)
    expected = est.estimate(image).sigma
    assert np.array_equal(est.estimate(np.asfortranarray(image)).sigma, expected)
    assert np.array_equal(est.estimate(_readonly(image.copy())).sigma, expected)
    bgr = np.ascontiguousarray(image[..., ::-1])
    assert np.array_equal(est.estimate(bgr[..., ::-1]).sigma, expected)
    sixteen = image.astype(np.uint16) * 257  # the same picture on a 16-bit scale
    assert np.allclose(est.estimate(sixteen.astype(">u2")).sigma, est.estimate(sixteen).sigma)


def test_read_only_memmap(est, tmp_path):
    path = tmp_path / "frame.raw"
    _rand((40, 50), np.uint8).tofile(path)
    image = np.memmap(path, dtype=np.uint8, mode="r", shape=(40, 50))
    assert est.estimate(image).sigma.shape == (40, 50)


def test_torch_channel_first_layout(est):
    torch = pytest.importorskip("torch")
    hwc = _rand((40, 3, 3))  # H=40, W=3, C=3
    chw = np.ascontiguousarray(np.moveaxis(hwc, -1, 0))  # (3, 40, 3): torch's (C, H, W)
    assert np.array_equal(est.estimate(torch.from_numpy(chw)).sigma, est.estimate(hwc).sigma)
    assert est.estimate(torch.from_numpy(_rand((2, 40, 50)))).sigma.shape == (40, 50)  # gray + alpha
    assert est.estimate(torch.from_numpy(_rand((40, 50, 3)))).sigma.shape == (40, 50)  # (H, W, C) too
    half = torch.from_numpy(_rand((40, 50))).to(torch.bfloat16)
    assert est.estimate(half).sigma.shape == (40, 50)
    assert est.estimate(torch.from_numpy(_rand((40, 50))).requires_grad_()).sigma.shape == (40, 50)


# ---------------------------------------------------------------------------- options

BAD_OPTIONS = [
    ({"stride": 0}, ValueError, "stride must be an int >= 1, got 0"),
    ({"stride": -8}, ValueError, "stride must be an int >= 1, got -8"),
    ({"stride": 3}, ValueError, r"stride must be one of \[1, 2, 4, 8, 16, 32\], got 3"),
    ({"stride": 64}, ValueError, "stride must be one of"),
    ({"stride": 8.5}, TypeError, r"stride must be an int >= 1, got 8.5 \(type float\)"),
    ({"stride": 8.0}, TypeError, r"stride must be an int >= 1, got 8.0"),
    ({"stride": "8"}, TypeError, r"stride must be an int >= 1, got '8' \(type str\)"),
    ({"stride": True}, TypeError, "stride must be an int >= 1, got True"),
    ({"stride": None}, TypeError, "stride must be an int >= 1, got None"),
    ({"radius": 0}, ValueError, "radius must be a finite number >= 1, got 0.0"),
    ({"radius": -4}, ValueError, "radius must be a finite number >= 1, got -4.0"),
    ({"radius": 0.5}, ValueError, "radius must be a finite number >= 1, got 0.5"),
    ({"radius": "16"}, TypeError, "radius must be a real number >= 1, got '16'"),
    ({"radius": float("nan")}, ValueError, "radius must be a finite number >= 1, got nan"),
    ({"radius": float("inf")}, ValueError, "radius must be a finite number >= 1, got inf"),
    ({"eps": 0}, ValueError, "eps must be a finite number > 0, got 0.0"),
    ({"eps": -1e-3}, ValueError, "eps must be a finite number > 0"),
    ({"sigma0": -1}, ValueError, "sigma0 must be a finite number >= 0, got -1.0"),
    ({"iterations": -1}, ValueError, "iterations must be an int >= 0, got -1"),
    ({"snap": -1}, ValueError, "snap must be an int >= 0, got -1"),
    ({"snap": 2.5}, TypeError, "snap must be an int"),
    ({"iterations": 2.5}, TypeError, "iterations must be an int"),
    ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
    ({"max_pixels": 0}, ValueError, "max_pixels must be an integer >= 1 or None, got 0"),
    ({"max_pixels": -5}, ValueError, "max_pixels must be an integer >= 1 or None, got -5"),
    ({"max_pixels": 1.5e6}, TypeError, r"max_pixels must be an integer >= 1 or None, got 1500000.0 \(type float\)"),
    ({"max_pixels": "big"}, ValueError, "max_pixels must be 'auto', None or an integer >= 1, got 'big'"),
    ({"device": "tpu"}, ValueError, "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ({"backend": "magic"}, ValueError, "backend must be one of auto, onnxruntime, onnxruntime-int8, torch, "
                                      "tensorrt, compile, eager, cpu, got 'magic'"),
    ({"weights": "/nonexistent/model"}, ModelFileError, "model metadata not found: /nonexistent/model"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_OPTIONS, ids=[str(k) for k, _, _ in BAD_OPTIONS])
def test_bad_options_are_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastdefocus.DefocusEstimator(**kwargs)


def test_integer_like_options_work():
    est = fastdefocus.DefocusEstimator(stride=np.int64(16), radius=np.float32(8), iterations=np.int8(1))
    assert est.stride == 16 and est.radius == 8.0 and est.iterations == 1
    assert est.estimate(_rand((20, 20))).sigma.shape == (20, 20)


# ---------------------------------------------------------------------- huge images

HUGE = (16384, 16384)


def test_default_pixel_limits():
    assert MAX_PIXELS == 8192 * 8192
    assert default_max_pixels(32, 8) == 8192 * 8192
    assert default_max_pixels(32, 1) == 2_064_888  # patches dominate: 4 KiB per pixel
    assert default_max_pixels(32, 32) > default_max_pixels(32, 16) > default_max_pixels(32, 8)
    assert fastdefocus.DefocusEstimator(stride=4).max_pixels == default_max_pixels(32, 4)
    assert fastdefocus.DefocusEstimator(max_pixels=None).max_pixels is None


@pytest.mark.parametrize("make", [
    lambda: np.broadcast_to(np.uint8(0), HUGE),
    lambda: np.broadcast_to(np.float32(0.5), HUGE + (3,)),  # a NaN scan would allocate 768 MB
    lambda: np.lib.stride_tricks.as_strided(np.zeros(1, np.uint16), shape=HUGE + (4,), strides=(0, 0, 0)),
], ids=["uint8", "float32 RGB", "uint16 RGBA"])
def test_huge_image_refused_before_allocating(est, make):
    image = make()
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"image is 16384 x 16384 = 268435456 pixels \(268.4 Mpx\), more than "
                                             r"the limit of \d+ pixels .*\(DefocusEstimator\(max_pixels=...\)\)"):
            est.estimate(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated before refusing"


def test_huge_torch_tensor_refused_before_conversion(est):
    torch = pytest.importorskip("torch")
    fake = torch.zeros((), dtype=torch.bfloat16).expand(3, *HUGE)  # float32 copy would be 3 GiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r"16384 x 16384 = 268435456 pixels \(268.4 Mpx\)"):
        est.estimate(fake)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_pixel_limit_is_configurable():
    small = fastdefocus.DefocusEstimator(stride=16, max_pixels=100)
    assert small.estimate(_rand((10, 10))).sigma.shape == (10, 10)
    with pytest.raises(ValueError, match=r"image is 11 x 10 = 110 pixels \(0.0 Mpx\), more than the limit "
                                         r"of 100 pixels \(0.0 Mpx\)"):
        small.estimate(_rand((10, 11)))
    with pytest.raises(ValueError, match="frame 1 is 11 x 10"):
        list(small.stream([_rand((10, 10)), _rand((10, 11))]))
    with pytest.raises(ValueError, match="more than the limit of 100 pixels"):
        check_image(np.zeros((10, 11)), max_pixels=100)


# ------------------------------------------------------------------------------ streams

class CountingEstimator(fastdefocus.DefocusEstimator):
    calls = 0

    def _estimate_cpu(self, image, channel_order, cache=None, **kwargs):  # what estimate and stream call
        self.calls += 1
        return super()._estimate_cpu(image, channel_order, cache, **kwargs)


def test_stream_refuses_a_size_change_before_estimating_it():
    est = CountingEstimator(stride=16)
    frames = [_rand((48, 64)), _rand((48, 64)), _rand((40, 64))]
    results = []
    with pytest.raises(ValueError, match=r"frame 2 has size \(40, 64\), but the stream started with \(48, 64\): "
                                         "all frames of a stream must have the same size"):
        for result in est.stream(iter(frames)):
            results.append(result)
    assert len(results) == 2 and est.calls == 2  # the bad frame was never estimated


def test_stream_compares_torch_frames_by_image_size(est):
    torch = pytest.importorskip("torch")
    rgb = _rand((48, 64, 3))
    chw = torch.from_numpy(np.ascontiguousarray(np.moveaxis(rgb, -1, 0)))
    results = list(est.stream([chw, rgb, rgb[..., 0]]))  # (3, 48, 64), (48, 64, 3), (48, 64): one size
    assert [r.shape for r in results] == [(48, 64)] * 3
    assert np.array_equal(results[0].sigma, results[1].sigma)
    with pytest.raises(ValueError, match=r"frame 1 has size \(64, 48\)"):
        list(est.stream([chw, chw.transpose(1, 2)]))


def test_stream_frame_errors_name_the_frame(est):
    bad = _rand((48, 64))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="frame 1 contains 1 NaN or infinite values"):
        list(est.stream([_rand((48, 64)), bad]))
    with pytest.raises(TypeError, match="frame 0 must have dtype"):
        list(est.stream([np.zeros((4, 4), bool)]))
    with pytest.raises(TypeError, match="frames must be an iterable of images or a video path, got int"):
        list(est.stream(5))


def test_stream_bad_videos(est, tmp_path):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(ValueError, match="cannot open video .*noise.mp4: not a video file OpenCV can read"):
        list(est.stream(noise))
    with pytest.raises(FileNotFoundError, match="video not found"):
        list(est.stream(tmp_path / "missing.mp4"))
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    assert len(list(est.stream(clip))) == 5
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(clip.read_bytes()[:clip.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot open video .*truncated.avi"):
        list(est.stream(truncated))


# -------------------------------------------------------------------------- reading files

def _png(image):
    return cv2.imencode(".png", image)[1].tobytes()


def gif_bytes(frames):
    """A minimal animated GIF89a of (H, W) frames of palette indices 0..3 (OpenCV cannot write GIFs).
    The LZW stream sends a clear code before every two pixels, so codes stay 3 bits wide."""
    h, w = frames[0].shape
    palette = bytes([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255])
    out = bytearray(b"GIF89a" + struct.pack("<HH", w, h) + bytes([0xF1, 0, 0]) + palette)
    out += b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for frame in frames:
        out += b"\x21\xF9\x04\x00\x0A\x00\x00\x00"  # 0.1 s per frame
        out += b"\x2C" + struct.pack("<HHHH", 0, 0, w, h) + b"\x00"
        codes = []
        pixels = [int(v) for v in frame.ravel()]
        for i in range(0, len(pixels), 2):
            codes += [4] + pixels[i:i + 2]
        codes.append(5)
        bits = nbits = 0
        data = bytearray()
        for code in codes:
            bits |= code << nbits
            nbits += 3
            while nbits >= 8:
                data.append(bits & 0xFF)
                bits >>= 8
                nbits -= 8
        if nbits:
            data.append(bits & 0xFF)
        out += b"\x02"
        for i in range(0, len(data), 255):
            out += bytes([len(data[i:i + 255])]) + data[i:i + 255]
        out += b"\x00"
    return bytes(out + b"\x3B")


@pytest.fixture
def picture():
    return _rand((40, 50, 3), np.uint8)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found: .*missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError, match="expected an image file, got a directory"):
        read_image(tmp_path)
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "link.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot decode .*empty.png: the file is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_permission_denied(tmp_path, picture):
    path = tmp_path / "secret.png"
    path.write_bytes(_png(picture))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file (root)")
        with pytest.raises(PermissionError, match="cannot read image file .*secret.png: Permission denied"):
            read_image(path)
    finally:
        path.chmod(0o600)


BAD_FILES = [
    ("text.png", lambda png, jpg: b"this is not an image",
     r"not an image format OpenCV can read \(starts with b'this is "),
    ("noise.mp4", lambda png, jpg: np.random.default_rng(1).bytes(5000), "not an image format OpenCV can read"),
    ("half.png", lambda png, jpg: png[:len(png) // 2], "a PNG file that OpenCV could not decode: truncated or corrupt"),
    ("header_only.png", lambda png, jpg: png[:33], "a PNG file that OpenCV could not decode"),
    ("no_end.png", lambda png, jpg: png[:-12], "a PNG file that OpenCV could not decode"),
    ("corrupt.png", lambda png, jpg: png[:60] + bytes(200) + png[260:], "a PNG file that OpenCV could not decode"),
    ("half.jpg", lambda png, jpg: jpg[:len(jpg) // 3], "a JPEG file that OpenCV could not decode"),
    ("movie.png", lambda png, jpg: b"\x00\x00\x00\x18ftypmp42" + bytes(100), r"a video \(MP4/MOV\) file, not an image"),
]


@pytest.mark.parametrize("name, make, match", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_image_files(tmp_path, picture, name, make, match):
    path = tmp_path / name
    path.write_bytes(make(_png(picture), cv2.imencode(".jpg", picture)[1].tobytes()))
    with pytest.raises(ValueError, match=f"cannot decode .*{re.escape(name)}: {match}"):
        read_image(path)


def test_sixteen_bit_and_alpha_pngs(tmp_path, picture):
    gray16 = _rand((30, 40), np.uint16)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    assert np.array_equal(read_image(tmp_path / "gray16.png"), gray16)
    rgba = np.dstack([picture, _rand((40, 50), np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgba)  # RGBA order, alpha kept
    rgba16 = _rand((30, 40, 4), np.uint16)
    cv2.imwrite(str(tmp_path / "rgba16.png"), cv2.cvtColor(rgba16, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "rgba16.png"), rgba16)
    est = fastdefocus.DefocusEstimator(stride=16)
    for name in ("gray16.png", "rgba.png", "rgba16.png"):
        assert est.estimate(read_image(tmp_path / name)).sigma.shape == read_image(tmp_path / name).shape[:2]
    # alpha is ignored: the RGBA picture estimates like its RGB part
    assert np.array_equal(est.estimate(rgba).sigma, est.estimate(picture).sigma)


def test_animated_gif_gives_its_first_frame(tmp_path):
    first = (np.arange(12).reshape(3, 4) % 4).astype(np.uint8)
    path = tmp_path / "anim.gif"
    path.write_bytes(gif_bytes([first, 3 - first]))
    try:
        image = read_image(path)
    except ValueError as e:  # OpenCV before 4.11 has no GIF decoder
        assert "a GIF file that OpenCV could not decode" in str(e)
        return
    assert image.shape == (3, 4, 3)
    assert np.array_equal(image[..., 0], first * 85)


@pytest.mark.parametrize("name, header", [
    ("huge.png", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                 + struct.pack(">IIBBBBB", 16384, 16384, 8, 0, 0, 0, 0)),
    ("huge.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                 + b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 16384, 16384) + b"\x03" + bytes(9)),
    ("huge.gif", b"GIF89a" + struct.pack("<HH", 16384, 16384) + b"\xf1\x00\x00"),
    ("huge.bmp", b"BM" + bytes(16) + struct.pack("<ii", 16384, -16384)),
], ids=["png", "jpeg", "gif", "bmp"])
def test_huge_image_file_refused_before_decoding(tmp_path, monkeypatch, name, header):
    path = tmp_path / name
    path.write_bytes(header + bytes(64))

    def no_decode(*args):
        raise AssertionError("decoded a file whose header is over the limit")
    monkeypatch.setattr(imageio.cv2, "imdecode", no_decode)
    with pytest.raises(ValueError, match=f"image .*{name} is 16384 x 16384 = 268435456 pixels "
                                         r".*\(read_image\(path, max_pixels=...\)\)"):
        read_image(path)


# -------------------------------------------------------------------------- writing files

def test_write_atomic_never_overwrites_without_force(tmp_path):
    path = tmp_path / "map.png"
    write_atomic(path, b"first")
    with pytest.raises(FileExistsError, match="map.png exists; pass --force"):
        write_atomic(path, b"second")
    assert path.read_bytes() == b"first"
    write_atomic(path, b"second", force=True)
    assert path.read_bytes() == b"second"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _FailingFile:
    """A file that writes half of what it is given, then is interrupted."""

    def __init__(self, f, error):
        self.f, self.error = f, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        raise self.error

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")],
                         ids=["interrupted", "disk full"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch, error, existing):
    path = tmp_path / "map.tiff"
    if existing:
        path.write_bytes(b"old map")
    real_fdopen = os.fdopen
    monkeypatch.setattr(imageio.os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode), error))
    with pytest.raises(type(error)):
        write_atomic(path, b"x" * 100_000, force=True)
    assert [p.name for p in tmp_path.iterdir()] == (["map.tiff"] if existing else [])
    if existing:
        assert path.read_bytes() == b"old map"


def test_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def no_rename(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(imageio.os, "replace", no_rename)
    with pytest.raises(PermissionError):
        write_atomic(tmp_path / "map.png", b"data")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- CLI

@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), _rand((48, 64, 3), np.uint8))
    return path


def test_cli_does_not_overwrite_without_force(tmp_path, photo, capsys):
    out = tmp_path / "out"
    assert main(["estimate", str(photo), "-o", str(out), "-q", "--stride", "16"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 4
    (out / "photo_sigma_color.png").unlink()  # one output missing, three present: still refused
    assert main(["estimate", str(photo), "-o", str(out), "-q", "--stride", "16"]) == 2
    err = capsys.readouterr().err
    assert "would overwrite" in err and "photo_sigma.tiff" in err and "pass --force" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {k: v for k, v in before.items()
                                                              if k != "photo_sigma_color.png"}
    assert main(["estimate", str(photo), "-o", str(out), "-q", "--stride", "16", "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_cli_bad_files_among_good_ones(tmp_path, photo, capsys):
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "half.png").write_bytes(photo.read_bytes()[:200])
    cv2.imwrite(str(tmp_path / "deep.png"), _rand((40, 50), np.uint16))
    cv2.imwrite(str(tmp_path / "alpha.png"), _rand((40, 50, 4), np.uint8))
    names = [str(tmp_path / n) for n in ("text.png", "half.png", "deep.png", "alpha.png", "missing.png")]
    out = tmp_path / "out"
    assert main(["estimate", *names, "-o", str(out), "-q", "--stride", "16"]) == 1
    err = capsys.readouterr().err
    assert "text.png: cannot decode" in err and "not an image format" in err
    assert "half.png: cannot decode" in err and "a PNG file that OpenCV could not decode" in err
    assert "missing.png: image not found" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}_{kind}" for stem in ("deep", "alpha")
        for kind in ("sigma.tiff", "sigma16.png", "sigma_color.png", "side_by_side.png"))


def test_cli_interrupted_run_leaves_no_partial_output(tmp_path, photo, monkeypatch, capsys):
    real_fdopen = os.fdopen
    opened = []

    def fdopen(fd, mode):
        opened.append(fd)
        f = real_fdopen(fd, mode)
        return _FailingFile(f, KeyboardInterrupt()) if len(opened) == 2 else f
    monkeypatch.setattr(imageio.os, "fdopen", fdopen)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", str(photo), "-o", str(out), "-q", "--stride", "16"])
    assert exit_info.value.code == 130 and "interrupted" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == []  # an image's files are written all or nothing; no .tmp


@pytest.mark.parametrize("argv, match", [
    (["--stride", "3"], r"error: stride must be one of \[1, 2, 4, 8, 16, 32\], got 3"),
    (["--stride", "0"], "error: stride must be an int >= 1, got 0"),
    (["--sigma0", "-1"], "error: sigma0 must be a finite number >= 0, got -1.0"),
    (["--sigma0", "nan"], "error: sigma0 must be a finite number >= 0, got nan"),
])
def test_cli_bad_options(tmp_path, photo, capsys, argv, match):
    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", str(photo), "-o", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_cli_output_folder_is_a_file(tmp_path, photo, capsys):
    (tmp_path / "out").write_text("a file, not a folder")
    assert main(["estimate", str(photo), "-o", str(tmp_path / "out"), "-q", "--stride", "16"]) == 2
    err = capsys.readouterr().err  # the output folder is to blame, not the input, and before any work
    assert f"output folder {tmp_path / 'out'} is a file, not a folder" in err and "photo.png" not in err


# ------------------------------------------------------------------------- model files

def test_tampered_safetensors_is_refused(tmp_path):
    # (the tampered ONNX graph is tested in test_classifier.py)
    info = load_model_info()
    for path in info.onnx_path.parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    data = bytearray(info.safetensors_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / info.safetensors_path.name).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"\.safetensors does not match its checksum .*reinstall"):
        fastdefocus.DefocusEstimator(weights=tmp_path)


def test_no_pickle_is_loaded_from_files():
    sources = list(SRC.rglob("*.py")) + list((SRC.parent.parent / "benchmarks").glob("*.py"))
    assert len(sources) > 10
    for path in sources:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib|cloudpickle)\b", text, re.M), path
        assert "allow_pickle=True" not in text, path
        for call in re.findall(r"torch\.load\((.*?)\)\n", text, re.S):
            assert "weights_only=True" in call, f"{path}: torch.load({call})"
    assert not list(SRC.rglob("*.pt")) + list(SRC.rglob("*.pth")) + list(SRC.rglob("*.pkl"))
