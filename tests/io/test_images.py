"""Image files: EXIF orientation as cv2.imread applies it, HEIC through the optional extra,
output checks before the work, all-or-nothing writes."""
from __future__ import annotations

import importlib.util
import struct
import zlib

import cv2
import numpy as np
import pytest

from fastdefocus._validate import MissingExtraError
from fastdefocus.io import images
from fastdefocus.io.images import (check_output, check_output_folder, check_outputs, exif_orientation, read_image,
                                   write_files)


def _exif(orientation: int, order: str = ">") -> bytes:
    """An EXIF block (a TIFF structure) holding only the orientation tag, written by hand."""
    head = (b"MM\x00\x2a" if order == ">" else b"II\x2a\x00") + struct.pack(order + "I", 8)
    entry = struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return head + struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)


def _jpeg_with_orientation(image_bgr: np.ndarray, orientation: int, order: str = ">") -> bytes:
    """A JPEG with an APP1 Exif segment right after SOI, as cameras write it."""
    ok, buf = cv2.imencode(".jpg", image_bgr)
    assert ok
    payload = b"Exif\x00\x00" + _exif(orientation, order)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = buf.tobytes()
    return data[:2] + app1 + data[2:]


def _png_with_orientation(image_bgr: np.ndarray, orientation: int) -> bytes:
    """A PNG with an eXIf chunk after IHDR."""
    ok, buf = cv2.imencode(".png", image_bgr)
    assert ok
    data = buf.tobytes()
    body = _exif(orientation)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    return data[:33] + chunk + data[33:]  # signature (8) + IHDR (25)


@pytest.fixture(scope="module")
def landscape() -> np.ndarray:
    """A 300 x 400 BGR picture with a distinct corner, so every flip and turn is told apart."""
    img = np.zeros((300, 400, 3), np.uint8)
    img[:, :, 1] = np.linspace(0, 200, 400, dtype=np.uint8)[None, :]
    img[:60, :80] = (255, 40, 0)
    img[200:, 350:] = (0, 0, 255)
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_applied_as_cv2_imread(tmp_path, landscape, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(_jpeg_with_orientation(landscape, orientation, ">" if orientation % 2 else "<"))
    shown = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV applies the orientation here
    got = read_image(path)
    assert got.shape == shown.shape
    np.testing.assert_array_equal(got, shown[..., ::-1])
    assert exif_orientation(path.read_bytes()) == orientation


def test_rotated_phone_photo_gives_an_upright_map(tmp_path, landscape):
    """The issue's case: a JPEG marked "rotate 90" that cv2.imread shows as 400 x 300."""
    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_with_orientation(landscape, 6))
    assert cv2.imread(str(path)).shape[:2] == (400, 300)
    assert read_image(path).shape[:2] == (400, 300)
    from fastdefocus.cli.main import main
    assert main(["estimate", str(path), "-o", str(tmp_path / "out"), "-q", "--outputs", "sigma",
                 "--stride", "16"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "phone_sigma.tiff"), cv2.IMREAD_UNCHANGED).shape == (400, 300)


def test_png_exif_orientation(tmp_path, landscape):
    path = tmp_path / "o8.png"
    path.write_bytes(_png_with_orientation(landscape, 8))
    shown = cv2.imread(str(path), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(read_image(path), shown[..., ::-1])
    assert read_image(path).shape[:2] == (400, 300)
    # alpha (IMREAD_UNCHANGED) is kept and turned too
    rgba = np.dstack([landscape, np.full(landscape.shape[:2], 7, np.uint8)])
    path.write_bytes(_png_with_orientation(rgba, 6))
    got = read_image(path)
    assert got.shape == (400, 300, 4)
    np.testing.assert_array_equal(got[..., :3], cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])


def test_no_or_broken_exif_reads_as_stored(tmp_path, landscape):
    path = tmp_path / "plain.jpg"
    cv2.imwrite(str(path), landscape)
    assert read_image(path).shape == (300, 400, 3)
    assert exif_orientation(b"\xff\xd8\xff\xe1\x00\x08Exif\x00\x00") == 1  # truncated block
    assert exif_orientation(_jpeg_with_orientation(landscape, 9)) == 1  # out of range


_FAKE_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


def test_heic_without_the_extra_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_heif_available", lambda: False)
    monkeypatch.setitem(__import__("sys").modules, "pillow_heif", None)  # import pillow_heif fails
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(_FAKE_HEIC)
    with pytest.raises(MissingExtraError) as info:
        read_image(path)
    message = str(info.value)
    assert "pip install 'fastdefocus[heic]'" in message and "IMG_0001.HEIC" in message and "pillow-heif" in message
    assert isinstance(info.value, ImportError)
    from fastdefocus.cli.main import main
    assert main(["estimate", str(path), "-o", str(tmp_path / "out"), "-q"]) == 1  # one line, the others go on


@pytest.mark.skipif(importlib.util.find_spec("pillow_heif") is None, reason="pillow-heif (fastdefocus[heic]) "
                    "is not installed")
def test_heic_decodes_upright(tmp_path, landscape):
    import pillow_heif
    from PIL import Image
    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.heic"
    Image.fromarray(landscape[..., ::-1]).save(path, format="HEIF", exif=exif.tobytes(), quality=95)
    got = read_image(path)
    assert got.shape == (400, 300, 3) and got.dtype == np.uint8
    # turned a quarter clockwise: the stored top-left corner is now at the top right
    assert got[:40, -50:, 2].mean() > 200 and got[:40, -50:, 0].mean() < 60  # the blue corner (RGB)


# ------------------------------------------------------------------------ outputs


def test_check_output(tmp_path):
    with pytest.raises(ValueError, match="has no extension"):
        check_output(tmp_path / "out_noext")
    with pytest.raises(ValueError, match="extension '.xyz'"):
        check_output(tmp_path / "out.xyz")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_output(tmp_path, force=True)
    (tmp_path / "old.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--force"):
        check_output(tmp_path / "old.png")
    assert check_output(tmp_path / "old.png", force=True) == tmp_path / "old.png"
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        check_output(tmp_path / "file" / "out.png")
    with pytest.raises(NotADirectoryError, match=r"output folder .*file is a file, not a folder"):
        check_output_folder(tmp_path / "file")
    assert check_output(tmp_path / "new" / "deeper" / "out.png") == tmp_path / "new" / "deeper" / "out.png"
    with pytest.raises(ValueError, match="must end in one of .csv, .json"):
        check_output(tmp_path / "s.txt", extensions=(".csv", ".json"))
    with pytest.raises(ValueError, match="same name"):
        check_outputs([tmp_path / "a.png", tmp_path / "a.png"])
    assert not (tmp_path / "new").exists()  # checks make nothing


def test_write_files_all_or_nothing(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OSError):
        write_files({tmp_path / "a.png": b"first", tmp_path / "blocker" / "b.png": b"second"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]  # nothing written, no temporary file
    write_files({tmp_path / "a.bin": b"1", tmp_path / "sub" / "b.bin": b"2"})
    assert (tmp_path / "a.bin").read_bytes() == b"1" and (tmp_path / "sub" / "b.bin").read_bytes() == b"2"
    with pytest.raises(FileExistsError):
        write_files({tmp_path / "c.bin": b"3", tmp_path / "a.bin": b"4"})
    assert not (tmp_path / "c.bin").exists()
