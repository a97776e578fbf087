"""Reading and writing images for the command line: clear errors, atomic writes.

Readers apply the EXIF orientation as ``cv2.imread`` does (JPEG, PNG and WebP), so maps match
the image as it is displayed; HEIC / HEIF photos are read through the optional extra
``fastdefocus[heic]`` (pillow-heif). Outputs are checked before any work
(:func:`check_outputs`) and written all or nothing (:func:`write_files`).
"""
from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fastdefocus._validate import MAX_PIXELS, MissingExtraError, check_max_pixels, check_pixel_count

#: File signatures, to say what a file that OpenCV cannot decode looks like.
_SIGNATURES = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"), (0, b"BM", "BMP"), (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"), (4, b"ftypavif", "AVIF"),
    *((4, b"ftyp" + brand, "HEIC") for brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1",
                                                   b"msf1")),
    (4, b"ftyp", "video (MP4/MOV)"),
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


# ------------------------------------------------------------------ EXIF orientation

#: EXIF orientation tag (TIFF tag 274).
_ORIENTATION_TAG = 0x0112


def _tiff_orientation(tiff: bytes) -> int:
    """The orientation (1-8) in IFD0 of a TIFF structure (an EXIF block), 1 if absent or malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        if struct.unpack(order + "H", tiff[2:4])[0] != 42:
            return 1
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        count = struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]
        for k in range(count):
            entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == _ORIENTATION_TAG:
                value = struct.unpack(order + "H", entry[8:10])[0] if kind == 3 else \
                    struct.unpack(order + "I", entry[8:12])[0] if kind == 4 else 1
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _exif_block(buf: bytes, fmt: str | None) -> bytes | None:
    """The EXIF data (a TIFF structure) of a JPEG (APP1), PNG (eXIf) or WebP (EXIF chunk), or None."""
    if fmt == "JPEG":
        pos = 2
        while pos + 4 <= len(buf) and buf[pos] == 0xFF:
            marker = buf[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after it
                return None
            length = struct.unpack(">H", buf[pos + 2:pos + 4])[0]
            if marker == 0xE1 and buf[pos + 4:pos + 10] == b"Exif\x00\x00":
                return buf[pos + 10:pos + 2 + length]
            pos += 2 + length
    elif fmt == "PNG":
        pos = 8
        while pos + 8 <= len(buf):
            length, kind = struct.unpack(">I4s", buf[pos:pos + 8])
            if kind == b"eXIf":
                return buf[pos + 8:pos + 8 + length]
            if kind == b"IEND":
                return None
            pos += 12 + length
    elif fmt == "WebP":
        pos = 12
        while pos + 8 <= len(buf):
            kind, length = struct.unpack("<4sI", buf[pos:pos + 8])
            if kind == b"EXIF":
                block = buf[pos + 8:pos + 8 + length]
                return block[6:] if block.startswith(b"Exif\x00\x00") else block
            pos += 8 + length + (length & 1)
    return None


def exif_orientation(data, fmt: str | None = None) -> int:
    """The EXIF orientation (1 = as stored, 2-8 = flips and quarter turns) of an encoded image:
    JPEG, PNG or WebP bytes (the formats whose orientation ``cv2.imread`` applies); 1 when there
    is none."""
    buf = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    fmt = fmt if fmt is not None else sniff_format(buf[:16])
    block = _exif_block(buf, fmt)
    return 1 if block is None else _tiff_orientation(block)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded image (H, W[, C]) as EXIF ``orientation`` says, exactly as OpenCV's
    ``imread`` does (``ApplyExifOrientation``): 5-8 transpose, then 2-4 and 6-8 flip."""
    if orientation in (5, 6, 7, 8):
        image = np.swapaxes(image, 0, 1)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(orientation)
    if flip == 1:
        image = image[:, ::-1]
    elif flip == 0:
        image = image[::-1]
    elif flip == -1:
        image = image[::-1, ::-1]
    return np.ascontiguousarray(image) if orientation != 1 else image


