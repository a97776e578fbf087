"""The full report: every quality section against its peers and the CPU speed tables, in one folder
(report.md, report.json, PNG pictures)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from fastdefocus.eval._common import info_markdown, write_json
from fastdefocus.eval.quality import run_quality
from fastdefocus.eval.speed import run_speed, speed_markdown


def cmd_report(args, est) -> int:
    """The full report (quality with ``est`` and, unless ``args.speed`` is False, speed) into ``args.out``."""
    t0 = time.time()
    out = args.out if args.out is not None else Path("fastdefocus-report")
    out.mkdir(parents=True, exist_ok=True)
    quality = run_quality(args, est, out)
    report = {"info": quality["info"], "command": " ".join([Path(sys.argv[0]).name] + list(sys.argv[1:])),
              "quality": quality}
    parts = ["# fastdefocus: quality and speed\n", info_markdown(quality["info"]), "\n## Quality\n",
             quality["markdown"]]
    if getattr(args, "speed", True):
        print("[speed] ...", file=sys.stderr, flush=True)
        speed = run_speed(args.speed_options)
        report["speed"] = speed
        parts += ["\n## Speed (CPU)\n", speed_markdown(speed)]
    report["seconds"] = round(time.time() - t0, 1)
    parts.append(f"\nReport written in {report['seconds']:.0f} s by `{report['command']}`.\n")
    text = "\n".join(parts)
    (out / "report.md").write_text(text)
    write_json(out / "report.json", report)
    if args.json:
        write_json(args.json, report)
    print(text)
    print(f"report in {out}: report.md, report.json, {', '.join(sorted(p.name for p in out.glob('*.png')))}",
          file=sys.stderr)
    return 0
