"""Reading and writing images for the command line: clear errors, atomic writes."""
from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fastdefocus._validate import MAX_PIXELS, check_max_pixels, check_pixel_count

#: File signatures, to say what a file that OpenCV cannot decode looks like.
_SIGNATURES = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"), (0, b"BM", "BMP"), (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"), (4, b"ftypavif", "AVIF"), (4, b"ftypheic", "HEIC"), (4, b"ftyp", "video (MP4/MOV)"),
    (0, b"\x1a\x45\xdf\xa3", "video (Matroska/WebM)"), (8, b"AVI ", "video (AVI)"),
]


def sniff_format(head: bytes) -> str | None:
    """The format a file's first bytes announce, or None."""
    for offset, magic, name in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


def header_size(data: np.ndarray, fmt: str | None) -> tuple[int, int] | None:
    """(height, width) from a PNG, GIF, BMP or JPEG header without decoding, or None if unknown."""
    head = data[:64].tobytes()
    if fmt == "PNG" and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return height, width
    if fmt == "GIF" and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return height, width
    if fmt == "BMP" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(height), abs(width)
    if fmt == "JPEG":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from the first start-of-frame segment of a JPEG."""
    buf = data.tobytes() if data.size <= 1 << 16 else data[:1 << 16].tobytes()  # SOF comes early
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", buf[pos + 2:pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(buf):
                return None
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            return height, width
        pos += 2 + length
    return None


def read_image(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an RGB, RGBA or gray NumPy array (uint8 or uint16).

    OpenCV decodes it (BGR converted to RGB); 16-bit PNG and TIFF stay uint16, alpha is
    kept, animated GIFs and multi-page TIFFs give their first frame.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError (OSError)
        If the path does not exist, is a folder or cannot be read.
    ValueError
        If the file is empty, not an image (e.g. a video or a text file), truncated or
        corrupt, or larger than ``max_pixels`` (checked from the PNG, JPEG, GIF or BMP
        header before decoding; None: no limit).
    """
    path = Path(path)
    max_pixels = check_max_pixels(max_pixels)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected an image file, got a directory: {path}")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise type(e)(e.errno, f"cannot read image file {path}: {e.strerror}") from e
    if data.size == 0:
        raise ValueError(f"cannot decode {path}: the file is empty (0 bytes)")
    fmt = sniff_format(data[:16].tobytes())
    size = header_size(data, fmt)
    if size is not None:
        check_pixel_count(size[0], size[1], max_pixels, f"{fmt} image {path}", "read_image(path, max_pixels=...)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        if fmt is None:
            what = f"not an image format OpenCV can read (starts with {data[:8].tobytes()!r})"
        elif fmt.startswith("video"):
            what = f"a {fmt} file, not an image (read videos with DefocusEstimator.stream(path))"
        else:
            what = f"a {fmt} file that OpenCV could not decode: truncated or corrupt"
        raise ValueError(f"cannot decode {path}: {what} ({data.size} bytes)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _umask() -> int:
    try:  # Linux: read it, since setting it to read it races with other threads creating files
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write bytes to ``path`` through a temporary file in the same folder, flushed to disk,
    and a rename, so an interrupted run never leaves a half-written file (and an existing file
    stays whole). Refuses to overwrite unless ``force``. The file gets the usual permissions
    (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def encode_image(image: np.ndarray, ext: str) -> bytes:
    """Encode an RGB(A)/gray array for a file extension such as '.png' or '.tif'."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.dtype} image of shape {image.shape} as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray, force: bool = False) -> Path:
    return write_atomic(path, encode_image(image, Path(path).suffix.lower()), force=force)


def write_npy(path: str | os.PathLike, array: np.ndarray, force: bool = False) -> Path:
    import io
    buf = io.BytesIO()
    np.save(buf, array)
    return write_atomic(path, buf.getvalue(), force=force)
