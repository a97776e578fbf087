"""The full report: every quality section against its peers and the CPU speed tables.

    python benchmarks/report.py -o report/ [--data DIR] [quality options] [--speed-* options]

Writes report/report.md, report/report.json and the PNG pictures (the same as
``fastdefocus eval --all -o report/``). Install the HiFST peer first
(`pip install scikit-image && pip install --no-deps blur-detector`, or pass --install-peers).
"""
import sys

from fastdefocus.benchmarking import report_main

if __name__ == "__main__":
    sys.exit(report_main())
