"""Command line of the evaluation suite: ``fastdefocus eval`` (quality against peers; with --all the
full report) and ``fastdefocus bench`` (CPU speed), and the ``benchmarks/*.py`` scripts. All the
argparse code of the suite is here; the work is done by :mod:`fastdefocus.eval`, imported lazily.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fastdefocus.cli.options import add_estimator_arguments, estimator_from_args

__all__ = ["add_commands"]


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value

def add_quality_arguments(ap: argparse.ArgumentParser) -> None:
    """Data folders, sections, limits and the estimator options of the quality benchmark."""
    from fastdefocus.eval.peers import HIFST_INSTALL
    from fastdefocus.eval.quality import SECTIONS
    ap.add_argument("--data", type=Path, default=None,
                    help="data root (default $FASTDEFOCUS_DATA, else ../shared/data from the working directory)")
    ap.add_argument("--syndof", type=Path, default=None, help="SYNDOF folder (default DATA/eval/syndof)")
    ap.add_argument("--scenes", type=Path, default=None,
                    help="folder of sharp photos for layered scenes (default DATA/train/bsds500/val)")
    ap.add_argument("--dbd", type=Path, default=None,
                    help="folder of detection image / mask pairs, masks white = in focus: images/ and "
                         "masks_white_in_focus/ (or masks/, gt/), or <name> beside <name>_mask "
                         "(default DATA/eval/dbd/cuhk320)")
    ap.add_argument("--sharp", type=Path, default=None, metavar="DIR",
                    help="folder of sharp photos for the sharp-photo readings (default DATA/train/bsds500/val)")
    ap.add_argument("--largeblur", type=Path, default=None, metavar="DIR",
                    help="folder of sharp photos blurred by 8 to 12 px for the large-blur readings "
                         "(default: the --sharp folder)")
    ap.add_argument("--video", type=Path, default=None, metavar="DIR",
                    help="folder of .mp4 clips for the temporal section (default DATA/real/video)")
    ap.add_argument("--video-frames", type=int, default=20, metavar="N",
                    help="frames of each clip used by the temporal section")
    ap.add_argument("--pairs", nargs="+", default=None, help="multi-focus pairs (default lytro_01 to lytro_10)")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--limit", type=int, default=100, help="photos used for layered scenes")
    ap.add_argument("--dbd-limit", type=int, default=None, help="detection images used (default all)")
    ap.add_argument("--syndof-limit", type=int, default=None, help="SYNDOF images used (default all)")
    ap.add_argument("--sharp-limit", type=int, default=None, help="sharp photos used (default all)")
    ap.add_argument("--sharp-downscale", type=_at_least_one, default=2, metavar="N",
                    help="area-downscale factor of the sharp photos (default 2; 1: as stored)")
    ap.add_argument("--largeblur-limit", type=int, default=None,
                    help="photos used for the large-blur readings (default all; 4 estimates each at full size)")
    ap.add_argument("--dbdgen-n", type=int, default=100, metavar="N",
                    help="images of the generated detection set (section dbdgen)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the layered scenes and of the generated detection set")
    ap.add_argument("--no-peers", dest="peers", action="store_false",
                    help=f"only fastdefocus (HiFST needs: {HIFST_INSTALL})")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    add_estimator_arguments(ap)


def add_speed_arguments(ap: argparse.ArgumentParser, prefix: bool = False) -> None:
    """Speed options; with ``prefix`` (the full report) they are spelt --speed-*."""
    from fastdefocus.eval.speed import DEFAULT_SIZES, SIZES, STREAM_SIZES, XIMGPROC_VENV
    p = "--speed-" if prefix else "--"
    ap.add_argument(f"{p}repeats", dest="speed_repeats", type=int, default=3, help="best of N runs")
    ap.add_argument(f"{p}sizes", dest="speed_sizes", nargs="+", choices=list(SIZES), default=list(DEFAULT_SIZES))
    ap.add_argument(f"{p}stream-sizes", dest="speed_stream_sizes", nargs="+", choices=list(SIZES),
                    default=list(STREAM_SIZES), help="frame sizes of the frames-per-second table")
    ap.add_argument(f"{p}stream-frames", dest="speed_stream_frames", type=int, default=20,
                    help="different frames timed per configuration of the frames-per-second table")
    ap.add_argument(f"{p}no-stream", dest="speed_stream", action="store_false",
                    help="skip the frames-per-second table")
    ap.add_argument(f"{p}models", dest="speed_models", nargs="+", choices=["default", "fast"],
                    default=["default", "fast"], help="shipped models of the frames-per-second table")
    ap.add_argument(f"{p}strides", dest="speed_strides", type=int, nargs="+", default=[8, 16])
    ap.add_argument(f"{p}loop-patches", dest="speed_loop_patches", type=int, default=2000,
                    help="patches timed one at a time for the official structure, extrapolated to all "
                         "(0: time them all)")
    ap.add_argument(f"{p}no-loop", dest="speed_loop", action="store_false",
                    help="skip the one-patch-at-a-time baseline")
    ap.add_argument(f"{p}no-torch", dest="speed_torch", action="store_false",
                    help="skip the eager torch baseline")
    ap.add_argument(f"{p}no-reference", dest="speed_reference", action="store_false",
                    help="skip the NumPy reference guided filter")
    ap.add_argument(f"{p}no-gpu", dest="speed_gpu", action="store_false", help="do not run the GPU benchmark (python -m fastdefocus.eval.gpu_bench) when a GPU is present")
    ap.add_argument(f"{p}ximgproc-python", dest="speed_ximgproc_python",
                    default=os.environ.get("FASTDEFOCUS_XIMGPROC_PYTHON"),
                    help="a python with opencv-contrib (cv2.ximgproc) to time OpenCV's guided filter when this "
                         "environment's OpenCV lacks it (default $FASTDEFOCUS_XIMGPROC_PYTHON)")
    ap.add_argument(f"{p}install-ximgproc", dest="speed_install_ximgproc", action="store_true",
                    help=f"create {XIMGPROC_VENV} with opencv-contrib-python-headless (once) and use it")
    ap.set_defaults(speed_prefixed=prefix)


def speed_options(args) -> dict:
    from fastdefocus.eval.speed import install_ximgproc_venv
    return {"repeats": args.speed_repeats, "sizes": args.speed_sizes, "strides": args.speed_strides,
            "loop_patches": args.speed_loop_patches, "loop": args.speed_loop, "torch": args.speed_torch,
            "reference": args.speed_reference, "gpu": args.speed_gpu, "stream": args.speed_stream,
            "stream_sizes": args.speed_stream_sizes, "stream_frames": args.speed_stream_frames,
            "models": args.speed_models,
            "ximgproc_python": (str(install_ximgproc_venv()) if args.speed_install_ximgproc
                                else args.speed_ximgproc_python)}


def add_report_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of the full report: the quality options, and the speed options as --speed-*."""
    add_quality_arguments(ap)
    add_speed_arguments(ap, prefix=True)
    ap.add_argument("--no-speed", dest="speed", action="store_false", help="quality sections only")


