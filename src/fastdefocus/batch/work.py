"""What a batch worker does with a unit: read it, estimate it, describe each map in a row, write
the map when asked. The same code runs in a local worker process and in a Ray actor.

Threads: a worker's estimator gets the worker's share as its ``threads`` option (ONNX Runtime's
pool and the native stages), and before it is built the worker keeps the rest of the process to
that share too (:func:`limit_threads`: the CPU affinity, which is also what ONNX Runtime and the
native code default to, and the thread-count variables of OpenMP, OpenBLAS and OpenCV).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

#: The columns of ``summary.parquet``, in order.
SUMMARY_COLUMNS = ("path", "frame", "height", "width", "median_sigma", "p10_sigma", "p90_sigma",
                   "in_focus_fraction", "sharpness", "backend", "ms", "error")
#: Extra columns of the part files: the unit a row came from and the version of its file
#: (``start``, ``size``, ``mtime_ns``), the options' hash (``key``), and ``is_row`` (False for
#: the marker of a video run that turned out to hold no frame to read, so that it counts as done).
PART_COLUMNS = SUMMARY_COLUMNS + ("start", "size", "mtime_ns", "key", "is_row")
#: The thread-count variables a worker sets: the native filters, OpenMP, OpenBLAS, MKL.
THREAD_VARIABLES = ("FASTDEFOCUS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int, cores=None) -> None:
    """Keep this process to ``threads`` threads besides its estimator's own ``threads`` option:
    the thread-count variables the native code, the OpenMP and BLAS runtimes read, OpenCV's pool,
    and, when ``cores`` is given and the platform has it, the CPU affinity of the calling thread
    and of the threads it starts later (``os.sched_setaffinity``; ONNX Runtime's and the native
    code's default thread counts follow it). Call it, from the thread that will estimate, before
    the estimator is built."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if cores and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, set(cores))
        except OSError:  # cores not ours (a container's cgroup changed): the thread counts still hold
            pass
    import cv2
    cv2.setNumThreads(threads)


def map_name(path: str, frame: int = 0, video: bool = False) -> str:
    """The file name of a row's map under ``OUT/maps/``: ``<stem>-<hash>.png`` for an image,
    ``<stem>-<hash>_f<frame>.png`` for a video frame; ``<hash>`` (8 hex digits of the path's
    SHA-1) keeps files of the same name from different folders apart."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(base)[0]) or "image"
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem}-{digest}_f{frame}.png" if video else f"{stem}-{digest}.png"


def video_run(path: str, start: int, stop: int, every: int):
    """(index, RGB uint8 frame) of the frames ``start`` <= index < ``stop`` (-1: to the end) of a
    local video whose index is a multiple of ``every``. The run starts with a seek, checked:
    where the container cannot seek exactly, the frames before ``start`` are skipped one by one.
    Frames that are not wanted are only grabbed, not converted."""
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}: not a video file OpenCV can read")
    try:
        index = 0
        if start > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, start) and \
                int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == start:
            index = start
        elif start > 0:
            cap.release()
            cap = cv2.VideoCapture(path)
        while stop < 0 or index < stop:
            if index < start or index % every:
                if not cap.grab():
                    return
            else:
                ok, frame = cap.read()
                if not ok:
                    return
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


class Worker:
    """Holds one estimator; :meth:`process` turns a unit (a :class:`~fastdefocus.batch.inputs.Unit`
    as a dict) into part rows. Errors of an image or a video become rows; nothing raises."""

    def __init__(self, options: dict, out_dir: str, maps: bool, every: int, key: str, threads: int = 0):
        from fastdefocus.config import EstimatorConfig
        from fastdefocus.estimator import DefocusEstimator
        config = EstimatorConfig(**options)
        if threads:
            config = config.replace(threads=threads)
        self.estimator = DefocusEstimator(config)
        self.backend = self.estimator.backend
        self.maps_dir = Path(out_dir) / "maps" if maps else None
        self.every, self.key = every, key

    def process(self, unit: dict) -> list:
        rows = []
        path, t0 = unit["path"], time.perf_counter()
        frame = unit["start"]
        try:
            if unit["size"] < 0:
                raise FileNotFoundError(f"not found or not readable: {path}")
            if unit["kind"] == "image":
                rows.append(self._estimate(unit, self._read_image(path), 0, False, t0))
            else:
                local, cleanup = self._local_video(path)
                try:
                    for frame, image in video_run(local, unit["start"], unit["stop"], self.every):
                        rows.append(self._estimate(unit, image, frame, True, t0))
                        t0 = time.perf_counter()
                        frame += self.every
                finally:
                    cleanup()
                if not rows and unit["start"] == 0:
                    raise ValueError(f"video {path} has no readable frames (corrupt or empty)")
                if not rows:  # a run past the end of a video whose container overstated its length
                    rows.append(self._row(unit, frame, t0, error="", is_row=False))
        except Exception as e:  # noqa: BLE001 - a bad file is a row with its error; the batch goes on
            message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            rows.append(self._row(unit, frame, t0, error=message))
        return rows

    def _read_image(self, path: str) -> np.ndarray:
        from fastdefocus.batch.inputs import is_uri, read_bytes
        from fastdefocus.io.images import decode_image, read_image
        if is_uri(path):  # decoded as read_image decodes a file: EXIF orientation, HEIC with its extra
            return decode_image(np.frombuffer(read_bytes(path), np.uint8), path)
        return read_image(path)

    @staticmethod
    def _local_video(path: str):
        """A local path for a video (a remote one is copied to a temporary file) and its cleanup."""
        from fastdefocus.batch.inputs import filesystem, is_uri
        if not is_uri(path):
            return path, (lambda: None)
        fs, inside = filesystem(path)
        fd, tmp = tempfile.mkstemp(prefix="fastdefocus-video-", suffix=os.path.splitext(path)[1])
        try:
            with os.fdopen(fd, "wb") as out, fs.open_input_stream(inside) as src:
                while True:
                    chunk = src.read(1 << 24)
                    if not chunk:
                        break
                    out.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp, (lambda: os.path.exists(tmp) and os.unlink(tmp))

    def _estimate(self, unit: dict, image: np.ndarray, frame: int, video: bool, t0: float) -> dict:
        result = self.estimator.estimate(image)
        sigma = result.sigma
        if self.maps_dir is not None:
            from fastdefocus.io.images import encode_image, write_atomic
            from fastdefocus.io.sigmamap import to_png16
            write_atomic(self.maps_dir / map_name(unit["path"], frame, video),
                         encode_image(to_png16(sigma), ".png"), force=True)
        return self._row(unit, frame, t0, **result.summary())

    def _row(self, unit: dict, frame: int, t0: float, error: str = "", is_row: bool = True, **values) -> dict:
        nan = float("nan")
        row = {"path": unit["path"], "frame": int(frame), "height": 0, "width": 0, "median_sigma": nan,
               "p10_sigma": nan, "p90_sigma": nan, "in_focus_fraction": nan, "sharpness": nan,
               "backend": self.backend, "ms": (time.perf_counter() - t0) * 1000.0, "error": error,
               "start": unit["start"], "size": unit["size"], "mtime_ns": unit["mtime_ns"], "key": self.key,
               "is_row": is_row}
        row.update(values)
        return row
