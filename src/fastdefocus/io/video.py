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
