"""What a batch works on: its inputs expanded into units, each an image or a run of a video's frames.

Inputs are image files, folders (walked recursively, files picked by extension), videos, and
text files of paths (``.txt`` / ``.lst``, one a line; blank lines and lines starting with ``#``
are skipped; relative paths are relative to the list's folder). A path with a scheme
(``s3://``, ``gs://``, ``hdfs://``, ``file://``) goes through :func:`pyarrow.fs.FileSystem.from_uri`
with whatever credentials the user has configured for it; local paths are read directly.

Only the standard library at import time: pyarrow and OpenCV are imported when needed.
"""
from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass

#: Extensions of the files a folder gives (case-insensitive).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".dib", ".webp",
                              ".jp2", ".pbm", ".pgm", ".ppm", ".pnm", ".gif", ".heic", ".heif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                              ".flv", ".3gp", ".ts", ".mts", ".m2ts"})
LIST_EXTENSIONS = frozenset({".txt", ".lst"})
#: Frames of a local video per unit: a long video is split so that several workers share it
#: and an interrupted batch redoes at most this many frames of it. Remote videos are one unit
#: (each unit would download the whole file).
VIDEO_SEGMENT_FRAMES = 256


@dataclass(frozen=True)
class Unit:
    """One piece of work: an image (``start`` 0, ``stop`` 1), or the frames ``start`` to
    ``stop`` (exclusive; -1: to the end) of a video, every ``every``-th of them from frame 0.
    ``size`` and ``mtime_ns`` identify the file's version (-1 when it cannot be stat'ed: the
    unit then becomes a row with the error). ``expected``: rows it should give (progress)."""
    path: str
    kind: str  # "image" or "video"
    start: int
    stop: int
    size: int
    mtime_ns: int
    expected: int

    @property
    def ident(self) -> tuple:
        return (self.path, self.start, self.size, self.mtime_ns)

    def as_dict(self) -> dict:
        return asdict(self)


def is_uri(path: str) -> bool:
    """True for a path with a scheme (``s3://bucket/key``), read through pyarrow's filesystems."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isalnum() and len(head) > 1  # not a Windows drive letter


_FILESYSTEMS: dict = {}
_FILESYSTEMS_LOCK = threading.Lock()


def filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) of a URI. The filesystem of each scheme://host is
    made once per process: making one may cost a request (an S3 bucket's region)."""
    from pyarrow.fs import FileSystem
    scheme, _, rest = uri.partition("://")
    host, _, inner = rest.partition("/")
    inner = inner.rstrip("/")
    root_key = f"{scheme}://{host}"
    with _FILESYSTEMS_LOCK:
        cached = _FILESYSTEMS.get(root_key)
    if cached is not None and inner:
        fs, root = cached  # root: the host's path in the filesystem ("bucket/" for s3, "/" for file)
        return fs, root + inner
    fs, inside = FileSystem.from_uri(uri)
    if inner and inside.rstrip("/").endswith("/" + inner):
        with _FILESYSTEMS_LOCK:
            _FILESYSTEMS[root_key] = (fs, inside.rstrip("/")[:-len(inner)])
    return fs, inside


def read_bytes(path: str) -> bytes:
    """The bytes of a local file or a URI."""
    if is_uri(path):
        fs, inside = filesystem(path)
        with fs.open_input_stream(inside) as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def _kind(path: str) -> str:
    return "video" if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else "image"


def _wanted(name: str) -> bool:
    ext = os.path.splitext(name)[1].lower()
    return (ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS) and not name.startswith(".")


