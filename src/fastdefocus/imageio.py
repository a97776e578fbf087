"""Reading and writing images for the command line: clear errors, atomic writes."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB/RGBA/gray NumPy array (uint8 or uint16), OpenCV's BGR converted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected an image file, got a directory: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode {path}: not an image format OpenCV can read, or the file is "
                         f"truncated or corrupt ({data.size} bytes)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def write_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write bytes to ``path`` through a temporary file in the same folder and a rename,
    so an interrupted run never leaves a half-written file. Refuses to overwrite unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