def add_speed_command_arguments(ap: argparse.ArgumentParser) -> None:
    add_speed_arguments(ap)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("-o", "--out", type=Path, default=None, help="folder for speed.md and speed.json")


def _quality(args, est) -> int:
    """The quality sections, as ``cmd_quality``; exit 2 when every selected section was skipped
    (no data found), naming --data and FASTDEFOCUS_DATA, instead of an empty report."""
    from fastdefocus.eval._common import emit_report
    from fastdefocus.eval.quality import run_quality
    report = run_quality(args, est, args.out)
    if not any(section in report for section in args.sections):
        print(f"error: no quality section ran: the data of {', '.join(args.sections)} was not found under "
              f"{report.get('data')}; point --data (or FASTDEFOCUS_DATA) at the data root, or name the "
              "folders (--syndof, --scenes, --dbd, ...)", file=sys.stderr)
        return 2
    emit_report("Quality", "quality", report, report["markdown"], args.out, args.json)
    return 0


def _cmd_eval(args) -> int:
    est = estimator_from_args(args)
    if args.all:
        from fastdefocus.eval.report import cmd_report
        if args.out is None:
            args.out = Path("fastdefocus-report")
        args.speed_options = speed_options(args)
        return cmd_report(args, est)
    return _quality(args, est)