def _walk_local(folder: str, exclude: str | None) -> list:
    """(path, size, mtime_ns) of the images and videos under a folder, sorted; hidden files and
    folders, and the batch's own output folder, are skipped."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or os.path.abspath(os.path.join(root, d)) != exclude))
        for name in sorted(files):
            if _wanted(name):
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                    found.append((path, st.st_size, st.st_mtime_ns))
                except OSError:
                    found.append((path, -1, -1))
    return found


def _walk_uri(uri: str) -> list | None:
    """(uri, size, mtime_ns) of the images and videos under a URI folder; None if it is a file."""
    from pyarrow.fs import FileSelector, FileType
    fs, inside = filesystem(uri)
    info = fs.get_file_info(inside)
    if info.type != FileType.Directory:
        return None
    scheme = uri.partition("://")[0]
    prefix = uri.rstrip("/")
    base = inside.rstrip("/")
    found = []
    for item in fs.get_file_info(FileSelector(inside, recursive=True)):
        rel = item.path[len(base):].lstrip("/") if item.path.startswith(base) else None
        if item.type != FileType.File or rel is None or any(p.startswith(".") for p in rel.split("/")):
            continue
        if _wanted(item.base_name):
            mtime = item.mtime_ns if item.mtime_ns is not None else -1
            found.append((f"{prefix}/{rel}" if rel else f"{scheme}://{item.path}", item.size, mtime))
    return sorted(found)


def _stat(path: str) -> tuple:
    if is_uri(path):
        from pyarrow.fs import FileType
        try:
            fs, inside = filesystem(path)
            info = fs.get_file_info(inside)
        except (OSError, ValueError):
            return -1, -1
        if info.type != FileType.File:
            return -1, -1
        return info.size, info.mtime_ns if info.mtime_ns is not None else -1
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def _list_lines(path: str) -> list:
    text = read_bytes(path).decode("utf-8-sig")
    if is_uri(path):
        base = path.rsplit("/", 1)[0]
        join = (lambda p: p if is_uri(p) or p.startswith("/") else f"{base}/{p}")
    else:
        base = os.path.dirname(os.path.abspath(path))
        join = (lambda p: p if is_uri(p) else os.path.join(base, os.path.expanduser(p)))
    return [join(line.strip()) for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def expand(inputs, exclude: str | os.PathLike | None = None) -> list:
    """The files the inputs stand for, as (path, kind, size, mtime_ns), in the order given
    (folders sorted), each path once. Local paths are made absolute.

    Raises
    ------
    ValueError
        When a folder holds no image or video (the batch stops: a mistyped folder should not
        give an empty summary), or when no inputs are given.
    FileNotFoundError
        When a list file does not exist. A missing image or video does not raise: it becomes
        a row with its error.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise ValueError("no inputs: give image files, folders, videos or lists of paths (.txt, .lst)")
    exclude = os.path.abspath(os.fspath(exclude)) if exclude is not None else None
    seen, files = set(), []

    def add(path, size=None, mtime=None):
        if path in seen:
            return
        seen.add(path)
        if size is None:
            size, mtime = _stat(path)
        files.append((path, _kind(path), size, mtime))

    def visit(path: str, from_list: bool):
        uri = is_uri(path)
        if not uri:
            path = os.path.abspath(os.path.expanduser(path))
        ext = os.path.splitext(path.rstrip("/"))[1].lower()
        if ext in LIST_EXTENSIONS and not from_list:
            if not uri and not os.path.isfile(path):
                raise FileNotFoundError(f"list of paths not found: {path}")
            for line in _list_lines(path):
                visit(line, from_list=True)
            return
        if uri:
            listing = _walk_uri(path)
        else:
            listing = _walk_local(path, exclude) if os.path.isdir(path) else None
        if listing is None:
            add(path)
            return
        if not listing:
            raise ValueError(f"no images or videos in folder {path} (looked recursively for "
                             f"{', '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))})")
        for p, size, mtime in listing:
            add(p, size, mtime)

    for p in inputs:
        visit(p, from_list=False)
    return files


def video_frame_count(path: str) -> int:
    """The frame count a local video's container announces (0: unknown or unreadable)."""
    import cv2
    cap = cv2.VideoCapture(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()


def plan(inputs, every: int = 1, exclude=None, segment: int = VIDEO_SEGMENT_FRAMES) -> list:
    """The units of a batch, in input order: one per image; a local video is split into runs of
    ``segment`` frames (from the frame count its container announces; the last run reads to the
    end, so a short count loses nothing)."""
    units = []
    for path, kind, size, mtime in expand(inputs, exclude):
        if kind == "image":
            units.append(Unit(path, kind, 0, 1, size, mtime, 1))
            continue
        count = video_frame_count(path) if size >= 0 and not is_uri(path) else 0
        if count <= 0:
            units.append(Unit(path, kind, 0, -1, size, mtime, 1))
            continue
        length = max(every, segment // every * every)  # runs start on frames that are read
        starts = list(range(0, count, length))
        for i, start in enumerate(starts):
            stop = -1 if i == len(starts) - 1 else start + length
            end = count if stop < 0 else stop
            units.append(Unit(path, kind, start, stop, size, mtime, len(range(start, end, every)) or 1))
    return units
