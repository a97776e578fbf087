"""The full report: every quality section against its peers and the CPU speed tables.

    python benchmarks/report.py -o report/ [--data DIR] [quality options] [--speed-* options]

Same as ``fastdefocus eval --all -o report/``: report.md, report.json and the PNG pictures.
"""
import sys

from fastdefocus.cli.eval import report_main

if __name__ == "__main__":
    sys.exit(report_main())
