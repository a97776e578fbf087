"""A batch's progress on disk: part files written as rows arrive, read back to skip what is done,
merged into ``summary.parquet``. Every file is written whole or not at all (a temporary file and
a rename, :func:`fastdefocus.io.images.write_atomic`)."""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fastdefocus.batch.work import PART_COLUMNS, SUMMARY_COLUMNS
from fastdefocus.io.images import write_atomic

_TYPES = {"path": pa.string(), "frame": pa.int64(), "height": pa.int64(), "width": pa.int64(),
          "median_sigma": pa.float64(), "p10_sigma": pa.float64(), "p90_sigma": pa.float64(),
          "in_focus_fraction": pa.float64(), "sharpness": pa.float64(), "backend": pa.string(),
          "ms": pa.float64(), "error": pa.string(), "start": pa.int64(), "size": pa.int64(),
          "mtime_ns": pa.int64(), "key": pa.string(), "is_row": pa.bool_()}
PART_SCHEMA = pa.schema([(name, _TYPES[name]) for name in PART_COLUMNS])
SUMMARY_SCHEMA = pa.schema([(name, _TYPES[name]) for name in SUMMARY_COLUMNS])


def table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class PartWriter:
    """Collects rows and writes them to ``parts/part-<time>-<pid>-<n>.parquet`` every
    ``max_rows`` rows or ``max_seconds`` seconds (checked as rows arrive), and on :meth:`flush`."""

    def __init__(self, parts_dir: Path, max_rows: int = 256, max_seconds: float = 2.0):
        self.parts_dir, self.max_rows, self.max_seconds = Path(parts_dir), max_rows, max_seconds
        self.rows, self.written, self._last = [], 0, time.monotonic()

    def add(self, rows) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.max_rows or time.monotonic() - self._last >= self.max_seconds:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=PART_SCHEMA)
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{self.written:06d}.parquet"
        write_atomic(self.parts_dir / name, table_bytes(table))
        self.written += 1
        self.rows = []


def _read_parts(parts_dir: Path, columns=None) -> list:
    """(part number, table) of the part files, oldest first; an unreadable one is skipped with
    a warning (its units are done again)."""
    tables = []
    files = sorted(parts_dir.glob("part-*.parquet")) if parts_dir.is_dir() else []
    for number, f in enumerate(files):
        try:
            tables.append((number, pq.read_table(f, columns=columns)))
        except (OSError, pa.ArrowException) as e:
            warnings.warn(f"skipping unreadable part file {f}: {e}", RuntimeWarning, stacklevel=2)
    return tables


def done_units(parts_dir: Path, key: str) -> set:
    """The units (path, start, size, mtime_ns) that part files hold for this options hash."""
    done = set()
    for _, t in _read_parts(parts_dir, ["path", "start", "size", "mtime_ns", "key"]):
        keep = np.asarray(t.column("key").to_pylist(), dtype=object) == key
        cols = [t.column(c).to_pylist() for c in ("path", "start", "size", "mtime_ns")]
        done.update(u for u, k in zip(zip(*cols), keep) if k)
    return done


def merge(parts_dir: Path, units, key: str, summary: Path) -> pa.Table:
    """Write ``summary`` (atomically) from the part rows of these units under this options hash:
    the units in their order, a video's rows by frame; a unit found in several parts (a run
    done twice) takes its rows from the newest part. Returns the summary table."""
    index = {u.ident: i for i, u in enumerate(units)}
    pieces = []
    for number, t in _read_parts(parts_dir):
        t = t.select(list(PART_COLUMNS)) if set(PART_COLUMNS) <= set(t.column_names) else None
        if t is None or t.num_rows == 0:
            continue
        cols = [t.column(c).to_pylist() for c in ("path", "start", "size", "mtime_ns")]
        keys = t.column("key").to_pylist()
        unit = np.fromiter((index.get(u, -1) if k == key else -1 for u, k in zip(zip(*cols), keys)),
                           dtype=np.int64, count=t.num_rows)
        pieces.append((t, unit, np.full(t.num_rows, number, np.int64)))
    if not pieces:
        table = SUMMARY_SCHEMA.empty_table()
    else:
        table = pa.concat_tables([p[0].cast(PART_SCHEMA) for p in pieces])
        unit = np.concatenate([p[1] for p in pieces])
        part = np.concatenate([p[2] for p in pieces])
        newest = np.full(len(units) + 1, -1, np.int64)
        np.maximum.at(newest, unit, part)  # index -1 (not a unit of this batch) lands in the spare slot
        is_row = np.asarray(table.column("is_row").to_pylist(), bool)
        keep = np.flatnonzero((unit >= 0) & (part == newest[unit]) & is_row)
        frame = np.asarray(table.column("frame").to_pylist(), np.int64)[keep]
        order = keep[np.lexsort((frame, unit[keep]))]
        table = table.take(pa.array(order)).select(list(SUMMARY_COLUMNS))
    write_atomic(summary, table_bytes(table), force=True)
    return table


def describe(table: pa.Table, summary: Path, file=None) -> None:
    errors = sum(1 for e in table.column("error").to_pylist() if e)
    print(f"{table.num_rows} rows -> {summary}" + (f" ({errors} with an error: see the error column)"
                                                  if errors else ""), file=file or sys.stderr)