def _cmd_bench(args) -> int:
    from fastdefocus.eval.speed import cmd_speed
    args.speed_options = speed_options(args)
    return cmd_speed(args)


def add_commands(subparsers) -> None:
    """Register ``eval`` and ``bench`` on the ``fastdefocus`` subparsers."""
    p = subparsers.add_parser(
        "eval", help="quality of the maps against truth and peers (Markdown, JSON, PNG pictures)",
        description="Quality sections on the benchmark data (default $FASTDEFOCUS_DATA or ../shared/data): "
                    "SYNDOF sigma maps, synthetic layered scenes, defocus blur detection masks (real and "
                    "generated), multi-focus fusion, sharp photos and large blur, each against its peers in "
                    "the same run. With --all, also the CPU "
                    "speed tables, into one report folder (report.md, report.json, pictures).")
    add_report_arguments(p)
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="folder for the Markdown, JSON and pictures (--all: default fastdefocus-report)")
    p.add_argument("--all", action="store_true", help="the full report: quality and speed")
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser(
        "bench", help="CPU speed per stage and end to end, with baselines and peak memory",
        description="Times 640x480 and 1920x1080 frames at stride 8 and 16 against eager torch, the "
                    "one-patch-at-a-time loop, cv2.ximgproc and the NumPy reference guided filter; runs "
                    "the GPU benchmark (python -m fastdefocus.eval.gpu_bench) when a GPU is present.")
    add_speed_command_arguments(p)
    p.set_defaults(func=_cmd_bench)


# ---------------------------------------------------------------------- benchmarks/*.py


def quality_main(argv=None, prog: str | None = None) -> int:
    """``benchmarks/quality.py``: the quality sections (``fastdefocus eval``)."""
    ap = argparse.ArgumentParser(prog=prog, description="Quality of the defocus maps against truth and peers.")
    add_quality_arguments(ap)
    ap.add_argument("-o", "--out", type=Path, default=None,
                    help="folder for quality.md, quality.json and the pictures")
    args = ap.parse_args(argv)
    return _quality(args, estimator_from_args(args))


def report_main(argv=None, prog: str | None = None) -> int:
    """``benchmarks/report.py``: the full report into one folder (``fastdefocus eval --all``)."""
    ap = argparse.ArgumentParser(prog=prog, description="Full report: quality against peers and CPU speed, "
                                 "as report.md, report.json and PNG pictures in one folder.")
    add_report_arguments(ap)
    ap.add_argument("-o", "--out", type=Path, default=Path("fastdefocus-report"), help="report folder")
    args = ap.parse_args(argv)
    args.speed_options = speed_options(args)
    from fastdefocus.eval.report import cmd_report
    return cmd_report(args, estimator_from_args(args))


def speed_main(argv=None, prog: str | None = None) -> int:
    """``benchmarks/speed.py`` (``fastdefocus bench``)."""
    ap = argparse.ArgumentParser(prog=prog, description="CPU speed per stage and end to end, with baselines.")
    add_speed_command_arguments(ap)
    return _cmd_bench(ap.parse_args(argv))


def fusion_main(argv=None, prog: str | None = None) -> int:
    """``benchmarks/fusion.py``: fastdefocus.fuse against GFF and a Laplacian-energy decision."""
    from fastdefocus.apps.fuse import FUSE_STRIDE
    ap = argparse.ArgumentParser(prog=prog, description="Multi-focus fusion on the Lytro pairs against two "
                                 "baselines (Q^AB/F, Q_MI, Q_CB, time).")
    ap.add_argument("--data", type=Path, default=None, help="data root holding eval/mfif "
                    "(default $FASTDEFOCUS_DATA, else ../shared/data)")
    ap.add_argument("--pairs", nargs="+", default=None, help="pairs (default lytro_01 to lytro_10)")
    ap.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    add_estimator_arguments(ap, stride=FUSE_STRIDE)
    args = ap.parse_args(argv)
    from fastdefocus.eval import fusion
    from fastdefocus.eval._common import default_data, write_json
    data = args.data if args.data is not None else default_data()
    try:
        out = fusion.compare(estimator_from_args(args), data / "eval" / "mfif", args.pairs or fusion.DEFAULT_PAIRS)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(out["table"])
    if args.json:
        write_json(args.json, out)
    return 0
