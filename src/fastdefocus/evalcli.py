"""Command line: ``fastdefocus eval`` (quality against peers, or the full report with --all)
and ``fastdefocus bench`` (CPU speed). Registered by :func:`add_commands`; the work is done
by :mod:`fastdefocus.benchmarking` and :mod:`fastdefocus.speedbench`.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["add_commands"]


def _cmd_eval(args) -> int:
    from .benchmarking import cmd_quality, cmd_report
    return cmd_report(args) if args.all else cmd_quality(args)


def _cmd_bench(args) -> int:
    from .speedbench import cmd_speed
    return cmd_speed(args)


def add_commands(subparsers) -> None:
    """Register ``eval`` and ``bench`` on the ``fastdefocus`` subparsers."""
    from .benchmarking import add_report_arguments
    from .speedbench import add_speed_command_arguments

    p = subparsers.add_parser(
        "eval", help="quality of the maps against truth and peers (Markdown, JSON, PNG pictures)",
        description="Quality sections on the benchmark data (default $FASTDEFOCUS_DATA or ../shared/data): "
                    "SYNDOF sigma maps, synthetic layered scenes, defocus blur detection masks and "
                    "multi-focus fusion, each against its peers in the same run. With --all, also the CPU "
                    "speed tables, into one report folder (report.md, report.json, pictures).")
    add_report_arguments(p)
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="folder for the Markdown, JSON and pictures (--all: default fastdefocus-report)")
    p.add_argument("--all", action="store_true", help="the full report: quality and speed")
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser(
        "bench", help="CPU speed per stage and end to end, with baselines and peak memory",
        description="Times 640x480 and 1920x1080 frames at stride 8 and 16 against eager torch, the "
                    "one-patch-at-a-time loop, cv2.ximgproc and the NumPy reference guided filter; hands "
                    "off to benchmarks/gpu_bench.py when a GPU is present.")
    add_speed_command_arguments(p)
    p.set_defaults(func=_cmd_bench)
