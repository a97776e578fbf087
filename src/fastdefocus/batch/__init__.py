"""Batches: defocus statistics (and maps) of whole photo libraries and video archives.

    fastdefocus batch photos/ videos/ list.txt -o out [--engine local|ray] [--outputs summary,maps]

>>> from fastdefocus.batch import run                                   # doctest: +SKIP
>>> run(["photos/"], "out", engine="local", workers=4)                  # doctest: +SKIP
PosixPath('out/summary.parquet')

Tooling layer: it may import the estimator, io, config and result; only ``fastdefocus.cli``
imports it. pyarrow (``pip install 'fastdefocus[batch]'``) and Ray
(``pip install 'fastdefocus[ray]'``) are imported when a batch runs, never by ``import fastdefocus``.
"""
from fastdefocus.batch.runner import ENGINES, OUTPUTS, options_key, run
from fastdefocus._params import IN_FOCUS_SIGMA
from fastdefocus.batch.work import SUMMARY_COLUMNS, map_name

__all__ = ["ENGINES", "IN_FOCUS_SIGMA", "OUTPUTS", "SUMMARY_COLUMNS", "map_name",
           "options_key", "run"]
