"""The progress line of a batch on stderr: items done, items per second, time left."""
from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """On a terminal, a bar redrawn in place (``\\r``); otherwise (a log file, a pipe) a line
    every ``max(5, total / 20)`` items or 10 seconds, and one at the end. ``total`` is what is
    expected (a video's frame count is its container's word), so the ETA is an estimate."""

    def __init__(self, total: int, label: str = "batch", enabled: bool = True, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.label, self.enabled = max(total, 0), label, enabled
        self.done = self.errors = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.step = max(5, self.total // 20)
        self.t0 = self._last_time = time.perf_counter()
        self._last_done = 0

    def update(self, items: int, errors: int = 0) -> None:
        self.done += items
        self.errors += errors
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self._last_time >= 0.1 or self.done >= self.total:
                self._write("\r" + self._text(now, bar=True))
        elif self.done - self._last_done >= self.step or now - self._last_time >= 10.0:
            self._write(self._text(now) + "\n")
            self._last_done = self.done
        else:
            return
        self._last_time = now

    def close(self) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            self._write("\r" + self._text(now, bar=True) + "\n")
        elif self._last_done != self.done or self.done == 0:
            self._write(self._text(now) + "\n")

    def _text(self, now: float, bar: bool = False) -> str:
        elapsed = now - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = max(self.total, self.done)
        eta = f"ETA {_clock((total - self.done) / rate)}" if rate > 0 and self.done < total else \
            f"{_clock(elapsed)} elapsed"
        errors = f", {self.errors} errors" if self.errors else ""
        head = self.label + " "
        if bar:
            width = 24
            filled = int(width * self.done / total) if total else width
            head += f"[{'#' * filled}{'.' * (width - filled)}] "
        return f"{head}{self.done}/{total} items, {rate:.1f} items/s, {eta}{errors}"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