def decode_image(data: np.ndarray, name: str = "image", max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode the bytes of an image file (uint8 array or bytes) as :func:`read_image` does: RGB,
    RGBA or gray, uint8 or uint16, turned upright by its EXIF orientation; the size is checked
    against ``max_pixels`` from the header before decoding. ``name`` goes into the messages."""
    if not isinstance(data, np.ndarray):
        data = np.frombuffer(bytes(data), np.uint8)
    max_pixels = check_max_pixels(max_pixels)
    if data.size == 0:
        raise ValueError(f"cannot decode {name}: the file is empty (0 bytes)")
    fmt = sniff_format(data[:16].tobytes())
    size = header_size(data, fmt)
    if size is not None:
        check_pixel_count(size[0], size[1], max_pixels, f"{fmt} image {name}", "read_image(path, max_pixels=...)")
    if fmt == "HEIC" and _heif_available():
        return _decode_heif(data, name, max_pixels)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # alpha and 16 bits kept; the orientation below
    if image is None and fmt == "HEIC":
        _decode_heif(data, name, max_pixels)  # raises MissingExtraError naming the extra
    if image is None:
        if fmt is None:
            what = f"not an image format OpenCV can read (starts with {data[:8].tobytes()!r})"
        elif fmt.startswith("video"):
            what = f"a {fmt} file, not an image (read videos with DefocusEstimator.stream(path))"
        else:
            what = f"a {fmt} file that OpenCV could not decode: truncated or corrupt"
        raise ValueError(f"cannot decode {name}: {what} ({data.size} bytes)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    if fmt in ("JPEG", "PNG", "WebP"):
        image = apply_orientation(image, exif_orientation(data, fmt))
    return image


def _heif_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("pillow_heif") is not None


def _decode_heif(data: np.ndarray, name: str, max_pixels) -> np.ndarray:
    """A HEIC / HEIF photo through pillow-heif (the optional extra ``fastdefocus[heic]``), upright."""
    try:
        import pillow_heif
        from PIL import Image, ImageOps
    except ImportError as e:
        raise MissingExtraError(f"{name}: reading HEIC / HEIF photos", "heic", "pillow-heif") from e
    import io
    pillow_heif.register_heif_opener()
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            width, height = im.size
            check_pixel_count(height, width, max_pixels, f"HEIC image {name}", "read_image(path, max_pixels=...)")
            im = ImageOps.exif_transpose(im)  # libheif applies the file's own rotation; EXIF, if any, here
            if im.mode not in ("RGB", "RGBA", "L", "LA"):
                im = im.convert("RGBA" if "A" in im.mode else "RGB")
            image = np.array(im)
    except (OSError, SyntaxError, RuntimeError) as e:
        raise ValueError(f"cannot decode {name}: a HEIC / HEIF file that pillow-heif could not decode: {e}") from e
    return image


def read_image(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an RGB, RGBA or gray NumPy array (uint8 or uint16).

    OpenCV decodes it (BGR converted to RGB); 16-bit PNG and TIFF stay uint16, alpha is
    kept, animated GIFs and multi-page TIFFs give their first frame. The EXIF orientation of
    JPEG, PNG and WebP files is applied as ``cv2.imread`` applies it (a phone photo marked
    "rotate 90" comes out upright), so maps match the image as displayed. HEIC / HEIF photos
    need the optional extra ``pip install 'fastdefocus[heic]'`` (pillow-heif); without it
    they raise :class:`fastdefocus._validate.MissingExtraError` (an ImportError) saying so.

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
    return decode_image(data, str(path), max_pixels)


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


def _stage(path: Path, data: bytes) -> str:
    """``data`` in a temporary file beside ``path`` (flushed, usual permissions); its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write bytes to ``path`` through a temporary file in the same folder, flushed to disk,
    and a rename, so an interrupted run never leaves a half-written file (and an existing file
    stays whole). Refuses to overwrite unless ``force``. The file gets the usual permissions
    (0666 less the umask), not the temporary file's 0600."""
    return write_files({path: data}, force=force)[0]


def write_files(files, force: bool = False) -> list:
    """Write several files all or nothing: every one is first written in full to a temporary
    file beside it (any failure there removes them all and writes nothing), then each is
    renamed into place. ``files``: a dict (or pairs) path -> bytes. Refuses to overwrite unless
    ``force``. Returns the paths."""
    items = [(Path(p), data) for p, data in (files.items() if isinstance(files, dict) else files)]
    existing = [str(p) for p, _ in items if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} exist{'s' if len(existing) == 1 else ''}; "
                              "pass --force (force=True) to overwrite")
    staged = []
    try:
        for path, data in items:
            staged.append((_stage(path, data), path))
        while staged:
            tmp, path = staged[0]
            os.replace(tmp, path)
            staged.pop(0)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [p for p, _ in items]


# --------------------------------------------------------------- output checks


def check_output_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, before any work, that files can be written into ``folder``: it is a writable
    folder, or does not exist yet and its nearest existing parent is one (it will be made).
    Raises NotADirectoryError or PermissionError naming ``folder``."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == folder else f"cannot be made: {probe} is a file"
        raise NotADirectoryError(f"{what} {folder} {where}, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        where = "is not writable" if probe == folder else f"cannot be made: {probe} is not writable"
        raise PermissionError(f"{what} {folder} {where}")
    return folder


def check_output(path: str | os.PathLike, force: bool = False, extensions=None, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written: an extension OpenCV writes images
    in (``cv2.haveImageWriter``; or one of ``extensions``, e.g. (".csv", ".json")), not a
    folder, a writable folder to go in (:func:`check_output_folder`), and not an existing file
    unless ``force``. Raises ValueError, IsADirectoryError, FileExistsError, NotADirectoryError
    or PermissionError (OSErrors) with a message naming the path."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder: give a file name, e.g. {path / 'out.png'}")
    suffix = path.suffix.lower()
    if extensions is None:
        if not suffix or not cv2.haveImageWriter(str(path)):
            kind = f"extension {path.suffix!r}" if suffix else "no extension"
            raise ValueError(f"{what} {path} has {kind}: use an image extension such as .png, .tif or .jpg")
    elif suffix not in extensions:
        kind = f"extension {path.suffix!r}" if suffix else "no extension"
        raise ValueError(f"{what} {path} has {kind}: it must end in one of {', '.join(extensions)}")
    check_output_folder(path.parent, f"the folder of {what}")
    if path.exists() and not force:
        raise FileExistsError(f"would overwrite {path}; pass --force to overwrite")
    return path


def check_outputs(paths, force: bool = False, extensions=None) -> list:
    """:func:`check_output` for several paths (None entries skipped), which must differ; the
    existing ones are named together."""
    paths = [Path(p) for p in paths if p is not None]
    resolved = [os.path.abspath(p) for p in paths]
    twins = sorted({str(p) for p, r in zip(paths, resolved) if resolved.count(r) > 1})
    if twins:
        raise ValueError(f"two outputs have the same name: {', '.join(twins)}")
    existing = [str(p) for p in paths if p.exists() and not p.is_dir()]
    for p in paths:
        check_output(p, force=True, extensions=extensions)
    if existing and not force:
        raise FileExistsError(f"would overwrite {', '.join(existing)}; pass --force to overwrite")
    return paths


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
