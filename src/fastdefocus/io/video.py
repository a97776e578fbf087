"""Video input: frames of a file decoded with OpenCV, and a bounded reader thread."""
from __future__ import annotations

import queue
import threading
import warnings
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

_END = object()


def prefetched(frames, depth: int) -> Iterator:
    """Iterate ``frames`` in a reader thread, at most ``depth`` items ahead; the reader's
    exceptions are raised here, in order. Closing the iterator stops the reader."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader():
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            items.put((_END, e))

    thread = threading.Thread(target=reader, name="fastdefocus-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video file, in order; ValueError if none can be read."""
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}: not a video file OpenCV can read")
    try:
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # container's count; 0 if unknown
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if count == 0:
            raise ValueError(f"video {path} has no readable frames (corrupt or empty)")
        if expected > 0 and count < expected:  # containers often only estimate their count: warn
            warnings.warn(f"video {path} ended after {count} of the {expected} frames its header "
                          "announces: the file may be truncated or corrupt", RuntimeWarning, stacklevel=2)
    finally:
        cap.release()


def video_info(path) -> tuple:
    """(frames per second, frame count) from a video's container; 0.0 and None where the
    container does not say (OpenCV reports -2**63 or 0 frames for a still image or a stream)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0.0, None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    finally:
        cap.release()
    fps = fps if np.isfinite(fps) and 0.0 < fps < 10000.0 else 0.0
    count = int(count) if np.isfinite(count) and 0 < count < 2 ** 40 else None
    return fps, count


#: Output containers and what OpenCV writes into them when PyAV is not installed.
OPENCV_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
#: Containers written as H.264 (yuv420p, which browsers play) when PyAV is installed.
H264_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv")
#: The extensions :class:`VideoWriter` accepts.
VIDEO_EXTENSIONS = tuple(sorted(OPENCV_FOURCC))


def _h264_encoder():
    """(the av module, the name of an H.264 encoder) or (None, why not)."""
    try:
        import av
    except ImportError:
        return None, "PyAV is not installed (pip install 'fastdefocus[video]')"
    for name in ("libx264", "h264", "libopenh264"):
        try:
            av.codec.Codec(name, "w")
            return av, name
        except Exception:  # noqa: BLE001 - PyAV raises its own errors for unknown codecs
            continue
    return None, "PyAV has no H.264 encoder in this build"


class VideoWriter:
    """Write RGB uint8 frames of one size to a video file.

    .mp4 / .m4v / .mov / .mkv are written as H.264 (yuv420p, which browsers play) through PyAV
    (``pip install 'fastdefocus[video]'``) when it is installed; otherwise, and for .avi, OpenCV
    writes mp4v (.mp4 / .m4v / .mov) or MJPG (.avi / .mkv), and ``notice`` says in one line why
    it is not H.264. H.264 needs even sizes: an odd last row or column is repeated.
    ``codec`` says what is written ("h264", "mp4v" or "MJPG"). Use it as a context manager or
    call :meth:`close`; the file is complete only after that.
    """

    def __init__(self, path, fps: float, codec: str = "auto"):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in OPENCV_FOURCC:
            raise ValueError(f"video output {self.path} must end in one of {', '.join(VIDEO_EXTENSIONS)}, "
                             f"got {self.path.suffix!r}")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.notice = None
        self._av = self._container = self._stream = self._cv = None
        self._encoder = None
        if suffix in H264_CONTAINERS and codec in ("auto", "h264"):
            av, name = _h264_encoder()
            if av is None:
                if codec == "h264":
                    raise RuntimeError(f"cannot write H.264: {name}")
                self.notice = (f"note: writing {suffix} as {OPENCV_FOURCC[suffix]}, which browsers do not play: "
                               f"{name}")
            else:
                self._av, self._encoder = av, name
        self.codec = "h264" if self._av is not None else OPENCV_FOURCC[suffix]

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); every frame must have the first one's size."""
        if self._av is not None:
            h, w = rgb.shape[:2]
            if h % 2 or w % 2:
                rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            if self._container is None:
                from fractions import Fraction
                options = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else {}
                self._container = self._av.open(str(self.path), mode="w", options=options)
                self._stream = self._container.add_stream(self._encoder,
                                                          rate=Fraction(self.fps).limit_denominator(1001))
                self._stream.width, self._stream.height = rgb.shape[1], rgb.shape[0]
                self._stream.pix_fmt = "yuv420p"
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            return
        if self._cv is None:
            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps,
                                       (rgb.shape[1], rgb.shape[0]))
            if not self._cv.isOpened():
                raise RuntimeError(f"OpenCV cannot write {self.path.suffix} video ({self.codec}) here")
        self._cv.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the file (flush the encoder)."""
        if self._container is not None:
            try:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            finally:
                self._container.close()
                self._container = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
