"""Tables of per-image (or per-frame) statistics as CSV or JSON files, written atomically."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from fastdefocus.io.images import write_atomic

#: The table formats, by file extension.
TABLE_EXTENSIONS = (".csv", ".json")


def _plain(value):
    """NaN and infinities become None (an empty CSV field, JSON null); NumPy scalars plain numbers."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_table(rows, columns, suffix: str) -> bytes:
    """``rows`` (dicts) as CSV (a header line, then one line per row; missing values empty) or
    JSON (a list of objects with exactly ``columns``, missing values null)."""
    table = [{c: _plain(row.get(c)) for c in columns} for row in rows]
    if suffix == ".json":
        return (json.dumps(table, indent=1) + "\n").encode("utf-8")
    if suffix == ".csv":
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in table:
            writer.writerow({c: "" if v is None else v for c, v in row.items()})
        return buf.getvalue().encode("utf-8")
    raise ValueError(f"a table file must end in {' or '.join(TABLE_EXTENSIONS)}, got {suffix!r}")


def write_table(path: str | os.PathLike, rows, columns, force: bool = False) -> Path:
    """Write ``rows`` as CSV or JSON, by ``path``'s extension (:func:`encode_table`), atomically."""
    path = Path(path)
    return write_atomic(path, encode_table(rows, columns, path.suffix.lower()), force=force)
